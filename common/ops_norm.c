/* ops_norm.c - softmax, layer norm and group norm. */
#include "error.h"
#include "ops.h"

/* ---- softmax along any dim, as [outer, len, inner] ---- */

/* iarg: outer, len, inner; the output (the probabilities) is all backward needs */
static void softmax_backward(ctx_t *ctx, tape_node_t *n) {
    ctx->be->softmax_backward(ctx_grad(ctx, n->in[0]), tensor_f32(n->out), n->out->grad, n->iarg[0], n->iarg[1],
                              n->iarg[2]);
}

tensor_t *op_softmax(ctx_t *ctx, tensor_t *x, int dim) {
    op_check_f32(ctx, "softmax", x);
    int d = op_dim("softmax", dim, x->ndim);
    int64_t outer = 1, inner = 1, len = x->shape[d];
    for (int i = 0; i < d; i++) outer *= x->shape[i];
    for (int i = d + 1; i < x->ndim; i++) inner *= x->shape[i];
    tensor_t *out = tensor_new_like(ctx->arena, x);
    ctx->be->softmax_forward(tensor_f32(out), tensor_f32(x), outer, len, inner);
    tape_node_t *n = ctx_record(ctx, "softmax", softmax_backward, out, 1, &x);
    if (n) {
        n->iarg[0] = outer;
        n->iarg[1] = len;
        n->iarg[2] = inner;
    }
    return out;
}

/* fatal() unless p is NULL or an F32 vector of `len` elements */
static void check_affine_param(ctx_t *ctx, const char *op, const char *what, const tensor_t *p,
                               const tensor_t *x, int64_t len) {
    if (!p) return;
    op_check_f32(ctx, op, p);
    char sp[96], sx[96];
    if (p->ndim != 1 || p->shape[0] != len)
        fatal("%s: %s %s does not fit input %s (want [%lld])", op, what, tensor_shape_str(p, sp, 96),
              tensor_shape_str(x, sx, 96), (long long)len);
}

/* ---- layer norm over the last dim (F.layer_norm with normalized_shape = [dim]) ---- */

/* iarg: rows, dim; saved: mean, rstd [rows] */
static void layer_norm_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0], *w = n->in[1], *b = n->in[2];
    ctx->be->layernorm_backward(ctx_grad_if(ctx, x), ctx_grad_if(ctx, w), ctx_grad_if(ctx, b), n->out->grad,
                                tensor_f32(x), w ? tensor_f32(w) : NULL, tensor_f32(n->saved[0]),
                                tensor_f32(n->saved[1]), n->iarg[0], n->iarg[1]);
}

tensor_t *op_layer_norm(ctx_t *ctx, tensor_t *x, tensor_t *w, tensor_t *b, float eps) {
    op_check_f32(ctx, "layer_norm", x);
    char sx[96];
    if (x->ndim < 1) fatal("layer_norm: input %s has no dim to normalize", tensor_shape_str(x, sx, 96));
    int64_t dim = x->shape[x->ndim - 1];
    int64_t rows = dim ? x->numel / dim : 0;
    check_affine_param(ctx, "layer_norm", "weight", w, x, dim);
    check_affine_param(ctx, "layer_norm", "bias", b, x, dim);
    tensor_t *out = tensor_new_like(ctx->arena, x);
    tensor_t *mean = tensor_new(ctx->arena, DTYPE_F32, 1, &rows);
    tensor_t *rstd = tensor_new(ctx->arena, DTYPE_F32, 1, &rows);
    ctx->be->layernorm_forward(tensor_f32(out), tensor_f32(mean), tensor_f32(rstd), tensor_f32(x),
                               w ? tensor_f32(w) : NULL, b ? tensor_f32(b) : NULL, rows, dim, eps);
    tensor_t *in[3] = {x, w, b};
    tape_node_t *n = ctx_record(ctx, "layer_norm", layer_norm_backward, out, 3, in);
    if (n) {
        n->iarg[0] = rows;
        n->iarg[1] = dim;
        n->saved[0] = mean;
        n->saved[1] = rstd;
    }
    return out;
}

/* ---- group norm over x [n, c, ...] (F.group_norm) ---- */

/* iarg: n, c, hw, groups; saved: mean, rstd [n, groups] */
static void group_norm_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0], *w = n->in[1], *b = n->in[2];
    ctx->be->groupnorm_backward(ctx_grad_if(ctx, x), ctx_grad_if(ctx, w), ctx_grad_if(ctx, b), n->out->grad,
                                tensor_f32(x), w ? tensor_f32(w) : NULL, tensor_f32(n->saved[0]),
                                tensor_f32(n->saved[1]), n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3]);
}

tensor_t *op_group_norm(ctx_t *ctx, tensor_t *x, int groups, tensor_t *w, tensor_t *b, float eps) {
    op_check_f32(ctx, "group_norm", x);
    char sx[96];
    if (x->ndim < 2) fatal("group_norm: input %s, want [n, c, ...]", tensor_shape_str(x, sx, 96));
    int64_t nb = x->shape[0], c = x->shape[1];
    if (groups <= 0 || c % groups != 0)
        fatal("group_norm: %d groups do not divide the %lld channels of %s", groups, (long long)c,
              tensor_shape_str(x, sx, 96));
    int64_t hw = 1;
    for (int i = 2; i < x->ndim; i++) hw *= x->shape[i];
    check_affine_param(ctx, "group_norm", "weight", w, x, c);
    check_affine_param(ctx, "group_norm", "bias", b, x, c);
    tensor_t *out = tensor_new_like(ctx->arena, x);
    int64_t stat_shape[2] = {nb, groups};
    tensor_t *mean = tensor_new(ctx->arena, DTYPE_F32, 2, stat_shape);
    tensor_t *rstd = tensor_new(ctx->arena, DTYPE_F32, 2, stat_shape);
    ctx->be->groupnorm_forward(tensor_f32(out), tensor_f32(mean), tensor_f32(rstd), tensor_f32(x),
                               w ? tensor_f32(w) : NULL, b ? tensor_f32(b) : NULL, nb, c, hw, groups, eps);
    tensor_t *in[3] = {x, w, b};
    tape_node_t *n = ctx_record(ctx, "group_norm", group_norm_backward, out, 3, in);
    if (n) {
        n->iarg[0] = nb;
        n->iarg[1] = c;
        n->iarg[2] = hw;
        n->iarg[3] = groups;
        n->saved[0] = mean;
        n->saved[1] = rstd;
    }
    return out;
}
