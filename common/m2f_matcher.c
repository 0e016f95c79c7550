/* m2f_matcher.c - the Hungarian matcher's cost matrices and assignments
 * (see m2f_matcher.h). The heavy parts (sampling F x Q masks at P points,
 * BCE, sigmoid, the products over the points) run as ops on ctx's device
 * without a tape; the small sums come to the host, where the costs are
 * combined per frame and the assignment is solved. */
#include <stdlib.h>

#include "hungarian.h"
#include "m2f_matcher.h"
#include "ops.h"
#include "point_sample.h"

/* Frees what ctx allocated since mark; the stretch must have recorded no
 * tape node (gradients were off), so nothing on the tape points into it. */
static void release_to(ctx_t *ctx, ctx_mark_t mark) {
    if (ctx->n_nodes != mark.n_nodes) fatal("m2f_matcher: tape nodes recorded during a no-grad stretch");
    arena_release(ctx->arena, mark.arena);
}

static float *host_floats(const tensor_t *t) {
    float *h = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!h) fatal("m2f_matcher: out of memory for %lld floats", (long long)t->numel);
    tensor_to_host(t, h);
    return h;
}

void m2f_matching_free(m2f_matching_t *m) {
    if (!m) return;
    free(m->offset);
    free(m->pred_idx);
    free(m->tgt_idx);
    m->offset = m->pred_idx = m->tgt_idx = NULL;
    m->n_frames = 0;
}

static void *matcher_alloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) fatal("m2f_match: out of memory");
    return p;
}

/* The matcher's [F Q, N] products for all frames at once (N = every
 * target of every frame): the products across frames are wasted but cheap,
 * and one op per quantity beats F slices. Host arrays, malloc'd. */
typedef struct {
    float *probs;     /* [F Q, C] softmax of the class logits */
    float *bce_pos;   /* [F Q, N] sum_p BCE(x, 1) t */
    float *bce_neg;   /* [F Q, N] sum_p BCE(x, 0) (1 - t) */
    float *overlap;   /* [F Q, N] sum_p sigmoid(x) t */
    float *pred_sum;  /* [F Q] sum_p sigmoid(x) */
    float *tgt_sum;   /* [N] sum_p t */
} match_sums_t;

static void match_sums(ctx_t *ctx, tensor_t *class_logits, tensor_t *mask_logits, const m2f_targets_t *targets,
                       tensor_t *coords, match_sums_t *out) {
    int frames = targets->n_frames;
    int64_t queries = mask_logits->shape[1], points = coords->shape[2];
    ctx_mark_t mark = ctx_mark(ctx);
    int64_t frame_coords_shape[3] = {frames, points, 2};
    tensor_t *all_coords = op_reshape(ctx, coords, 3, frame_coords_shape);
    /* every frame's Q masks at its own points: the frames are the batch, the queries the channels */
    int64_t rows_shape[2] = {frames * queries, points};
    tensor_t *pred = op_reshape(ctx, point_sample(ctx, mask_logits, all_coords), 2, rows_shape);
    /* each frame's targets at its points, at the targets' own size (unpadded, as the matcher reads them) */
    tensor_t **per_frame = malloc((size_t)frames * sizeof *per_frame);
    if (!per_frame) fatal("m2f_match: out of memory");
    int n_parts = 0;
    for (int f = 0; f < frames; f++) {
        tensor_t *masks = targets->mask_labels[f];
        int64_t n = masks->shape[0];
        if (n == 0) continue;
        int64_t planes[4] = {1, n, masks->shape[1], masks->shape[2]}, one_coords[3] = {1, points, 2};
        int64_t tgt_rows[2] = {n, points};
        tensor_t *frame_coords = op_reshape(ctx, op_slice(ctx, all_coords, 0, f, f + 1), 3, one_coords);
        per_frame[n_parts++] = op_reshape(
            ctx, point_sample(ctx, op_reshape(ctx, masks, 4, planes), frame_coords), 2, tgt_rows);
    }
    tensor_t *tgt = n_parts == 1 ? per_frame[0] : op_concat(ctx, per_frame, n_parts, 0); /* [N, P] */
    free(per_frame);
    /* pair_wise_sigmoid_cross_entropy_loss: BCE against all-ones and
     * all-zeros targets, weighted by the target and its complement; the
     * einsum "nc,mc->nm" is a linear layer without bias */
    tensor_t *ones = op_affine(ctx, tensor_zeros(ctx->arena, DTYPE_F32, 2, rows_shape), 1.0f, 1.0f);
    tensor_t *pos = op_bce_with_logits(ctx, pred, ones);
    tensor_t *neg = op_add(ctx, pos, pred); /* softplus(x) = softplus(-x) + x: see m2f_matcher.h */
    tensor_t *bce_pos = op_linear(ctx, pos, tgt, NULL);
    tensor_t *bce_neg = op_linear(ctx, neg, op_affine(ctx, tgt, -1.0f, 1.0f), NULL);
    /* pair_wise_dice_loss */
    tensor_t *pred_prob = op_sigmoid(ctx, pred);
    tensor_t *overlap = op_linear(ctx, pred_prob, tgt, NULL);
    tensor_t *pred_sum = op_sum(ctx, pred_prob, 1, 0), *tgt_sum = op_sum(ctx, tgt, 1, 0);
    tensor_t *probs = op_softmax(ctx, class_logits, -1);
    out->probs = host_floats(probs);
    out->bce_pos = host_floats(bce_pos);
    out->bce_neg = host_floats(bce_neg);
    out->overlap = host_floats(overlap);
    out->pred_sum = host_floats(pred_sum);
    out->tgt_sum = host_floats(tgt_sum);
    release_to(ctx, mark);
}

