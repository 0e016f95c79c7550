/* run.c - the scoring loop of stepstone-evaluate (eval.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval.h"
#include "log.h"
#include "progress.h"

const char *eval_task_name(eval_task_t t) {
    switch (t) {
    case EVAL_S4: return "s4";
    case EVAL_MS3: return "ms3";
    case EVAL_AVSS: return "avss";
    }
    return "?";
}

static err_code_t add_problem(eval_result_t *r, problem_kind_t kind, const char *file, const char *detail,
                              int64_t pixels, err_t *err) {
    if (r->n_problems == r->cap_problems) {
        int cap = r->cap_problems ? 2 * r->cap_problems : 64;
        eval_problem_t *p = realloc(r->problems, (size_t)cap * sizeof *p);
        if (!p) return err_set(err, ERR_NOMEM, "out of memory recording a problem with %s", file);
        r->problems = p;
        r->cap_problems = cap;
    }
    eval_problem_t *p = &r->problems[r->n_problems];
    p->kind = kind;
    p->file = strdup(file);
    p->detail = strdup(detail ? detail : "");
    p->pixels = pixels;
    if (!p->file || !p->detail) {
        free(p->file);
        free(p->detail);
        return err_set(err, ERR_NOMEM, "out of memory recording a problem with %s", file);
    }
    r->n_problems++;
    return ERR_OK;
}

int eval_complete(const eval_result_t *r) { return r->n_missing == 0 && r->n_unreadable == 0; }

/* the subsets a task scores, in the order the official loaders concatenate them */
static int task_subsets(eval_task_t t, avs_subset_t *out) {
    switch (t) {
    case EVAL_S4: out[0] = AVS_V1S; return 1;
    case EVAL_MS3: out[0] = AVS_V1M; return 1;
    case EVAL_AVSS: out[0] = AVS_V1S, out[1] = AVS_V1M, out[2] = AVS_V2; return 3;
    }
    return 0;
}

static err_code_t check_layout(const eval_options_t *o, const avs_dataset_t *ds, err_t *err) {
    if (ds->layout == AVS_LAYOUT_SEMANTIC) return ERR_OK;
    if (o->task == EVAL_AVSS)
        return err_set(err, ERR_ARG, "%s: an AVSBench-object (%s) tree has no semantic labels; --task avss needs the "
                       "AVSBench-semantic layout", ds->root, avs_layout_name(ds->layout));
    if ((o->task == EVAL_S4) != (ds->layout == AVS_LAYOUT_S4))
        return err_set(err, ERR_ARG, "%s: --task %s on an AVSBench-object %s tree", ds->root, eval_task_name(o->task),
                       avs_layout_name(ds->layout));
    return ERR_OK;
}

/* Reads one prediction; on trouble records it and leaves `out` all zero.
 * Returns 1 when the prediction was usable. */
static int read_prediction(const eval_options_t *o, eval_result_t *r, const char *path, uint8_t *out, err_t *err,
                           err_code_t *fatal_rc) {
    size_t npix = (size_t)AVS_SIZE * AVS_SIZE;
    err_t perr = {0};
    err_code_t rc;
    int64_t off = 0;
    *fatal_rc = ERR_OK;
    if (o->task == EVAL_AVSS)
        rc = pred_read_classes(path, AVS_SIZE, out, &off, &perr);
    else
        rc = pred_read_prob(path, AVS_SIZE, out, &perr);
    if (rc == ERR_NOMEM) {
        *fatal_rc = err_set(err, rc, "%s", perr.msg);
        return 0;
    }
    if (rc) {
        memset(out, 0, npix);
        int missing = rc == ERR_IO && access(path, F_OK) != 0;
        if (missing) {
            r->n_missing++;
            *fatal_rc = add_problem(r, PROBLEM_MISSING, path, "no such file", 0, err);
            if (r->n_missing <= 5) log_warn("missing prediction, scored as background: %s", path);
            if (r->n_missing == 5) log_warn("(further missing predictions are listed in the metrics file only)");
        } else {
            r->n_unreadable++;
            *fatal_rc = add_problem(r, PROBLEM_UNREADABLE, path, perr.msg, 0, err);
            log_warn("unreadable prediction, scored as background: %s", perr.msg);
        }
        return 0;
    }
    if (off > 0) {
        char d[128];
        snprintf(d, sizeof d, "%lld pixels of no palette colour, scored as class 0", (long long)off);
        r->pred_off_palette_pixels += off;
        r->pred_off_palette_files++;
        *fatal_rc = add_problem(r, PROBLEM_OFF_PALETTE_PRED, path, d, off, err);
    }
    return 1;
}

