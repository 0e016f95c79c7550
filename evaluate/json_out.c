/* json_out.c - metrics.json (eval.h). Numbers are written with 17 significant
 * digits, so a reader gets back the exact doubles. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "eval.h"

static const char *problem_name(problem_kind_t k) {
    switch (k) {
    case PROBLEM_MISSING: return "missing";
    case PROBLEM_UNREADABLE: return "unreadable";
    case PROBLEM_OFF_PALETTE_PRED: return "prediction_off_palette";
    case PROBLEM_OFF_PALETTE_TRUTH: return "truth_off_palette";
    }
    return "?";
}

static void set(json_t *o, const char *k, json_t *v) { json_object_set_new(o, k, v); }

static json_t *avss_metrics(const eval_result_t *r) {
    const avss_result_t *a = &r->avss;
    json_t *m = json_object();
    set(m, "miou", json_real(a->miou));
    set(m, "miou_nb", json_real(a->miou_nb));
    set(m, "fscore", json_real(a->fscore));
    set(m, "fscore_nb", json_real(a->fscore_nb));
    set(m, "miou_occurring", json_real(a->miou_occurring));
    set(m, "fscore_occurring", json_real(a->fscore_occurring));
    set(m, "classes_occurring", json_integer(a->n_occurring));
    set(m, "_doc", json_string("miou, fscore: the official means over all 71 classes (a class that never occurs "
                               "counts 0); *_nb: over classes 1..70; *_occurring: over the classes that occur in the "
                               "truth or the prediction of some frame"));
    return m;
}

static json_t *avss_classes(const eval_result_t *r) {
    json_t *arr = json_array();
    for (int c = 0; c < AVS_NUM_CLASSES; c++) {
        json_t *e = json_object();
        set(e, "id", json_integer(c));
        set(e, "name", json_string(r->ds.class_names ? r->ds.class_names[c] : ""));
        set(e, "iou", json_real(r->avss.class_iou[c]));
        set(e, "fscore", json_real(r->avss.class_f[c]));
        set(e, "frames", json_integer(r->avss.class_count[c]));
        set(e, "true_pixels", json_integer(r->avss_acc.true_pixels[c]));
        set(e, "pred_pixels", json_integer(r->avss_acc.pred_pixels[c]));
        json_array_append_new(arr, e);
    }
    return arr;
}

static json_t *bin_metrics(const eval_result_t *r) {
    const avs_bin_result_t *b = &r->bin;
    json_t *m = json_object();
    set(m, "miou", json_real(b->miou));
    set(m, "fscore", json_real(b->fscore));
    set(m, "miou_rounded", json_real(b->miou_rounded));
    set(m, "fscore_rounded", json_real(b->fscore_rounded));
    set(m, "empty_truth_frames", json_integer(b->empty_frames));
    set(m, "_doc", json_string("means over videos of the video mIoU and the video max F-score (beta^2 = 0.3, 255 "
                               "thresholds); *_rounded: to 6 digits, as the official test_avs reports"));
    return m;
}

err_code_t eval_write_json(const eval_options_t *o, const eval_result_t *r, err_t *err) {
    json_t *root = json_object();
    set(root, "program", json_string("stepstone-evaluate"));
    set(root, "task", json_string(eval_task_name(o->task)));
    set(root, "split", json_string(avs_split_name(o->split)));
    set(root, "data", json_string(o->data));
    set(root, "layout", json_string(avs_layout_name(r->ds.layout)));
    set(root, "pred", json_string(o->pred));
    set(root, "complete", json_boolean(eval_complete(r)));
    set(root, "videos", json_integer(r->n_videos));
    set(root, "frames", json_integer(r->frames));
    set(root, "missing_predictions", json_integer(r->n_missing));
    set(root, "unreadable_predictions", json_integer(r->n_unreadable));
    if (o->task == EVAL_AVSS) {
        set(root, "metrics", avss_metrics(r));
        set(root, "per_class", avss_classes(r));
        json_t *off = json_object();
        set(off, "truth_files", json_integer(r->truth_off_palette_files));
        set(off, "truth_pixels", json_integer(r->truth_off_palette_pixels));
        set(off, "prediction_files", json_integer(r->pred_off_palette_files));
        set(off, "prediction_pixels", json_integer(r->pred_off_palette_pixels));
        set(root, "off_palette", off);
    } else {
        set(root, "metrics", bin_metrics(r));
    }
    json_t *vids = json_array();
    for (int k = 0; k < r->n_videos; k++) {
        const eval_video_t *ev = &r->videos[k];
        const avs_video_t *v = &r->ds.videos[ev->video];
        json_t *e = json_object();
        set(e, "subset", json_string(avs_subset_name(v->subset)));
        set(e, "uid", json_string(v->uid));
        set(e, "frames", json_integer(ev->frames));
        if (o->task == EVAL_AVSS) {
            set(e, "frame_miou", json_real(ev->score));
        } else {
            set(e, "miou", json_real(ev->score));
            set(e, "fscore", json_real(ev->fscore));
        }
        if (ev->missing) set(e, "missing", json_integer(ev->missing));
        json_array_append_new(vids, e);
    }
    set(root, "per_video", vids);
    json_t *probs = json_array();
    for (int i = 0; i < r->n_problems; i++) {
        json_t *e = json_object();
        set(e, "kind", json_string(problem_name(r->problems[i].kind)));
        set(e, "file", json_string(r->problems[i].file));
        set(e, "detail", json_string(r->problems[i].detail));
        if (r->problems[i].pixels) set(e, "pixels", json_integer(r->problems[i].pixels));
        json_array_append_new(probs, e);
    }
    set(root, "problems", probs);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
    int bad = json_dump_file(root, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (bad || rename(tmp, o->out) != 0) {
        remove(tmp);
        return err_set(err, ERR_IO, "%s: cannot write the metrics file", o->out);
    }
    return ERR_OK;
}
