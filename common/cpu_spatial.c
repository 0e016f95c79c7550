/* cpu_spatial.c - CPU kernels: im2col/col2im for convolution, bilinear
 * resizing and bilinear grid sampling (PyTorch's align_corners=False rules).
 *
 * Forward loops run under OpenMP over independent outputs. Backward kernels
 * scatter into shared input pixels, so each thread owns whole planes (one
 * channel of one image) and scatters into them serially: the sum order, and
 * so the result, is the same on every run. */
#include <math.h>

#include "cpu_kernels.h"

/* ---- im2col / col2im ----
 * col row r = (ci * kh + ki) * kw + kj, column p = oy * ow + ox holds
 * in[ci, oy * sh - ph + ki, ox * sw - pw + kj] (0 outside the image). */

static void cpu_im2col(float *col, const float *in, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow) {
    int64_t rows = c * kh * kw;
#pragma omp parallel for if (rows * oh * ow > 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t kj = r % kw, ki = (r / kw) % kh, ci = r / (kw * kh);
        const float *plane = in + ci * h * w;
        float *dst = col + r * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t y = oy * sh - ph + ki;
            float *row = dst + oy * ow;
            if (y < 0 || y >= h) {
                for (int64_t ox = 0; ox < ow; ox++) row[ox] = 0.0f;
                continue;
            }
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t x = ox * sw - pw + kj;
                row[ox] = (x >= 0 && x < w) ? plane[y * w + x] : 0.0f;
            }
        }
    }
}

static void cpu_col2im(float *din, const float *col, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow) {
    /* overlapping windows add into the same pixel: one thread per channel */
#pragma omp parallel for if (c * kh * kw * oh * ow > 65536)
    for (int64_t ci = 0; ci < c; ci++) {
        float *plane = din + ci * h * w;
        for (int64_t ki = 0; ki < kh; ki++) {
            for (int64_t kj = 0; kj < kw; kj++) {
                const float *src = col + ((ci * kh + ki) * kw + kj) * oh * ow;
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t y = oy * sh - ph + ki;
                    if (y < 0 || y >= h) continue;
                    for (int64_t ox = 0; ox < ow; ox++) {
                        int64_t x = ox * sw - pw + kj;
                        if (x >= 0 && x < w) plane[y * w + x] += src[oy * ow + ox];
                    }
                }
            }
        }
    }
}

/* ---- bilinear resize, align_corners=False ---- */

/* torch's area_pixel_compute_source_index and neighbours: source position
 * (dst + 0.5) * scale - 0.5, clamped below at 0; i1 is i0 + 1 except at the
 * last pixel. */
typedef struct {
    int64_t i0, i1;
    float l0, l1; /* weights of i0 and i1 */
} lerp_t;

static lerp_t source_index(int64_t dst, float scale, int64_t in_size) {
    float src = ((float)dst + 0.5f) * scale - 0.5f;
    if (src < 0.0f) src = 0.0f;
    lerp_t l;
    l.i0 = (int64_t)src;
    if (l.i0 > in_size - 1) l.i0 = in_size - 1;
    l.i1 = l.i0 + (l.i0 < in_size - 1 ? 1 : 0);
    l.l1 = src - (float)l.i0;
    l.l0 = 1.0f - l.l1;
    return l;
}

static void cpu_upsample_bilinear_forward(float *out, const float *in, int64_t nc, int64_t h, int64_t w, int64_t oh,
                                          int64_t ow, float scale_h, float scale_w) {
#pragma omp parallel for if (nc * oh * ow > 16384)
    for (int64_t p = 0; p < nc; p++) {
        const float *src = in + p * h * w;
        float *dst = out + p * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++) {
            lerp_t ly = source_index(oy, scale_h, h);
            for (int64_t ox = 0; ox < ow; ox++) {
                lerp_t lx = source_index(ox, scale_w, w);
                dst[oy * ow + ox] = ly.l0 * (lx.l0 * src[ly.i0 * w + lx.i0] + lx.l1 * src[ly.i0 * w + lx.i1]) +
                                    ly.l1 * (lx.l0 * src[ly.i1 * w + lx.i0] + lx.l1 * src[ly.i1 * w + lx.i1]);
            }
        }
    }
}

