/* test_evaluate.c - the official AVSBench metrics and stepstone-evaluate.
 *
 *   hand/...      cases computed by hand: a class predicted but absent, a
 *                 class present but never predicted, the k/71 official mean,
 *                 empty ground truth (IoU of the empty prediction, F skipped),
 *                 a video whose frames are all empty (F = 0, still counted),
 *                 the max over the F curve
 *   thresholds    the 255 float32 thresholds decide every 8-bit value as
 *                 torch.linspace(0, 1 - 1e-10, 255) does (expected.json)
 *   parity/...    stepstone-evaluate on tests/fixtures/metrics (labels and
 *                 predictions of sizes other than 224, gray, palette and RGB)
 *                 agrees within 1e-6 with every number the official functions
 *                 gave (tests/reference/metrics_ref.py): headline, per class,
 *                 per video, for avss, s4 and ms3
 *   oracle/...    the ground truth as prediction: 1.0 over the classes that
 *                 occur, k/71 official; s4/ms3 mIoU 1, F 1 except videos whose
 *                 truth is all empty (F 0)
 *   background/.. an all-background prediction scores what the formulas say
 *                 (computed here in double from the fixture's expected maps)
 *   object/...    the S4 fixture in the AVSBench-object layout, predictions
 *                 under AVSBench's save_mask names: the same numbers
 *   cli/...       missing and unreadable predictions are named, counted and
 *                 give exit 3; a missing label PNG exits 1 naming the file;
 *                 off-palette ground truth is reported with file and pixels;
 *                 a metadata row missing a field exits 1 naming file and line;
 *                 --report writes index.html, chart.png and strips; --help */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avs_metrics.h"
#include "avsbench.h"
#include "check.h"
#include "cli.h"
#include "png_io.h"

#define FIX "tests/fixtures/metrics"
#define NPIX (AVS_SIZE * AVS_SIZE)

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

/* ---- hand-computed cases ---- */

static void test_hand_avss(void) {
    /* 4 pixels: truth 0 0 1 1, prediction 0 1 1 2 */
    const uint8_t truth[4] = {0, 0, 1, 1}, pred[4] = {0, 1, 1, 2};
    avss_acc_t a;
    avss_acc_init(&a);
    avss_acc_add_frame(&a, pred, truth, 4);
    avss_result_t r;
    avss_acc_result(&a, &r);
    /* class 0: inter 1, union 2 -> 0.5; P 1, R 0.5 -> F 1.3*0.5/(0.3+0.5) = 0.8125
     * class 1: inter 1, union 3 -> 1/3;  P 0.5, R 0.5 -> F 0.5
     * class 2: predicted, absent: union 1 -> IoU 0, counted; R = 0/0 -> F 0 */
    check(near(r.class_iou[0], 0.5, 1e-7) && near(r.class_iou[1], 1.0 / 3, 1e-7) && r.class_iou[2] == 0,
          "hand/avss_iou", "%g %g %g", r.class_iou[0], r.class_iou[1], r.class_iou[2]);
    check(near(r.class_f[0], 0.8125, 1e-7) && near(r.class_f[1], 0.5, 1e-7) && r.class_f[2] == 0, "hand/avss_f",
          "%g %g %g", r.class_f[0], r.class_f[1], r.class_f[2]);
    check(r.class_count[2] == 1 && r.class_count[3] == 0 && r.n_occurring == 3, "hand/avss_predicted_absent",
          "count %d, occurring %d", r.class_count[2], r.n_occurring);
    check(near(r.miou, (0.5 + 1.0 / 3) / 71, 1e-8) && near(r.miou_nb, (1.0 / 3) / 70, 1e-8) &&
              near(r.miou_occurring, (0.5 + 1.0 / 3) / 3, 1e-7),
          "hand/avss_means", "miou %.9f nb %.9f occ %.9f", r.miou, r.miou_nb, r.miou_occurring);
    /* a class present but never predicted: truth 5 5, prediction 0 0 */
    const uint8_t t2[2] = {5, 5}, p2[2] = {0, 0};
    avss_acc_init(&a);
    avss_acc_add_frame(&a, p2, t2, 2);
    avss_acc_result(&a, &r);
    check(r.class_iou[5] == 0 && r.class_count[5] == 1 && r.class_f[5] == 0 && r.class_iou[0] == 0 &&
              r.class_count[0] == 1,
          "hand/avss_present_never_predicted", "iou %g count %d", r.class_iou[5], r.class_count[5]);
    /* perfect on k = 2 classes: k/71 */
    avss_acc_init(&a);
    avss_acc_add_frame(&a, truth, truth, 4);
    avss_acc_result(&a, &r);
    check(r.miou == 2.0 / 71 && r.miou_occurring == 1.0 && r.fscore == 2.0 / 71, "hand/avss_k_over_71",
          "miou %.9f occurring %.9f", r.miou, r.miou_occurring);
    /* the per-class mean runs over the frames where the class occurs */
    const uint8_t t3[4] = {0, 0, 0, 0}, p3[4] = {0, 0, 0, 0};
    avss_acc_add_frame(&a, p3, t3, 4);
    avss_acc_result(&a, &r);
    check(r.class_count[1] == 1 && r.class_iou[1] == 1.0f && r.class_count[0] == 2, "hand/avss_count_frames",
          "class 1 count %d iou %g", r.class_count[1], r.class_iou[1]);
}

