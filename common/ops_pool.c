/* ops_pool.c - 2-D max pooling (torch.nn.functional.max_pool2d, floor mode,
 * no dilation), forward and backward.
 *
 * The backward does not keep the forward's argmax: the kernel recomputes each
 * window's winner from the saved input with the same rule, which costs a
 * second pass over the windows but no index tensor per pooled activation. */
#include "error.h"
#include "ops.h"

/* iarg: the pool2d_t fields in order */
static pool2d_t pool_of(const tape_node_t *n) {
    pool2d_t p = {n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3], n->iarg[4], n->iarg[5],
                  n->iarg[6], n->iarg[7], n->iarg[8], n->iarg[9], n->iarg[10]};
    return p;
}

static void maxpool2d_backward(ctx_t *ctx, tape_node_t *n) {
    pool2d_t p = pool_of(n);
    ctx->be->maxpool2d_backward(ctx_grad(ctx, n->in[0]), n->out->grad, tensor_f32(n->in[0]), &p);
}

tensor_t *op_maxpool2d(ctx_t *ctx, tensor_t *x, int kh, int kw, int sh, int sw, int ph, int pw) {
    op_check_f32(ctx, "maxpool2d", x);
    char sx[96];
    if (x->ndim < 2) fatal("maxpool2d: input %s has fewer than 2 dims", tensor_shape_str(x, sx, 96));
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 || 2 * ph > kh || 2 * pw > kw)
        fatal("maxpool2d: kernel %dx%d, stride %dx%d, padding %dx%d (padding may be at most half the kernel)",
              kh, kw, sh, sw, ph, pw);
    pool2d_t p;
    p.h = x->shape[x->ndim - 2];
    p.w = x->shape[x->ndim - 1];
    p.planes = p.h * p.w > 0 ? x->numel / (p.h * p.w) : 0;
    p.kh = kh, p.kw = kw, p.sh = sh, p.sw = sw, p.ph = ph, p.pw = pw;
    if (p.h + 2 * p.ph < p.kh || p.w + 2 * p.pw < p.kw)
        fatal("maxpool2d: kernel %dx%d larger than the padded input %s", kh, kw, tensor_shape_str(x, sx, 96));
    p.oh = (p.h + 2 * p.ph - p.kh) / p.sh + 1;
    p.ow = (p.w + 2 * p.pw - p.kw) / p.sw + 1;
    int64_t shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim - 2; i++) shape[i] = x->shape[i];
    shape[x->ndim - 2] = p.oh;
    shape[x->ndim - 1] = p.ow;
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, x->ndim, shape);
    if (out->numel > 0) ctx->be->maxpool2d_forward(tensor_f32(out), tensor_f32(x), &p);
    tape_node_t *n = ctx_record(ctx, "maxpool2d", maxpool2d_backward, out, 1, &x);
    if (n) {
        int64_t fields[11] = {p.planes, p.h, p.w, p.oh, p.ow, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw};
        for (int i = 0; i < 11; i++) n->iarg[i] = fields[i];
    }
    return out;
}
