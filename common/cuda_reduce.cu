/* cuda_reduce.cu - sums over the middle axis of [outer, len, inner] and their
 * backward, broadcast_add. Sums run in double, as cpu_core.c's do: they feed
 * losses and gradient checks. */
#include "cuda_kernels.h"

/* One thread per output (o, i), walking k: neighbouring threads read
 * neighbouring i, so the loads are coalesced when inner is wide. */
__global__ static void reduce_sum_thread_kernel(float *out, const float *in, int64_t outer, int64_t len,
                                                int64_t inner, int accumulate) {
    for (int64_t t = grid_start(); t < outer * inner; t += grid_step()) {
        int64_t o = t / inner, i = t % inner;
        const float *p = in + o * len * inner + i;
        double s = 0.0;
        for (int64_t k = 0; k < len; k++) s += p[k * inner];
        if (accumulate) out[t] += (float)s;
        else out[t] = (float)s;
    }
}

/* One block per output (o, i): for long reductions over few outputs
 * (inner == 1 is a plain row sum). */
__global__ static void reduce_sum_block_kernel(float *out, const float *in, int64_t outer, int64_t len,
                                               int64_t inner, int accumulate) {
    for (int64_t t = blockIdx.x; t < outer * inner; t += gridDim.x) {
        int64_t o = t / inner, i = t % inner;
        const float *p = in + o * len * inner + i;
        double s = 0.0;
        for (int64_t k = threadIdx.x; k < len; k += blockDim.x) s += p[k * inner];
        s = block_sum(s);
        if (threadIdx.x == 0) {
            if (accumulate) out[t] += (float)s;
            else out[t] = (float)s;
        }
    }
}

static void cuda_reduce_sum(float *out, const float *in, int64_t outer, int64_t len, int64_t inner,
                            int accumulate) {
    int64_t nout = outer * inner;
    if (nout <= 0) return;
    /* len == 0 still writes (zeros, or leaves out unchanged when accumulating) */
    if (len >= 256 && (inner < 32 || nout < 8192)) {
        reduce_sum_block_kernel<<<cuda_row_blocks(nout), CUDA_THREADS>>>(out, in, outer, len, inner, accumulate);
        CUDA_CHECK_LAUNCH("reduce_sum_block_kernel");
    } else {
        reduce_sum_thread_kernel<<<cuda_blocks(nout), CUDA_THREADS>>>(out, in, outer, len, inner, accumulate);
        CUDA_CHECK_LAUNCH("reduce_sum_thread_kernel");
    }
}

__global__ static void broadcast_add_kernel(float *dst, const float *src, int64_t outer, int64_t len,
                                            int64_t inner, float alpha) {
    int64_t n = outer * len * inner;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t i = t % inner, o = t / (len * inner);
        dst[t] += alpha * src[o * inner + i];
    }
}

static void cuda_broadcast_add(float *dst, const float *src, int64_t outer, int64_t len, int64_t inner,
                               float alpha) {
    int64_t n = outer * len * inner;
    if (n <= 0 || !dst) return;
    broadcast_add_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dst, src, outer, len, inner, alpha);
    CUDA_CHECK_LAUNCH("broadcast_add_kernel");
}

void cuda_register_reduce(backend_t *be) {
    be->reduce_sum = cuda_reduce_sum;
    be->broadcast_add = cuda_broadcast_add;
}