static void test_hand_binary(void) {
    avs_bin_video_t v;
    float mi, f;
    /* truth 1 1 0 0, prediction 255 0 255 0: IoU 1/3; F: th 0 selects all
     * (P 0.5, R 1 -> 0.65/1.15), th > 0 selects 2 (P 0.5, R 0.5 -> 0.5) */
    const uint8_t t[4] = {1, 1, 0, 0}, p[4] = {255, 0, 255, 0};
    avs_bin_video_begin(&v);
    float iou = avs_bin_video_add_frame(&v, p, t, 4);
    avs_bin_video_end(&v, &mi, &f);
    check(near(iou, 1.0 / 3, 1e-7) && near(f, 0.65 / 1.15, 1e-6), "hand/binary_frame", "iou %g F %g", iou, f);
    /* empty truth: the correctly empty fraction, and no F */
    const uint8_t t0[4] = {0, 0, 0, 0}, p0[4] = {0, 0, 0, 0}, p1[4] = {0, 200, 0, 0};
    avs_bin_video_begin(&v);
    float e0 = avs_bin_video_add_frame(&v, p0, t0, 4);
    float e1 = avs_bin_video_add_frame(&v, p1, t0, 4);
    avs_bin_video_end(&v, &mi, &f);
    check(near(e0, 1.0, 1e-7) && near(e1, 0.75, 1e-7) && v.f_frames == 0 && f == 0 && near(mi, 0.875, 1e-7),
          "hand/binary_empty_truth", "ious %g %g, F %g, mIoU %g", e0, e1, f, mi);
    /* an all-empty video still counts in the mean over videos (F 0) */
    avs_bin_acc_t acc;
    avs_bin_acc_init(&acc);
    avs_bin_acc_add_video(&acc, &v);
    avs_bin_video_begin(&v);
    const uint8_t t1[4] = {1, 1, 0, 0}, pp[4] = {255, 255, 0, 0};
    avs_bin_video_add_frame(&v, pp, t1, 4);
    avs_bin_acc_add_video(&acc, &v);
    avs_bin_result_t r;
    avs_bin_acc_result(&acc, &r);
    check(r.videos == 2 && near(r.fscore, 0.5, 1e-7) && near(r.miou, (0.875 + 1.0) / 2, 1e-7) && r.empty_frames == 2,
          "hand/binary_empty_video_counts", "videos %lld F %g mIoU %g", (long long)r.videos, r.fscore, r.miou);
    /* the curve is averaged over frames before its maximum: two frames whose
     * best thresholds differ */
    const uint8_t ta[4] = {1, 0, 0, 0}, pa[4] = {255, 100, 100, 0};
    const uint8_t tb[4] = {1, 1, 1, 0}, pb[4] = {255, 100, 100, 0};
    avs_bin_video_begin(&v);
    avs_bin_video_add_frame(&v, pa, ta, 4);
    avs_bin_video_add_frame(&v, pb, tb, 4);
    avs_bin_video_end(&v, &mi, &f);
    /* th <= 100/255: frame a P 1/3 R 1 -> 1.3/3/(0.1+1) = 0.39394; frame b P 1 R 1 -> 1: mean 0.69697
     * th  > 100/255: frame a P 1 R 1 -> 1; frame b P 1 R 1/3 -> 0.43333/0.63333 = 0.68421: mean 0.84211 */
    double fa = (1.3 / 3) / (0.1 + 1), fb = (1.3 / 3) / (0.3 + 1.0 / 3);
    check(near(f, (1 + fb) / 2, 1e-6) && !near(f, (fa + 1) / 2, 1e-3), "hand/binary_curve_mean_then_max", "F %g",
          f);
}

