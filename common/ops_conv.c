/* ops_conv.c - 2-D convolution (NCHW, torch.nn.Conv2d layout) as im2col + GEMM.
 *
 * Per image, the input is unfolded into columns col [c*kh*kw, oh*ow] and the
 * output is W [o, c*kh*kw] @ col. The column buffer is scratch from the step
 * arena, one per call, reused across the images of the batch. */
#include "error.h"
#include "ops.h"

typedef struct {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow;
} conv_dims_t;

/* A 1x1 kernel with stride 1 and no padding reads the image as it is: the
 * columns are the image itself, so the unfold is skipped. */
static int conv_is_pointwise(const conv_dims_t *d) {
    return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0;
}

/* The columns of image i: x itself for a pointwise conv, else unfolded into col. */
static const float *conv_columns(ctx_t *ctx, const conv_dims_t *d, const float *x, int64_t i, float *col) {
    const float *img = x + i * d->c * d->h * d->w;
    if (conv_is_pointwise(d)) return img;
    ctx->be->im2col(col, img, d->c, d->h, d->w, d->kh, d->kw, d->sh, d->sw, d->ph, d->pw, d->oh, d->ow);
    return col;
}

static conv_dims_t conv_dims_of(const tape_node_t *n) {
    const tensor_t *x = n->in[0], *w = n->in[1];
    conv_dims_t d = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3],
                     n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3], n->out->shape[2], n->out->shape[3]};
    return d;
}

/* iarg: stride_h, stride_w, pad_h, pad_w */
static void conv2d_backward(ctx_t *ctx, tape_node_t *node) {
    tensor_t *x = node->in[0], *w = node->in[1], *b = node->in[2];
    conv_dims_t d = conv_dims_of(node);
    int64_t ckk = d.c * d.kh * d.kw, ohw = d.oh * d.ow;
    const float *dy = node->out->grad;
    float *dx = ctx_grad_if(ctx, x), *dw = ctx_grad_if(ctx, w), *db = ctx_grad_if(ctx, b);
    int pointwise = conv_is_pointwise(&d);
    /* col for dW (unfolded x), dcol for dx (folded back by col2im); a pointwise
     * conv needs neither: x is its own columns and dx takes the GEMM directly */
    float *col = (dw && !pointwise) ? arena_alloc(ctx->arena, (size_t)(ckk * ohw) * sizeof(float)) : NULL;
    float *dcol = (dx && !pointwise) ? arena_alloc(ctx->arena, (size_t)(ckk * ohw) * sizeof(float)) : NULL;
    for (int64_t i = 0; i < d.n; i++) {
        const float *dyi = dy + i * d.o * ohw;
        if (db) ctx->be->reduce_sum(db, dyi, d.o, ohw, 1, 1); /* db[o] += sum over pixels */
        if (dw) { /* dW [o, ckk] += dy_i [o, ohw] @ col^T */
            const float *cols = conv_columns(ctx, &d, tensor_f32(x), i, col);
            ctx->be->gemm(0, 1, d.o, ckk, ohw, 1.0f, dyi, ohw, cols, ohw, 1.0f, dw, ckk);
        }
        if (dx) { /* dcol [ckk, ohw] = W^T @ dy_i, then folded back onto the image */
            float *dxi = dx + i * d.c * d.h * d.w;
            if (pointwise) {
                ctx->be->gemm(1, 0, ckk, ohw, d.o, 1.0f, tensor_f32(w), ckk, dyi, ohw, 1.0f, dxi, ohw);
            } else {
                ctx->be->gemm(1, 0, ckk, ohw, d.o, 1.0f, tensor_f32(w), ckk, dyi, ohw, 0.0f, dcol, ohw);
                ctx->be->col2im(dxi, dcol, d.c, d.h, d.w, d.kh, d.kw, d.sh, d.sw, d.ph, d.pw, d.oh, d.ow);
            }
        }
    }
}

tensor_t *op_conv2d(ctx_t *ctx, tensor_t *x, tensor_t *w, tensor_t *b, int stride_h, int stride_w, int pad_h,
                    int pad_w) {
    op_check_f32(ctx, "conv2d", x);
    op_check_f32(ctx, "conv2d", w);
    char sx[96], sw[96];
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1])
        fatal("conv2d: input %s, weight %s (want [n, c, h, w] and [o, c, kh, kw])", tensor_shape_str(x, sx, 96),
              tensor_shape_str(w, sw, 96));
    if (stride_h < 1 || stride_w < 1 || pad_h < 0 || pad_w < 0)
        fatal("conv2d: stride (%d, %d), padding (%d, %d)", stride_h, stride_w, pad_h, pad_w);
    conv_dims_t d = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3],
                     stride_h, stride_w, pad_h, pad_w, 0, 0};
    if (d.h + 2 * d.ph < d.kh || d.w + 2 * d.pw < d.kw)
        fatal("conv2d: kernel %lldx%lld larger than the padded input %s (padding %d, %d)", (long long)d.kh,
              (long long)d.kw, tensor_shape_str(x, sx, 96), pad_h, pad_w);
    d.oh = (d.h + 2 * d.ph - d.kh) / d.sh + 1;
    d.ow = (d.w + 2 * d.pw - d.kw) / d.sw + 1;
    if (b) {
        op_check_f32(ctx, "conv2d", b);
        if (b->numel != d.o)
            fatal("conv2d: bias has %lld elements, weight %s has %lld outputs", (long long)b->numel,
                  tensor_shape_str(w, sw, 96), (long long)d.o);
    }
    int64_t shape[4] = {d.n, d.o, d.oh, d.ow};
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, 4, shape);
    int64_t ckk = d.c * d.kh * d.kw, ohw = d.oh * d.ow;
    float *col = conv_is_pointwise(&d) ? NULL : arena_alloc(ctx->arena, (size_t)(ckk * ohw) * sizeof(float));
    float *y = tensor_f32(out);
    for (int64_t i = 0; i < d.n; i++) {
        float *yi = y + i * d.o * ohw;
        /* y_i [o, ohw] = W [o, ckk] @ col [ckk, ohw] (+ b): as in linear, the bias
         * goes into C first (b[o] over the pixels) and GEMM adds with beta = 1 */
        if (b) {
            ctx->be->memset_zero(yi, (size_t)(d.o * ohw) * sizeof(float));
            ctx->be->broadcast_add(yi, tensor_f32(b), d.o, ohw, 1, 1.0f);
        }
        const float *cols = conv_columns(ctx, &d, tensor_f32(x), i, col);
        ctx->be->gemm(0, 0, d.o, ohw, ckk, 1.0f, tensor_f32(w), ckk, cols, ohw, b ? 1.0f : 0.0f, yi, ohw);
    }
    tensor_t *in[3] = {x, w, b};
    tape_node_t *node = ctx_record(ctx, "conv2d", conv2d_backward, out, 3, in);
    if (node) {
        node->iarg[0] = stride_h;
        node->iarg[1] = stride_w;
        node->iarg[2] = pad_h;
        node->iarg[3] = pad_w;
    }
    return out;
}
