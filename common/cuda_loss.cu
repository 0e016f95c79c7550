/* cuda_loss.cu - BCE with logits, Mask2Former's dice loss, weighted softmax
 * cross-entropy (torch's reduction='mean') and the AdamW step.
 *
 * Cross-entropy needs one sum over every row (the total weight). Each block
 * writes its partial sums to a fixed slot of a small device array and a
 * one-block kernel adds the slots in order: no atomics, the same result on
 * every run, and kernel order on the stream is the only synchronisation. */
#include <math.h>
#include <pthread.h>

#include "adamw_math.h"
#include "cuda_kernels.h"

/* sigmoid in double without overflow for large |x| (cpu_loss.c's sigmoid_d) */
__device__ static double sigmoid_d(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* ---- BCE with logits, elementwise, in double as cpu_loss.c ---- */

/* torch's stable form: max(x, 0) - x t + log(1 + exp(-|x|)) */
__global__ static void bce_forward_kernel(float *out, const float *x, const float *t, int64_t n) {
    for (int64_t i = grid_start(); i < n; i += grid_step()) {
        double v = x[i];
        out[i] = (float)(fmax(v, 0.0) - v * (double)t[i] + log1p(exp(-fabs(v))));
    }
}

/* d/dx = sigmoid(x) - t */
__global__ static void bce_backward_kernel(float *dx, const float *dout, const float *x, const float *t, int64_t n) {
    for (int64_t i = grid_start(); i < n; i += grid_step())
        dx[i] += (float)((double)dout[i] * (sigmoid_d(x[i]) - (double)t[i]));
}

static void cuda_bce_logits_forward(float *out, const float *x, const float *t, int64_t n) {
    if (n <= 0) return;
    bce_forward_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(out, x, t, n);
    CUDA_CHECK_LAUNCH("bce_forward_kernel");
}

static void cuda_bce_logits_backward(float *dx, const float *dout, const float *x, const float *t, int64_t n) {
    if (n <= 0 || !dx) return;
    bce_backward_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dx, dout, x, t, n);
    CUDA_CHECK_LAUNCH("bce_backward_kernel");
}

/* ---- dice per row: 1 - (2 sum(p t) + 1) / (sum p + sum t + 1), p = sigmoid(x) ---- */

/* The row's sum(p t), sum p, sum t in double, for every thread of the block. */
__device__ static void dice_sums(const float *x, const float *t, int64_t n, double *spt, double *sp, double *st) {
    double a = 0.0, b = 0.0, c = 0.0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
        double p = sigmoid_d(x[k]);
        a += p * (double)t[k];
        b += p;
        c += t[k];
    }
    *spt = block_sum(a);
    *sp = block_sum(b);
    *st = block_sum(c);
}

__global__ static void dice_forward_kernel(float *out, const float *x, const float *t, int64_t rows, int64_t n) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        double spt, sp, st;
        dice_sums(x + r * n, t + r * n, n, &spt, &sp, &st);
        if (threadIdx.x == 0) out[r] = (float)(1.0 - (2.0 * spt + 1.0) / (sp + st + 1.0));
    }
}

/* With num = 2 sum(p t) + 1 and den = sum p + sum t + 1, loss = 1 - num / den:
 * d loss / d p_k = (num - 2 t_k den) / den^2, and d p / d x = p (1 - p). */
__global__ static void dice_backward_kernel(float *dx, const float *dout, const float *x, const float *t, int64_t rows,
                                            int64_t n) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * n, *tr = t + r * n;
        double spt, sp, st;
        dice_sums(xr, tr, n, &spt, &sp, &st);
        double num = 2.0 * spt + 1.0, den = sp + st + 1.0;
        double g = (double)dout[r] / (den * den);
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
            double p = sigmoid_d(xr[k]);
            dx[r * n + k] += (float)(g * (num - 2.0 * (double)tr[k] * den) * p * (1.0 - p));
        }
    }
}

static unsigned dice_threads(int64_t n) { return n <= 64 ? 64 : n <= 128 ? 128 : CUDA_THREADS; }

static void cuda_dice_forward(float *out, const float *x, const float *t, int64_t rows, int64_t n) {
    if (rows <= 0) return;
    dice_forward_kernel<<<cuda_row_blocks(rows), dice_threads(n)>>>(out, x, t, rows, n);
    CUDA_CHECK_LAUNCH("dice_forward_kernel");
}

