/* cuda_spatial.cu - im2col/col2im for convolution, bilinear upsampling and
 * grid sampling (align_corners=False, as PyTorch), forward and backward.
 *
 * Source coordinates are computed with __fmul_rn/__fadd_rn: nvcc would fuse
 * the multiply-add into one FMA, which rounds differently from the CPU's
 * separate operations and can move a coordinate across a pixel boundary. */
#include <math.h>

#include "cuda_kernels.h"

/* ---- im2col / col2im (no dilation) ---- */

/* col[(ci*kh + ki)*kw + kj, oy*ow + ox] = in[ci, oy*sh - ph + ki, ox*sw - pw + kj], 0 outside */
__global__ static void im2col_kernel(float *col, const float *in, int64_t c, int64_t h, int64_t w, int64_t kh,
                                     int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh,
                                     int64_t ow) {
    int64_t n = c * kh * kw * oh * ow;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t ox = t % ow, oy = (t / ow) % oh, row = t / (oh * ow);
        int64_t kj = row % kw, ki = (row / kw) % kh, ci = row / (kh * kw);
        int64_t y = oy * sh - ph + ki, x = ox * sw - pw + kj;
        col[t] = (y >= 0 && y < h && x >= 0 && x < w) ? in[(ci * h + y) * w + x] : 0.0f;
    }
}

/* din[ci, y, x] += every col entry that im2col read from there: a gather per
 * input pixel, so no atomics. */
__global__ static void col2im_kernel(float *din, const float *col, int64_t c, int64_t h, int64_t w, int64_t kh,
                                     int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh,
                                     int64_t ow) {
    int64_t n = c * h * w;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t x = t % w, y = (t / w) % h, ci = t / (h * w);
        float s = 0.0f;
        for (int64_t ki = 0; ki < kh; ki++) {
            int64_t ty = y + ph - ki; /* = oy * sh */
            if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
            int64_t oy = ty / sh;
            for (int64_t kj = 0; kj < kw; kj++) {
                int64_t tx = x + pw - kj;
                if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                int64_t ox = tx / sw;
                s += col[((ci * kh + ki) * kw + kj) * oh * ow + oy * ow + ox];
            }
        }
        din[t] += s;
    }
}

static void check_conv_args(const char *what, int64_t sh, int64_t sw) {
    if (sh <= 0 || sw <= 0) fatal("cuda %s: stride %lldx%lld", what, (long long)sh, (long long)sw);
}

static void cuda_im2col(float *col, const float *in, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                        int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow) {
    check_conv_args("im2col", sh, sw);
    int64_t n = c * kh * kw * oh * ow;
    if (n <= 0) return;
    im2col_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(col, in, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);
    CUDA_CHECK_LAUNCH("im2col_kernel");
}

static void cuda_col2im(float *din, const float *col, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                        int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow) {
    check_conv_args("col2im", sh, sw);
    int64_t n = c * h * w;
    if (n <= 0 || !din) return;
    col2im_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(din, col, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);
    CUDA_CHECK_LAUNCH("col2im_kernel");
}

/* ---- bilinear upsampling, align_corners=False ---- */

/* Source index of destination index dst along an axis of `size` pixels:
 * src = (dst + 0.5) * scale - 0.5, clamped below at 0; i0 = floor(src),
 * i1 = i0 + 1 unless i0 is the last pixel; l1 = src - i0 is i1's weight. */
__device__ static void bilinear_source(int64_t dst, float scale, int64_t size, int64_t *i0, int64_t *i1, float *l0,
                                       float *l1) {
    float src = __fadd_rn(__fmul_rn(__fadd_rn((float)dst, 0.5f), scale), -0.5f);
    if (src < 0.0f) src = 0.0f;
    int64_t f = (int64_t)src;
    if (f > size - 1) f = size - 1; /* only for a scale larger than in/out; keeps reads inside */
    *i0 = f;
    *i1 = f + (f < size - 1 ? 1 : 0);
    *l1 = __fadd_rn(src, -(float)f);
    *l0 = 1.0f - *l1;
}

__global__ static void upsample_forward_kernel(float *out, const float *in, int64_t nc, int64_t h, int64_t w,
                                               int64_t oh, int64_t ow, float scale_h, float scale_w) {
    int64_t n = nc * oh * ow;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t ox = t % ow, oy = (t / ow) % oh, p = t / (oh * ow);
        int64_t y0, y1, x0, x1;
        float ly0, ly1, lx0, lx1;
        bilinear_source(oy, scale_h, h, &y0, &y1, &ly0, &ly1);
        bilinear_source(ox, scale_w, w, &x0, &x1, &lx0, &lx1);
        const float *src = in + p * h * w;
        out[t] = ly0 * (lx0 * src[y0 * w + x0] + lx1 * src[y0 * w + x1]) +
                 ly1 * (lx0 * src[y1 * w + x0] + lx1 * src[y1 * w + x1]);
    }
}

