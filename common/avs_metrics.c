/* avs_metrics.c - the official AVSBench metrics (avs_metrics.h).
 *
 * Float32 arithmetic mirrors the official torch code operation by operation
 * (the Makefile's -std=c11 keeps GCC from fusing multiply-adds). */
#include "avs_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- AVSS ---- */

void avss_acc_init(avss_acc_t *a) { memset(a, 0, sizeof *a); }

/* F = (1 + beta2) * P * R / (beta2 * P + R) in float32, NaN -> 0 */
static float fscore_f32(float p, float r) {
    const float one_plus_beta2 = 1.3f, beta2 = 0.3f;
    float num = one_plus_beta2 * p;
    num = num * r;
    float den = beta2 * p;
    den = den + r;
    float f = num / den;
    return isnan(f) ? 0.f : f;
}

double avss_acc_add_frame(avss_acc_t *a, const uint8_t *pred, const uint8_t *truth, size_t npix) {
    int64_t pc[256] = {0}, tc[256] = {0}, ic[256] = {0};
    for (size_t i = 0; i < npix; i++) {
        pc[pred[i]]++;
        tc[truth[i]]++;
        if (pred[i] == truth[i]) ic[pred[i]]++;
    }
    const float eps = (float)2.220446049250313e-16;
    double frame_sum = 0;
    int frame_n = 0;
    for (int c = 0; c < AVS_NUM_CLASSES; c++) {
        float inter = (float)ic[c], area_pred = (float)pc[c], area_lab = (float)tc[c];
        float uni = area_pred + area_lab;
        uni = uni - inter;
        float iou = 1.0f * inter;
        iou = iou / (eps + uni);
        a->iou_sum[c] += iou;
        if (uni > 0) {
            a->count[c] += 1.f;
            frame_sum += iou;
            frame_n++;
        }
        float p = inter / area_pred, r = inter / area_lab;
        a->f_sum[c] += fscore_f32(p, r);
        a->true_pixels[c] += tc[c];
        a->pred_pixels[c] += pc[c];
    }
    a->frames++;
    return frame_n ? frame_sum / frame_n : 0.0;
}

void avss_acc_result(const avss_acc_t *a, avss_result_t *r) {
    memset(r, 0, sizeof *r);
    double si = 0, sf = 0, si_nb = 0, sf_nb = 0, so_i = 0, so_f = 0;
    for (int c = 0; c < AVS_NUM_CLASSES; c++) {
        float mi = a->iou_sum[c] / a->count[c];
        float mf = a->f_sum[c] / a->count[c];
        if (isnan(mi)) mi = 0.f;
        if (isnan(mf)) mf = 0.f;
        r->class_iou[c] = mi;
        r->class_f[c] = mf;
        r->class_count[c] = (int)a->count[c];
        si += mi;
        sf += mf;
        if (c > 0) si_nb += mi, sf_nb += mf;
        if (a->count[c] > 0) {
            so_i += mi;
            so_f += mf;
            r->n_occurring++;
        }
    }
    r->miou = si / AVS_NUM_CLASSES;
    r->fscore = sf / AVS_NUM_CLASSES;
    r->miou_nb = si_nb / (AVS_NUM_CLASSES - 1);
    r->fscore_nb = sf_nb / (AVS_NUM_CLASSES - 1);
    r->miou_occurring = r->n_occurring ? so_i / r->n_occurring : 0.0;
    r->fscore_occurring = r->n_occurring ? so_f / r->n_occurring : 0.0;
    r->frames = a->frames;
}

/* ---- S4 / MS3 ---- */

static float thresholds[AVS_F_THRESHOLDS];
static pthread_once_t thresholds_once = PTHREAD_ONCE_INIT;

/* torch.linspace's CPU kernel in float32: step = (end - start) / (steps - 1);
 * the first half counts up from start, the second half down from end. */
