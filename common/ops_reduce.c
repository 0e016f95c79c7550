/* ops_reduce.c - sum and mean over one dim or over everything. */
#include "error.h"
#include "ops.h"

/* iarg: outer, len, inner; farg[0]: the factor (1 for sum, 1/len for mean) */
static void reduce_backward(ctx_t *ctx, tape_node_t *n) {
    ctx->be->broadcast_add(ctx_grad(ctx, n->in[0]), n->out->grad, n->iarg[0], n->iarg[1], n->iarg[2], n->farg[0]);
}

static tensor_t *reduce(ctx_t *ctx, const char *name, tensor_t *x, int dim, int keepdim, int mean) {
    op_check_f32(ctx, name, x);
    int d = op_dim(name, dim, x->ndim);
    int64_t outer = 1, inner = 1, len = x->shape[d];
    for (int i = 0; i < d; i++) outer *= x->shape[i];
    for (int i = d + 1; i < x->ndim; i++) inner *= x->shape[i];
    int64_t shape[TENSOR_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != d) shape[nd++] = x->shape[i];
        else if (keepdim) shape[nd++] = 1;
    }
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, nd, shape);
    ctx->be->reduce_sum(tensor_f32(out), tensor_f32(x), outer, len, inner, 0);
    /* mean of an empty dim is NaN in torch: 0 * (1/0) gives that too */
    float factor = mean ? 1.0f / (float)len : 1.0f;
    if (mean) ctx->be->affine(tensor_f32(out), tensor_f32(out), factor, 0.0f, out->numel);
    tape_node_t *n = ctx_record(ctx, name, reduce_backward, out, 1, &x);
    if (n) {
        n->iarg[0] = outer;
        n->iarg[1] = len;
        n->iarg[2] = inner;
        n->farg[0] = factor;
    }
    return out;
}

tensor_t *op_sum(ctx_t *ctx, tensor_t *x, int dim, int keepdim) { return reduce(ctx, "sum", x, dim, keepdim, 0); }
tensor_t *op_mean(ctx_t *ctx, tensor_t *x, int dim, int keepdim) { return reduce(ctx, "mean", x, dim, keepdim, 1); }

static tensor_t *reduce_all(ctx_t *ctx, const char *name, tensor_t *x, int mean) {
    op_check_f32(ctx, name, x);
    tensor_t *flat = op_reshape(ctx, x, 1, &x->numel);
    tensor_t *r = reduce(ctx, name, flat, 0, 0, mean);
    return r; /* reducing the only dim of a 1-d tensor leaves a 0-dim tensor */
}

tensor_t *op_sum_all(ctx_t *ctx, tensor_t *x) { return reduce_all(ctx, "sum_all", x, 0); }
tensor_t *op_mean_all(ctx_t *ctx, tensor_t *x) { return reduce_all(ctx, "mean_all", x, 1); }
