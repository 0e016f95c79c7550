/* eval.h - stepstone-evaluate's parts: options, the scoring run, its outputs.
 *
 *   eval_run          reads the ground truth and the predictions of the split
 *                     and accumulates the official metrics (avs_metrics.h)
 *   eval_write_json   metrics.json
 *   eval_write_report the --report folder (report.c)
 *
 * Predictions (pred.c) live at <pred>/<subset>/<uid>/<i>.png (i from 0);
 * for the object layout AVSBench's own save_mask names are accepted too:
 * <pred>/<category>/<uid>/<uid>_<i>.png (S4), <pred>/<uid>/<uid>_<i>.png (MS3).
 * A missing or unreadable prediction is recorded by name, counted, and scored
 * as an all-background frame (class 0, p = 0), so the numbers of an
 * incomplete evaluation are what those frames would score empty.
 *
 * Frames scored: the annotated ones (avs_frame_labelled). For the test and
 * val splits that is every frame, as in the official test loops. On the
 * train split a v1s video is scored on its one annotated frame, once (the
 * official loader would repeat frame 0 five times). Videos are scored in the
 * official order: v1s, v1m, v2, each in metadata.csv order. */
#ifndef STEPSTONE_EVALUATE_EVAL_H
#define STEPSTONE_EVALUATE_EVAL_H

#include <stdint.h>

#include "avs_metrics.h"
#include "avsbench.h"
#include "error.h"

typedef enum { EVAL_S4 = 0, EVAL_MS3, EVAL_AVSS } eval_task_t;

typedef struct {
    eval_task_t task;
    const char *data, *pred, *out, *report;
    avs_split_t split;
    avs_layout_t layout;
    int report_videos; /* strips in the report */
} eval_options_t;

const char *eval_task_name(eval_task_t t);

typedef enum { PROBLEM_MISSING = 0, PROBLEM_UNREADABLE, PROBLEM_OFF_PALETTE_PRED, PROBLEM_OFF_PALETTE_TRUTH } problem_kind_t;

typedef struct {
    problem_kind_t kind;
    char *file;    /* owned */
    char *detail;  /* owned: the reader's message, or the pixel count */
    int64_t pixels;
} eval_problem_t;

typedef struct {
    int video;        /* index into ds.videos */
    int frames;       /* frames scored */
    double score;     /* AVSS: mean of the frames' mIoU (not official); S4/MS3: video mIoU */
    double fscore;    /* S4/MS3: the video's max F; AVSS: 0 */
    int missing;      /* frames without a readable prediction */
} eval_video_t;

typedef struct {
    avs_dataset_t ds;
    eval_video_t *videos; /* the videos of the split, in the official order */
    int n_videos;
    int64_t frames;
    avss_acc_t avss_acc;
    avss_result_t avss;
    avs_bin_acc_t bin_acc;
    avs_bin_result_t bin;
    eval_problem_t *problems;
    int n_problems, cap_problems;
    int64_t n_missing, n_unreadable;
    int64_t truth_off_palette_pixels, pred_off_palette_pixels;
    int truth_off_palette_files, pred_off_palette_files;
} eval_result_t;

/* Scores the split. ERR_* for what stops the evaluation (the data set cannot
 * be opened, a ground-truth PNG is missing or unreadable: err names the file);
 * missing or bad predictions do not stop it (they are in r->problems). */
err_code_t eval_run(const eval_options_t *o, eval_result_t *r, err_t *err);
void eval_result_free(eval_result_t *r);
/* Nonzero when every prediction of the split was present and readable. */
int eval_complete(const eval_result_t *r);

err_code_t eval_write_json(const eval_options_t *o, const eval_result_t *r, err_t *err);
err_code_t eval_write_report(const eval_options_t *o, const eval_result_t *r, err_t *err);

/* ---- pred.c ---- */

/* The prediction file of frame i of video v (the first candidate that exists,
 * else the primary name). */
void pred_path(const eval_options_t *o, const avs_dataset_t *ds, const avs_video_t *v, int i, char *buf,
               size_t n);

/* AVSS prediction -> size x size class ids. 8-bit gray: class ids (0..70; a
 * larger value makes the file unreadable); palette or RGB: colours, matched to
 * the palette (other colours: class 0, counted in *off_palette). Other sizes
 * are brought to size x size with PIL's nearest rule, as labels are.
 * Returns ERR_OK, or an error whose message names the file. */
err_code_t pred_read_classes(const char *path, int size, uint8_t *out, int64_t *off_palette, err_t *err);

/* S4/MS3 prediction -> size x size values 0..255 (p = v / 255). 8-bit gray:
 * the values (a map whose values are only 0 and 1 is read as a 0/1 mask:
 * 1 -> 255), resized with OpenCV's bilinear rule when not size x size;
 * palette or RGB: a colour label map, turned into a 0/255 mask by the binary
 * ground-truth rule (avs_binary_mask_from_rgb), so ground truth given as a
 * prediction scores 1. */
err_code_t pred_read_prob(const char *path, int size, uint8_t *out, err_t *err);

#endif
