/* cpu_norm.c - CPU kernels: softmax, layer norm and group norm.
 *
 * Statistics (softmax sums, means, variances) are accumulated in double: the
 * rows are short enough for that to cost nothing, and it keeps the f32 results
 * within rounding of PyTorch's float64 reference. Forward loops run under
 * OpenMP over independent rows; the weight/bias gradients are summed per
 * channel in a fixed order, so every run gives the same bits. */
#include <math.h>

#include "cpu_kernels.h"

/* ---- softmax over the middle axis of [outer, len, inner] ---- */

static void cpu_softmax_forward(float *out, const float *in, int64_t outer, int64_t len, int64_t inner) {
    int64_t lines = outer * inner;
#pragma omp parallel for if (lines * len > 32768)
    for (int64_t l = 0; l < lines; l++) {
        const float *x = in + (l / inner) * len * inner + l % inner;
        float *y = out + (l / inner) * len * inner + l % inner;
        /* The max is taken with `>` so a NaN input is not skipped silently, and a
         * line of -inf (every key masked) gives -inf - -inf = NaN, as torch does. */
        float m = -INFINITY;
        for (int64_t k = 0; k < len; k++)
            if (x[k * inner] > m || isnan(x[k * inner])) m = x[k * inner];
        /* x[k] is read before y[k] is written, so out may alias in */
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

/* din += y * (dy - sum(dy * y)) along the softmax axis */
static void cpu_softmax_backward(float *din, const float *out, const float *dout, int64_t outer, int64_t len,
                                 int64_t inner) {
    int64_t lines = outer * inner;
#pragma omp parallel for if (lines * len > 32768)
    for (int64_t l = 0; l < lines; l++) {
        int64_t base = (l / inner) * len * inner + l % inner;
        const float *y = out + base, *dy = dout + base;
        double dot = 0.0;
        for (int64_t k = 0; k < len; k++) dot += (double)dy[k * inner] * (double)y[k * inner];
        float *dx = din + base;
        for (int64_t k = 0; k < len; k++) dx[k * inner] += (float)((double)y[k * inner] * ((double)dy[k * inner] - dot));
    }
}

/* ---- shared by layer norm and group norm ---- */

/* Mean and 1/sqrt(biased variance + eps) of n contiguous values, two-pass. */
static void moments(const float *x, int64_t n, float eps, float *mean, float *rstd) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    double mu = n ? s / (double)n : 0.0;
    double v = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - mu;
        v += d * d;
    }
    v = n ? v / (double)n : 0.0;
    *mean = (float)mu;
    *rstd = (float)(1.0 / sqrt(v + (double)eps));
}

/* ---- layer norm over rows of `dim` ---- */

static void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *w,
                                  const float *b, int64_t rows, int64_t dim, float eps) {
#pragma omp parallel for if (rows * dim > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * dim;
        float *y = out + r * dim;
        float mu, rs;
        moments(x, dim, eps, &mu, &rs);
        mean[r] = mu;
        rstd[r] = rs;
        for (int64_t j = 0; j < dim; j++) {
            float v = (x[j] - mu) * rs;
            if (w) v *= w[j];
            if (b) v += b[j];
            y[j] = v;
        }
    }
}

/* With xhat = (x - mean) * rstd and g = dy * w:
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
 *   dw = sum over rows of dy * xhat, db = sum over rows of dy. */
static void cpu_layernorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                                   const float *w, const float *mean, const float *rstd, int64_t rows,
                                   int64_t dim) {
    if (din) {
#pragma omp parallel for if (rows * dim > 32768)
        for (int64_t r = 0; r < rows; r++) {
            const float *x = in + r * dim, *dy = dout + r * dim;
            double mu = mean[r], rs = rstd[r];
            double sg = 0.0, sgx = 0.0;
            for (int64_t j = 0; j < dim; j++) {
                double g = (double)dy[j] * (w ? (double)w[j] : 1.0);
                sg += g;
                sgx += g * ((double)x[j] - mu) * rs;
            }
            double mg = sg / (double)dim, mgx = sgx / (double)dim;
            float *dx = din + r * dim;
            for (int64_t j = 0; j < dim; j++) {
                double g = (double)dy[j] * (w ? (double)w[j] : 1.0);
                double xh = ((double)x[j] - mu) * rs;
                dx[j] += (float)(rs * (g - mg - xh * mgx));
            }
        }
    }
    if (dw || db) {
        /* one column per iteration: each column's sum runs over the rows in order */
#pragma omp parallel for if (rows * dim > 32768)
        for (int64_t j = 0; j < dim; j++) {
            double sw = 0.0, sb = 0.0;
            for (int64_t r = 0; r < rows; r++) {
                double dy = dout[r * dim + j];
                sw += dy * ((double)in[r * dim + j] - (double)mean[r]) * (double)rstd[r];
                sb += dy;
            }
            if (dw) dw[j] += (float)sw;
            if (db) db[j] += (float)sb;
        }
    }
}

