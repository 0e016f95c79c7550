/* cpu_layout.c - CPU kernels: embedding lookup, slice copies, strided
 * (permute) copies and roll.
 *
 * Copies write each output element once, so they run under OpenMP even when
 * accumulating. The embedding backward adds repeated indices into the same
 * row: it runs over the rows serially (the sum order is fixed) and splits the
 * columns across threads instead. */
#include <string.h>

#include "cpu_kernels.h"

static void cpu_embedding_forward(float *out, const float *weight, const int64_t *idx, int64_t n, int64_t vocab,
                                  int64_t dim) {
#pragma omp parallel for if (n * dim > 65536)
    for (int64_t i = 0; i < n; i++) {
        float *dst = out + i * dim;
        int64_t k = idx[i];
        if (k < 0 || k >= vocab) memset(dst, 0, (size_t)dim * sizeof(float));
        else memcpy(dst, weight + k * dim, (size_t)dim * sizeof(float));
    }
}

static void cpu_embedding_backward(float *dweight, const float *dout, const int64_t *idx, int64_t n, int64_t vocab,
                                   int64_t dim) {
#pragma omp parallel for if (n * dim > 65536)
    for (int64_t j = 0; j < dim; j++) {
        for (int64_t i = 0; i < n; i++) {
            int64_t k = idx[i];
            if (k >= 0 && k < vocab) dweight[k * dim + j] += dout[i * dim + j];
        }
    }
}

static void cpu_slice_copy(float *dst, const float *src, int64_t outer, int64_t inner, int64_t dst_len,
                           int64_t dst_start, int64_t src_len, int64_t src_start, int64_t len, int accumulate) {
    /* For one o the rows k < len are one run of len * inner contiguous
     * elements in both. Copying by runs, not by rows, matters when inner is
     * small: concatenating [.., 4] point blocks along the last dim (the
     * composed deformable attention) made one call per float, 15% of an AAVS
     * head training step.
     * Long runs are cut into chunks so that a few of them still fill the threads. */
    int64_t run = len * inner;
    if (outer <= 0 || run <= 0) return;
    const int64_t chunk = 16384;
    int64_t pieces = (run + chunk - 1) / chunk;
#pragma omp parallel for if (outer * run > 65536)
    for (int64_t t = 0; t < outer * pieces; t++) {
        int64_t o = t / pieces, c0 = (t % pieces) * chunk;
        int64_t n = run - c0 < chunk ? run - c0 : chunk;
        float *d = dst + (o * dst_len + dst_start) * inner + c0;
        const float *s = src + (o * src_len + src_start) * inner + c0;
        if (accumulate) {
            for (int64_t i = 0; i < n; i++) d[i] += s[i];
        } else {
            memcpy(d, s, (size_t)n * sizeof(float));
        }
    }
}

static void cpu_strided_copy(float *out, const float *in, const strided_t *st, int accumulate) {
    int nd = st->ndim;
    /* the innermost dim is walked directly; the offset of each row once */
    int64_t last = nd > 0 ? st->out_shape[nd - 1] : 1;
    int64_t last_stride = nd > 0 ? st->in_stride[nd - 1] : 0;
    int64_t rows = last ? st->numel / last : 0;
#pragma omp parallel for if (st->numel > 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0, rem = r;
        for (int d = nd - 2; d >= 0; d--) {
            off += (rem % st->out_shape[d]) * st->in_stride[d];
            rem /= st->out_shape[d];
        }
        float *o = out + r * last;
        const float *s = in + off;
        if (accumulate) {
            for (int64_t i = 0; i < last; i++) o[i] += s[i * last_stride];
        } else {
            for (int64_t i = 0; i < last; i++) o[i] = s[i * last_stride];
        }
    }
}

static void cpu_roll(float *out, const float *in, int ndim, const int64_t *shape, const int64_t *shifts,
                     int accumulate) {
    int64_t numel = 1, sh[BCAST_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        numel *= shape[d];
        /* any shift, negative or beyond the size, taken modulo the size */
        sh[d] = shape[d] ? ((shifts[d] % shape[d]) + shape[d]) % shape[d] : 0;
    }
#pragma omp parallel for if (numel > 65536)
    for (int64_t i = 0; i < numel; i++) {
        int64_t src = 0, rem = i, stride = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            int64_t idx = rem % shape[d];
            rem /= shape[d];
            int64_t from = idx - sh[d];
            if (from < 0) from += shape[d];
            src += from * stride;
            stride *= shape[d];
        }
        if (accumulate) out[i] += in[src];
        else out[i] = in[src];
    }
}

void cpu_register_layout(backend_t *be) {
    be->embedding_forward = cpu_embedding_forward;
    be->embedding_backward = cpu_embedding_backward;
    be->slice_copy = cpu_slice_copy;
    be->strided_copy = cpu_strided_copy;
    be->roll = cpu_roll;
}
