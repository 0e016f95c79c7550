/* cuda_norm.cu - softmax over the middle axis, layer norm and group norm,
 * forward and backward (PyTorch's formulas). Row statistics are summed in
 * double by one block per row (or group); the per-feature weight and bias
 * gradients are column sums. */
#include <math.h>

#include "cuda_kernels.h"

/* ---- softmax over k of [outer, len, inner]: out = exp(x - max) / sum ----
 * As cpu_norm.c: e = expf(x - max) in f32, the sum in double, then
 * out = e * (float)(1 / sum). A line of -inf gives -inf - -inf = NaN, as torch.
 * Each element is read before the same thread writes it, so out may alias in. */

/* One block per line (o, i); the line's elements are `inner` apart. */
__global__ static void softmax_forward_block_kernel(float *out, const float *in, int64_t outer, int64_t len,
                                                    int64_t inner) {
    for (int64_t t = blockIdx.x; t < outer * inner; t += gridDim.x) {
        int64_t base = (t / inner) * len * inner + t % inner;
        const float *x = in + base;
        float *y = out + base;
        float m = -INFINITY;
        for (int64_t k = threadIdx.x; k < len; k += blockDim.x) m = nan_max(m, x[k * inner]);
        m = block_max(m);
        double s = 0.0;
        for (int64_t k = threadIdx.x; k < len; k += blockDim.x) {
            float e = expf(x[k * inner] - m);
            y[k * inner] = e;
            s += e;
        }
        float inv = (float)(1.0 / block_sum(s));
        for (int64_t k = threadIdx.x; k < len; k += blockDim.x) y[k * inner] *= inv;
    }
}

/* One thread per line: for short lines. */
__global__ static void softmax_forward_thread_kernel(float *out, const float *in, int64_t outer, int64_t len,
                                                     int64_t inner) {
    for (int64_t t = grid_start(); t < outer * inner; t += grid_step()) {
        int64_t base = (t / inner) * len * inner + t % inner;
        const float *x = in + base;
        float *y = out + base;
        float m = -INFINITY;
        for (int64_t k = 0; k < len; k++) m = nan_max(m, x[k * inner]);
        double s = 0.0;
        for (int64_t k = 0; k < len; k++) {
            float e = expf(x[k * inner] - m);
            y[k * inner] = e;
            s += e;
        }
        float inv = (float)(1.0 / s);
        for (int64_t k = 0; k < len; k++) y[k * inner] *= inv;
    }
}

/* din += out * (dout - sum_k out * dout), in double as cpu_norm.c */
__global__ static void softmax_backward_block_kernel(float *din, const float *out, const float *dout, int64_t outer,
                                                     int64_t len, int64_t inner) {
    for (int64_t t = blockIdx.x; t < outer * inner; t += gridDim.x) {
        int64_t base = (t / inner) * len * inner + t % inner;
        double s = 0.0;
        for (int64_t k = threadIdx.x; k < len; k += blockDim.x)
            s += (double)out[base + k * inner] * (double)dout[base + k * inner];
        double dot = block_sum(s);
        for (int64_t k = threadIdx.x; k < len; k += blockDim.x) {
            int64_t e = base + k * inner;
            din[e] += (float)((double)out[e] * ((double)dout[e] - dot));
        }
    }
}

__global__ static void softmax_backward_thread_kernel(float *din, const float *out, const float *dout,
                                                      int64_t outer, int64_t len, int64_t inner) {
    for (int64_t t = grid_start(); t < outer * inner; t += grid_step()) {
        int64_t base = (t / inner) * len * inner + t % inner;
        double dot = 0.0;
        for (int64_t k = 0; k < len; k++) dot += (double)out[base + k * inner] * (double)dout[base + k * inner];
        for (int64_t k = 0; k < len; k++) {
            int64_t e = base + k * inner;
            din[e] += (float)((double)out[e] * ((double)dout[e] - dot));
        }
    }
}

/* A block per column pays off once the column is long enough to keep a
 * block's threads busy. */
static int softmax_use_block(int64_t len) { return len >= 64; }