static void cuda_dice_backward(float *dx, const float *dout, const float *x, const float *t, int64_t rows, int64_t n) {
    if (rows <= 0 || n <= 0 || !dx) return;
    dice_backward_kernel<<<cuda_row_blocks(rows), dice_threads(n)>>>(dx, dout, x, t, rows, n);
    CUDA_CHECK_LAUNCH("dice_backward_kernel");
}

/* ---- weighted softmax cross-entropy ---- */

#define XENT_MAX_BLOCKS 1024
#define XENT_WARPS (CUDA_THREADS / 32)

/* Per-block partial sums (slot = blockIdx.x) and the finished total weight. */
__device__ static double xent_part_loss[XENT_MAX_BLOCKS];
__device__ static double xent_part_weight[XENT_MAX_BLOCKS];
__device__ static double xent_total_weight;

/* The kernel sequences below share those arrays; the lock keeps two host
 * threads from interleaving their launches on the one stream. */
static pthread_mutex_t xent_lock = PTHREAD_MUTEX_INITIALIZER;

/* A row counts unless its target is ignore_index (or out of range, which the
 * ops layer has already refused). */
__device__ static int xent_row_counts(int64_t y, int64_t classes, int64_t ignore_index) {
    return y != ignore_index && y >= 0 && y < classes;
}

/* The row's log(sum_j exp(x_j)), shifted by its max, in double as cpu_loss.c;
 * for every lane of the warp. */
__device__ static double warp_row_logsumexp(const float *x, int64_t classes) {
    int lane = threadIdx.x & 31;
    float m = -INFINITY;
    for (int64_t j = lane; j < classes; j += 32) m = nan_max(m, x[j]);
    m = warp_max(m);
    double s = 0.0;
    for (int64_t j = lane; j < classes; j += 32) s += exp((double)x[j] - (double)m);
    return (double)m + log(warp_sum(s));
}

/* One warp per row: partial sums of w[y] * nll (when with_loss) and of w[y]. */
__global__ static void xent_partial_kernel(const float *logits, const int64_t *target, const float *weight,
                                           int64_t rows, int64_t classes, int64_t ignore_index, int with_loss) {
    int lane = threadIdx.x & 31;
    int64_t warp = blockIdx.x * (int64_t)XENT_WARPS + (threadIdx.x >> 5);
    int64_t nwarps = (int64_t)gridDim.x * XENT_WARPS;
    double loss = 0.0, wsum = 0.0;
    for (int64_t r = warp; r < rows; r += nwarps) {
        int64_t y = target[r];
        if (!xent_row_counts(y, classes, ignore_index)) continue;
        double wy = weight ? (double)weight[y] : 1.0;
        if (with_loss) {
            const float *x = logits + r * classes;
            double nll = warp_row_logsumexp(x, classes) - (double)x[y];
            if (lane == 0) loss += wy * nll;
        }
        if (lane == 0) wsum += wy;
    }
    loss = block_sum(loss);
    wsum = block_sum(wsum);
    if (threadIdx.x == 0) {
        xent_part_loss[blockIdx.x] = loss;
        xent_part_weight[blockIdx.x] = wsum;
    }
}

/* One block: adds the partials of `parts` blocks in a fixed order; writes
 * out[0] = loss / weight when out is given, and keeps the total weight. */
__global__ static void xent_finish_kernel(float *out, int parts) {
    double loss = 0.0, wsum = 0.0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) {
        loss += xent_part_loss[i];
        wsum += xent_part_weight[i];
    }
    loss = block_sum(loss);
    wsum = block_sum(wsum);
    if (threadIdx.x == 0) {
        xent_total_weight = wsum;
        if (out) out[0] = (float)(loss / wsum); /* every row ignored: 0/0 = NaN, as torch */
    }
}