static void thresholds_fill(void) {
    const float start = 0.f, end = (float)(1 - 1e-10);
    const int steps = AVS_F_THRESHOLDS, halfway = steps / 2;
    const float step = (end - start) / (float)(steps - 1);
    for (int i = 0; i < steps; i++)
        thresholds[i] = i < halfway ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

const float *avs_f_thresholds(void) {
    pthread_once(&thresholds_once, thresholds_fill);
    return thresholds;
}

void avs_bin_video_begin(avs_bin_video_t *v) { memset(v, 0, sizeof *v); }

static float prob_of(int v) { return (float)v / 255.0f; }

float avs_bin_video_add_frame(avs_bin_video_t *v, const uint8_t *prob, const uint8_t *truth, size_t npix) {
    /* histograms of the 256 possible values: all pixels and true pixels */
    int64_t all[256] = {0}, pos[256] = {0};
    for (size_t i = 0; i < npix; i++) {
        all[prob[i]]++;
        if (truth[i]) pos[prob[i]]++;
    }
    int64_t n_true = 0, inter = 0, uni = 0, both_empty = 0;
    for (int k = 0; k < 256; k++) {
        int64_t neg = all[k] - pos[k];
        int b = prob_of(k) > 0.5f;
        n_true += pos[k];
        if (b) {
            inter += pos[k];
            uni += all[k];
        } else {
            uni += pos[k];
            both_empty += neg;
        }
    }
    float fi, fu;
    if (n_true == 0) {
        fi = (float)both_empty;
        fu = (float)npix;
    } else {
        fi = (float)inter;
        fu = (float)uni;
    }
    const float eps = 1e-7f;
    float iou = fi / (fu + eps);
    v->iou_sum += iou;
    v->frames++;
    if (n_true == 0) return iou; /* the F-measure skips frames with empty truth */
    const float *th = avs_f_thresholds();
    /* cumulative counts from the top value down: |y| and tp for y = p >= th */
    int64_t cum_all[257], cum_pos[257];
    cum_all[256] = cum_pos[256] = 0;
    for (int k = 255; k >= 0; k--) {
        cum_all[k] = cum_all[k + 1] + all[k];
        cum_pos[k] = cum_pos[k + 1] + pos[k];
    }
    int k = 0; /* smallest value with p >= th_i; thresholds increase */
    for (int i = 0; i < AVS_F_THRESHOLDS; i++) {
        while (k < 256 && !(prob_of(k) >= th[i])) k++;
        float tp = (float)cum_pos[k], sel = (float)cum_all[k];
        float prec = tp / (sel + 1e-20f);
        float rec = tp / ((float)n_true + 1e-20f);
        v->f_sum[i] += fscore_f32(prec, rec);
    }
    v->f_frames++;
    return iou;
}

void avs_bin_video_end(const avs_bin_video_t *v, float *miou, float *fscore) {
    *miou = v->frames ? v->iou_sum / (float)v->frames : 0.f;
    float best = 0.f;
    if (v->f_frames > 0) {
        for (int i = 0; i < AVS_F_THRESHOLDS; i++) {
            float s = v->f_sum[i] / (float)v->f_frames;
            if (i == 0 || s > best) best = s;
        }
    }
    *fscore = best;
}

void avs_bin_acc_init(avs_bin_acc_t *a) { memset(a, 0, sizeof *a); }

void avs_bin_acc_add_video(avs_bin_acc_t *a, const avs_bin_video_t *v) {
    float mi, f;
    avs_bin_video_end(v, &mi, &f);
    a->miou_sum += (double)mi;
    a->f_sum += (double)f;
    a->videos++;
    a->frames += v->frames;
    a->empty_frames += v->frames - v->f_frames;
}

static double round6(double x) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.6f", x);
    return strtod(buf, NULL);
}

void avs_bin_acc_result(const avs_bin_acc_t *a, avs_bin_result_t *r) {
    memset(r, 0, sizeof *r);
    r->videos = a->videos;
    r->frames = a->frames;
    r->empty_frames = a->empty_frames;
    if (a->videos > 0) {
        r->miou = a->miou_sum / (double)a->videos;
        r->fscore = a->f_sum / (double)a->videos;
    }
    r->miou_rounded = round6(r->miou);
    r->fscore_rounded = round6(r->fscore);
}