static void test_thresholds(json_t *expected) {
    json_t *th = json_object_get(expected, "thresholds");
    const float *mine = avs_f_thresholds();
    if (!check(json_array_size(th) == AVS_F_THRESHOLDS, "thresholds/count", "%zu", json_array_size(th))) return;
    int same_value = 1, same_decision = 1;
    for (int i = 0; i < AVS_F_THRESHOLDS; i++) {
        float t = (float)json_real_value(json_array_get(th, (size_t)i));
        if (fabsf(t - mine[i]) > 1.2e-7f) same_value = 0; /* torch's kernels round some in the last bit */
        for (int v = 0; v < 256; v++) {
            float p = (float)v / 255.0f;
            if ((p >= t) != (p >= mine[i])) same_decision = 0;
        }
    }
    check(same_decision, "thresholds/decisions", "an 8-bit value is thresholded differently from torch");
    check(same_value && mine[AVS_F_THRESHOLDS - 1] == 1.0f && mine[0] == 0.0f, "thresholds/values",
          "values differ from torch.linspace by more than one float32 step, or do not end at 0 and 1");
}

/* ---- the program ---- */

typedef struct {
    char bin[4096], tmp[512], log[600];
} env_t;

/* runs stepstone-evaluate; returns the exit status and loads out_json (or NULL) */
static int evaluate(const env_t *e, const char *args, const char *out_name, json_t **out) {
    char cmd[16384], out_path[1200];
    snprintf(out_path, sizeof out_path, "%s/%s", e->tmp, out_name);
    snprintf(cmd, sizeof cmd, "'%s' %s --out '%s'", e->bin, args, out_path);
    remove(out_path);
    int rc = cli_run(cmd, e->log);
    if (out) {
        json_error_t jerr;
        *out = json_load_file(out_path, 0, &jerr);
    }
    return rc;
}

