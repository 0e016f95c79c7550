/* report.c - the --report folder (eval.h):
 *   strips/<subset>_<uid>.png  one column per annotated frame; rows: the frame,
 *                              the ground truth over it, the prediction over it
 *   chart.png                  avss: per-class IoU of the classes that occur,
 *                              best first, bars in the class colours, class ids
 *                              below; s4/ms3: the videos' mIoU, best first
 *   index.html                 the numbers, the chart, the class table and the
 *                              strips of the worst and the best videos */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "canvas.h"
#include "eval.h"
#include "label_resize.h"
#include "log.h"

#define TILE 112
#define GAP 2

static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0}, gray[3] = {128, 128, 128},
                     light[3] = {225, 225, 225};

static err_code_t make_dir(const char *p, err_t *err) {
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(err, ERR_IO, "%s: cannot create: %s", p, strerror(errno));
    return ERR_OK;
}

/* 224x224 RGB of a frame; gray when it cannot be read (*note says why) */
static void frame_224(const char *path, uint8_t *out, char *note, size_t n) {
    uint8_t *rgb;
    int w, h;
    err_t err = {0};
    if (image_read_rgb(path, &rgb, &w, &h, &err)) {
        memset(out, 128, (size_t)AVS_SIZE * AVS_SIZE * 3);
        snprintf(note, n, "%s", err.msg);
        return;
    }
    cv_resize_linear_u8(rgb, w, h, 3, out, AVS_SIZE, AVS_SIZE);
    free(rgb);
}

/* out = frame, with each pixel of colour col[] (alpha 0..255) blended in */
static void overlay(const uint8_t *frame, const uint8_t *col, const uint8_t *alpha, uint8_t *out) {
    for (size_t i = 0; i < (size_t)AVS_SIZE * AVS_SIZE; i++)
        for (int c = 0; c < 3; c++) {
            int a = alpha[i];
            out[3 * i + c] = (uint8_t)((frame[3 * i + c] * (255 - a) + col[3 * i + c] * a + 127) / 255);
        }
}

/* colours and alphas of a class map (class 0 transparent) or a probability map */
static void paint(const eval_options_t *o, const uint8_t *map, int is_truth, uint8_t *col, uint8_t *alpha) {
    const uint8_t(*pal)[3] = avs_palette();
    for (size_t i = 0; i < (size_t)AVS_SIZE * AVS_SIZE; i++) {
        if (o->task == EVAL_AVSS) {
            memcpy(col + 3 * i, pal[map[i]], 3);
            alpha[i] = map[i] ? 170 : 0;
        } else {
            static const uint8_t t_col[3] = {255, 60, 60}, p_col[3] = {40, 220, 80};
            memcpy(col + 3 * i, is_truth ? t_col : p_col, 3);
            int v = is_truth ? (map[i] ? 255 : 0) : map[i];
            alpha[i] = (uint8_t)(v * 170 / 255);
        }
    }
}

static void safe_name(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        out[k++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                    *s == '_' || *s == '.')
                       ? *s
                       : '_';
    out[k] = '\0';
}

