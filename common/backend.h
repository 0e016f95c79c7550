/* backend.h - the one op interface that every compute backend implements.
 *
 * A backend is a table of kernels over raw f32 device pointers. The ops layer
 * (ops.h) does shapes, broadcasting rules and the tape; it never touches data
 * itself, so the same op code runs on the CPU (backend_cpu.c, OpenBLAS) and on
 * CUDA (backend_cuda.cu, cuBLAS). tests/test_ops.c runs every op case on every
 * backend that is present and compares each with the CPU.
 *
 * Conventions for every kernel:
 * - all pointers are on the backend's device; tensors are contiguous row-major;
 * - a kernel named *_backward ACCUMULATES into its gradient outputs (dx += ...),
 *   and a gradient output pointer may be NULL when that gradient is not wanted;
 * - sizes are int64_t element counts; nothing here allocates except alloc. */
#ifndef STEPSTONE_BACKEND_H
#define STEPSTONE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define BCAST_MAX_DIMS 6

/* Broadcasting of two operands a, b to an output of `ndim` dims. Strides are in
 * elements and are 0 along a dimension the operand broadcasts over. */
typedef struct {
    int ndim;
    int64_t shape[BCAST_MAX_DIMS];    /* output shape */
    int64_t a_stride[BCAST_MAX_DIMS]; /* a's stride per output dim (0 = broadcast) */
    int64_t b_stride[BCAST_MAX_DIMS];
    int64_t numel;                    /* product of shape */
} bcast_t;

typedef enum { BINARY_ADD = 0, BINARY_SUB = 1, BINARY_MUL = 2, BINARY_DIV = 3 } binary_op_t;
typedef enum { UNARY_RELU = 0, UNARY_GELU = 1, UNARY_SIGMOID = 2, UNARY_EXP = 3, UNARY_LOG = 4,
               UNARY_SQRT = 5, UNARY_TANH = 6 } unary_op_t;
typedef enum { ATTN_MASK_NONE = 0, ATTN_MASK_BLOCK = 1, ATTN_MASK_ADD = 2 } attn_mask_kind_t;

/* A general strided view for permute: out[i] = in[sum_d idx_d(i) * in_stride[d]]
 * where idx(i) walks out_shape in row-major order. */
typedef struct {
    int ndim;
    int64_t out_shape[BCAST_MAX_DIMS];
    int64_t in_stride[BCAST_MAX_DIMS];
    int64_t numel;
} strided_t;

/* A 2-D pooling window over `planes` planes of h x w (one channel of one image
 * each), as torch.nn.MaxPool2d: kernel kh x kw, stride sh, sw, padding ph, pw
 * (padded cells never win), floor mode: oh = (h + 2 ph - kh) / sh + 1. */
typedef struct {
    int64_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} pool2d_t;

/* One AdamW step's scalars, formed in double on the host and rounded to f32
 * once, so that they equal what torch computes from Python floats:
 * decay = 1 - lr*wd, step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t). */
typedef struct {
    float decay, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps;
} adamw_scalars_t;

