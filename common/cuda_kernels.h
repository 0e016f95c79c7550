/* cuda_kernels.h - how the CUDA backend's table is filled, and the few device
 * helpers its .cu files share.
 *
 * Mirrors cpu_kernels.h: each cuda_*.cu file holds one op family and exports
 * one function that puts its kernels into the table; cuda_backend.cu calls
 * them all once, after it has found a usable GPU. Only .cu files include this
 * header (the device helpers below need nvcc). */
#ifndef STEPSTONE_CUDA_KERNELS_H
#define STEPSTONE_CUDA_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

/* The project's headers are C; their functions have C linkage. */
extern "C" {
#include "backend.h"
#include "error.h"
}

void cuda_register_memory(backend_t *be);      /* cuda_backend.cu: alloc, copies, sync */
void cuda_register_convert(backend_t *be);     /* cuda_convert.cu: dtype conversion */
void cuda_register_gemm(backend_t *be);        /* cuda_gemm.cu: cuBLAS gemm, gemm_batched */
void cuda_register_elementwise(backend_t *be); /* cuda_elementwise.cu: fill, axpy, affine, binary, unary */
void cuda_register_reduce(backend_t *be);      /* cuda_reduce.cu: reduce_sum, broadcast_add */
void cuda_register_norm(backend_t *be);        /* cuda_norm.cu: softmax, layer norm, group norm */
void cuda_register_attention(backend_t *be);   /* cuda_attention.cu: attention mask, cosine similarity */
void cuda_register_spatial(backend_t *be);     /* cuda_spatial.cu: im2col/col2im, bilinear, grid sample */
void cuda_register_layout(backend_t *be);      /* cuda_layout.cu: embedding, slice, strided copy, roll */
void cuda_register_loss(backend_t *be);        /* cuda_loss.cu: BCE, dice, cross-entropy, AdamW */
void cuda_register_pool(backend_t *be);        /* cuda_pool.cu: max pooling */

/* Reports a failed CUDA runtime call (what, where, the CUDA message) through
 * fatal(). Device errors are not recoverable mid-op: the data are gone. */
void cuda_check_at(cudaError_t err, const char *what, const char *file, int line);
/* Checks the launch just made. With STEPSTONE_CUDA_SYNC=1 in the environment it
 * also waits for the kernel, so an error inside it is reported at its launch
 * rather than at some later call. */
void cuda_check_launch_at(const char *kernel, const char *file, int line);

#define CUDA_CHECK(call) cuda_check_at((call), #call, __FILE__, __LINE__)
#define CUDA_CHECK_LAUNCH(kernel) cuda_check_launch_at(kernel, __FILE__, __LINE__)

/* Threads per block for every kernel here: a multiple of 32 (the reductions
 * below rely on whole warps). */
#define CUDA_THREADS 256

/* Blocks for a grid-stride loop over n items, CUDA_THREADS per block. The cap
 * keeps the grid legal for any n; the loops cover the rest. */
static inline unsigned cuda_blocks(int64_t n) {
    int64_t b = (n + CUDA_THREADS - 1) / CUDA_THREADS;
    if (b < 1) b = 1;
    if (b > 65535 * 4) b = 65535 * 4;
    return (unsigned)b;
}

/* Blocks for a loop over n rows with one block per row (grid-stride too). */
static inline unsigned cuda_row_blocks(int64_t rows) {
    if (rows < 1) return 1;
    return (unsigned)(rows > 65535 * 4 ? 65535 * 4 : rows);
}

/* Grid-stride loops: for (int64_t i = grid_start(); i < n; i += grid_step()) */
__device__ inline int64_t grid_start(void) { return blockIdx.x * (int64_t)blockDim.x + threadIdx.x; }
__device__ inline int64_t grid_step(void) { return (int64_t)gridDim.x * blockDim.x; }

/* Sum of v over the whole block, returned to every thread. Every thread of
 * the block must call it (no early returns before), blockDim.x a multiple of
 * 32. The leading __syncthreads lets a caller use it several times in a row. */
template <typename T> __device__ inline T block_sum(T v) {
    __shared__ T part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        int nwarps = (blockDim.x + 31) >> 5;
        v = lane < nwarps ? part[lane] : (T)0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) part[0] = v;
    }
    __syncthreads();
    return part[0];
}

/* Maximum of v over the block; same rules as block_sum. fmaxf would drop a NaN,
 * so the comparison keeps it (a NaN row stays NaN, as on the CPU). */
__device__ inline float nan_max(float a, float b) { return (a > b || a != a) ? a : b; }

__device__ inline float block_max(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_down_sync(0xffffffffu, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        int nwarps = (blockDim.x + 31) >> 5;
        v = lane < nwarps ? part[lane] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_down_sync(0xffffffffu, v, o));
        if (lane == 0) part[0] = v;
    }
    __syncthreads();
    return part[0];
}

/* Sum of v over one warp, returned to every lane of it. */
template <typename T> __device__ inline T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#endif