static void cuda_softmax_forward(float *out, const float *in, int64_t outer, int64_t len, int64_t inner) {
    int64_t cols = outer * inner;
    if (cols <= 0 || len <= 0) return;
    if (softmax_use_block(len)) {
        softmax_forward_block_kernel<<<cuda_row_blocks(cols), CUDA_THREADS>>>(out, in, outer, len, inner);
        CUDA_CHECK_LAUNCH("softmax_forward_block_kernel");
    } else {
        softmax_forward_thread_kernel<<<cuda_blocks(cols), CUDA_THREADS>>>(out, in, outer, len, inner);
        CUDA_CHECK_LAUNCH("softmax_forward_thread_kernel");
    }
}

static void cuda_softmax_backward(float *din, const float *out, const float *dout, int64_t outer, int64_t len,
                                  int64_t inner) {
    int64_t cols = outer * inner;
    if (!din || cols <= 0 || len <= 0) return;
    if (softmax_use_block(len)) {
        softmax_backward_block_kernel<<<cuda_row_blocks(cols), CUDA_THREADS>>>(din, out, dout, outer, len, inner);
        CUDA_CHECK_LAUNCH("softmax_backward_block_kernel");
    } else {
        softmax_backward_thread_kernel<<<cuda_blocks(cols), CUDA_THREADS>>>(din, out, dout, outer, len, inner);
        CUDA_CHECK_LAUNCH("softmax_backward_thread_kernel");
    }
}

/* ---- shared by layer norm and group norm ---- */

/* mean and 1/sqrt(var + eps) (biased variance) of count contiguous floats,
 * two passes in double (an empty run has mean 0, variance 0, as cpu_norm.c);
 * every thread of the block gets them. */
__device__ static void block_stats(const float *x, int64_t count, float eps, float *mean_out, float *rstd_out) {
    double s = 0.0;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) s += x[k];
    s = block_sum(s);
    double mean = count ? s / (double)count : 0.0;
    double v = 0.0;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
        double d = (double)x[k] - mean;
        v += d * d;
    }
    v = block_sum(v);
    double var = count ? v / (double)count : 0.0;
    *mean_out = (float)mean;
    *rstd_out = (float)(1.0 / sqrt(var + (double)eps));
}

/* Column sums over a [rows, dim] pair: dw[j] += sum_r dout * (in - mean_r) * rstd_r,
 * db[j] += sum_r dout. Rows are split into blockIdx.y chunks; with more than
 * one chunk the partial sums meet by atomicAdd. */
__global__ static void layernorm_param_grad_kernel(float *dw, float *db, const float *dout, const float *in,
                                                   const float *mean, const float *rstd, int64_t rows,
                                                   int64_t dim, int64_t rows_per_chunk) {
    int64_t r0 = blockIdx.y * rows_per_chunk;
    int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
    for (int64_t j = grid_start(); j < dim; j += grid_step()) {
        double sw = 0.0, sb = 0.0;
        for (int64_t r = r0; r < r1; r++) {
            double g = dout[r * dim + j];
            sw += g * ((double)in[r * dim + j] - (double)mean[r]) * (double)rstd[r];
            sb += g;
        }
        if (gridDim.y == 1) {
            if (dw) dw[j] += (float)sw;
            if (db) db[j] += (float)sb;
        } else {
            if (dw) atomicAdd(&dw[j], (float)sw);
            if (db) atomicAdd(&db[j], (float)sb);
        }
    }
}

/* ---- layer norm over rows of dim ---- */

__global__ static void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *in, const float *w,
                                                const float *b, int64_t rows, int64_t dim, float eps) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *x = in + r * dim;
        float *y = out + r * dim;
        float mu, rs;
        block_stats(x, dim, eps, &mu, &rs);
        if (threadIdx.x == 0) {
            if (mean) mean[r] = mu;
            if (rstd) rstd[r] = rs;
        }
        for (int64_t k = threadIdx.x; k < dim; k += blockDim.x) {
            float v = (x[k] - mu) * rs;
            if (w) v *= w[k];
            if (b) v += b[k];
            y[k] = v;
        }
    }
}

/* din += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w, in double
 * as cpu_norm.c */
