/* cuda_gemm.cu - row-major GEMM on cuBLAS.
 *
 * cuBLAS is column-major. A row-major C [m, n] is the column-major C^T
 * [n, m], and C^T = op(B)^T op(A)^T, so each call passes B before A and
 * swaps m and n; the leading dimensions and the transpose flags stay as the
 * caller gave them. The math mode is CUBLAS_DEFAULT_MATH (plain FP32, no TF32
 * tensor cores) so that results agree with the CPU's OpenBLAS to ~1e-5. */
#include <limits.h>
#include <pthread.h>

#include <cublas_v2.h>

#include "cuda_kernels.h"

static cublasHandle_t handle;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void check_cublas(cublasStatus_t st, const char *what, int line) {
    if (st != CUBLAS_STATUS_SUCCESS)
        fatal("%s:%d: %s failed: %s (%s)", __FILE__, line, what, cublasGetStatusName(st), cublasGetStatusString(st));
}

static void create_handle(void) {
    check_cublas(cublasCreate(&handle), "cublasCreate", __LINE__);
    check_cublas(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH), "cublasSetMathMode", __LINE__);
}

/* Created on first use, so that a program that never multiplies on the GPU
 * does not pay for cuBLAS's initialisation. */
static cublasHandle_t get_handle(void) {
    pthread_once(&handle_once, create_handle);
    return handle;
}

/* cuBLAS takes int sizes; anything larger is a caller bug, not a fallback case. */
static int as_int(int64_t v, const char *what) {
    if (v < 0 || v > INT_MAX) fatal("cuda gemm: %s = %lld does not fit cuBLAS's int", what, (long long)v);
    return (int)v;
}

/* C[i, j] = beta * C[i, j] (0 when beta is 0, whatever C held), for k == 0 where
 * cuBLAS would refuse the zero leading dimensions. */
__global__ static void scale_matrix_kernel(float *c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c,
                                           int64_t batch, float beta) {
    int64_t total = batch * m * n;
    for (int64_t t = grid_start(); t < total; t += grid_step()) {
        int64_t j = t % n, i = (t / n) % m, bi = t / (m * n);
        float *p = c + bi * stride_c + i * ldc + j;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

static void scale_only(int64_t m, int64_t n, float beta, float *c, int64_t ldc, int64_t stride_c, int64_t batch) {
    scale_matrix_kernel<<<cuda_blocks(batch * m * n), CUDA_THREADS>>>(c, m, n, ldc, stride_c, batch, beta);
    CUDA_CHECK_LAUNCH("scale_matrix_kernel");
}

static void cuda_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        scale_only(m, n, beta, c, ldc, 0, 1);
        return;
    }
    check_cublas(cublasSgemm(get_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                             as_int(n, "n"), as_int(m, "m"), as_int(k, "k"), &alpha, b, as_int(ldb, "ldb"), a,
                             as_int(lda, "lda"), &beta, c, as_int(ldc, "ldc")),
                 "cublasSgemm", __LINE__);
}

static void cuda_gemm_batched(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                              const float *a, int64_t lda, int64_t stride_a, const float *b, int64_t ldb,
                              int64_t stride_b, float beta, float *c, int64_t ldc, int64_t stride_c, int64_t batch) {
    if (m == 0 || n == 0 || batch == 0) return;
    if (k == 0) {
        scale_only(m, n, beta, c, ldc, stride_c, batch);
        return;
    }
    check_cublas(cublasSgemmStridedBatched(get_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, as_int(n, "n"), as_int(m, "m"),
                                           as_int(k, "k"), &alpha, b, as_int(ldb, "ldb"), stride_b, a,
                                           as_int(lda, "lda"), stride_a, &beta, c, as_int(ldc, "ldc"), stride_c,
                                           as_int(batch, "batch")),
                 "cublasSgemmStridedBatched", __LINE__);
}

void cuda_register_gemm(backend_t *be) {
    be->gemm = cuda_gemm;
    be->gemm_batched = cuda_gemm_batched;
}
