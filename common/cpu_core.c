/* cpu_core.c - CPU kernels: memory, dtype conversion, elementwise, reductions
 * and GEMM (OpenBLAS). Loops over independent outputs run under OpenMP;
 * every gradient reduction into a broadcast operand runs in one thread, in a
 * fixed order, so that the result is the same on every run. */
#include <cblas.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "unary_math.h"

static void *cpu_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, rounded ? rounded : 64);
}

static void cpu_free(void *p) { free(p); }
/* Gradient buffers of a training step are zeroed here (hundreds of MiB a
 * step): large ones in parallel pieces, which one thread's memset cannot match. */
static void cpu_memset_zero(void *p, size_t bytes) {
    const size_t piece = (size_t)1 << 20;
    if (bytes < 4 * piece) {
        memset(p, 0, bytes);
        return;
    }
    int64_t pieces = (int64_t)((bytes + piece - 1) / piece);
#pragma omp parallel for
    for (int64_t i = 0; i < pieces; i++) {
        size_t off = (size_t)i * piece;
        memset((char *)p + off, 0, bytes - off < piece ? bytes - off : piece);
    }
}
static void cpu_copy(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }
static void cpu_synchronize(void) {}

static void cpu_convert(void *dst, dtype_t dst_dtype, const void *src, dtype_t src_dtype, int64_t n) {
    dtype_convert_host(dst, dst_dtype, src, src_dtype, n);
}

static void cpu_fill(float *x, float value, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = value;
}

static void cpu_axpy(float *y, const float *x, float alpha, int64_t n) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

static void cpu_affine(float *out, const float *in, float alpha, float beta, int64_t n) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = alpha * in[i] + beta;
}

/* Offsets into a and b of the first element of output row r (a row is the
 * last output dim): the index arithmetic runs once per row, not per element. */
static void bcast_row_offsets(const bcast_t *bc, int64_t r, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0;
    for (int d = bc->ndim - 2; d >= 0; d--) {
        int64_t idx = r % bc->shape[d];
        r /= bc->shape[d];
        a += idx * bc->a_stride[d];
        b += idx * bc->b_stride[d];
    }
    *oa = a;
    *ob = b;
}

static float binary_apply(binary_op_t op, float x, float y) {
    switch (op) {
    case BINARY_ADD: return x + y;
    case BINARY_SUB: return x - y;
    case BINARY_MUL: return x * y;
    case BINARY_DIV: return x / y;
    }
    return 0.0f;
}

/* One row: strides 1 or 0 (a broadcast scalar) get loops the compiler vectorizes. */
static void binary_row(binary_op_t op, float *out, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n) {
    if (sa == 1 && sb == 1) {
        switch (op) {
        case BINARY_ADD: for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i]; return;
        case BINARY_SUB: for (int64_t i = 0; i < n; i++) out[i] = a[i] - b[i]; return;
        case BINARY_MUL: for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i]; return;
        case BINARY_DIV: for (int64_t i = 0; i < n; i++) out[i] = a[i] / b[i]; return;
        }
    }
    if (sa == 1 && sb == 0) {
        float y = b[0];
        for (int64_t i = 0; i < n; i++) out[i] = binary_apply(op, a[i], y);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = binary_apply(op, a[i * sa], b[i * sb]);
}

static void cpu_binary_forward(binary_op_t op, float *out, const float *a, const float *b, const bcast_t *bc) {
    if (bc->numel == 0) return;
    if (bc->ndim == 0) {
        out[0] = binary_apply(op, a[0], b[0]);
        return;
    }
    int64_t n = bc->shape[bc->ndim - 1], rows = bc->numel / n;
    int64_t sa = bc->a_stride[bc->ndim - 1], sb = bc->b_stride[bc->ndim - 1];
#pragma omp parallel for if (bc->numel > 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        bcast_row_offsets(bc, r, &oa, &ob);
        binary_row(op, out + r * n, a + oa, sa, b + ob, sb, n);
    }
}

/* One row of the gradient of one operand (side 0: a, 1: b): d[i * sd] +=
 * g[i] * d out / d operand. The op is switched on once per row, not per element. */
static void binary_backward_row(binary_op_t op, int side, float *d, int64_t sd, const float *g, const float *a,
                                int64_t sa, const float *b, int64_t sb, int64_t n) {
    switch (op) {
    case BINARY_ADD:
        for (int64_t i = 0; i < n; i++) d[i * sd] += g[i];
        return;
    case BINARY_SUB:
        if (side == 0)
            for (int64_t i = 0; i < n; i++) d[i * sd] += g[i];
        else
            for (int64_t i = 0; i < n; i++) d[i * sd] -= g[i];
        return;
    case BINARY_MUL:
        if (side == 0)
            for (int64_t i = 0; i < n; i++) d[i * sd] += g[i] * b[i * sb];
        else
            for (int64_t i = 0; i < n; i++) d[i * sd] += g[i] * a[i * sa];
        return;
    case BINARY_DIV:
        if (side == 0)
            for (int64_t i = 0; i < n; i++) d[i * sd] += g[i] / b[i * sb];
        else
            for (int64_t i = 0; i < n; i++) d[i * sd] -= g[i] * a[i * sa] / (b[i * sb] * b[i * sb]);
        return;
    }
}