/* din += the four weighted shares of each dout pixel; neighbouring outputs
 * share inputs, so the adds are atomic. */
__global__ static void upsample_backward_kernel(float *din, const float *dout, int64_t nc, int64_t h, int64_t w,
                                                int64_t oh, int64_t ow, float scale_h, float scale_w) {
    int64_t n = nc * oh * ow;
    for (int64_t t = grid_start(); t < n; t += grid_step()) {
        int64_t ox = t % ow, oy = (t / ow) % oh, p = t / (oh * ow);
        int64_t y0, y1, x0, x1;
        float ly0, ly1, lx0, lx1;
        bilinear_source(oy, scale_h, h, &y0, &y1, &ly0, &ly1);
        bilinear_source(ox, scale_w, w, &x0, &x1, &lx0, &lx1);
        float g = dout[t];
        float *dst = din + p * h * w;
        atomicAdd(&dst[y0 * w + x0], ly0 * lx0 * g);
        atomicAdd(&dst[y0 * w + x1], ly0 * lx1 * g);
        atomicAdd(&dst[y1 * w + x0], ly1 * lx0 * g);
        atomicAdd(&dst[y1 * w + x1], ly1 * lx1 * g);
    }
}

static void cuda_upsample_bilinear_forward(float *out, const float *in, int64_t nc, int64_t h, int64_t w, int64_t oh,
                                           int64_t ow, float scale_h, float scale_w) {
    int64_t n = nc * oh * ow;
    if (n <= 0) return;
    if (h <= 0 || w <= 0) fatal("cuda upsample_bilinear: empty input %lldx%lld", (long long)h, (long long)w);
    upsample_forward_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(out, in, nc, h, w, oh, ow, scale_h, scale_w);
    CUDA_CHECK_LAUNCH("upsample_forward_kernel");
}

static void cuda_upsample_bilinear_backward(float *din, const float *dout, int64_t nc, int64_t h, int64_t w,
                                            int64_t oh, int64_t ow, float scale_h, float scale_w) {
    int64_t n = nc * oh * ow;
    if (n <= 0 || !din) return;
    if (h <= 0 || w <= 0) fatal("cuda upsample_bilinear: empty input %lldx%lld", (long long)h, (long long)w);
    upsample_backward_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(din, dout, nc, h, w, oh, ow, scale_h, scale_w);
    CUDA_CHECK_LAUNCH("upsample_backward_kernel");
}

/* ---- grid_sample: bilinear, zeros padding, align_corners=False ---- */

/* The four neighbours of a grid point, as cpu_spatial.c: pixel position
 * ix = ((gx + 1) * w - 1) / 2 (likewise iy), corner (x0, y0) = floor, and the
 * far corners' weights wx1 = ix - x0, wy1 = iy - y0. */
typedef struct {
    float ix, iy;
    int64_t x0, y0;
    float wx1, wy1;
} grid_point_t;

__device__ static grid_point_t grid_point(const float *g, int64_t h, int64_t w) {
    grid_point_t p;
    p.ix = __fmul_rn(__fadd_rn(__fmul_rn(__fadd_rn(g[0], 1.0f), (float)w), -1.0f), 0.5f);
    p.iy = __fmul_rn(__fadd_rn(__fmul_rn(__fadd_rn(g[1], 1.0f), (float)h), -1.0f), 0.5f);
    /* Far outside the image every corner is padding whatever the weights; the
     * clamp keeps the integer conversion defined (and a NaN lands outside). */
    p.ix = fminf(fmaxf(p.ix, -2.0f), (float)w + 1.0f);
    p.iy = fminf(fmaxf(p.iy, -2.0f), (float)h + 1.0f);
    float fx = floorf(p.ix), fy = floorf(p.iy);
    p.x0 = (int64_t)fx;
    p.y0 = (int64_t)fy;
    p.wx1 = __fadd_rn(p.ix, -fx);
    p.wy1 = __fadd_rn(p.iy, -fy);
    return p;
}

__device__ static int inside(int64_t y, int64_t x, int64_t h, int64_t w) {
    return y >= 0 && y < h && x >= 0 && x < w;
}

/* the pixel (y, x) of plane, 0 outside it (zeros padding) */
__device__ static float pixel(const float *plane, int64_t y, int64_t x, int64_t h, int64_t w) {
    return inside(y, x, h, w) ? plane[y * w + x] : 0.0f;
}

/* One thread per output location (n, yo, xo), looping over the channels: the
 * coordinates are computed once per location. */