static void html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* one strip; notes collects frames that could not be shown */
static err_code_t write_strip(const eval_options_t *o, const eval_result_t *r, const eval_video_t *ev,
                              const char *path, char *notes, size_t notes_n, err_t *err) {
    const avs_video_t *v = &r->ds.videos[ev->video];
    int nf = 0;
    for (int f = 0; f < avs_video_frames(v); f++) nf += avs_frame_labelled(v, f);
    canvas_t c;
    err_code_t rc = canvas_new(&c, nf * (TILE + GAP) - GAP, 3 * (TILE + GAP) - GAP, white, err);
    if (rc) return rc;
    size_t np = (size_t)AVS_SIZE * AVS_SIZE;
    uint8_t *frame = malloc(np * 3), *map = malloc(np), *col = malloc(np * 3), *alpha = malloc(np),
            *big = malloc(np * 3), *tile = malloc((size_t)TILE * TILE * 3);
    if (!frame || !map || !col || !alpha || !big || !tile) {
        rc = err_set(err, ERR_NOMEM, "out of memory drawing %s", path);
        goto done;
    }
    char p[4096], note[1024];
    int x = 0;
    notes[0] = '\0';
    for (int f = 0; f < avs_video_frames(v); f++) {
        if (!avs_frame_labelled(v, f)) continue;
        note[0] = '\0';
        avs_frame_path(&r->ds, v, f, p, sizeof p);
        frame_224(p, frame, note, sizeof note);
        if (note[0] && strlen(notes) + strlen(note) + 2 < notes_n) strcat(strcat(notes, note), "\n");
        cv_resize_linear_u8(frame, AVS_SIZE, AVS_SIZE, 3, tile, TILE, TILE);
        canvas_blit(&c, x, 0, tile, TILE, TILE);
        /* ground truth (already read once: it cannot fail now unless the file changed) */
        avs_label_path(&r->ds, v, f, p, sizeof p);
        err_t e2 = {0};
        int64_t off;
        if ((o->task == EVAL_AVSS ? avs_load_class_map(p, AVS_SIZE, map, &off, &e2)
                                  : avs_load_binary_mask(p, AVS_SIZE, map, &e2)) == ERR_OK) {
            paint(o, map, 1, col, alpha);
            overlay(frame, col, alpha, big);
            cv_resize_linear_u8(big, AVS_SIZE, AVS_SIZE, 3, tile, TILE, TILE);
            canvas_blit(&c, x, TILE + GAP, tile, TILE, TILE);
        } else {
            canvas_fill(&c, x, TILE + GAP, TILE, TILE, gray);
        }
        pred_path(o, &r->ds, v, f, p, sizeof p);
        int64_t poff;
        e2.msg[0] = '\0';
        if ((o->task == EVAL_AVSS ? pred_read_classes(p, AVS_SIZE, map, &poff, &e2)
                                  : pred_read_prob(p, AVS_SIZE, map, &e2)) == ERR_OK) {
            paint(o, map, 0, col, alpha);
            overlay(frame, col, alpha, big);
            cv_resize_linear_u8(big, AVS_SIZE, AVS_SIZE, 3, tile, TILE, TILE);
            canvas_blit(&c, x, 2 * (TILE + GAP), tile, TILE, TILE);
        } else {
            /* no prediction: a gray tile with a cross */
            canvas_fill(&c, x, 2 * (TILE + GAP), TILE, TILE, gray);
            for (int k = 0; k < TILE; k++) {
                canvas_fill(&c, x + k, 2 * (TILE + GAP) + k, 1, 1, black);
                canvas_fill(&c, x + TILE - 1 - k, 2 * (TILE + GAP) + k, 1, 1, black);
            }
        }
        x += TILE + GAP;
    }
    rc = canvas_write_png(&c, path, err);
done:
    free(frame);
    free(map);
    free(col);
    free(alpha);
    free(big);
    free(tile);
    canvas_free(&c);
    return rc;
}

/* bar chart of values in [0, 1], in the given order */
static err_code_t write_chart(const char *path, int n, const double *val, const uint8_t (*colour)[3],
                              const int *label, err_t *err) {
    int bar = label ? 14 : (n > 400 ? 1 : n > 150 ? 2 : 4);
    int gap = label ? 4 : (bar > 1 ? 1 : 0);
    int left = 24, top = 10, height = 200, bottom = label ? 16 : 6;
    int w = left + n * (bar + gap) + 10, h = top + height + bottom;
    if (w < 120) w = 120;
    canvas_t c;
    err_code_t rc = canvas_new(&c, w, h, white, err);
    if (rc) return rc;
    for (int t = 0; t <= 4; t++) { /* grid at 0, .25, .5, .75, 1 */
        int y = top + height - t * height / 4;
        canvas_fill(&c, left, y, w - left - 4, 1, light);
    }
    canvas_text(&c, 2, top + height - 2, "0", 1, black);
    canvas_text(&c, 2, top + height / 2 - 2, ".5", 1, black);
    canvas_text(&c, 2, top - 2, "1", 1, black);
    canvas_fill(&c, left - 1, top, 1, height + 1, black);
    for (int i = 0; i < n; i++) {
        double v = val[i] < 0 ? 0 : val[i] > 1 ? 1 : val[i];
        int bh = (int)(v * height + 0.5);
        int x = left + gap + i * (bar + gap);
        const uint8_t *col = colour ? colour[i] : gray;
        /* a black bar (background) shows against white; outline pale colours */
        canvas_fill(&c, x, top + height - bh, bar, bh, col);
        if (label) {
            char t[16];
            snprintf(t, sizeof t, "%d", label[i]);
            canvas_text(&c, x + (bar - canvas_text_width(t, 1)) / 2, top + height + 5, t, 1, black);
        }
    }
    canvas_fill(&c, left - 1, top + height, w - left - 3, 1, black);
    rc = canvas_write_png(&c, path, err);
    canvas_free(&c);
    return rc;
}

static int cmp_score(const void *a, const void *b, void *ctx) {
    const eval_result_t *r = ctx;
    double x = r->videos[*(const int *)a].score, y = r->videos[*(const int *)b].score;
    return x < y ? -1 : x > y ? 1 : *(const int *)a - *(const int *)b;
}

static int cmp_class(const void *a, const void *b, void *ctx) {
    const avss_result_t *r = ctx;
    float x = r->class_iou[*(const int *)a], y = r->class_iou[*(const int *)b];
    return x > y ? -1 : x < y ? 1 : *(const int *)a - *(const int *)b;
}

