/* ops_layout.c - reshape, permute, slice, concat, roll and embedding. */
#include <string.h>

#include "error.h"
#include "ops.h"

/* ---- reshape: a copy with new dims (data are contiguous, so the order is kept) ---- */

static void reshape_backward(ctx_t *ctx, tape_node_t *n) {
    ctx->be->axpy(ctx_grad(ctx, n->in[0]), n->out->grad, 1.0f, n->out->numel);
}

tensor_t *op_reshape(ctx_t *ctx, tensor_t *x, int ndim, const int64_t *shape) {
    op_check_f32(ctx, "reshape", x);
    int64_t s[TENSOR_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) fatal("reshape: %d dims", ndim);
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0) fatal("reshape: more than one -1");
            infer = i;
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) s[infer] = known ? x->numel / known : 0;
    char a[96], b[96];
    if (shape_numel(ndim, s) != x->numel)
        fatal("reshape: %s to %s", tensor_shape_str(x, a, 96), shape_str(ndim, s, b, 96));
    /* A fresh header over the same data would alias the gradient too; a copy
     * keeps every tensor's grad its own at the price of one memcpy. */
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, ndim, s);
    ctx->be->copy(out->data, x->data, (size_t)x->numel * sizeof(float));
    ctx_record(ctx, "reshape", reshape_backward, out, 1, &x);
    return out;
}
