/* cuda_pool.cu - 2-D max pooling (torch.nn.MaxPool2d, floor mode, no
 * dilation), forward and backward.
 *
 * The winner of a window is found the same way in both directions: cells are
 * visited in row-major window order, padded cells are skipped, and a cell
 * replaces the best so far when it is larger or NaN (PyTorch's test,
 * `val > maxval || isnan(val)`), so the first of equal maxima wins. As in
 * PyTorch the search starts from -inf at the window's first in-image cell,
 * which therefore wins a window of -inf. */
#include <math.h>

#include "cuda_kernels.h"

/* Offset within its plane of the winner of output (oy, ox), or -1 for a
 * window with no cell inside the image; *best gets the winning value. */
__device__ static int64_t window_winner(const float *plane, const pool2d_t &p, int64_t oy, int64_t ox, float *best) {
    int64_t y0 = oy * p.sh - p.ph, x0 = ox * p.sw - p.pw;
    int64_t ya = y0 < 0 ? 0 : y0, xa = x0 < 0 ? 0 : x0;
    int64_t yb = y0 + p.kh < p.h ? y0 + p.kh : p.h, xb = x0 + p.kw < p.w ? x0 + p.kw : p.w;
    float m = -INFINITY;
    int64_t at = (ya < yb && xa < xb) ? ya * p.w + xa : -1;
    for (int64_t y = ya; y < yb; y++) {
        for (int64_t x = xa; x < xb; x++) {
            float v = plane[y * p.w + x];
            if (v > m || isnan(v)) {
                m = v;
                at = y * p.w + x;
            }
        }
    }
    *best = m;
    return at;
}

__global__ static void maxpool_forward_kernel(float *out, const float *in, pool2d_t p) {
    int64_t n = p.planes * p.oh * p.ow;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t ox = t % p.ow, oy = (t / p.ow) % p.oh, pl = t / (p.oh * p.ow);
        float best;
        window_winner(in + pl * p.h * p.w, p, oy, ox, &best);
        out[t] = best;
    }
}

/* din[winner] += dout; overlapping windows (stride < kernel) can share a
 * winner, so the add is atomic. */
__global__ static void maxpool_backward_kernel(float *din, const float *dout, const float *in, pool2d_t p) {
    int64_t n = p.planes * p.oh * p.ow;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t ox = t % p.ow, oy = (t / p.ow) % p.oh, pl = t / (p.oh * p.ow);
        float best;
        int64_t at = window_winner(in + pl * p.h * p.w, p, oy, ox, &best);
        if (at >= 0) atomicAdd(&din[pl * p.h * p.w + at], dout[t]);
    }
}

static void check_pool(const char *what, const pool2d_t *p) {
    if (p->kh <= 0 || p->kw <= 0 || p->sh <= 0 || p->sw <= 0 || p->ph < 0 || p->pw < 0)
        fatal("cuda %s: kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld", what, (long long)p->kh,
              (long long)p->kw, (long long)p->sh, (long long)p->sw, (long long)p->ph, (long long)p->pw);
}

static void cuda_maxpool2d_forward(float *out, const float *in, const pool2d_t *p) {
    check_pool("maxpool2d_forward", p);
    int64_t n = p->planes * p->oh * p->ow;
    if (n <= 0) return;
    maxpool_forward_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(out, in, *p);
    CUDA_CHECK_LAUNCH("maxpool_forward_kernel");
}

static void cuda_maxpool2d_backward(float *din, const float *dout, const float *in, const pool2d_t *p) {
    check_pool("maxpool2d_backward", p);
    int64_t n = p->planes * p->oh * p->ow;
    if (n <= 0 || !din) return;
    maxpool_backward_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(din, dout, in, *p);
    CUDA_CHECK_LAUNCH("maxpool_backward_kernel");
}

void cuda_register_pool(backend_t *be) {
    be->maxpool2d_forward = cuda_maxpool2d_forward;
    be->maxpool2d_backward = cuda_maxpool2d_backward;
}