__global__ static void layernorm_backward_input_kernel(float *din, const float *dout, const float *in, const float *w,
                                                       const float *mean, const float *rstd, int64_t rows,
                                                       int64_t dim) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *x = in + r * dim, *dy = dout + r * dim;
        double mu = mean[r], rs = rstd[r];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t k = threadIdx.x; k < dim; k += blockDim.x) {
            double g = (double)dy[k] * (w ? (double)w[k] : 1.0);
            s1 += g;
            s2 += g * ((double)x[k] - mu) * rs;
        }
        double mean_g = block_sum(s1) / (double)dim;
        double mean_gx = block_sum(s2) / (double)dim;
        for (int64_t k = threadIdx.x; k < dim; k += blockDim.x) {
            double g = (double)dy[k] * (w ? (double)w[k] : 1.0);
            double xhat = ((double)x[k] - mu) * rs;
            din[r * dim + k] += (float)(rs * (g - mean_g - xhat * mean_gx));
        }
    }
}

static void cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *w,
                                   const float *b, int64_t rows, int64_t dim, float eps) {
    if (rows <= 0) return;
    layernorm_forward_kernel<<<cuda_row_blocks(rows), CUDA_THREADS>>>(out, mean, rstd, in, w, b, rows, dim, eps);
    CUDA_CHECK_LAUNCH("layernorm_forward_kernel");
}

static void cuda_layernorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                                    const float *w, const float *mean, const float *rstd, int64_t rows,
                                    int64_t dim) {
    if (rows <= 0 || dim <= 0) return;
    if (din) {
        layernorm_backward_input_kernel<<<cuda_row_blocks(rows), CUDA_THREADS>>>(din, dout, in, w, mean, rstd, rows,
                                                                                  dim);
        CUDA_CHECK_LAUNCH("layernorm_backward_input_kernel");
    }
    if (dw || db) {
        /* enough chunks of rows to fill the GPU when dim alone does not */
        int64_t chunks = (rows + 127) / 128;
        if (chunks > 256) chunks = 256;
        int64_t per_chunk = (rows + chunks - 1) / chunks;
        chunks = (rows + per_chunk - 1) / per_chunk;
        dim3 grid(cuda_blocks(dim), (unsigned)chunks);
        layernorm_param_grad_kernel<<<grid, CUDA_THREADS>>>(dw, db, dout, in, mean, rstd, rows, dim, per_chunk);
        CUDA_CHECK_LAUNCH("layernorm_param_grad_kernel");
    }
}

/* ---- group norm: in [n, c, hw], groups of c / groups channels ---- */

/* One block per (sample, group): the group's channels are contiguous, so its
 * cpg * hw elements are one run starting at (n * c + g * cpg) * hw. */
__global__ static void groupnorm_forward_kernel(float *out, float *mean, float *rstd, const float *in,
                                                const float *w, const float *b, int64_t n, int64_t c, int64_t hw,
                                                int64_t groups, float eps) {
    int64_t cpg = c / groups, count = cpg * hw;
    for (int64_t ng = blockIdx.x; ng < n * groups; ng += gridDim.x) {
        int64_t g = ng % groups;
        int64_t base = ng * count; /* = (s * c + g * cpg) * hw with s = ng / groups */
        const float *x = in + base;
        float mu, rs;
        block_stats(x, count, eps, &mu, &rs);
        if (threadIdx.x == 0) {
            if (mean) mean[ng] = mu;
            if (rstd) rstd[ng] = rs;
        }
        /* y = x * scale + shift per channel, the form cpu_norm.c uses; the _rn
         * operations keep nvcc from fusing them into FMAs, which would round
         * differently where x * scale and shift nearly cancel */
        for (int64_t t = threadIdx.x; t < count; t += blockDim.x) {
            int64_t ch = g * cpg + t / hw;
            float scale = w ? __fmul_rn(w[ch], rs) : rs;
            float shift = __fsub_rn(b ? b[ch] : 0.0f, __fmul_rn(mu, scale));
            out[base + t] = __fadd_rn(__fmul_rn(x[t], scale), shift);
        }
    }
}

/* din += rstd * (g - mean(g) - xhat * mean(g * xhat)) over the group,
 * g = dout * w[ch], in double as cpu_norm.c */