static err_code_t write_charts(const eval_options_t *o, const eval_result_t *r, const char *path, err_t *err) {
    if (o->task == EVAL_AVSS) {
        int ids[AVS_NUM_CLASSES], n = 0;
        for (int c = 0; c < AVS_NUM_CLASSES; c++)
            if (r->avss.class_count[c] > 0) ids[n++] = c;
        qsort_r(ids, (size_t)n, sizeof ids[0], cmp_class, (void *)&r->avss);
        double val[AVS_NUM_CLASSES];
        uint8_t col[AVS_NUM_CLASSES][3];
        for (int i = 0; i < n; i++) {
            val[i] = r->avss.class_iou[ids[i]];
            avs_palette_color(ids[i], col[i]);
            if (ids[i] == 0) memcpy(col[i], gray, 3);
        }
        return write_chart(path, n, val, (const uint8_t(*)[3])col, ids, err);
    }
    int *order = malloc((size_t)r->n_videos * sizeof(int));
    double *val = malloc((size_t)r->n_videos * sizeof(double));
    if (!order || !val) {
        free(order);
        free(val);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < r->n_videos; i++) order[i] = i;
    qsort_r(order, (size_t)r->n_videos, sizeof(int), cmp_score, (void *)r);
    for (int i = 0; i < r->n_videos; i++) val[i] = r->videos[order[r->n_videos - 1 - i]].score;
    err_code_t rc = write_chart(path, r->n_videos, val, NULL, NULL, err);
    free(order);
    free(val);
    return rc;
}

static void html_metrics(FILE *f, const eval_options_t *o, const eval_result_t *r) {
    fprintf(f, "<table class=m>\n");
    if (o->task == EVAL_AVSS) {
        fprintf(f, "<tr><th></th><th>mIoU</th><th>F-score</th></tr>\n");
        fprintf(f, "<tr><td>official (mean over 71 classes)</td><td>%.4f</td><td>%.4f</td></tr>\n", r->avss.miou,
                r->avss.fscore);
        fprintf(f, "<tr><td>official, classes 1..70</td><td>%.4f</td><td>%.4f</td></tr>\n", r->avss.miou_nb,
                r->avss.fscore_nb);
        fprintf(f, "<tr><td>over the %d classes that occur</td><td>%.4f</td><td>%.4f</td></tr>\n", r->avss.n_occurring,
                r->avss.miou_occurring, r->avss.fscore_occurring);
    } else {
        fprintf(f, "<tr><th></th><th>mIoU</th><th>F-score</th></tr>\n");
        fprintf(f, "<tr><td>mean over %d videos</td><td>%.4f</td><td>%.4f</td></tr>\n", r->n_videos, r->bin.miou,
                r->bin.fscore);
    }
    fprintf(f, "</table>\n<p>%d videos, %lld frames.", r->n_videos, (long long)r->frames);
    if (!eval_complete(r))
        fprintf(f, " <b>Incomplete:</b> %lld predictions missing, %lld unreadable (scored as background).",
                (long long)r->n_missing, (long long)r->n_unreadable);
    fprintf(f, "</p>\n");
}