/* ---- group norm: in [n, c, hw], each (sample, group) is a contiguous run of (c/groups)*hw ---- */

static void cpu_groupnorm_forward(float *out, float *mean, float *rstd, const float *in, const float *w,
                                  const float *b, int64_t n, int64_t c, int64_t hw, int64_t groups, float eps) {
    int64_t cg = c / groups, len = cg * hw;
#pragma omp parallel for if (n * c * hw > 32768)
    for (int64_t ng = 0; ng < n * groups; ng++) {
        const float *x = in + ng * len;
        float *y = out + ng * len;
        float mu, rs;
        moments(x, len, eps, &mu, &rs);
        mean[ng] = mu;
        rstd[ng] = rs;
        int64_t c0 = (ng % groups) * cg;
        for (int64_t ci = 0; ci < cg; ci++) {
            float scale = w ? w[c0 + ci] * rs : rs;
            float shift = (b ? b[c0 + ci] : 0.0f) - mu * scale;
            for (int64_t i = 0; i < hw; i++) y[ci * hw + i] = x[ci * hw + i] * scale + shift;
        }
    }
}

/* As layer norm, with the statistics over each (sample, group) and the
 * per-channel weight inside g = dy * w[c]. */
static void cpu_groupnorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                                   const float *w, const float *mean, const float *rstd, int64_t n, int64_t c,
                                   int64_t hw, int64_t groups) {
    int64_t cg = c / groups, len = cg * hw;
    if (din) {
#pragma omp parallel for if (n * c * hw > 32768)
        for (int64_t ng = 0; ng < n * groups; ng++) {
            const float *x = in + ng * len, *dy = dout + ng * len;
            double mu = mean[ng], rs = rstd[ng];
            int64_t c0 = (ng % groups) * cg;
            double sg = 0.0, sgx = 0.0;
            for (int64_t ci = 0; ci < cg; ci++) {
                double wc = w ? (double)w[c0 + ci] : 1.0;
                for (int64_t i = 0; i < hw; i++) {
                    double g = (double)dy[ci * hw + i] * wc;
                    sg += g;
                    sgx += g * ((double)x[ci * hw + i] - mu) * rs;
                }
            }
            double mg = len ? sg / (double)len : 0.0, mgx = len ? sgx / (double)len : 0.0;
            float *dx = din + ng * len;
            for (int64_t ci = 0; ci < cg; ci++) {
                double wc = w ? (double)w[c0 + ci] : 1.0;
                for (int64_t i = 0; i < hw; i++) {
                    double xh = ((double)x[ci * hw + i] - mu) * rs;
                    dx[ci * hw + i] += (float)(rs * ((double)dy[ci * hw + i] * wc - mg - xh * mgx));
                }
            }
        }
    }
    if (dw || db) {
        /* one channel per iteration, summed over samples and positions in order */
#pragma omp parallel for if (n * c * hw > 32768)
        for (int64_t ch = 0; ch < c; ch++) {
            double sw = 0.0, sb = 0.0;
            for (int64_t s = 0; s < n; s++) {
                int64_t ng = s * groups + ch / cg;
                double mu = mean[ng], rs = rstd[ng];
                const float *x = in + (s * c + ch) * hw, *dy = dout + (s * c + ch) * hw;
                for (int64_t i = 0; i < hw; i++) {
                    sw += (double)dy[i] * ((double)x[i] - mu) * rs;
                    sb += dy[i];
                }
            }
            if (dw) dw[ch] += (float)sw;
            if (db) db[ch] += (float)sb;
        }
    }
}

void cpu_register_norm(backend_t *be) {
    be->softmax_forward = cpu_softmax_forward;
    be->softmax_backward = cpu_softmax_backward;
    be->layernorm_forward = cpu_layernorm_forward;
    be->layernorm_backward = cpu_layernorm_backward;
    be->groupnorm_forward = cpu_groupnorm_forward;
    be->groupnorm_backward = cpu_groupnorm_backward;
}