__global__ static void groupnorm_backward_input_kernel(float *din, const float *dout, const float *in,
                                                       const float *w, const float *mean, const float *rstd,
                                                       int64_t n, int64_t c, int64_t hw, int64_t groups) {
    int64_t cpg = c / groups, count = cpg * hw;
    for (int64_t ng = blockIdx.x; ng < n * groups; ng += gridDim.x) {
        int64_t g = ng % groups, base = ng * count;
        double mu = mean[ng], rs = rstd[ng];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t t = threadIdx.x; t < count; t += blockDim.x) {
            double gy = (double)dout[base + t] * (w ? (double)w[g * cpg + t / hw] : 1.0);
            s1 += gy;
            s2 += gy * ((double)in[base + t] - mu) * rs;
        }
        double mean_g = block_sum(s1) / (double)count;
        double mean_gx = block_sum(s2) / (double)count;
        for (int64_t t = threadIdx.x; t < count; t += blockDim.x) {
            double gy = (double)dout[base + t] * (w ? (double)w[g * cpg + t / hw] : 1.0);
            double xhat = ((double)in[base + t] - mu) * rs;
            din[base + t] += (float)(rs * (gy - mean_g - xhat * mean_gx));
        }
    }
}

/* One block per channel: dw[ch] += sum_{s, p} dout * xhat, db[ch] += sum dout. */
__global__ static void groupnorm_param_grad_kernel(float *dw, float *db, const float *dout, const float *in,
                                                   const float *mean, const float *rstd, int64_t n, int64_t c,
                                                   int64_t hw, int64_t groups) {
    int64_t cpg = c / groups;
    for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        int64_t g = ch / cpg;
        double sw = 0.0, sb = 0.0;
        for (int64_t t = threadIdx.x; t < n * hw; t += blockDim.x) {
            int64_t s = t / hw, p = t % hw;
            int64_t e = (s * c + ch) * hw + p;
            double dy = dout[e];
            sw += dy * ((double)in[e] - (double)mean[s * groups + g]) * (double)rstd[s * groups + g];
            sb += dy;
        }
        sw = block_sum(sw);
        sb = block_sum(sb);
        if (threadIdx.x == 0) {
            if (dw) dw[ch] += (float)sw;
            if (db) db[ch] += (float)sb;
        }
    }
}

static void check_groups(const char *what, int64_t c, int64_t groups) {
    if (groups <= 0 || c % groups != 0)
        fatal("cuda %s: %lld groups do not divide %lld channels", what, (long long)groups, (long long)c);
}

static void cuda_groupnorm_forward(float *out, float *mean, float *rstd, const float *in, const float *w,
                                   const float *b, int64_t n, int64_t c, int64_t hw, int64_t groups, float eps) {
    check_groups("groupnorm_forward", c, groups);
    if (n <= 0) return;
    groupnorm_forward_kernel<<<cuda_row_blocks(n * groups), CUDA_THREADS>>>(out, mean, rstd, in, w, b, n, c, hw,
                                                                            groups, eps);
    CUDA_CHECK_LAUNCH("groupnorm_forward_kernel");
}

static void cuda_groupnorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                                    const float *w, const float *mean, const float *rstd, int64_t n, int64_t c,
                                    int64_t hw, int64_t groups) {
    check_groups("groupnorm_backward", c, groups);
    if (n <= 0 || c <= 0 || hw <= 0) return;
    if (din) {
        groupnorm_backward_input_kernel<<<cuda_row_blocks(n * groups), CUDA_THREADS>>>(din, dout, in, w, mean, rstd,
                                                                                       n, c, hw, groups);
        CUDA_CHECK_LAUNCH("groupnorm_backward_input_kernel");
    }
    if (dw || db) {
        groupnorm_param_grad_kernel<<<cuda_row_blocks(c), CUDA_THREADS>>>(dw, db, dout, in, mean, rstd, n, c, hw,
                                                                          groups);
        CUDA_CHECK_LAUNCH("groupnorm_param_grad_kernel");
    }
}

void cuda_register_norm(backend_t *be) {
    be->softmax_forward = cuda_softmax_forward;
    be->softmax_backward = cuda_softmax_backward;
    be->layernorm_forward = cuda_layernorm_forward;
    be->layernorm_backward = cuda_layernorm_backward;
    be->groupnorm_forward = cuda_groupnorm_forward;
    be->groupnorm_backward = cuda_groupnorm_backward;
}