__global__ static void grid_sample_forward_kernel(float *out, const float *in, const float *grid, int64_t n,
                                                  int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo) {
    int64_t points = ho * wo;
    for (int64_t q = grid_start(); q < n * points; q += grid_step()) {
        int64_t b = q / points, k = q % points;
        grid_point_t p = grid_point(grid + q * 2, h, w);
        float wx0 = 1.0f - p.wx1, wy0 = 1.0f - p.wy1;
        for (int64_t ci = 0; ci < c; ci++) {
            const float *plane = in + (b * c + ci) * h * w;
            out[(b * c + ci) * points + k] =
                wy0 * (wx0 * pixel(plane, p.y0, p.x0, h, w) + p.wx1 * pixel(plane, p.y0, p.x0 + 1, h, w)) +
                p.wy1 * (wx0 * pixel(plane, p.y0 + 1, p.x0, h, w) + p.wx1 * pixel(plane, p.y0 + 1, p.x0 + 1, h, w));
        }
    }
}

/* Per location: din gets each dout value's four weighted shares (atomic:
 * locations share pixels); dgrid += (w/2, h/2) * sum over channels of
 * dout * d(value)/d(ix, iy), summed in double as cpu_spatial.c. */
__global__ static void grid_sample_backward_kernel(float *din, float *dgrid, const float *dout, const float *in,
                                                   const float *grid, int64_t n, int64_t c, int64_t h, int64_t w,
                                                   int64_t ho, int64_t wo) {
    int64_t points = ho * wo;
    for (int64_t q = grid_start(); q < n * points; q += grid_step()) {
        int64_t b = q / points, k = q % points;
        grid_point_t p = grid_point(grid + q * 2, h, w);
        float wx0 = 1.0f - p.wx1, wy0 = 1.0f - p.wy1;
        double gx = 0.0, gy = 0.0;
        for (int64_t ci = 0; ci < c; ci++) {
            const float *plane = in + (b * c + ci) * h * w;
            float v = dout[(b * c + ci) * points + k];
            if (dgrid) {
                double g = v;
                double v00 = pixel(plane, p.y0, p.x0, h, w), v01 = pixel(plane, p.y0, p.x0 + 1, h, w);
                double v10 = pixel(plane, p.y0 + 1, p.x0, h, w), v11 = pixel(plane, p.y0 + 1, p.x0 + 1, h, w);
                gx += g * ((1.0 - p.wy1) * (v01 - v00) + p.wy1 * (v11 - v10));
                gy += g * ((1.0 - p.wx1) * (v10 - v00) + p.wx1 * (v11 - v01));
            }
            if (din) {
                float *dplane = din + (b * c + ci) * h * w;
                if (inside(p.y0, p.x0, h, w)) atomicAdd(&dplane[p.y0 * w + p.x0], wy0 * wx0 * v);
                if (inside(p.y0, p.x0 + 1, h, w)) atomicAdd(&dplane[p.y0 * w + p.x0 + 1], wy0 * p.wx1 * v);
                if (inside(p.y0 + 1, p.x0, h, w)) atomicAdd(&dplane[(p.y0 + 1) * w + p.x0], p.wy1 * wx0 * v);
                if (inside(p.y0 + 1, p.x0 + 1, h, w))
                    atomicAdd(&dplane[(p.y0 + 1) * w + p.x0 + 1], p.wy1 * p.wx1 * v);
            }
        }
        if (dgrid) {
            /* d ix / d gx = w / 2 for align_corners=False */
            dgrid[q * 2] += (float)(gx * (double)w * 0.5);
            dgrid[q * 2 + 1] += (float)(gy * (double)h * 0.5);
        }
    }
}

static void cuda_grid_sample_forward(float *out, const float *in, const float *grid, int64_t n, int64_t c, int64_t h,
                                     int64_t w, int64_t ho, int64_t wo) {
    int64_t locs = n * ho * wo;
    if (locs <= 0 || c <= 0) return;
    grid_sample_forward_kernel<<<cuda_blocks(locs), CUDA_THREADS>>>(out, in, grid, n, c, h, w, ho, wo);
    CUDA_CHECK_LAUNCH("grid_sample_forward_kernel");
}

static void cuda_grid_sample_backward(float *din, float *dgrid, const float *dout, const float *in, const float *grid,
                                      int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo) {
    int64_t locs = n * ho * wo;
    if (locs <= 0 || (!din && !dgrid)) return;
    grid_sample_backward_kernel<<<cuda_blocks(locs), CUDA_THREADS>>>(din, dgrid, dout, in, grid, n, c, h, w, ho, wo);
    CUDA_CHECK_LAUNCH("grid_sample_backward_kernel");
}

void cuda_register_spatial(backend_t *be) {
    be->im2col = cuda_im2col;
    be->col2im = cuda_col2im;
    be->upsample_bilinear_forward = cuda_upsample_bilinear_forward;
    be->upsample_bilinear_backward = cuda_upsample_bilinear_backward;
    be->grid_sample_forward = cuda_grid_sample_forward;
    be->grid_sample_backward = cuda_grid_sample_backward;
}
