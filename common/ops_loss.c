/* ops_loss.c - the losses of Mask2Former's criterion: BCE with logits, the
 * dice loss and weighted softmax cross-entropy. Targets (and class weights)
 * are constants: only the logits get a gradient, as in the criterion, where
 * targets come from the data and the class weight is a buffer. */
#include <stdlib.h>

#include "error.h"
#include "ops.h"

/* ---- BCE with logits, elementwise (reduction "none") ---- */

static void bce_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0], *t = n->saved[0];
    ctx->be->bce_logits_backward(ctx_grad_if(ctx, x), n->out->grad, tensor_f32(x), tensor_f32(t), x->numel);
}

tensor_t *op_bce_with_logits(ctx_t *ctx, tensor_t *x, tensor_t *t) {
    op_check_f32(ctx, "bce_with_logits", x);
    op_check_f32(ctx, "bce_with_logits", t);
    char sx[96], st[96];
    /* torch requires target.size() == input.size(); no broadcasting */
    if (!tensor_same_shape(x, t))
        fatal("bce_with_logits: input %s, target %s (want the same shape)", tensor_shape_str(x, sx, 96),
              tensor_shape_str(t, st, 96));
    tensor_t *out = tensor_new_like(ctx->arena, x);
    ctx->be->bce_logits_forward(tensor_f32(out), tensor_f32(x), tensor_f32(t), x->numel);
    /* only x is an input of the node: a target that requires grad does not
     * make one, and t travels in saved[] */
    tape_node_t *n = ctx_record(ctx, "bce_with_logits", bce_backward, out, 1, &x);
    if (n) n->saved[0] = t;
    return out;
}

/* ---- dice loss per row ---- */

/* iarg: rows, n */
static void dice_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0], *t = n->saved[0];
    ctx->be->dice_backward(ctx_grad_if(ctx, x), n->out->grad, tensor_f32(x), tensor_f32(t), n->iarg[0], n->iarg[1]);
}

tensor_t *op_dice_loss(ctx_t *ctx, tensor_t *x, tensor_t *t) {
    op_check_f32(ctx, "dice_loss", x);
    op_check_f32(ctx, "dice_loss", t);
    char sx[96], st[96];
    if (x->ndim != 2 || !tensor_same_shape(x, t))
        fatal("dice_loss: input %s, target %s (want both [rows, n])", tensor_shape_str(x, sx, 96),
              tensor_shape_str(t, st, 96));
    int64_t rows = x->shape[0], len = x->shape[1];
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, 1, &rows);
    ctx->be->dice_forward(tensor_f32(out), tensor_f32(x), tensor_f32(t), rows, len);
    tape_node_t *n = ctx_record(ctx, "dice_loss", dice_backward, out, 1, &x);
    if (n) {
        n->saved[0] = t;
        n->iarg[0] = rows;
        n->iarg[1] = len;
    }
    return out;
}

/* ---- weighted softmax cross-entropy, reduction "mean" ---- */

/* iarg: rows, classes, ignore_index; saved: target, weight (or NULL) */
static void xent_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *logits = n->in[0], *target = n->saved[0], *weight = n->saved[1];
    ctx->be->softmax_xent_backward(ctx_grad_if(ctx, logits), n->out->grad, tensor_f32(logits),
                                   (const int64_t *)target->data, weight ? tensor_f32(weight) : NULL, n->iarg[0],
                                   n->iarg[1], n->iarg[2]);
}

tensor_t *op_cross_entropy(ctx_t *ctx, tensor_t *logits, tensor_t *target, tensor_t *weight, int64_t ignore_index) {
    op_check_f32(ctx, "cross_entropy", logits);
    char sl[96], st[96], sw[96];
    if (!target) fatal("cross_entropy: missing target");
    if (target->dtype != DTYPE_I64 || target->device != ctx->device)
        fatal("cross_entropy: target is %s on %s, want I64 on %s", dtype_name(target->dtype),
              device_name(target->device), device_name(ctx->device));
    if (logits->ndim != 2 || target->ndim != 1 || target->shape[0] != logits->shape[0])
        fatal("cross_entropy: logits %s, target %s (want [rows, classes] and [rows])",
              tensor_shape_str(logits, sl, 96), tensor_shape_str(target, st, 96));
    int64_t rows = logits->shape[0], classes = logits->shape[1];
    if (weight) {
        op_check_f32(ctx, "cross_entropy", weight);
        if (weight->ndim != 1 || weight->shape[0] != classes)
            fatal("cross_entropy: weight %s for logits %s (want [%lld])", tensor_shape_str(weight, sw, 96),
                  tensor_shape_str(logits, sl, 96), (long long)classes);
    }
    /* A target outside [0, classes) would make the kernels read out of
     * bounds; torch raises there too. The check reads the (small) target back
     * to the host once per call. */
    int64_t *host = malloc((size_t)(rows ? rows : 1) * sizeof(int64_t));
    if (!host) fatal("cross_entropy: out of memory for %lld targets", (long long)rows);
    tensor_to_host(target, host);
    for (int64_t i = 0; i < rows; i++) {
        if (host[i] != ignore_index && (host[i] < 0 || host[i] >= classes)) {
            long long bad = (long long)host[i];
            free(host);
            fatal("cross_entropy: target %lld of row %lld is outside [0, %lld) and is not ignore_index %lld", bad,
                  (long long)i, (long long)classes, (long long)ignore_index);
        }
    }
    free(host);
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, 0, NULL);
    ctx->be->softmax_xent_forward(tensor_f32(out), tensor_f32(logits), (const int64_t *)target->data,
                                  weight ? tensor_f32(weight) : NULL, rows, classes, ignore_index);
    tape_node_t *n = ctx_record(ctx, "cross_entropy", xent_backward, out, 1, &logits);
    if (n) {
        n->saved[0] = target;
        n->saved[1] = weight;
        n->iarg[0] = rows;
        n->iarg[1] = classes;
        n->iarg[2] = ignore_index;
    }
    return out;
}