/* Rows [r0, r1) of the backward, for the operands whose gradient is given.
 * When a and b are one tensor (x * x) their gradients are one buffer: it gets
 * a's then b's term element by element, the order of the serial loop that
 * this replaced, so that the sums stay the same. */
static void binary_backward_rows(binary_op_t op, float *da, float *db, const float *dout, const float *a,
                                 const float *b, const bcast_t *bc, int64_t r0, int64_t r1) {
    int64_t n = bc->ndim ? bc->shape[bc->ndim - 1] : 1;
    int64_t sa = bc->ndim ? bc->a_stride[bc->ndim - 1] : 0, sb = bc->ndim ? bc->b_stride[bc->ndim - 1] : 0;
    for (int64_t r = r0; r < r1; r++) {
        int64_t oa = 0, ob = 0;
        if (bc->ndim) bcast_row_offsets(bc, r, &oa, &ob);
        const float *g = dout + r * n;
        if (da && da == db) {
            for (int64_t i = 0; i < n; i++) {
                binary_backward_row(op, 0, da + oa + i * sa, 0, g + i, a + oa + i * sa, 0, b + ob + i * sb, 0, 1);
                binary_backward_row(op, 1, db + ob + i * sb, 0, g + i, a + oa + i * sa, 0, b + ob + i * sb, 0, 1);
            }
        } else {
            if (da) binary_backward_row(op, 0, da + oa, sa, g, a + oa, sa, b + ob, sb, n);
            if (db) binary_backward_row(op, 1, db + ob, sb, g, a + oa, sa, b + ob, sb, n);
        }
    }
}

/* Several output elements may add into one element of a broadcast operand;
 * each such sum runs in one thread, in row order, so that it is the same on
 * every run and with any thread count. The rows are split into groups along
 * the outermost row dim of size > 1 (dim p): an operand that does not
 * broadcast along p (stride != 0) gets disjoint elements from different
 * groups, so the groups run in parallel for it. An operand that broadcasts
 * along p takes its gradient in a serial pass. Every gradient element gets
 * the same additions in the same order as a serial loop would give it. */
static void cpu_binary_backward(binary_op_t op, float *da, float *db, const float *dout, const float *a,
                                const float *b, const bcast_t *bc) {
    if (bc->numel == 0 || (!da && !db)) return;
    int64_t n = bc->ndim ? bc->shape[bc->ndim - 1] : 1, rows = bc->numel / n;
    int p = -1;
    for (int d = 0; d + 1 < bc->ndim; d++)
        if (bc->shape[d] > 1) {
            p = d;
            break;
        }
    int a_split = da && p >= 0 && bc->a_stride[p] != 0, b_split = db && p >= 0 && bc->b_stride[p] != 0;
    float *par_a = a_split ? da : NULL, *par_b = b_split ? db : NULL;
    float *ser_a = a_split ? NULL : da, *ser_b = b_split ? NULL : db;
    if (par_a || par_b) {
        /* dims before p have size 1: row r is in group r / (rows / shape[p]) */
        int64_t groups = bc->shape[p], per = rows / groups;
#pragma omp parallel for if (bc->numel > 65536)
        for (int64_t gi = 0; gi < groups; gi++)
            binary_backward_rows(op, par_a, par_b, dout, a, b, bc, gi * per, (gi + 1) * per);
    }
    if (ser_a || ser_b) binary_backward_rows(op, ser_a, ser_b, dout, a, b, bc, 0, rows);
}

/* The op is a constant inside each loop, so the switch of unary_apply and
 * unary_derivative folds away: once per element (-O2 does not unswitch loops)
 * it made these kernels 9% of the CPU time of an AAVS head training step.
 * ReLU's forward is also asked to be SIMD: -O2 does not if-convert its select
 * by itself (a blend gives the same values, NaN and -0 included). */
#define UNARY_FORWARD_LOOP(OP)                                                                                   \
    _Pragma("omp parallel for if (n > 16384)") for (int64_t i = 0; i < n; i++) out[i] = unary_apply(OP, in[i])
#define UNARY_FORWARD_LOOP_SIMD(OP)                                                                              \
    _Pragma("omp parallel for simd if (n > 16384)") for (int64_t i = 0; i < n; i++) out[i] = unary_apply(OP, in[i])