typedef struct backend {
    const char *name; /* "cpu" or "cuda" */

    /* ---- memory ---- */
    void *(*alloc)(size_t bytes);            /* NULL on failure */
    void (*free)(void *p);
    void (*memset_zero)(void *p, size_t bytes);
    void (*copy_from_host)(void *dst, const void *host_src, size_t bytes);
    void (*copy_to_host)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* device to device */
    void (*synchronize)(void);

    /* ---- dtype conversion (f32 <-> f16/bf16 storage) ---- */
    void (*convert)(void *dst, dtype_t dst_dtype, const void *src, dtype_t src_dtype, int64_t n);

    /* ---- elementwise ---- */
    void (*fill)(float *x, float value, int64_t n);
    /* y += alpha * x */
    void (*axpy)(float *y, const float *x, float alpha, int64_t n);
    /* out = alpha * in + beta (affine map; scale is beta = 0) */
    void (*affine)(float *out, const float *in, float alpha, float beta, int64_t n);
    void (*binary_forward)(binary_op_t op, float *out, const float *a, const float *b, const bcast_t *bc);
    /* da += reduce_broadcast(dout * d(op)/da), likewise db; a, b are the forward inputs */
    void (*binary_backward)(binary_op_t op, float *da, float *db, const float *dout,
                            const float *a, const float *b, const bcast_t *bc);
    void (*unary_forward)(unary_op_t op, float *out, const float *in, int64_t n);
    /* din += dout * f'(in); `out` is the forward output (used by sigmoid, exp, tanh, sqrt) */
    void (*unary_backward)(unary_op_t op, float *din, const float *in, const float *out,
                           const float *dout, int64_t n);

    /* ---- reductions over the middle axis of [outer, len, inner] ---- */
    /* out[o, i] (= or +=) sum_k in[o, k, i]; accumulate selects += */
    void (*reduce_sum)(float *out, const float *in, int64_t outer, int64_t len, int64_t inner,
                       int accumulate);
    /* dst[o, k, i] += alpha * src[o, i]  (the backward of reduce_sum; also adds a bias) */
    void (*broadcast_add)(float *dst, const float *src, int64_t outer, int64_t len, int64_t inner,
                          float alpha);

    /* ---- matrix products (row-major; C = alpha * op(A) @ op(B) + beta * C) ---- */
    void (*gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);
    void (*gemm_batched)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float *a, int64_t lda, int64_t stride_a, const float *b, int64_t ldb,
                         int64_t stride_b, float beta, float *c, int64_t ldc, int64_t stride_c,
                         int64_t batch);

    /* ---- softmax over the middle axis of [outer, len, inner] ---- */
    void (*softmax_forward)(float *out, const float *in, int64_t outer, int64_t len, int64_t inner);
    void (*softmax_backward)(float *din, const float *out, const float *dout, int64_t outer,
                             int64_t len, int64_t inner);

    /* ---- normalization ---- */
    /* rows of `dim` elements; mean/rstd [rows] are saved for backward; w, b may be NULL */
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *in, const float *w,
                              const float *b, int64_t rows, int64_t dim, float eps);
    void (*layernorm_backward)(float *din, float *dw, float *db, const float *dout, const float *in,
                               const float *w, const float *mean, const float *rstd, int64_t rows,
                               int64_t dim);
    /* in [n, c, hw]; groups g divide c; mean/rstd [n, g]; w, b [c] or NULL */
    void (*groupnorm_forward)(float *out, float *mean, float *rstd, const float *in, const float *w,
                              const float *b, int64_t n, int64_t c, int64_t hw, int64_t groups,
                              float eps);
    void (*groupnorm_backward)(float *din, float *dw, float *db, const float *dout, const float *in,
                               const float *w, const float *mean, const float *rstd, int64_t n,
                               int64_t c, int64_t hw, int64_t groups);

    /* ---- attention mask on scores [batch, heads, lq, lk] ----
     * mask is [mask_batch, mask_heads, lq, lk] with mask_batch in {1, batch} and
     * mask_heads in {1, heads}. BLOCK: mask is uint8, nonzero = may not attend
     * (score -> -inf, as torch.nn.MultiheadAttention's bool attn_mask). ADD: mask
     * is f32 and is added to the scores. */
    void (*attn_mask_apply)(float *scores, const void *mask, attn_mask_kind_t kind, int64_t batch,
                            int64_t heads, int64_t lq, int64_t lk, int64_t mask_batch,
                            int64_t mask_heads);

    /* ---- convolution helpers (NCHW, one image at a time) ---- */
    /* col [c*kh*kw, oh*ow] from in [c, h, w] */
    void (*im2col)(float *col, const float *in, int64_t c, int64_t h, int64_t w, int64_t kh,
                   int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow);
    /* din [c, h, w] += col2im(col) */
    void (*col2im)(float *din, const float *col, int64_t c, int64_t h, int64_t w, int64_t kh,
                   int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow);

    /* ---- resampling ---- */
    /* bilinear, align_corners=False; in [nc, h, w] -> out [nc, oh, ow]; scale_h/w are the
     * source-per-destination scales torch uses (in/out when a size is given) */
    void (*upsample_bilinear_forward)(float *out, const float *in, int64_t nc, int64_t h, int64_t w,
                                      int64_t oh, int64_t ow, float scale_h, float scale_w);
    void (*upsample_bilinear_backward)(float *din, const float *dout, int64_t nc, int64_t h,
                                       int64_t w, int64_t oh, int64_t ow, float scale_h,
                                       float scale_w);
    /* grid_sample bilinear, zeros padding, align_corners=False:
     * in [n, c, h, w], grid [n, ho, wo, 2] (x, y in [-1, 1]) -> out [n, c, ho, wo] */
    void (*grid_sample_forward)(float *out, const float *in, const float *grid, int64_t n, int64_t c,
                                int64_t h, int64_t w, int64_t ho, int64_t wo);
    void (*grid_sample_backward)(float *din, float *dgrid, const float *dout, const float *in,
                                 const float *grid, int64_t n, int64_t c, int64_t h, int64_t w,
                                 int64_t ho, int64_t wo);

    /* ---- indexing and layout ---- */
    /* out[i, :] = weight[idx[i], :]; idx is int64 on the device; an index outside
     * [0, vocab) writes zeros (the ops layer validates indices before calling) */
    void (*embedding_forward)(float *out, const float *weight, const int64_t *idx, int64_t n,
                              int64_t vocab, int64_t dim);
    void (*embedding_backward)(float *dweight, const float *dout, const int64_t *idx, int64_t n,
                               int64_t vocab, int64_t dim);
    /* Copies `len` rows of the middle axis: dst[o, dst_start + k, i] (= or +=)
     * src[o, src_start + k, i] for k < len, with dst [outer, dst_len, inner] and src
     * [outer, src_len, inner]. Slice, concat and their backwards all use this. */
    void (*slice_copy)(float *dst, const float *src, int64_t outer, int64_t inner, int64_t dst_len,
                       int64_t dst_start, int64_t src_len, int64_t src_start, int64_t len,
                       int accumulate);
    /* out (= or +=) the strided gather described by st (permute and its backward) */
    void (*strided_copy)(float *out, const float *in, const strided_t *st, int accumulate);
    /* out[idx] (= or +=) in[(idx - shift) mod shape] per dim (torch.roll) */
    void (*roll)(float *out, const float *in, int ndim, const int64_t *shape, const int64_t *shifts,
                 int accumulate);

    /* ---- cosine similarity along the last axis, leading dims broadcast ----
     * a [.., d], b [.., d], bc describes the leading dims (strides in rows of d);
     * out[i] = sum(a*b) / sqrt(max(|a|^2 * |b|^2, eps^2)) (torch 1.13's formula) */
    void (*cosine_forward)(float *out, const float *a, const float *b, const bcast_t *bc, int64_t d,
                           float eps);
    void (*cosine_backward)(float *da, float *db, const float *dout, const float *a, const float *b,
                            const bcast_t *bc, int64_t d, float eps);

    /* ---- losses ---- */
    /* elementwise binary cross-entropy with logits: out = max(x,0) - x*t + log(1 + exp(-|x|)) */
    void (*bce_logits_forward)(float *out, const float *x, const float *t, int64_t n);
    void (*bce_logits_backward)(float *dx, const float *dout, const float *x, const float *t,
                                int64_t n);
    /* Mask2Former dice per row: 1 - (2 sum(p t) + 1) / (sum p + sum t + 1), p = sigmoid(x);
     * x, t [rows, n] -> out [rows] */
    void (*dice_forward)(float *out, const float *x, const float *t, int64_t rows, int64_t n);
    void (*dice_backward)(float *dx, const float *dout, const float *x, const float *t, int64_t rows,
                          int64_t n);
    /* weighted softmax cross-entropy, torch's reduction='mean':
     * out[0] = sum_i w[y_i] * nll_i / sum_i w[y_i] over rows with y_i != ignore_index.
     * logits [rows, classes]; target int64 [rows]; weight [classes] or NULL (all 1) */
    void (*softmax_xent_forward)(float *out, const float *logits, const int64_t *target,
                                 const float *weight, int64_t rows, int64_t classes,
                                 int64_t ignore_index);
    /* dlogits += dout[0] * w[y]/W * (softmax - onehot(y)) */
    void (*softmax_xent_backward)(float *dlogits, const float *dout, const float *logits,
                                  const int64_t *target, const float *weight, int64_t rows,
                                  int64_t classes, int64_t ignore_index);

    /* ---- optimizer ---- */
    /* torch.optim.AdamW: p *= decay; m = lerp(m, g, one_minus_beta1);
     * v = beta2 v + (one_minus_beta2 g) g; p += (-step_size m) / (sqrt(v) / bc2_sqrt + eps).
     * The scalars come formed in double (adamw_scalars_t), as Python forms them. */
    void (*adamw_step)(float *p, const float *g, float *m, float *v, int64_t n, const adamw_scalars_t *s);

    /* ---- pooling (pool2d_t above) ---- */
    /* out [planes, oh, ow] = max over each window of in [planes, h, w]; the first
     * maximum in row-major window order wins ties and a NaN wins over any number
     * (PyTorch's rule), so forward and backward agree on the winner */
    void (*maxpool2d_forward)(float *out, const float *in, const pool2d_t *p);
    /* din += dout sent to each window's winner, recomputed from in */
    void (*maxpool2d_backward)(float *din, const float *dout, const float *in, const pool2d_t *p);
} backend_t;

typedef enum { DEVICE_CPU = 0, DEVICE_CUDA = 1 } device_t;

/* The backend of a device; NULL for CUDA when not built in or no GPU is present. */
const backend_t *backend_get(device_t device);
const char *device_name(device_t device);
/* Parses "cpu" or "cuda"; returns 0 on success. */
int device_parse(const char *s, device_t *out);

/* The CPU backend (backend_cpu.c); never NULL. */
const backend_t *backend_cpu_get(void);
/* Defined by the CUDA backend (CUDA=1) or cuda_stub.c (CUDA=0): NULL when no
 * usable GPU is present. */
const backend_t *backend_cuda_get(void);
/* "built with CUDA" (1) or not (0), whatever the machine has. */
int backend_cuda_built(void);

#endif
