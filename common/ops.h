/* ops.h - differentiable ops over f32 tensors, with PyTorch's semantics.
 *
 * Each op allocates its output from ctx->arena on ctx's device, runs the
 * kernel of ctx's backend, and records its backward on the tape (tape.h).
 * Forward and backward of an op sit side by side in one ops_*.c file:
 *   ops_elementwise.c  add/sub/mul/div (broadcasting), scale, affine, unary
 *   ops_reduce.c       sum, mean
 *   ops_linear.c       matmul, linear
 *   ops_norm.c         softmax, layer_norm, group_norm
 *   ops_attention.c    scaled dot-product attention, cosine similarity
 *   ops_conv.c         conv2d
 *   ops_resample.c     bilinear interpolation, grid sampling
 *   ops_layout.c       reshape, permute, slice, concat, roll, embedding
 *   ops_loss.c         BCE with logits, dice, weighted softmax cross-entropy
 *   ops_pool.c         2-D max pooling
 * Shape errors are programmer errors: they go to fatal() with both shapes.
 * Negative dims count from the end, as in PyTorch. */
#ifndef STEPSTONE_OPS_H
#define STEPSTONE_OPS_H

#include "tape.h"

/* ---- elementwise (numpy/torch broadcasting) ---- */
tensor_t *op_add(ctx_t *ctx, tensor_t *a, tensor_t *b);
tensor_t *op_sub(ctx_t *ctx, tensor_t *a, tensor_t *b);
tensor_t *op_mul(ctx_t *ctx, tensor_t *a, tensor_t *b);
tensor_t *op_div(ctx_t *ctx, tensor_t *a, tensor_t *b);
tensor_t *op_scale(ctx_t *ctx, tensor_t *x, float alpha);               /* alpha * x */
tensor_t *op_affine(ctx_t *ctx, tensor_t *x, float alpha, float beta);  /* alpha * x + beta */
tensor_t *op_relu(ctx_t *ctx, tensor_t *x);
tensor_t *op_gelu(ctx_t *ctx, tensor_t *x); /* erf form, as torch.nn.GELU() */
tensor_t *op_sigmoid(ctx_t *ctx, tensor_t *x);
tensor_t *op_exp(ctx_t *ctx, tensor_t *x);
tensor_t *op_log(ctx_t *ctx, tensor_t *x);
tensor_t *op_sqrt(ctx_t *ctx, tensor_t *x);
tensor_t *op_tanh(ctx_t *ctx, tensor_t *x);

/* ---- reductions ---- */
tensor_t *op_sum(ctx_t *ctx, tensor_t *x, int dim, int keepdim);
tensor_t *op_mean(ctx_t *ctx, tensor_t *x, int dim, int keepdim);
tensor_t *op_sum_all(ctx_t *ctx, tensor_t *x);  /* 0-dim result */
tensor_t *op_mean_all(ctx_t *ctx, tensor_t *x); /* 0-dim result */

/* ---- matrix products ---- */
/* a [..., m, k] @ b [..., k, n]; batch dims equal, or b is 2-D and shared */
tensor_t *op_matmul(ctx_t *ctx, tensor_t *a, tensor_t *b);
/* x [..., in] @ w[out, in]^T + b[out]; b may be NULL (torch.nn.Linear layout) */
tensor_t *op_linear(ctx_t *ctx, tensor_t *x, tensor_t *w, tensor_t *b);

/* ---- normalization ---- */
tensor_t *op_softmax(ctx_t *ctx, tensor_t *x, int dim);
/* over the last dim; w, b [dim] or NULL */
tensor_t *op_layer_norm(ctx_t *ctx, tensor_t *x, tensor_t *w, tensor_t *b, float eps);
/* x [n, c, ...]; w, b [c] or NULL */
tensor_t *op_group_norm(ctx_t *ctx, tensor_t *x, int groups, tensor_t *w, tensor_t *b, float eps);

