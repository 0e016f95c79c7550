/* cases_loss.c - op kinds: BCE with logits, dice, cross-entropy, and the
 * composites Mask2Former's criterion builds from them.
 * Cases: tests/reference/ops_loss.py. */
#include "op_cases.h"

static tensor_t *run_bce(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_bce_with_logits(c, in[0], in[1]);
}

/* Mask2Former's sigmoid_cross_entropy_loss: bce(x, t).mean(1).sum() / num_masks.
 * args: num_masks */
static tensor_t *run_bce_mask_loss(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    tensor_t *per_mask = op_mean(c, op_bce_with_logits(c, in[0], in[1]), 1, 0);
    return op_scale(c, op_sum_all(c, per_mask), 1.0f / (float)a[0]);
}

static tensor_t *run_dice(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_dice_loss(c, in[0], in[1]);
}

/* Mask2Former's dice_loss: dice(x, t).sum() / num_masks. args: num_masks */
static tensor_t *run_dice_mask_loss(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_scale(c, op_sum_all(c, op_dice_loss(c, in[0], in[1])), 1.0f / (float)a[0]);
}

/* inputs: logits, target (I64), and optionally the class weight. args: ignore_index */
static tensor_t *run_cross_entropy(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)na;
    return op_cross_entropy(c, in[0], in[1], n > 2 ? in[2] : NULL, a[0]);
}

const op_kind_t op_kinds_loss[] = {
    {"bce_with_logits", run_bce, 0, 0},
    {"bce_mask_loss", run_bce_mask_loss, 0, 0},
    {"dice_loss", run_dice, 0, 0},
    {"dice_mask_loss", run_dice_mask_loss, 0, 0},
    {"cross_entropy", run_cross_entropy, 0, 0},
    {NULL, NULL, 0, 0},
};