static void cpu_unary_forward(unary_op_t op, float *out, const float *in, int64_t n) {
    switch (op) {
    case UNARY_RELU: UNARY_FORWARD_LOOP_SIMD(UNARY_RELU); return;
    case UNARY_GELU: UNARY_FORWARD_LOOP(UNARY_GELU); return;
    case UNARY_SIGMOID: UNARY_FORWARD_LOOP(UNARY_SIGMOID); return;
    case UNARY_EXP: UNARY_FORWARD_LOOP(UNARY_EXP); return;
    case UNARY_LOG: UNARY_FORWARD_LOOP(UNARY_LOG); return;
    case UNARY_SQRT: UNARY_FORWARD_LOOP(UNARY_SQRT); return;
    case UNARY_TANH: UNARY_FORWARD_LOOP(UNARY_TANH); return;
    }
}

#define UNARY_BACKWARD_LOOP(OP)                                                                                  \
    _Pragma("omp parallel for if (n > 16384)") for (int64_t i = 0; i < n; i++) din[i] +=                        \
        dout[i] * unary_derivative(OP, in[i], out ? out[i] : 0.0f)

static void cpu_unary_backward(unary_op_t op, float *din, const float *in, const float *out, const float *dout,
                               int64_t n) {
    switch (op) {
    case UNARY_RELU: UNARY_BACKWARD_LOOP(UNARY_RELU); return;
    case UNARY_GELU: UNARY_BACKWARD_LOOP(UNARY_GELU); return;
    case UNARY_SIGMOID: UNARY_BACKWARD_LOOP(UNARY_SIGMOID); return;
    case UNARY_EXP: UNARY_BACKWARD_LOOP(UNARY_EXP); return;
    case UNARY_LOG: UNARY_BACKWARD_LOOP(UNARY_LOG); return;
    case UNARY_SQRT: UNARY_BACKWARD_LOOP(UNARY_SQRT); return;
    case UNARY_TANH: UNARY_BACKWARD_LOOP(UNARY_TANH); return;
    }
}

static void cpu_reduce_sum(float *out, const float *in, int64_t outer, int64_t len, int64_t inner, int accumulate) {
#pragma omp parallel for if (outer * len * inner > 65536)
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            /* sum in double: reductions feed losses and gradient checks */
            double s = 0.0;
            for (int64_t k = 0; k < len; k++) s += in[(o * len + k) * inner + i];
            if (accumulate) out[o * inner + i] += (float)s;
            else out[o * inner + i] = (float)s;
        }
    }
}

static void cpu_broadcast_add(float *dst, const float *src, int64_t outer, int64_t len, int64_t inner, float alpha) {
#pragma omp parallel for if (outer * len * inner > 65536)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < len; k++)
            for (int64_t i = 0; i < inner; i++) dst[(o * len + k) * inner + i] += alpha * src[o * inner + i];
}

static void cpu_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        /* BLAS leaves C untouched times beta only when k == 0 on some builds; do it here */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

/* Many small products (attention heads, Swin windows) gain nothing from
 * OpenBLAS's own threads and pay their start-up per call: run them in
 * parallel over the batch. OpenBLAS is its OpenMP build (see the Makefile),
 * which runs single-threaded inside a parallel region by itself. Large
 * products keep OpenBLAS's threading. */
static void cpu_gemm_batched(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                             int64_t lda, int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta,
                             float *c, int64_t ldc, int64_t stride_c, int64_t batch) {
    int threads = omp_get_max_threads();
    double flops = 2.0 * (double)m * (double)n * (double)k;
    int small = flops < 8.0e6;
    /* a parallel region costs microseconds of thread wake-up: only worth it
     * when the whole batch is a few MFLOP */
    int worth_threads = flops * (double)batch > 2.0e6;
    if (batch < 2 || threads < 2 || !small || !worth_threads) {
        for (int64_t i = 0; i < batch; i++)
            cpu_gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
                     c + i * stride_c, ldc);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; i++)
        cpu_gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
                 c + i * stride_c, ldc);
}

void cpu_register_core(backend_t *be) {
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->memset_zero = cpu_memset_zero;
    be->copy_from_host = cpu_copy;
    be->copy_to_host = cpu_copy;
    be->copy = cpu_copy;
    be->synchronize = cpu_synchronize;
    be->convert = cpu_convert;
    be->fill = cpu_fill;
    be->axpy = cpu_axpy;
    be->affine = cpu_affine;
    be->binary_forward = cpu_binary_forward;
    be->binary_backward = cpu_binary_backward;
    be->unary_forward = cpu_unary_forward;
    be->unary_backward = cpu_unary_backward;
    be->reduce_sum = cpu_reduce_sum;
    be->broadcast_add = cpu_broadcast_add;
    be->gemm = cpu_gemm;
    be->gemm_batched = cpu_gemm_batched;
}