/* ---- attention ---- */
/* softmax(q k^T * scale + mask) v with q [b, h, lq, d], k [b, h, lk, d],
 * v [b, h, lk, dv] -> [b, h, lq, dv]. mask: NULL, or [mb, mh, lq, lk] with mb in
 * {1, b}, mh in {1, h}: kind BLOCK takes a U8/BOOL mask, nonzero = may not attend
 * (nn.MultiheadAttention's bool attn_mask); kind ADD takes an F32 mask added to
 * the scores. scale <= 0 means 1/sqrt(d). A row with every key blocked gives NaN,
 * as in PyTorch. */
tensor_t *op_attention(ctx_t *ctx, tensor_t *q, tensor_t *k, tensor_t *v, tensor_t *mask,
                       attn_mask_kind_t kind, float scale);
/* torch.nn.functional.cosine_similarity along the last dim, leading dims broadcast */
tensor_t *op_cosine_similarity(ctx_t *ctx, tensor_t *a, tensor_t *b, float eps);

/* ---- convolution and resampling (NCHW) ---- */
/* x [n, c, h, w], w [o, c, kh, kw], b [o] or NULL */
tensor_t *op_conv2d(ctx_t *ctx, tensor_t *x, tensor_t *w, tensor_t *b, int stride_h, int stride_w,
                    int pad_h, int pad_w);
/* F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False); x [..., h, w] */
tensor_t *op_interpolate_bilinear(ctx_t *ctx, tensor_t *x, int64_t oh, int64_t ow);
/* F.grid_sample(x, grid, "bilinear", "zeros", align_corners=False); x [n,c,h,w], grid [n,ho,wo,2] */
tensor_t *op_grid_sample(ctx_t *ctx, tensor_t *x, tensor_t *grid);

/* torch.nn.functional.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw)) on x [..., h, w]
 * (floor mode, no dilation); padding at most half the kernel, as torch requires */
tensor_t *op_maxpool2d(ctx_t *ctx, tensor_t *x, int kh, int kw, int sh, int sw, int ph, int pw);

/* ---- layout and indexing ---- */
tensor_t *op_reshape(ctx_t *ctx, tensor_t *x, int ndim, const int64_t *shape); /* one dim may be -1 */
tensor_t *op_permute(ctx_t *ctx, tensor_t *x, const int *perm);
tensor_t *op_slice(ctx_t *ctx, tensor_t *x, int dim, int64_t start, int64_t end);
tensor_t *op_concat(ctx_t *ctx, tensor_t *const *xs, int n, int dim);
tensor_t *op_roll(ctx_t *ctx, tensor_t *x, int n, const int64_t *shifts, const int *dims);
/* weight [vocab, dim] rows picked by idx (I64, any shape) -> [idx..., dim];
 * an index out of range is fatal */
tensor_t *op_embedding(ctx_t *ctx, tensor_t *weight, tensor_t *idx);

/* ---- losses ---- */
/* elementwise BCE with logits, reduction none; t is a constant target */
tensor_t *op_bce_with_logits(ctx_t *ctx, tensor_t *x, tensor_t *t);
/* Mask2Former's dice loss per row: x, t [rows, n] -> [rows] */
tensor_t *op_dice_loss(ctx_t *ctx, tensor_t *x, tensor_t *t);
/* torch.nn.functional.cross_entropy(logits [rows, classes], target I64 [rows],
 * weight [classes] or NULL, ignore_index, reduction="mean") -> 0-dim */
tensor_t *op_cross_entropy(ctx_t *ctx, tensor_t *logits, tensor_t *target, tensor_t *weight,
                           int64_t ignore_index);

/* ---- helpers for op implementations ---- */
/* Resolves a possibly negative dim against ndim; fatal when out of range. */
int op_dim(const char *op, int dim, int ndim);
/* Broadcast description of a and b (torch rules); fatal when incompatible. */
void op_broadcast(const char *op, const tensor_t *a, const tensor_t *b, bcast_t *bc);
/* fatal() unless t is F32 on ctx's device. */
void op_check_f32(ctx_t *ctx, const char *op, const tensor_t *t);

#endif