static err_code_t read_truth(const eval_options_t *o, eval_result_t *r, const char *path, uint8_t *out, err_t *err) {
    err_code_t rc;
    if (o->task == EVAL_AVSS) {
        int64_t off = 0;
        rc = avs_load_class_map(path, AVS_SIZE, out, &off, err);
        if (rc) return err_prefix(err, "ground truth: ");
        if (off > 0) {
            char d[128];
            snprintf(d, sizeof d, "%lld pixels of no palette colour, scored as class 0 (as the official code does)",
                     (long long)off);
            log_warn("%s: %s", path, d);
            r->truth_off_palette_pixels += off;
            r->truth_off_palette_files++;
            return add_problem(r, PROBLEM_OFF_PALETTE_TRUTH, path, d, off, err);
        }
        return ERR_OK;
    }
    rc = avs_load_binary_mask(path, AVS_SIZE, out, err);
    if (rc) return err_prefix(err, "ground truth: ");
    return ERR_OK;
}

err_code_t eval_run(const eval_options_t *o, eval_result_t *r, err_t *err) {
    memset(r, 0, sizeof *r);
    struct stat st;
    if (stat(o->pred, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, ERR_NOTFOUND, "%s: no such folder of predictions", o->pred);
    err_code_t rc = avs_open(o->data, o->layout, &r->ds, err);
    if (rc) return rc;
    if ((rc = check_layout(o, &r->ds, err))) return rc;
    avs_subset_t subsets[3];
    int n_sub = task_subsets(o->task, subsets);
    r->videos = calloc((size_t)r->ds.n_videos + 1, sizeof *r->videos);
    if (!r->videos) return err_set(err, ERR_NOMEM, "out of memory");
    int64_t total_frames = 0;
    for (int s = 0; s < n_sub; s++)
        for (int i = 0; i < r->ds.n_videos; i++) {
            const avs_video_t *v = &r->ds.videos[i];
            if (v->subset != subsets[s] || v->split != o->split) continue;
            r->videos[r->n_videos++].video = i;
            for (int f = 0; f < avs_video_frames(v); f++) total_frames += avs_frame_labelled(v, f);
        }
    if (r->n_videos == 0)
        return err_set(err, ERR_NOTFOUND, "%s: no %s videos in split '%s'", r->ds.meta_path, eval_task_name(o->task),
                       avs_split_name(o->split));
    log_info("%s: %d videos, %lld annotated frames of split %s (%s layout)", eval_task_name(o->task), r->n_videos,
             (long long)total_frames, avs_split_name(o->split), avs_layout_name(r->ds.layout));
    size_t npix = (size_t)AVS_SIZE * AVS_SIZE;
    uint8_t *truth = malloc(npix), *pred = malloc(npix);
    if (!truth || !pred) {
        free(truth);
        free(pred);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    avss_acc_init(&r->avss_acc);
    avs_bin_acc_init(&r->bin_acc);
    progress_t prog;
    progress_start_with(&prog, "evaluate", r->n_videos, "videos",
                        &(progress_options_t){.extra_unit = "frames", .line_interval_s = 10});
    char tpath[4096], ppath[4096];
    for (int k = 0; k < r->n_videos && !rc; k++) {
        eval_video_t *ev = &r->videos[k];
        const avs_video_t *v = &r->ds.videos[ev->video];
        avs_bin_video_t bv;
        avs_bin_video_begin(&bv);
        double score_sum = 0;
        for (int f = 0; f < avs_video_frames(v) && !rc; f++) {
            if (!avs_frame_labelled(v, f)) continue;
            if (avs_label_path(&r->ds, v, f, tpath, sizeof tpath)) {
                rc = err_set(err, ERR_ARG, "%s: path too long", r->ds.root);
                break;
            }
            if ((rc = read_truth(o, r, tpath, truth, err))) break;
            pred_path(o, &r->ds, v, f, ppath, sizeof ppath);
            err_code_t frc;
            if (!read_prediction(o, r, ppath, pred, err, &frc)) ev->missing++;
            if ((rc = frc)) break;
            if (o->task == EVAL_AVSS)
                score_sum += avss_acc_add_frame(&r->avss_acc, pred, truth, npix);
            else
                avs_bin_video_add_frame(&bv, pred, truth, npix);
            ev->frames++;
            r->frames++;
        }
        if (rc) break;
        if (o->task == EVAL_AVSS) {
            ev->score = ev->frames ? score_sum / ev->frames : 0;
        } else {
            float mi, fs;
            avs_bin_video_end(&bv, &mi, &fs);
            ev->score = mi;
            ev->fscore = fs;
            avs_bin_acc_add_video(&r->bin_acc, &bv);
        }
        progress_update(&prog, k + 1, r->frames);
    }
    progress_finish(&prog);
    free(truth);
    free(pred);
    if (rc) return rc;
    avss_acc_result(&r->avss_acc, &r->avss);
    avs_bin_acc_result(&r->bin_acc, &r->bin);
    if (r->n_missing || r->n_unreadable)
        log_warn("incomplete: %lld predictions missing, %lld unreadable (scored as background); see metrics.json",
                 (long long)r->n_missing, (long long)r->n_unreadable);
    return ERR_OK;
}

void eval_result_free(eval_result_t *r) {
    for (int i = 0; i < r->n_problems; i++) {
        free(r->problems[i].file);
        free(r->problems[i].detail);
    }
    free(r->problems);
    free(r->videos);
    avs_close(&r->ds);
    memset(r, 0, sizeof *r);
}
