/* cuda_attention.cu - the attention mask applied to scores, and cosine
 * similarity along the last axis with broadcast leading dims (torch 1.13's
 * formula: sum(a*b) / sqrt(max(|a|^2 |b|^2, eps^2))), with the row sums
 * in double as cpu_attention.c. */
#include <math.h>

#include "cuda_kernels.h"

/* ---- attention mask on scores [batch, heads, lq, lk] ---- */

/* One thread per score; the mask's batch and head index collapse to 0 when it
 * has a single one of them. */
__global__ static void attn_mask_kernel(float *scores, const void *mask, attn_mask_kind_t kind, int64_t batch,
                                        int64_t heads, int64_t lq, int64_t lk, int64_t mask_batch,
                                        int64_t mask_heads) {
    int64_t plane = lq * lk, n = batch * heads * plane;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t rem = t % plane, h = (t / plane) % heads, b = t / (plane * heads);
        int64_t mb = mask_batch == 1 ? 0 : b, mh = mask_heads == 1 ? 0 : h;
        int64_t m = (mb * mask_heads + mh) * plane + rem;
        if (kind == ATTN_MASK_BLOCK) {
            if (((const uint8_t *)mask)[m]) scores[t] = -INFINITY;
        } else {
            scores[t] += ((const float *)mask)[m];
        }
    }
}

static void cuda_attn_mask_apply(float *scores, const void *mask, attn_mask_kind_t kind, int64_t batch,
                                 int64_t heads, int64_t lq, int64_t lk, int64_t mask_batch, int64_t mask_heads) {
    if (kind == ATTN_MASK_NONE || !mask) return;
    if (kind != ATTN_MASK_BLOCK && kind != ATTN_MASK_ADD) fatal("cuda attn_mask_apply: unknown mask kind %d", (int)kind);
    if ((mask_batch != 1 && mask_batch != batch) || (mask_heads != 1 && mask_heads != heads))
        fatal("cuda attn_mask_apply: mask [%lld, %lld] for scores [%lld, %lld]", (long long)mask_batch,
              (long long)mask_heads, (long long)batch, (long long)heads);
    int64_t n = batch * heads * lq * lk;
    if (n <= 0) return;
    attn_mask_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(scores, mask, kind, batch, heads, lq, lk, mask_batch,
                                                       mask_heads);
    CUDA_CHECK_LAUNCH("attn_mask_kernel");
}

/* ---- cosine similarity ---- */

/* Row offsets (in rows of d) of a and b for output row i under bc. */
__device__ static void cosine_rows(const bcast_t &bc, int64_t i, int64_t *ra, int64_t *rb) {
    int64_t a = 0, b = 0;
    for (int d = bc.ndim - 1; d >= 0; d--) {
        int64_t idx = i % bc.shape[d];
        i /= bc.shape[d];
        a += idx * bc.a_stride[d];
        b += idx * bc.b_stride[d];
    }
    *ra = a;
    *rb = b;
}

/* sum(a*b), |a|^2 and |b|^2 of one pair of rows in double (as cpu_attention.c),
 * for every thread of the block. */
__device__ static void row_dots(const float *x, const float *y, int64_t d, double *ab, double *aa, double *bb) {
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
        double xk = x[k], yk = y[k];
        sxy += xk * yk;
        sxx += xk * xk;
        syy += yk * yk;
    }
    *ab = block_sum(sxy);
    *aa = block_sum(sxx);
    *bb = block_sum(syy);
}

/* One block per output row. */
__global__ static void cosine_forward_kernel(float *out, const float *a, const float *b, bcast_t bc, int64_t d,
                                             float eps) {
    double eps2 = (double)eps * (double)eps;
    for (int64_t i = blockIdx.x; i < bc.numel; i += gridDim.x) {
        int64_t ra, rb;
        cosine_rows(bc, i, &ra, &rb);
        double ab, aa, bb;
        row_dots(a + ra * d, b + rb * d, d, &ab, &aa, &bb);
        if (threadIdx.x == 0) out[i] = (float)(ab / sqrt(fmax(aa * bb, eps2)));
    }
}