err_code_t eval_write_report(const eval_options_t *o, const eval_result_t *r, err_t *err) {
    char p[4096];
    err_code_t rc;
    if ((rc = make_dir(o->report, err))) return rc;
    snprintf(p, sizeof p, "%s/strips", o->report);
    if ((rc = make_dir(p, err))) return rc;
    snprintf(p, sizeof p, "%s/chart.png", o->report);
    if ((rc = write_charts(o, r, p, err))) return rc;

    /* the worst and the best videos */
    int *order = malloc((size_t)r->n_videos * sizeof(int));
    if (!order) return err_set(err, ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->n_videos; i++) order[i] = i;
    qsort_r(order, (size_t)r->n_videos, sizeof(int), cmp_score, (void *)r);
    int want = o->report_videos < r->n_videos ? o->report_videos : r->n_videos;
    int n_worst = (want + 1) / 2, n_best = want - n_worst;

    snprintf(p, sizeof p, "%s/index.html.tmp", o->report);
    FILE *f = fopen(p, "w");
    if (!f) {
        free(order);
        return err_set(err, ERR_IO, "%s: cannot create: %s", p, strerror(errno));
    }
    fprintf(f, "<!doctype html>\n<html><head><meta charset=utf-8><title>stepstone-evaluate: %s %s</title>\n"
               "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
               "td,th{padding:2px 8px;text-align:right}td:first-child{text-align:left}"
               ".sw{display:inline-block;width:12px;height:12px;border:1px solid #999;margin-right:4px}"
               "figure{margin:1em 0}figcaption{font-size:90%%;color:#333}pre{color:#a00}</style></head><body>\n",
            eval_task_name(o->task), avs_split_name(o->split));
    fprintf(f, "<h1>%s, split %s</h1>\n<p>data: ", eval_task_name(o->task), avs_split_name(o->split));
    html_escape(f, o->data);
    fprintf(f, "<br>predictions: ");
    html_escape(f, o->pred);
    fprintf(f, "</p>\n");
    html_metrics(f, o, r);
    if (o->task == EVAL_AVSS) {
        fprintf(f, "<h2>Per-class IoU</h2>\n<p>The classes that occur, best first; the numbers under the bars are class "
                   "ids.</p>\n<img src=\"chart.png\" alt=\"per-class IoU\">\n");
        fprintf(f, "<table><tr><th>id</th><th>class</th><th>IoU</th><th>F-score</th><th>frames</th>"
                   "<th>true pixels</th><th>predicted pixels</th></tr>\n");
        for (int c = 0; c < AVS_NUM_CLASSES; c++) {
            if (r->avss.class_count[c] == 0) continue;
            uint8_t rgb[3];
            avs_palette_color(c, rgb);
            fprintf(f, "<tr><td>%d</td><td><span class=sw style=\"background:#%02x%02x%02x\"></span>", c, rgb[0], rgb[1],
                    rgb[2]);
            html_escape(f, r->ds.class_names ? r->ds.class_names[c] : "");
            fprintf(f, "</td><td>%.4f</td><td>%.4f</td><td>%d</td><td>%lld</td><td>%lld</td></tr>\n",
                    r->avss.class_iou[c], r->avss.class_f[c], r->avss.class_count[c],
                    (long long)r->avss_acc.true_pixels[c], (long long)r->avss_acc.pred_pixels[c]);
        }
        fprintf(f, "</table>\n");
    } else {
        fprintf(f, "<h2>Per-video mIoU</h2>\n<p>Every video, best first.</p>\n<img src=\"chart.png\" alt=\"per-video "
                   "mIoU\">\n");
    }
    fprintf(f, "<h2>Videos</h2>\n<p>Rows: the frame, the ground truth over it, the prediction over it (a crossed "
               "tile: no prediction). The %d worst videos, then the %d best.</p>\n",
            n_worst, n_best);
    char notes[4096], name[600];
    for (int k = 0; k < n_worst + n_best && !rc; k++) {
        int idx = k < n_worst ? order[k] : order[r->n_videos - n_best + (k - n_worst)];
        const eval_video_t *ev = &r->videos[idx];
        const avs_video_t *v = &r->ds.videos[ev->video];
        char safe[512];
        safe_name(v->uid, safe, sizeof safe);
        snprintf(name, sizeof name, "strips/%s_%s.png", avs_subset_name(v->subset), safe);
        snprintf(p, sizeof p, "%s/%s", o->report, name);
        if ((rc = write_strip(o, r, ev, p, notes, sizeof notes, err))) break;
        fprintf(f, "<figure><img src=\"%s\"><figcaption>%s / ", name, avs_subset_name(v->subset));
        html_escape(f, v->uid);
        if (o->task == EVAL_AVSS)
            fprintf(f, ": mean frame mIoU %.4f", ev->score);
        else
            fprintf(f, ": mIoU %.4f, F %.4f", ev->score, ev->fscore);
        if (ev->missing) fprintf(f, ", %d predictions missing", ev->missing);
        fprintf(f, "</figcaption>");
        if (notes[0]) {
            fprintf(f, "<pre>");
            html_escape(f, notes);
            fprintf(f, "</pre>");
        }
        fprintf(f, "</figure>\n");
    }
    if (r->n_problems) {
        fprintf(f, "<h2>Problems</h2>\n<ul>\n");
        for (int i = 0; i < r->n_problems && i < 500; i++) {
            fprintf(f, "<li>");
            html_escape(f, r->problems[i].file);
            fprintf(f, ": ");
            html_escape(f, r->problems[i].detail);
            fprintf(f, "</li>\n");
        }
        if (r->n_problems > 500) fprintf(f, "<li>... %d more in the metrics file</li>\n", r->n_problems - 500);
        fprintf(f, "</ul>\n");
    }
    fprintf(f, "</body></html>\n");
    free(order);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return rc ? rc : err_set(err, ERR_IO, "%s: write failed", p);
    if (rc) return rc;
    char final[4096];
    snprintf(p, sizeof p, "%s/index.html.tmp", o->report);
    snprintf(final, sizeof final, "%s/index.html", o->report);
    if (rename(p, final) != 0) return err_set(err, ERR_IO, "%s: cannot write: %s", final, strerror(errno));
    return ERR_OK;
}
