/* avs_metrics.h - the official AVSBench metrics, computed as the official code
 * computes them (float32 where it uses float32 tensors, in the same order).
 *
 * AVSS (Stepping-Stones avss/utils/cal_color_metric.py miou_fscore, summed by
 * avss/scripts/evaluation.py test()): for every frame, per class c of the 71,
 *   inter = |pred=c and true=c|, area_pred = |pred=c|, area_lab = |true=c|,
 *   union = area_pred + area_lab - inter,
 *   iou_c = inter / (2.220446049250313e-16 + union)   (0 when union = 0)
 *   count_c += 1 when union > 0
 *   P = inter / area_pred, R = inter / area_lab, F_c = 1.3 P R / (0.3 P + R),
 *   F_c = 0 where that is NaN (0/0)
 * and iou_c, F_c, count_c are summed over the frames of the split. Finally
 * mIoU_c = sum iou_c / count_c (NaN -> 0) and the official mIoU is the mean
 * over all 71 classes: a class that never occurs contributes 0, so a perfect
 * prediction on a split where k classes occur scores k/71. miou_nb is the mean
 * over classes 1..70; F likewise. Beside them: the means over the classes that
 * occur (count_c > 0: in the truth or the prediction of some frame), the
 * number AVSBench's own test.py prints per batch.
 *
 * S4/MS3 (AVSBench avs_scripts/avs_s4/utils/utility.py, Stepping-Stones
 * avs/utils/utility.py and avs/scripts/evaluation.py test_avs), per video of
 * N frames:
 *   frame IoU: binary prediction b = p > 0.5; with truth t, inter = |b and t|,
 *     union = |b or t|; a frame whose truth is empty scores inter = |not b and
 *     not t|, union = all pixels; iou = inter / (union + 1e-7) (float32);
 *     video mIoU = (sum of frame IoUs) / N.
 *   F-score: 255 thresholds th_i = linspace(0, 1 - 1e-10, 255) in float32
 *     (i/254, th_254 = 1.0 exactly; here the step 1/254 in float32, the first
 *     half counting up from 0 and the second down from 1, as torch's scalar
 *     kernel does; torch's vector kernels round a few in the last bit, which
 *     changes no decision on an 8-bit p: test_evaluate checks all 256 values
 *     against torch's thresholds); frames with empty truth are skipped; for
 *     each other frame and threshold, y = p >= th_i, prec = tp / (|y| + 1e-20),
 *     recall = tp / (|t| + 1e-20), f = 1.3 prec recall / (0.3 prec + recall)
 *     (NaN -> 0); the f curves are averaged over the frames and the video's
 *     score is the curve's maximum; a video with no non-empty frame scores 0
 *     and still counts.
 *   The split's mIoU and F are the means over videos (test_avs then rounds
 *   them to 6 digits; both forms are given).
 *
 * Probability PNGs: p = v / 255 (float32) for an 8-bit value v. This is one
 * number doing both official jobs: the IoU mask is p > 0.5 (v >= 128), which
 * is AVSBench's sigmoid(logit) > 0.5 and Stepping-Stones' argmax over its two
 * channels (l0, l1) = (0, logit(p) / 2), and the F-score thresholds p, which
 * is sigmoid(logit) for AVSBench and sigmoid(2 l1 - l0) for Stepping-Stones.
 * So a model that saves p = sigmoid(2 l1 - l0) (Stepping-Stones) or
 * sigmoid(logit) (AVSBench) quantised to 8 bits is scored as the official
 * code scores it, up to that quantisation. A 0/255 mask is the special case
 * p in {0, 1}: its F-score is that of a hard prediction. */
#ifndef STEPSTONE_AVS_METRICS_H
#define STEPSTONE_AVS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "avsbench.h"

#define AVS_F_THRESHOLDS 255

/* ---- AVSS ---- */

typedef struct {
    float iou_sum[AVS_NUM_CLASSES]; /* float32, as the official torch accumulators */
    float f_sum[AVS_NUM_CLASSES];
    float count[AVS_NUM_CLASSES];
    int64_t frames;
    int64_t true_pixels[AVS_NUM_CLASSES]; /* pixels of each class in the truth (for reports) */
    int64_t pred_pixels[AVS_NUM_CLASSES];
} avss_acc_t;

typedef struct {
    double miou, miou_nb, fscore, fscore_nb;   /* official: means over 71 / over 1..70 */
    double miou_occurring, fscore_occurring;   /* means over the classes that occur */
    int n_occurring;
    float class_iou[AVS_NUM_CLASSES];          /* mIoU_c, NaN -> 0 */
    float class_f[AVS_NUM_CLASSES];
    int class_count[AVS_NUM_CLASSES];          /* frames where the class occurs (union > 0) */
    int64_t frames;
} avss_result_t;

void avss_acc_init(avss_acc_t *a);
/* Adds one frame of npix class ids (0..70; larger ids are invalid input and
 * must be rejected by the caller). Returns the frame's mean IoU over the
 * classes with union > 0 (a per-frame figure for reports, not official). */
double avss_acc_add_frame(avss_acc_t *a, const uint8_t *pred, const uint8_t *truth, size_t npix);
void avss_acc_result(const avss_acc_t *a, avss_result_t *r);

/* ---- S4 / MS3 ---- */

/* The 255 float32 thresholds, as torch.linspace(0, 1 - 1e-10, 255) gives them. */
const float *avs_f_thresholds(void);

typedef struct {
    float iou_sum;   /* float32 sum of frame IoUs */
    int frames;
    float f_sum[AVS_F_THRESHOLDS];
    int f_frames;    /* frames with non-empty truth */
} avs_bin_video_t;

void avs_bin_video_begin(avs_bin_video_t *v);
/* prob: npix values 0..255 (p = v / 255); truth: npix values 0/1. Returns the
 * frame's IoU. */
float avs_bin_video_add_frame(avs_bin_video_t *v, const uint8_t *prob, const uint8_t *truth, size_t npix);
/* The video's mIoU (float32 sum / frames) and max F (0 without a non-empty frame). */
void avs_bin_video_end(const avs_bin_video_t *v, float *miou, float *fscore);

typedef struct {
    double miou_sum, f_sum; /* sums over videos (in double, as the official meters) */
    int64_t videos, frames, empty_frames;
} avs_bin_acc_t;

typedef struct {
    double miou, fscore;              /* means over videos */
    double miou_rounded, fscore_rounded; /* round(x, 6), as test_avs reports */
    int64_t videos, frames, empty_frames;
} avs_bin_result_t;

void avs_bin_acc_init(avs_bin_acc_t *a);
void avs_bin_acc_add_video(avs_bin_acc_t *a, const avs_bin_video_t *v);
void avs_bin_acc_result(const avs_bin_acc_t *a, avs_bin_result_t *r);

#endif