/* With P = |a|^2 |b|^2, n = sqrt(P) and f = sum(a*b) / n:
 *   d f / d a = b / n - f a / |a|^2   while P >= eps^2 (torch's clamp_min passes
 *                                     the gradient at equality),
 *             = b / eps               when the clamp holds the norm at eps;
 * likewise for b with a and b swapped. A broadcast operand's rows are shared
 * by several outputs, so its gradient is added atomically. */
__global__ static void cosine_backward_kernel(float *da, float *db, const float *dout, const float *a, const float *b,
                                              bcast_t bc, int64_t d, float eps, int a_shared, int b_shared) {
    double eps2 = (double)eps * (double)eps;
    for (int64_t i = blockIdx.x; i < bc.numel; i += gridDim.x) {
        int64_t ra, rb;
        cosine_rows(bc, i, &ra, &rb);
        const float *x = a + ra * d, *y = b + rb * d;
        double ab, aa, bb;
        row_dots(x, y, d, &ab, &aa, &bb);
        double g = dout[i], p = aa * bb;
        /* da_k = g * (ca * y_k - ka * x_k), db_k = g * (cb * x_k - kb * y_k) */
        double ca, ka, kb;
        if (p >= eps2) {
            double n = sqrt(p), f = ab / n;
            ca = 1.0 / n;
            ka = f / aa;
            kb = f / bb;
        } else {
            ca = 1.0 / (double)eps;
            ka = 0.0;
            kb = 0.0;
        }
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            if (da) {
                float v = (float)(g * (ca * (double)y[k] - ka * (double)x[k]));
                if (a_shared) atomicAdd(&da[ra * d + k], v);
                else da[ra * d + k] += v;
            }
            if (db) {
                float v = (float)(g * (ca * (double)x[k] - kb * (double)y[k]));
                if (b_shared) atomicAdd(&db[rb * d + k], v);
                else db[rb * d + k] += v;
            }
        }
    }
}

/* Whether an operand's rows feed more than one output (it broadcasts over a
 * dim of extent > 1). */
static int operand_shared(const bcast_t *bc, int which) {
    for (int k = 0; k < bc->ndim; k++) {
        int64_t st = which == 0 ? bc->a_stride[k] : bc->b_stride[k];
        if (st == 0 && bc->shape[k] > 1) return 1;
    }
    return 0;
}

/* Rows of d split over a block's threads; small d gets a smaller block. */
static unsigned cosine_threads(int64_t d) { return d <= 64 ? 64 : d <= 128 ? 128 : CUDA_THREADS; }

static void cuda_cosine_forward(float *out, const float *a, const float *b, const bcast_t *bc, int64_t d, float eps) {
    if (bc->numel <= 0) return;
    cosine_forward_kernel<<<cuda_row_blocks(bc->numel), cosine_threads(d)>>>(out, a, b, *bc, d, eps);
    CUDA_CHECK_LAUNCH("cosine_forward_kernel");
}

static void cuda_cosine_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                                 const bcast_t *bc, int64_t d, float eps) {
    if (bc->numel <= 0 || d <= 0 || (!da && !db)) return;
    cosine_backward_kernel<<<cuda_row_blocks(bc->numel), cosine_threads(d)>>>(
        da, db, dout, a, b, *bc, d, eps, operand_shared(bc, 0), operand_shared(bc, 1));
    CUDA_CHECK_LAUNCH("cosine_backward_kernel");
}

void cuda_register_attention(backend_t *be) {
    be->attn_mask_apply = cuda_attn_mask_apply;
    be->cosine_forward = cuda_cosine_forward;
    be->cosine_backward = cuda_cosine_backward;
}