static double num(json_t *o, const char *a, const char *b) {
    json_t *x = json_object_get(o, a);
    if (b) x = json_object_get(x, b);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static void test_parity(const env_t *e, json_t *expected) {
    const char *tasks[3] = {"avss", "s4", "ms3"};
    for (int t = 0; t < 3; t++) {
        char args[1024], name[128];
        snprintf(args, sizeof args, "--task %s --data " FIX "/data --pred " FIX "/preds/%s", tasks[t], tasks[t]);
        json_t *m = NULL;
        int rc = evaluate(e, args, "parity.json", &m);
        snprintf(name, sizeof name, "parity/%s_runs", tasks[t]);
        if (!check(rc == 0 && m, name, "exit %d (log %s)", rc, e->log)) {
            json_decref(m);
            continue;
        }
        json_t *want = json_object_get(expected, tasks[t]);
        double worst = 0;
        const char *worst_key = "";
        const char *keys_avss[] = {"miou", "miou_nb", "fscore", "fscore_nb"};
        const char *keys_bin[] = {"miou", "fscore", "miou_rounded", "fscore_rounded"};
        const char **keys = t == 0 ? keys_avss : keys_bin;
        for (int k = 0; k < 4; k++) {
            double d = fabs(num(m, "metrics", keys[k]) - num(want, keys[k], NULL));
            if (!(d <= worst)) worst = d, worst_key = keys[k];
        }
        snprintf(name, sizeof name, "parity/%s_metrics", tasks[t]);
        check(worst <= 1e-6, name, "%s differs by %g", worst_key, worst);
        double wd = 0;
        size_t count = 0;
        if (t == 0) {
            json_t *pc = json_object_get(m, "per_class");
            json_t *wi = json_object_get(want, "per_class_iou"), *wf = json_object_get(want, "per_class_fscore"),
                   *wc = json_object_get(want, "per_class_count");
            for (size_t c = 0; c < json_array_size(pc); c++, count++) {
                json_t *e1 = json_array_get(pc, c);
                double d1 = fabs(num(e1, "iou", NULL) - json_number_value(json_array_get(wi, c)));
                double d2 = fabs(num(e1, "fscore", NULL) - json_number_value(json_array_get(wf, c)));
                double d3 = fabs(num(e1, "frames", NULL) - json_number_value(json_array_get(wc, c)));
                if (!(d1 <= wd)) wd = d1;
                if (!(d2 <= wd)) wd = d2;
                if (!(d3 <= wd)) wd = d3;
            }
            check(count == AVS_NUM_CLASSES && wd <= 1e-6, "parity/avss_per_class", "%zu classes, worst difference %g",
                  count, wd);
        } else {
            json_t *pv = json_object_get(m, "per_video"), *wv = json_object_get(want, "per_video");
            for (size_t v = 0; v < json_array_size(pv); v++, count++) {
                json_t *e1 = json_array_get(pv, v), *w1 = json_array_get(wv, v);
                double d1 = fabs(num(e1, "miou", NULL) - json_number_value(json_array_get(w1, 0)));
                double d2 = fabs(num(e1, "fscore", NULL) - json_number_value(json_array_get(w1, 1)));
                if (!(d1 <= wd)) wd = d1;
                if (!(d2 <= wd)) wd = d2;
            }
            snprintf(name, sizeof name, "parity/%s_per_video", tasks[t]);
            check(count == json_array_size(wv) && count > 0 && wd <= 1e-6, name, "%zu videos, worst difference %g",
                  count, wd);
            /* AVSBench's own functions (sigmoid convention) give the same numbers */
            snprintf(name, sizeof name, "parity/%s_avsbench_convention", tasks[t]);
            json_t *ab = json_object_get(want, "avsbench");
            check(fabs(num(m, "metrics", "miou") - num(ab, "miou", NULL)) <= 1e-6 &&
                      fabs(num(m, "metrics", "fscore") - num(ab, "fscore", NULL)) <= 1e-6,
                  name, "AVSBench's utility.py disagrees");
        }
        if (t == 0) {
            /* the fixture's one off-palette label, reported with file and pixels */
            json_t *probs = json_object_get(m, "problems");
            int found = 0;
            for (size_t i = 0; i < json_array_size(probs); i++) {
                json_t *p = json_array_get(probs, i);
                const char *kind = json_string_value(json_object_get(p, "kind"));
                const char *file = json_string_value(json_object_get(p, "file"));
                if (kind && file && strcmp(kind, "truth_off_palette") == 0 && strstr(file, "v2a/labels_rgb/3.png") &&
                    json_integer_value(json_object_get(p, "pixels")) == 26)
                    found = 1;
            }
            check(found && num(m, "off_palette", "truth_pixels") == 26, "cli/off_palette_truth_reported",
                  "no truth_off_palette problem for v2a/labels_rgb/3.png with 26 pixels");
            check(num(m, "off_palette", "prediction_pixels") > 0, "cli/off_palette_prediction_reported",
                  "the RGB predictions with colour (1,2,3) were not counted");
        }
        json_decref(m);
    }
}

/* <tmp>/<name>/<subset>/<uid>/<i>.png for every labelled test frame, made by fn */
typedef void (*make_pred_fn)(const char *label, const char *pred, int task_binary);

static void link_label(const char *label, const char *pred, int task_binary) {
    (void)task_binary;
    char abs[4096];
    if (realpath(label, abs) && symlink(abs, pred) != 0) fprintf(stderr, "cannot link %s\n", pred);
}

static void zero_pred(const char *label, const char *pred, int task_binary) {
    (void)label;
    (void)task_binary;
    static uint8_t zeros[NPIX];
    err_t err = {0};
    if (png_io_write_gray(pred, AVS_SIZE, AVS_SIZE, zeros, &err)) fprintf(stderr, "%s\n", err.msg);
}

static void make_preds(const env_t *e, const char *name, make_pred_fn fn, int binary) {
    avs_dataset_t ds;
    err_t err = {0};
    if (avs_open(FIX "/data", AVS_LAYOUT_AUTO, &ds, &err)) return;
    for (int i = 0; i < ds.n_videos; i++) {
        const avs_video_t *v = &ds.videos[i];
        char dir[2048], cmd[4200];
        snprintf(dir, sizeof dir, "%s/%s/%s/%s", e->tmp, name, avs_subset_name(v->subset), v->uid);
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
        cli_run(cmd, NULL);
        for (int f = 0; f < avs_video_frames(v); f++) {
            if (!avs_frame_labelled(v, f)) continue;
            char label[4096], pred[2200];
            avs_label_path(&ds, v, f, label, sizeof label);
            snprintf(pred, sizeof pred, "%s/%d.png", dir, f);
            fn(label, pred, binary);
        }
    }
    avs_close(&ds);
}

/* k: the classes that occur in the test split's truth (test_background) */
static void test_oracle(const env_t *e, int k_truth) {
    make_preds(e, "oracle", link_label, 0);
    char args[1024];
    json_t *m = NULL;
    snprintf(args, sizeof args, "--task avss --data " FIX "/data --pred '%s/oracle'", e->tmp);
    int rc = evaluate(e, args, "oracle.json", &m);
    double k = num(m, "metrics", "classes_occurring");
    check(rc == 0 && num(m, "metrics", "miou_occurring") == 1.0 && num(m, "metrics", "fscore_occurring") == 1.0,
          "oracle/avss_occurring_is_1", "exit %d, %g", rc, num(m, "metrics", "miou_occurring"));
    check(k == k_truth && near(num(m, "metrics", "miou"), k / 71, 1e-12) && near(num(m, "metrics", "fscore"), k / 71, 1e-12),
          "oracle/avss_official_k_over_71", "k %g (truth: %d), miou %.12f (k/71 = %.12f)", k, k_truth,
          num(m, "metrics", "miou"), k / 71);
    json_decref(m);
    /* s4: three test videos, one without any object: mIoU 1, F (1 + 1 + 0)/3 */
    snprintf(args, sizeof args, "--task s4 --data " FIX "/data --pred '%s/oracle'", e->tmp);
    rc = evaluate(e, args, "oracle_s4.json", &m);
    check(rc == 0 && near(num(m, "metrics", "miou"), 1.0, 1e-7) && near(num(m, "metrics", "fscore"), 2.0 / 3, 1e-7),
          "oracle/s4", "exit %d, miou %g, F %g", rc, num(m, "metrics", "miou"), num(m, "metrics", "fscore"));
    json_decref(m);
    snprintf(args, sizeof args, "--task ms3 --data " FIX "/data --pred '%s/oracle'", e->tmp);
    rc = evaluate(e, args, "oracle_ms3.json", &m);
    check(rc == 0 && near(num(m, "metrics", "miou"), 1.0, 1e-7) && near(num(m, "metrics", "fscore"), 1.0, 1e-7),
          "oracle/ms3", "exit %d, miou %g, F %g", rc, num(m, "metrics", "miou"), num(m, "metrics", "fscore"));
    json_decref(m);
}

/* the index of a label file in expected.json's "labels" (the row of the
 * expected maps), or -1 */
static int label_index(json_t *labels, const char *path) {
    for (size_t i = 0; i < json_array_size(labels); i++) {
        const char *rel = json_string_value(json_array_get(labels, i));
        if (rel && strlen(path) > strlen(rel) && strcmp(path + strlen(path) - strlen(rel), rel) == 0) return (int)i;
    }
    return -1;
}

/* all-background predictions, against formulas evaluated here (in double)
 * from the fixture's expected ground-truth maps */
static int test_background(const env_t *e, json_t *expected) {
    make_preds(e, "zeros", zero_pred, 0);
    png_io_image_t cm = {0}, bm = {0};
    err_t err = {0};
    avs_dataset_t ds;
    if (png_io_read(FIX "/expected_class_maps.png", &cm, PNG_IO_WANT_GRAY, &err) ||
        png_io_read(FIX "/expected_binary_masks.png", &bm, PNG_IO_WANT_GRAY, &err) ||
        avs_open(FIX "/data", AVS_LAYOUT_AUTO, &ds, &err)) {
        check(0, "background/inputs", "%s", err.msg);
        png_io_free(&cm);
        png_io_free(&bm);
        return -1;
    }
    json_t *labels = json_object_get(expected, "labels");
    /* AVSS: class 0 scores |truth 0| / N in every frame (P = |truth 0| / N,
     * R = 1); every other class of the truth scores 0 where it occurs.
     * S4/MS3: a frame with empty truth scores IoU 1 (all correctly empty),
     * others 0; F: only the first threshold (0) selects anything, P = |t| / N,
     * R = 1, so the video's F is the mean of 1.3 P / (0.3 P + 1) over its
     * non-empty frames */
    double bg_iou = 0, bg_f = 0, s_miou[2] = {0}, s_f[2] = {0};
    int frames = 0, occurs[AVS_NUM_CLASSES] = {0}, s_videos[2] = {0}, bad = 0;
    for (int i = 0; i < ds.n_videos; i++) {
        const avs_video_t *v = &ds.videos[i];
        if (v->split != AVS_TEST) continue;
        int task = v->subset == AVS_V1S ? 0 : v->subset == AVS_V1M ? 1 : -1;
        double v_iou = 0, v_f = 0;
        int nf = 0, nonempty = 0;
        for (int f = 0; f < avs_video_frames(v); f++) {
            char path[4096];
            avs_label_path(&ds, v, f, path, sizeof path);
            int row = label_index(labels, path);
            if (row < 0) {
                bad++;
                continue;
            }
            const uint8_t *c = cm.pixels + (size_t)NPIX * row, *b = bm.pixels + (size_t)NPIX * row;
            int n0 = 0, pos = 0;
            for (int p = 0; p < NPIX; p++) {
                n0 += c[p] == 0;
                occurs[c[p]] = 1;
                pos += b[p] != 0;
            }
            double q = (double)n0 / NPIX;
            bg_iou += q;
            bg_f += n0 ? 1.3 * q / (0.3 * q + 1.0) : 0.0;
            frames++;
            nf++;
            v_iou += pos == 0 ? 1.0 : 0.0;
            if (pos) {
                double prec = (double)pos / NPIX;
                v_f += 1.3 * prec / (0.3 * prec + 1.0);
                nonempty++;
            }
        }
        if (task >= 0 && nf) {
            s_miou[task] += v_iou / nf;
            s_f[task] += nonempty ? v_f / nonempty : 0.0;
            s_videos[task]++;
        }
    }
    int k_truth = 0;
    for (int k = 0; k < AVS_NUM_CLASSES; k++) k_truth += occurs[k];
    occurs[0] = 1; /* predicted everywhere */
    int k_occ = 0;
    for (int k = 0; k < AVS_NUM_CLASSES; k++) k_occ += occurs[k];
    double want_miou = bg_iou / frames / AVS_NUM_CLASSES, want_f = bg_f / frames / AVS_NUM_CLASSES;
    char args[1024];
    json_t *m = NULL;
    snprintf(args, sizeof args, "--task avss --data " FIX "/data --pred '%s/zeros'", e->tmp);
    int rc = evaluate(e, args, "zeros.json", &m);
    check(bad == 0 && rc == 0 && near(num(m, "metrics", "miou"), want_miou, 1e-6) &&
              near(num(m, "metrics", "fscore"), want_f, 1e-6) && num(m, "metrics", "classes_occurring") == k_occ &&
              num(m, "metrics", "miou_nb") == 0.0,
          "background/avss", "exit %d, miou %.9f want %.9f, F %.9f want %.9f, k %g want %d", rc,
          num(m, "metrics", "miou"), want_miou, num(m, "metrics", "fscore"), want_f,
          num(m, "metrics", "classes_occurring"), k_occ);
    json_decref(m);
    const char *names[2] = {"s4", "ms3"};
    for (int t = 0; t < 2; t++) {
        char name[64];
        snprintf(args, sizeof args, "--task %s --data " FIX "/data --pred '%s/zeros'", names[t], e->tmp);
        rc = evaluate(e, args, "zeros_bin.json", &m);
        double wm = s_videos[t] ? s_miou[t] / s_videos[t] : 0, wf = s_videos[t] ? s_f[t] / s_videos[t] : 0;
        snprintf(name, sizeof name, "background/%s", names[t]);
        check(rc == 0 && s_videos[t] > 0 && near(num(m, "metrics", "miou"), wm, 1e-6) &&
                  near(num(m, "metrics", "fscore"), wf, 1e-6),
              name, "exit %d, miou %.9f want %.9f, F %.9f want %.9f (%d videos)", rc, num(m, "metrics", "miou"), wm,
              num(m, "metrics", "fscore"), wf, s_videos[t]);
        json_decref(m);
    }
    avs_close(&ds);
    png_io_free(&cm);
    png_io_free(&bm);
    return k_truth;
}

static void test_cli_problems(const env_t *e) {
    char cmd[8192], args[2048];
    /* a copy of the avss predictions with one missing and one unreadable */
    snprintf(cmd, sizeof cmd, "cp -r " FIX "/preds/avss '%s/broken' && rm '%s/broken/v2/v2b/4.png' && "
             "printf 'not a png' > '%s/broken/v1m/ms3a/2.png'", e->tmp, e->tmp, e->tmp);
    cli_run(cmd, NULL);
    json_t *m = NULL;
    snprintf(args, sizeof args, "--task avss --data " FIX "/data --pred '%s/broken'", e->tmp);
    int rc = evaluate(e, args, "broken.json", &m);
    int named_missing = 0, named_bad = 0;
    json_t *probs = json_object_get(m, "problems");
    for (size_t i = 0; i < json_array_size(probs); i++) {
        json_t *p = json_array_get(probs, i);
        const char *kind = json_string_value(json_object_get(p, "kind")), *file = json_string_value(json_object_get(p, "file"));
        if (!kind || !file) continue;
        named_missing |= strcmp(kind, "missing") == 0 && strstr(file, "broken/v2/v2b/4.png") != NULL;
        named_bad |= strcmp(kind, "unreadable") == 0 && strstr(file, "broken/v1m/ms3a/2.png") != NULL;
    }
    check(rc == 3 && m && json_is_false(json_object_get(m, "complete")) && num(m, "missing_predictions", NULL) == 1 &&
              num(m, "unreadable_predictions", NULL) == 1 && named_missing && named_bad,
          "cli/missing_and_unreadable_predictions", "exit %d (want 3), missing named %d, unreadable named %d", rc,
          named_missing, named_bad);
    char *log = cli_read_text(e->log);
    check(log && strstr(log, "broken/v2/v2b/4.png") && strstr(log, "broken/v1m/ms3a/2.png"), "cli/problems_logged",
          "the log does not name both files");
    free(log);
    json_decref(m);
    /* a missing ground-truth PNG stops the evaluation, naming the file */
    snprintf(cmd, sizeof cmd, "cp -r " FIX "/data '%s/data_nolabel' && rm '%s/data_nolabel/v2/v2a/labels_rgb/7.png'",
             e->tmp, e->tmp);
    cli_run(cmd, NULL);
    char log2[700];
    snprintf(log2, sizeof log2, "%s/nolabel.log", e->tmp);
    snprintf(cmd, sizeof cmd, "'%s' --task avss --data '%s/data_nolabel' --pred " FIX "/preds/avss --out '%s/x.json'",
             e->bin, e->tmp, e->tmp);
    rc = cli_run(cmd, log2);
    log = cli_read_text(log2);
    check(rc == 1 && log && strstr(log, "data_nolabel/v2/v2a/labels_rgb/7.png"), "cli/missing_label_png",
          "exit %d (want 1); log: %s", rc, log ? log : "");
    free(log);
    /* a metadata row missing a field: exit 1 naming file and line */
    snprintf(cmd, sizeof cmd, "cp -r " FIX "/data '%s/data_badcsv' && printf 'x,y,0,0,a,test\\n' >> '%s/data_badcsv/metadata.csv'",
             e->tmp, e->tmp);
    cli_run(cmd, NULL);
    snprintf(cmd, sizeof cmd, "'%s' --task avss --data '%s/data_badcsv' --pred " FIX "/preds/avss --out '%s/x.json'",
             e->bin, e->tmp, e->tmp);
    remove(log2);
    rc = cli_run(cmd, log2);
    log = cli_read_text(log2);
    check(rc == 1 && log && strstr(log, "data_badcsv/metadata.csv:11") && strstr(log, "'label'"), "cli/csv_missing_field",
          "exit %d; log: %s", rc, log ? log : "");
    free(log);
    /* report */
    snprintf(args, sizeof args, "--task avss --data " FIX "/data --pred " FIX "/preds/avss --report '%s/report' "
             "--report-videos 3", e->tmp);
    rc = evaluate(e, args, "report.json", NULL);
    char p1[700], p2[700], p3[700];
    snprintf(p1, sizeof p1, "%s/report/index.html", e->tmp);
    snprintf(p2, sizeof p2, "%s/report/chart.png", e->tmp);
    snprintf(p3, sizeof p3, "%s/report/strips", e->tmp);
    char *html = cli_read_text(p1);
    int strips = 0;
    if (html)
        for (const char *s = html; (s = strstr(s, "<img src=\"strips/")); s++) strips++;
    check(rc == 0 && html && access(p2, R_OK) == 0 && strips == 3 && strstr(html, "Per-class IoU"), "cli/report",
          "exit %d, index.html %s, %d strips", rc, html ? "present" : "missing", strips);
    free(html);
    snprintf(args, sizeof args, "--task s4 --data " FIX "/data --pred " FIX "/preds/s4 --report '%s/report_s4'", e->tmp);
    rc = evaluate(e, args, "report_s4.json", NULL);
    snprintf(p1, sizeof p1, "%s/report_s4/index.html", e->tmp);
    check(rc == 0 && access(p1, R_OK) == 0, "cli/report_s4", "exit %d", rc);
    /* help and usage */
    snprintf(cmd, sizeof cmd, "'%s' --help", e->bin);
    char hlog[700];
    snprintf(hlog, sizeof hlog, "%s/help.log", e->tmp);
    rc = cli_run(cmd, hlog);
    char *help = cli_read_text(hlog);
    check(rc == 0 && help && strstr(help, "Exit status") && strstr(help, "incomplete"), "cli/help", "exit %d", rc);
    free(help);
    snprintf(cmd, sizeof cmd, "'%s' --task avss --data " FIX "/data", e->bin);
    check(cli_run(cmd, NULL) == 2, "cli/usage", "a missing --pred should exit 2");
    snprintf(cmd, sizeof cmd, "'%s' --task avss --data " FIX "/data --pred '%s/no-such-folder'", e->bin, e->tmp);
    check(cli_run(cmd, NULL) == 1, "cli/no_prediction_folder", "a missing prediction folder should exit 1");
    snprintf(cmd, sizeof cmd, "'%s' --task avss --data " FIX "/data --pred x --split dev", e->bin);
    check(cli_run(cmd, NULL) == 2, "cli/usage_split", "an unknown split should exit 2");
}

/* the same S4 data in the AVSBench-object layout, predictions under
 * AVSBench's own save_mask names: the same numbers */
static void test_object_layout(const env_t *e, json_t *expected) {
    char cmd[16384];
    const char *uids[3] = {"s4a", "s4b", "s4c"};
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/obj/Single-source' && printf 'name,start,category,split\\n"
             "s4a,0,cat1,test\\ns4b,0,cat1,test\\ns4c,0,cat2,test\\n' > '%s/obj/Single-source/s4_meta_data.csv'",
             e->tmp, e->tmp);
    int ok = cli_run(cmd, e->log) == 0;
    for (int u = 0; u < 3 && ok; u++) {
        const char *cat = u < 2 ? "cat1" : "cat2";
        for (int i = 0; i < 5 && ok; i++) {
            char here[4096];
            if (!getcwd(here, sizeof here)) ok = 0;
            snprintf(cmd, sizeof cmd,
                     "mkdir -p '%s/obj/Single-source/s4_data/gt_masks/test/%s/%s' '%s/objpred/%s/%s' && "
                     "ln -sf '%s/" FIX "/data/v1s/%s/labels_rgb/%d.png' '%s/obj/Single-source/s4_data/gt_masks/test/%s/%s/%s_%d.png' && "
                     "ln -sf '%s/" FIX "/preds/s4/v1s/%s/%d.png' '%s/objpred/%s/%s/%s_%d.png'",
                     e->tmp, cat, uids[u], e->tmp, cat, uids[u], here, uids[u], i, e->tmp, cat, uids[u], uids[u], i + 1,
                     here, uids[u], i, e->tmp, cat, uids[u], uids[u], i);
            ok = cli_run(cmd, e->log) == 0;
        }
    }
    if (!check(ok, "object/tree", "could not build the object tree (log %s)", e->log)) return;
    char args[2048];
    json_t *m = NULL;
    snprintf(args, sizeof args, "--task s4 --layout s4 --data '%s/obj' --pred '%s/objpred'", e->tmp, e->tmp);
    int rc = evaluate(e, args, "object.json", &m);
    json_t *want = json_object_get(expected, "s4");
    check(rc == 0 && near(num(m, "metrics", "miou"), num(want, "miou", NULL), 1e-6) &&
              near(num(m, "metrics", "fscore"), num(want, "fscore", NULL), 1e-6) && json_is_string(json_object_get(m, "layout")) &&
              strcmp(json_string_value(json_object_get(m, "layout")), "s4") == 0,
          "object/s4_same_numbers", "exit %d, miou %g (want %g), F %g (want %g)", rc, num(m, "metrics", "miou"),
          num(want, "miou", NULL), num(m, "metrics", "fscore"), num(want, "fscore", NULL));
    json_decref(m);
    snprintf(args, sizeof args, "--task avss --data '%s/obj/Single-source' --pred '%s/objpred'", e->tmp, e->tmp);
    rc = evaluate(e, args, "object_avss.json", NULL);
    check(rc == 1, "object/avss_refused", "avss on an object tree should exit 1, not %d", rc);
}

int main(int argc, char **argv) {
    (void)argc;
    test_hand_avss();
    test_hand_binary();
    json_error_t jerr;
    json_t *expected = json_load_file(FIX "/expected.json", 0, &jerr);
    if (!check(expected != NULL, "fixture", "%s: %s", FIX "/expected.json", jerr.text)) return check_finish("test_evaluate");
    test_thresholds(expected);
    env_t e;
    if (!check(cli_program(argv[0], "stepstone-evaluate", e.bin, sizeof e.bin) == 0, "program",
               "stepstone-evaluate not built next to this test (%s)", e.bin) ||
        !check(cli_tmpdir(e.tmp, sizeof e.tmp) == 0, "tmpdir", "cannot make a scratch folder")) {
        json_decref(expected);
        return check_finish("test_evaluate");
    }
    snprintf(e.log, sizeof e.log, "%s/evaluate.log", e.tmp);
    test_parity(&e, expected);
    int k_truth = test_background(&e, expected);
    test_oracle(&e, k_truth);
    test_object_layout(&e, expected);
    test_cli_problems(&e);
    json_decref(expected);
    cli_rmtree(e.tmp);
    return check_finish("test_evaluate");
}
