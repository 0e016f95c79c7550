/* m2f_matcher.h - Mask2Former's Hungarian matcher (Mask2FormerHungarianMatcher,
 * M2F:401-501 of the avss copy of modeling_mask2former.py in
 * GeWu-Lab/Stepping-Stones de6a17b; the avs copy is the same).
 *
 * For each frame f, with P points drawn uniformly in [0, 1]^2 and shared by
 * every query and target of the frame, the cost of query q for target j is
 *   cost_mask  * mean_p BCE(mask logit of q at p, target mask j at p)
 * + cost_class * (-softmax(class logits of q)[class of j])
 * + cost_dice  * (1 - (2 sum_p s t + 1) / (sum_p s + sum_p t + 1)),  s = sigmoid(logit)
 * (targets read at the points by bilinear sampling too), and the assignment
 * is scipy's linear_sum_assignment of that [Q, n_f] matrix (hungarian.h).
 * The matrix is formed in float32 in torch's order and solved in double, with
 * one liberty: BCE against the all-zeros target is taken as BCE against the
 * all-ones target plus the logit (softplus(x) = softplus(-x) + x), which
 * saves a transcendental pass over Q x P points per frame and differs from
 * evaluating it afresh by float rounding only (on the order of the rounding
 * that already separates any two float implementations of the matrix).
 *
 * Weights: the official loss builds its matcher with cost_class = 1.0 (not the
 * config's class_weight), cost_mask = mask_weight, cost_dice = dice_weight
 * (M2F:531-536); m2f_loss passes exactly that.
 *
 * Nothing here is differentiated (the official matcher runs under no_grad):
 * everything it allocates from ctx->arena is released before it returns. */
#ifndef STEPSTONE_M2F_MATCHER_H
#define STEPSTONE_M2F_MATCHER_H

#include <stdint.h>

#include "error.h"
#include "tape.h"

/* The ground truth of a batch of frames, as the image processor gives it:
 * per frame one binary mask per class present and the class ids. */
typedef struct {
    int n_frames;
    tensor_t **mask_labels;  /* [n_frames] of [n_f, H, W] F32 on ctx's device (H, W may differ by frame) */
    tensor_t **class_labels; /* [n_frames] of [n_f] I64, any device */
} m2f_targets_t;

/* The matching of one prediction: frame f's pairs are [offset[f], offset[f+1]),
 * query indices ascending within a frame; min(Q, n_f) pairs per frame. */
typedef struct {
    int n_frames;
    int64_t *offset;   /* [n_frames + 1], malloc'd */
    int64_t *pred_idx; /* [offset[n_frames]], malloc'd */
    int64_t *tgt_idx;  /* [offset[n_frames]], malloc'd */
} m2f_matching_t;

typedef struct {
    float cost_class, cost_mask, cost_dice;
} m2f_match_weights_t;

/* Matches every frame of one prediction: class_logits [F, Q, L+1], mask_logits
 * [F, Q, h, w], targets of F frames, coords [F, 1, P, 2] on ctx's device (frame
 * f's points are coords[f]). Fills *out (free with m2f_matching_free). With
 * costs non-NULL, costs[f] (malloc'd, [Q, n_f] row-major, NULL for n_f = 0;
 * the caller frees each) gets frame f's cost matrix.
 * ERR_ARG when a class id is outside [0, L+1) or a cost is not finite
 * (scipy refuses such a matrix), with the frame named. */
err_code_t m2f_match(ctx_t *ctx, m2f_match_weights_t w, tensor_t *class_logits, tensor_t *mask_logits,
                     const m2f_targets_t *targets, tensor_t *coords, m2f_matching_t *out, float **costs,
                     err_t *err);

void m2f_matching_free(m2f_matching_t *m);

#endif
