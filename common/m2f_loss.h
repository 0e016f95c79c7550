/* m2f_loss.h - the Mask2Former loss exactly as the official AAVS code computes
 * it (Mask2FormerLoss and Mask2FormerForUniversalSegmentation.get_loss_dict /
 * get_loss, M2F:504-800 and M2F:2387-2422 of the avss copy of
 * modeling_mask2former.py in GeWu-Lab/Stepping-Stones de6a17b; the avs copy
 * computes the same). For each prediction group (the final prediction, then
 * each auxiliary prediction i of the decoder, aux 0 coming before the first
 * decoder layer):
 *   1. Hungarian matching per frame on P = train_num_points uniform points
 *      (m2f_matcher.h);
 *   2. for the M matched masks, importance sampling: int(P * oversample_ratio)
 *      uniform points per mask, the k = int(importance_sample_ratio * P) with
 *      the smallest |logit|, plus P - k uniform points (point_sample.h);
 *   3. loss_mask = sum_m mean_p BCE(logit, target) / num_masks,
 *      loss_dice = sum_m dice_m / num_masks, the targets read at the same
 *      points by bilinear sampling, num_masks = sum_f n_f (all targets);
 *   4. loss_cross_entropy = cross-entropy of every query's class logits, the
 *      matched ones against their target's class and the rest against the
 *      no-object class L, class weights 1 and no_object_weight on L, averaged
 *      with those weights (nn.CrossEntropyLoss(weight)).
 * The terms are named as the official dict names them: loss_mask, loss_dice,
 * loss_cross_entropy for the final prediction and <term>_<i> for aux i. Each is
 * scaled by its weight (mask_weight, dice_weight, class_weight) and the total
 * is their sum in the dict's order (final, then aux 0, 1, ...). Every aux
 * prediction passed in is used: the official model always passes all of them
 * (use_auxiliary_loss is not consulted).
 *
 * Gradients: the total is on the tape; backward reaches the class and mask
 * logits through the ops. Matching and the choice of points are not
 * differentiated (the official code runs them under no_grad / on values).
 *
 * Points: from a seeded rng_t (the same draws as the official code, in its
 * order: per group F times [1, P, 2] for the matcher, then [M, 3P, 2]
 * oversampled, then [M, P - k, 2] random; torch.rand's 24-bit uniforms, not
 * its stream), or fixed draws read from a safetensors file as the golden
 * inputs hold them: loss.<g>.matcher_point_coords [F, 1, P, 2],
 * loss.<g>.oversampled_point_coords [M, int(P * oversample_ratio), 2],
 * loss.<g>.random_point_coords [M, P - k, 2] (absent when P - k = 0), with
 * <g> = final or aux<i>.
 *
 * Variants: the loss of avs/ and avss/ is the same code; avs/ adds the rule of
 * avs/utils/utility.py get_loss: a batch from the v1m subset whose label maps
 * are all zero gets a constant zero loss (no gradient). That case computes
 * nothing here (the official code computes the terms and drops them).
 *
 * Limits: no target in any frame (num_masks = 0) is ERR_ARG: the official loss
 * divides by zero there and returns NaN. */
#ifndef STEPSTONE_M2F_LOSS_H
#define STEPSTONE_M2F_LOSS_H

#include <stdint.h>

#include "config.h"
#include "m2f_matcher.h"
#include "m2f_variant.h"
#include "rng.h"
#include "safetensors.h"
#include "tape.h"

typedef struct {
    int num_labels;                 /* L: len(id2label) (or "num_labels") */
    float class_weight;             /* 2.0 */
    float mask_weight;              /* 5.0 */
    float dice_weight;              /* 5.0 */
    float no_object_weight;         /* 0.1: the class weight of the no-object class L */
    int train_num_points;           /* P, 12544 */
    double oversample_ratio;        /* 3.0 */
    double importance_sample_ratio; /* 0.75 */
} m2f_loss_config_t;

/* Reads the fields above from a Mask2Former config.json; absent fields take
 * HuggingFace's Mask2FormerConfig defaults (the values in the comments). num_labels
 * is the size of id2label, or "num_labels" when id2label is absent; it must be
 * >= 1. ERR_MISMATCH for a value out of range (negative weight, P < 1,
 * ratios outside their ranges), naming the file and key. */
err_code_t m2f_loss_config_from_json(const config_t *cfg, m2f_loss_config_t *out, err_t *err);


typedef enum { M2F_POINTS_RANDOM = 0, M2F_POINTS_FIXED = 1 } m2f_points_kind_t;

typedef struct {
    m2f_points_kind_t kind;
    rng_t *rng;                 /* RANDOM: advanced by the draws */
    const safetensors_t *fixed; /* FIXED: the file holding loss.<g>.*_point_coords (borrowed) */
} m2f_point_source_t;

/* One prediction: class logits [F, Q, L+1] and mask logits [F, Q, h, w], F32
 * on ctx's device (requiring grad or not). */
typedef struct {
    tensor_t *class_logits;
    tensor_t *mask_logits;
} m2f_prediction_t;

typedef struct {
    m2f_prediction_t final;
    const m2f_prediction_t *aux; /* [n_aux], aux[i] is prediction i; may be NULL when n_aux = 0 */
    int n_aux;
} m2f_predictions_t;

typedef struct {
    m2f_variant_t variant;
    /* avs only: for a batch from the v1m subset, its label maps as the
     * dataset stacks them (mask_recs; any dtype, any device); NULL otherwise.
     * All zero -> the zero loss of the empty-mask rule. */
    const tensor_t *v1m_label_maps;
} m2f_loss_options_t;

typedef struct {
    char name[32];        /* "loss_mask", "loss_dice_2", ... */
    float unweighted;     /* the criterion's value */
    float weighted;       /* times its weight: what the total sums */
} m2f_loss_term_t;

typedef struct {
    char name[16];          /* "final", "aux0", ... as in the golden names */
    m2f_matching_t matching;
    int64_t n_points;       /* P */
    float *point_coords;    /* [matched masks, P, 2]: the points the mask and dice losses used, malloc'd */
} m2f_loss_group_t;

/* What one m2f_loss call computed, for logs and parity checks. malloc'd
 * inside; free with m2f_loss_report_free. */
typedef struct {
    int skipped;             /* the avs empty-mask rule applied: nothing else is filled */
    int n_groups;            /* 1 + n_aux: groups[0] is final, groups[1 + i] is aux i */
    m2f_loss_group_t *groups;
    int n_terms;             /* 3 per group, in the official dict order */
    m2f_loss_term_t *terms;
    float total;
} m2f_loss_report_t;

/* The total loss, a 0-dim tensor from ctx->arena on the tape (a constant zero
 * when the empty-mask rule applies), in *total. targets: F frames on ctx's
 * device (class ids in [0, L)). report may be NULL; when given it is filled
 * (reading the terms back from the device). Errors: ERR_ARG for bad targets
 * or non-finite matching costs; ERR_NOTFOUND / ERR_MISMATCH for fixed point
 * draws missing from the file or of the wrong shape, naming the tensor. */
err_code_t m2f_loss(ctx_t *ctx, const m2f_loss_config_t *cfg, const m2f_predictions_t *preds,
                    const m2f_targets_t *targets, const m2f_point_source_t *points,
                    const m2f_loss_options_t *opts, tensor_t **total, m2f_loss_report_t *report, err_t *err);

void m2f_loss_report_free(m2f_loss_report_t *r);

/* The term of report r called name, or NULL. */
const m2f_loss_term_t *m2f_loss_report_term(const m2f_loss_report_t *r, const char *name);

#endif