static void cpu_upsample_bilinear_backward(float *din, const float *dout, int64_t nc, int64_t h, int64_t w,
                                           int64_t oh, int64_t ow, float scale_h, float scale_w) {
    /* each plane scatters into its own input plane only: one thread per plane */
#pragma omp parallel for if (nc * oh * ow > 16384)
    for (int64_t p = 0; p < nc; p++) {
        float *dst = din + p * h * w;
        const float *g = dout + p * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++) {
            lerp_t ly = source_index(oy, scale_h, h);
            for (int64_t ox = 0; ox < ow; ox++) {
                lerp_t lx = source_index(ox, scale_w, w);
                float v = g[oy * ow + ox];
                dst[ly.i0 * w + lx.i0] += ly.l0 * lx.l0 * v;
                dst[ly.i0 * w + lx.i1] += ly.l0 * lx.l1 * v;
                dst[ly.i1 * w + lx.i0] += ly.l1 * lx.l0 * v;
                dst[ly.i1 * w + lx.i1] += ly.l1 * lx.l1 * v;
            }
        }
    }
}

/* ---- grid sample: bilinear, zeros padding, align_corners=False ---- */

/* The four neighbours of a grid point: pixel position ix = ((gx + 1) * w - 1) / 2
 * (likewise iy), corner (x0, y0) = floor, weights as torch's nw/ne/sw/se. */
typedef struct {
    float ix, iy;
    int64_t x0, y0;
    float wx1, wy1; /* ix - x0, iy - y0: weights of the far corners */
} gs_point_t;

/* fminf(fmaxf(v, -2), hi), NaN giving -2 as fmaxf does, without the libm
 * calls that -O2 keeps for fminf/fmaxf (their NaN rules differ from minss) */
static float gs_clamp(float v, float hi) {
    v = v > -2.0f ? v : -2.0f;
    return v < hi ? v : hi;
}

static gs_point_t gs_point(const float *g, int64_t h, int64_t w) {
    gs_point_t p;
    p.ix = ((g[0] + 1.0f) * (float)w - 1.0f) * 0.5f;
    p.iy = ((g[1] + 1.0f) * (float)h - 1.0f) * 0.5f;
    /* Far outside the image every corner is padding whatever the weights; the
     * clamp keeps the integer conversion below defined for huge coordinates. */
    p.ix = gs_clamp(p.ix, (float)w + 1.0f);
    p.iy = gs_clamp(p.iy, (float)h + 1.0f);
    float fx = floorf(p.ix), fy = floorf(p.iy);
    p.x0 = (int64_t)fx;
    p.y0 = (int64_t)fy;
    p.wx1 = p.ix - fx;
    p.wy1 = p.iy - fy;
    return p;
}

/* whether pixel (y, x) is in the plane (outside it reads as 0: zeros padding) */
static int gs_inside(int64_t y, int64_t x, int64_t h, int64_t w) { return y >= 0 && y < h && x >= 0 && x < w; }

static void cpu_grid_sample_forward(float *out, const float *in, const float *grid, int64_t n, int64_t c, int64_t h,
                                    int64_t w, int64_t ho, int64_t wo) {
    int64_t points = ho * wo;
#pragma omp parallel for if (n * points * c > 16384)
    for (int64_t q = 0; q < n * points; q++) {
        int64_t b = q / points, k = q % points;
        gs_point_t p = gs_point(grid + q * 2, h, w);
        float wx0 = 1.0f - p.wx1, wy0 = 1.0f - p.wy1;
        /* which corners are inside, and where, once per point, not per channel */
        int i00 = gs_inside(p.y0, p.x0, h, w), i01 = gs_inside(p.y0, p.x0 + 1, h, w);
        int i10 = gs_inside(p.y0 + 1, p.x0, h, w), i11 = gs_inside(p.y0 + 1, p.x0 + 1, h, w);
        int64_t o00 = p.y0 * w + p.x0;
        const float *plane = in + b * c * h * w;
        for (int64_t ci = 0; ci < c; ci++, plane += h * w) {
            float v00 = i00 ? plane[o00] : 0.0f, v01 = i01 ? plane[o00 + 1] : 0.0f;
            float v10 = i10 ? plane[o00 + w] : 0.0f, v11 = i11 ? plane[o00 + w + 1] : 0.0f;
            out[(b * c + ci) * points + k] = wy0 * (wx0 * v00 + p.wx1 * v01) + p.wy1 * (wx0 * v10 + p.wx1 * v11);
        }
    }
}