/* dlogits[r, j] += dout[0] * w[y] / W * (softmax_j - [j == y]), one warp per row */
__global__ static void xent_grad_kernel(float *dlogits, const float *dout, const float *logits, const int64_t *target,
                                        const float *weight, int64_t rows, int64_t classes, int64_t ignore_index) {
    int lane = threadIdx.x & 31;
    int64_t warp = blockIdx.x * (int64_t)XENT_WARPS + (threadIdx.x >> 5);
    int64_t nwarps = (int64_t)gridDim.x * XENT_WARPS;
    double g = (double)dout[0] / xent_total_weight;
    for (int64_t r = warp; r < rows; r += nwarps) {
        int64_t y = target[r];
        if (!xent_row_counts(y, classes, ignore_index)) continue;
        const float *x = logits + r * classes;
        double lse = warp_row_logsumexp(x, classes);
        double gi = g * (weight ? (double)weight[y] : 1.0);
        for (int64_t j = lane; j < classes; j += 32) {
            double p = exp((double)x[j] - lse);
            dlogits[r * classes + j] += (float)(gi * (p - (j == y ? 1.0 : 0.0)));
        }
    }
}

static unsigned xent_blocks(int64_t rows) {
    int64_t b = (rows + XENT_WARPS - 1) / XENT_WARPS;
    if (b < 1) b = 1;
    return (unsigned)(b > XENT_MAX_BLOCKS ? XENT_MAX_BLOCKS : b);
}

static void cuda_softmax_xent_forward(float *out, const float *logits, const int64_t *target, const float *weight,
                                      int64_t rows, int64_t classes, int64_t ignore_index) {
    unsigned blocks = xent_blocks(rows);
    pthread_mutex_lock(&xent_lock);
    xent_partial_kernel<<<blocks, CUDA_THREADS>>>(logits, target, weight, rows, classes, ignore_index, 1);
    CUDA_CHECK_LAUNCH("xent_partial_kernel");
    xent_finish_kernel<<<1, CUDA_THREADS>>>(out, (int)blocks);
    CUDA_CHECK_LAUNCH("xent_finish_kernel");
    pthread_mutex_unlock(&xent_lock);
}

static void cuda_softmax_xent_backward(float *dlogits, const float *dout, const float *logits, const int64_t *target,
                                       const float *weight, int64_t rows, int64_t classes, int64_t ignore_index) {
    if (!dlogits || rows <= 0 || classes <= 0) return;
    unsigned blocks = xent_blocks(rows);
    pthread_mutex_lock(&xent_lock);
    xent_partial_kernel<<<blocks, CUDA_THREADS>>>(logits, target, weight, rows, classes, ignore_index, 0);
    CUDA_CHECK_LAUNCH("xent_partial_kernel");
    xent_finish_kernel<<<1, CUDA_THREADS>>>(NULL, (int)blocks);
    CUDA_CHECK_LAUNCH("xent_finish_kernel");
    xent_grad_kernel<<<blocks, CUDA_THREADS>>>(dlogits, dout, logits, target, weight, rows, classes, ignore_index);
    CUDA_CHECK_LAUNCH("xent_grad_kernel");
    pthread_mutex_unlock(&xent_lock);
}

/* ---- AdamW (torch.optim.AdamW, one step) ----
 * backend.h's update, in f32 and in torch's order, as cpu_loss.c:
 *   p *= 1 - lr*wd
 *   m = lerp(m, g, 1 - b1)            (= b1 m + (1 - b1) g)
 *   v = v*b2 + (1 - b2) g*g
 *   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps) */

__global__ static void adamw_kernel(float *p, const float *g, float *m, float *v, int64_t n, adamw_scalars_t s) {
    for (int64_t i = grid_start(); i < n; i += grid_step()) adamw_element(&p[i], g[i], &m[i], &v[i], s);
}

static void cuda_adamw_step(float *p, const float *g, float *m, float *v, int64_t n, const adamw_scalars_t *s) {
    if (n <= 0) return;
    adamw_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(p, g, m, v, n, *s);
    CUDA_CHECK_LAUNCH("adamw_kernel");
}

void cuda_register_loss(backend_t *be) {
    be->bce_logits_forward = cuda_bce_logits_forward;
    be->bce_logits_backward = cuda_bce_logits_backward;
    be->dice_forward = cuda_dice_forward;
    be->dice_backward = cuda_dice_backward;
    be->softmax_xent_forward = cuda_softmax_xent_forward;
    be->softmax_xent_backward = cuda_softmax_xent_backward;
    be->adamw_step = cuda_adamw_step;
}
