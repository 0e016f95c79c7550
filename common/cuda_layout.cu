/* cuda_layout.cu - embedding lookup, slice copies, strided (permute) copies
 * and roll. Each output element has one source, so these are plain gathers;
 * only the embedding backward adds into shared rows (atomically). */
#include <string.h>

#include "cuda_kernels.h"

/* ---- embedding ---- */

/* out[i, :] = weight[idx[i], :]; an index outside [0, vocab) gives zeros */
__global__ static void embedding_forward_kernel(float *out, const float *weight, const int64_t *idx, int64_t n,
                                                int64_t vocab, int64_t dim) {
    for (int64_t t = grid_start(); t < n * dim; t += grid_step()) {
        int64_t i = t / dim, j = t % dim;
        int64_t row = idx[i];
        out[t] = (row >= 0 && row < vocab) ? weight[row * dim + j] : 0.0f;
    }
}

/* dweight[idx[i], :] += dout[i, :]; repeated indices add into one row */
__global__ static void embedding_backward_kernel(float *dweight, const float *dout, const int64_t *idx, int64_t n,
                                                 int64_t vocab, int64_t dim) {
    for (int64_t t = grid_start(); t < n * dim; t += grid_step()) {
        int64_t i = t / dim, j = t % dim;
        int64_t row = idx[i];
        if (row >= 0 && row < vocab) atomicAdd(&dweight[row * dim + j], dout[t]);
    }
}

static void cuda_embedding_forward(float *out, const float *weight, const int64_t *idx, int64_t n, int64_t vocab,
                                   int64_t dim) {
    if (n * dim <= 0) return;
    embedding_forward_kernel<<<cuda_blocks(n * dim), CUDA_THREADS>>>(out, weight, idx, n, vocab, dim);
    CUDA_CHECK_LAUNCH("embedding_forward_kernel");
}

static void cuda_embedding_backward(float *dweight, const float *dout, const int64_t *idx, int64_t n, int64_t vocab,
                                    int64_t dim) {
    if (n * dim <= 0 || !dweight) return;
    embedding_backward_kernel<<<cuda_blocks(n * dim), CUDA_THREADS>>>(dweight, dout, idx, n, vocab, dim);
    CUDA_CHECK_LAUNCH("embedding_backward_kernel");
}

/* ---- slice_copy: rows of the middle axis ---- */

__global__ static void slice_copy_kernel(float *dst, const float *src, int64_t outer, int64_t inner, int64_t dst_len,
                                         int64_t dst_start, int64_t src_len, int64_t src_start, int64_t len,
                                         int accumulate) {
    int64_t n = outer * len * inner;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t i = t % inner, k = (t / inner) % len, o = t / (len * inner);
        float v = src[(o * src_len + src_start + k) * inner + i];
        float *d = &dst[(o * dst_len + dst_start + k) * inner + i];
        if (accumulate) *d += v;
        else *d = v;
    }
}

static void cuda_slice_copy(float *dst, const float *src, int64_t outer, int64_t inner, int64_t dst_len,
                            int64_t dst_start, int64_t src_len, int64_t src_start, int64_t len, int accumulate) {
    int64_t n = outer * len * inner;
    if (n <= 0 || !dst) return;
    slice_copy_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dst, src, outer, inner, dst_len, dst_start, src_len,
                                                        src_start, len, accumulate);
    CUDA_CHECK_LAUNCH("slice_copy_kernel");
}

/* ---- strided_copy: out[i] (= or +=) in[sum_d idx_d(i) * in_stride[d]] ---- */

__global__ static void strided_copy_kernel(float *out, const float *in, strided_t st, int accumulate) {
    for (int64_t t = grid_start(); t < st.numel; t += grid_step()) {
        int64_t r = t, off = 0;
        for (int d = st.ndim - 1; d >= 0; d--) {
            off += (r % st.out_shape[d]) * st.in_stride[d];
            r /= st.out_shape[d];
        }
        if (accumulate) out[t] += in[off];
        else out[t] = in[off];
    }
}

static void cuda_strided_copy(float *out, const float *in, const strided_t *st, int accumulate) {
    if (st->numel <= 0 || !out) return;
    if (st->ndim < 0 || st->ndim > BCAST_MAX_DIMS) fatal("cuda strided_copy: %d dims", st->ndim);
    strided_copy_kernel<<<cuda_blocks(st->numel), CUDA_THREADS>>>(out, in, *st, accumulate);
    CUDA_CHECK_LAUNCH("strided_copy_kernel");
}

/* ---- roll ---- */

/* shape and shifts travel to the kernel by value, shifts reduced to [0, size) */
typedef struct {
    int ndim;
    int64_t shape[BCAST_MAX_DIMS];
    int64_t shift[BCAST_MAX_DIMS];
    int64_t numel;
} roll_t;

/* out[idx] (= or +=) in[(idx - shift) mod shape], dim by dim */
__global__ static void roll_kernel(float *out, const float *in, roll_t rl, int accumulate) {
    for (int64_t t = grid_start(); t < rl.numel; t += grid_step()) {
        int64_t r = t, off = 0, stride = 1;
        for (int d = rl.ndim - 1; d >= 0; d--) {
            int64_t idx = r % rl.shape[d];
            r /= rl.shape[d];
            int64_t s = idx - rl.shift[d];
            if (s < 0) s += rl.shape[d];
            off += s * stride;
            stride *= rl.shape[d];
        }
        if (accumulate) out[t] += in[off];
        else out[t] = in[off];
    }
}

/* backend.h says every pointer is on the device, while the ops layer builds
 * descriptors like these on its stack. A host pointer is the expected case;
 * should a caller hand device memory, it is fetched rather than dereferenced. */
static void read_small_array(int64_t *dst, const int64_t *src, int n) {
    if (n <= 0) return;
    cudaPointerAttributes attr;
    cudaError_t err = cudaPointerGetAttributes(&attr, src);
    if (err == cudaSuccess && (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged)) {
        CUDA_CHECK(cudaMemcpy(dst, src, (size_t)n * sizeof *dst, cudaMemcpyDeviceToHost));
        return;
    }
    (void)cudaGetLastError(); /* an unknown host pointer may set an error on older runtimes */
    memcpy(dst, src, (size_t)n * sizeof *dst);
}

static void cuda_roll(float *out, const float *in, int ndim, const int64_t *shape, const int64_t *shifts,
                      int accumulate) {
    if (!out) return;
    if (ndim < 0 || ndim > BCAST_MAX_DIMS) fatal("cuda roll: %d dims (at most %d)", ndim, BCAST_MAX_DIMS);
    roll_t rl;
    memset(&rl, 0, sizeof rl);
    rl.ndim = ndim;
    read_small_array(rl.shape, shape, ndim);
    read_small_array(rl.shift, shifts, ndim);
    rl.numel = 1;
    for (int d = 0; d < ndim; d++) {
        rl.numel *= rl.shape[d];
        if (rl.shape[d] > 0) {
            rl.shift[d] %= rl.shape[d];
            if (rl.shift[d] < 0) rl.shift[d] += rl.shape[d];
        }
    }
    if (rl.numel <= 0) return;
    roll_kernel<<<cuda_blocks(rl.numel), CUDA_THREADS>>>(out, in, rl, accumulate);
    CUDA_CHECK_LAUNCH("roll_kernel");
}

void cuda_register_layout(backend_t *be) {
    be->embedding_forward = cuda_embedding_forward;
    be->embedding_backward = cuda_embedding_backward;
    be->slice_copy = cuda_slice_copy;
    be->strided_copy = cuda_strided_copy;
    be->roll = cuda_roll;
}