static void match_sums_free(match_sums_t *s) {
    free(s->probs);
    free(s->bce_pos);
    free(s->bce_neg);
    free(s->overlap);
    free(s->pred_sum);
    free(s->tgt_sum);
}

/* Frame f's [Q, n] cost matrix from the sums: float32, in the order of the
 * official expressions (no contraction into fma: -std=c11 keeps
 * -ffp-contract=off). Rows f Q.., columns first.. of the sums. */
static void frame_cost(m2f_match_weights_t w, const match_sums_t *s, int64_t f, int64_t queries, int64_t classes,
                       int64_t n_all, int64_t first, int64_t n, const int64_t *target_class, float points,
                       float *cost) {
    for (int64_t q = 0; q < queries; q++) {
        int64_t row = f * queries + q;
        for (int64_t j = 0; j < n; j++) {
            int64_t at = row * n_all + first + j;
            float cost_mask = (s->bce_pos[at] + s->bce_neg[at]) / points;
            float numerator = 2.0f * s->overlap[at];
            float denominator = s->pred_sum[row] + s->tgt_sum[first + j];
            float cost_dice = 1.0f - (numerator + 1.0f) / (denominator + 1.0f);
            float cost_class = -s->probs[row * classes + target_class[j]];
            cost[q * n + j] = w.cost_mask * cost_mask + w.cost_class * cost_class + w.cost_dice * cost_dice;
        }
    }
}