static void cpu_grid_sample_backward(float *din, float *dgrid, const float *dout, const float *in, const float *grid,
                                     int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo) {
    int64_t points = ho * wo;
    if (dgrid) {
        /* d out / d ix = sum over corners of value * d weight / d ix; ix = ((gx + 1) w - 1) / 2
         * so d ix / d gx = w / 2. Each grid point sums over channels: independent points. */
#pragma omp parallel for if (n * points * c > 16384)
        for (int64_t q = 0; q < n * points; q++) {
            int64_t b = q / points, k = q % points;
            gs_point_t p = gs_point(grid + q * 2, h, w);
            int i00 = gs_inside(p.y0, p.x0, h, w), i01 = gs_inside(p.y0, p.x0 + 1, h, w);
            int i10 = gs_inside(p.y0 + 1, p.x0, h, w), i11 = gs_inside(p.y0 + 1, p.x0 + 1, h, w);
            int64_t o00 = p.y0 * w + p.x0;
            double gx = 0.0, gy = 0.0;
            for (int64_t ci = 0; ci < c; ci++) {
                const float *plane = in + (b * c + ci) * h * w;
                double g = dout[(b * c + ci) * points + k];
                double v00 = i00 ? plane[o00] : 0.0f, v01 = i01 ? plane[o00 + 1] : 0.0f;
                double v10 = i10 ? plane[o00 + w] : 0.0f, v11 = i11 ? plane[o00 + w + 1] : 0.0f;
                gx += g * ((1.0 - p.wy1) * (v01 - v00) + p.wy1 * (v11 - v10));
                gy += g * ((1.0 - p.wx1) * (v10 - v00) + p.wx1 * (v11 - v01));
            }
            dgrid[q * 2] += (float)(gx * (double)w * 0.5);
            dgrid[q * 2 + 1] += (float)(gy * (double)h * 0.5);
        }
    }
    if (din) {
        /* Points of one image scatter into that image's planes: a task owns a
         * block of GS_PLANES planes of one image and scatters into them
         * serially (points in order, so the sums are fixed). The points are
         * resolved a tile at a time and shared by the block's planes: done per
         * plane, resolving them was a third of the kernel. */
        enum { GS_PLANES = 8, GS_TILE = 128 };
        int64_t blocks = (c + GS_PLANES - 1) / GS_PLANES;
#pragma omp parallel for if (n * points * c > 16384)
        for (int64_t task = 0; task < n * blocks; task++) {
            int64_t b = task / blocks, c0 = (task % blocks) * GS_PLANES;
            int64_t c1 = c0 + GS_PLANES < c ? c0 + GS_PLANES : c;
            gs_point_t tile[GS_TILE];
            for (int64_t k0 = 0; k0 < points; k0 += GS_TILE) {
                int64_t nk = points - k0 < GS_TILE ? points - k0 : GS_TILE;
                for (int64_t t = 0; t < nk; t++) tile[t] = gs_point(grid + (b * points + k0 + t) * 2, h, w);
                for (int64_t ci = c0; ci < c1; ci++) {
                    float *plane = din + (b * c + ci) * h * w;
                    const float *g = dout + (b * c + ci) * points + k0;
                    for (int64_t t = 0; t < nk; t++) {
                        const gs_point_t p = tile[t];
                        float wx0 = 1.0f - p.wx1, wy0 = 1.0f - p.wy1, v = g[t];
                        if (gs_inside(p.y0, p.x0, h, w)) plane[p.y0 * w + p.x0] += wy0 * wx0 * v;
                        if (gs_inside(p.y0, p.x0 + 1, h, w)) plane[p.y0 * w + p.x0 + 1] += wy0 * p.wx1 * v;
                        if (gs_inside(p.y0 + 1, p.x0, h, w)) plane[(p.y0 + 1) * w + p.x0] += p.wy1 * wx0 * v;
                        if (gs_inside(p.y0 + 1, p.x0 + 1, h, w))
                            plane[(p.y0 + 1) * w + p.x0 + 1] += p.wy1 * p.wx1 * v;
                    }
                }
            }
        }
    }
}

void cpu_register_spatial(backend_t *be) {
    be->im2col = cpu_im2col;
    be->col2im = cpu_col2im;
    be->upsample_bilinear_forward = cpu_upsample_bilinear_forward;
    be->upsample_bilinear_backward = cpu_upsample_bilinear_backward;
    be->grid_sample_forward = cpu_grid_sample_forward;
    be->grid_sample_backward = cpu_grid_sample_backward;
}
