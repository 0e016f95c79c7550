/* cpu_pool.c - CPU kernels: 2-D max pooling forward and backward.
 *
 * Both walk the output windows; the backward recomputes each winner (see
 * backend.h) and adds the output gradient to it. Windows may overlap when the
 * stride is smaller than the kernel, so each thread owns whole planes. */
#include <math.h>

#include "cpu_kernels.h"

/* Index within the plane of the winner of output cell (oy, ox): the first
 * maximum in row-major order, a NaN winning over any number (torch's
 * `val > max || isnan(val)`). Every window holds at least one real cell
 * because padding is at most half the kernel. */
static int64_t window_winner(const float *plane, const pool2d_t *p, int64_t oy, int64_t ox) {
    int64_t y0 = oy * p->sh - p->ph, x0 = ox * p->sw - p->pw;
    int64_t y1 = y0 + p->kh < p->h ? y0 + p->kh : p->h, x1 = x0 + p->kw < p->w ? x0 + p->kw : p->w;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    int64_t best = y0 * p->w + x0;
    float best_value = -INFINITY;
    for (int64_t y = y0; y < y1; y++) {
        for (int64_t x = x0; x < x1; x++) {
            float v = plane[y * p->w + x];
            if (v > best_value || isnan(v)) {
                best_value = v;
                best = y * p->w + x;
            }
        }
    }
    return best;
}

static void cpu_maxpool2d_forward(float *out, const float *in, const pool2d_t *p) {
#pragma omp parallel for if (p->planes * p->oh * p->ow * p->kh * p->kw > 65536)
    for (int64_t c = 0; c < p->planes; c++) {
        const float *plane = in + c * p->h * p->w;
        float *dst = out + c * p->oh * p->ow;
        for (int64_t oy = 0; oy < p->oh; oy++)
            for (int64_t ox = 0; ox < p->ow; ox++) dst[oy * p->ow + ox] = plane[window_winner(plane, p, oy, ox)];
    }
}

static void cpu_maxpool2d_backward(float *din, const float *dout, const float *in, const pool2d_t *p) {
    if (!din) return;
#pragma omp parallel for if (p->planes * p->oh * p->ow * p->kh * p->kw > 65536)
    for (int64_t c = 0; c < p->planes; c++) {
        const float *plane = in + c * p->h * p->w;
        const float *g = dout + c * p->oh * p->ow;
        float *d = din + c * p->h * p->w;
        for (int64_t oy = 0; oy < p->oh; oy++)
            for (int64_t ox = 0; ox < p->ow; ox++) d[window_winner(plane, p, oy, ox)] += g[oy * p->ow + ox];
    }
}

void cpu_register_pool(backend_t *be) {
    be->maxpool2d_forward = cpu_maxpool2d_forward;
    be->maxpool2d_backward = cpu_maxpool2d_backward;
}