err_code_t m2f_match(ctx_t *ctx, m2f_match_weights_t w, tensor_t *class_logits, tensor_t *mask_logits,
                     const m2f_targets_t *targets, tensor_t *coords, m2f_matching_t *out, float **costs,
                     err_t *err) {
    char sc[96], sm[96], sp[96];
    if (class_logits->ndim != 3 || mask_logits->ndim != 4 || coords->ndim != 4 ||
        mask_logits->shape[0] != class_logits->shape[0] || mask_logits->shape[1] != class_logits->shape[1] ||
        coords->shape[0] != class_logits->shape[0] || coords->shape[1] != 1 || coords->shape[3] != 2 ||
        targets->n_frames != class_logits->shape[0])
        fatal("m2f_match: class logits %s, mask logits %s, coords %s, %d target frames (want [F, Q, C], "
              "[F, Q, h, w], [F, 1, P, 2], F frames)",
              tensor_shape_str(class_logits, sc, 96), tensor_shape_str(mask_logits, sm, 96),
              tensor_shape_str(coords, sp, 96), targets->n_frames);
    int frames = targets->n_frames;
    int64_t queries = class_logits->shape[1], classes = class_logits->shape[2];
    int64_t *first = matcher_alloc((size_t)frames + 1, sizeof(int64_t)); /* each frame's first target */
    int64_t pairs = 0;
    for (int f = 0; f < frames; f++) {
        tensor_t *labels = targets->class_labels[f], *masks = targets->mask_labels[f];
        int64_t n = labels->numel;
        if (labels->dtype != DTYPE_I64 || labels->ndim != 1 || masks->ndim != 3 || masks->shape[0] != n)
            fatal("m2f_match: frame %d has class labels %s %s and masks %s (want I64 [n] and [n, H, W])", f,
                  dtype_name(labels->dtype), tensor_shape_str(labels, sc, 96), tensor_shape_str(masks, sm, 96));
        first[f + 1] = first[f] + n;
        pairs += n < queries ? n : queries;
    }
    int64_t n_all = first[frames];
    int64_t *target_class = matcher_alloc((size_t)n_all, sizeof(int64_t));
    err_code_t rc = ERR_OK;
    for (int f = 0; f < frames && rc == ERR_OK; f++) {
        tensor_to_host(targets->class_labels[f], target_class + first[f]);
        for (int64_t j = first[f]; j < first[f + 1] && rc == ERR_OK; j++)
            if (target_class[j] < 0 || target_class[j] >= classes)
                rc = err_set(err, ERR_ARG, "frame %d: target %lld has class %lld, outside [0, %lld)", f,
                             (long long)(j - first[f]), (long long)target_class[j], (long long)classes);
    }
    *out = (m2f_matching_t){.n_frames = frames};
    out->offset = matcher_alloc((size_t)frames + 1, sizeof(int64_t));
    out->pred_idx = matcher_alloc((size_t)pairs, sizeof(int64_t));
    out->tgt_idx = matcher_alloc((size_t)pairs, sizeof(int64_t));
    if (costs)
        for (int f = 0; f < frames; f++) costs[f] = NULL;
    match_sums_t sums = {0};
    if (rc == ERR_OK && n_all > 0) {
        int grad_was = ctx_set_grad(ctx, 0);
        match_sums(ctx, class_logits, mask_logits, targets, coords, &sums);
        ctx_set_grad(ctx, grad_was);
    }
    float points = (float)coords->shape[2]; /* height_and_width of the sampled masks */
    for (int f = 0; f < frames && rc == ERR_OK; f++) {
        int64_t n = first[f + 1] - first[f];
        out->offset[f + 1] = out->offset[f];
        if (n == 0) continue;
        float *cost = matcher_alloc((size_t)(queries * n), sizeof(float));
        double *cost_d = matcher_alloc((size_t)(queries * n), sizeof(double));
        int *rows = matcher_alloc((size_t)n, sizeof(int)), *cols = matcher_alloc((size_t)n, sizeof(int));
        frame_cost(w, &sums, f, queries, classes, n_all, first[f], n, target_class + first[f], points, cost);
        /* scipy takes the float32 matrix as float64 */
        for (int64_t k = 0; k < queries * n; k++) cost_d[k] = (double)cost[k];
        int k = linear_sum_assignment(cost_d, (int)queries, (int)n, rows, cols);
        if (k < 0) {
            rc = err_set(err, ERR_ARG, "frame %d: the matching cost is not finite (NaN or infinite logits?)", f);
        } else {
            int64_t at = out->offset[f];
            for (int i = 0; i < k; i++) {
                out->pred_idx[at + i] = rows[i];
                out->tgt_idx[at + i] = cols[i];
            }
            out->offset[f + 1] = at + k;
        }
        if (costs) costs[f] = cost;
        else free(cost);
        free(cost_d);
        free(rows);
        free(cols);
    }
    match_sums_free(&sums);
    free(first);
    free(target_class);
    if (rc != ERR_OK) {
        m2f_matching_free(out);
        if (costs)
            for (int f = 0; f < frames; f++) {
                free(costs[f]);
                costs[f] = NULL;
            }
    }
    return rc;
}
