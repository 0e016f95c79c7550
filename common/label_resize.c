#include "label_resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* ---- PIL nearest ---- */

void pil_nearest_indices(int src_size, int dst_size, int *idx) {
    if (src_size == dst_size) {
        for (int i = 0; i < dst_size; i++) idx[i] = i;
        return;
    }
    /* Pillow: box is float[4] holding the source size; a = (double)(box) / dst */
    double a = (double)(float)src_size / dst_size;
    double xo = 0.0 + a * 0.5;
    for (int i = 0; i < dst_size; i++) {
        int xin = xo < 0.0 ? -1 : (int)xo;
        idx[i] = (xin >= 0 && xin < src_size) ? xin : -1;
        xo += a;
    }
}

void pil_resize_nearest_u8(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh) {
    int *xi = malloc((size_t)dw * sizeof(int));
    int *yi = malloc((size_t)dh * sizeof(int));
    if (!xi || !yi) fatal("pil_resize_nearest_u8: out of memory");
    pil_nearest_indices(sw, dw, xi);
    pil_nearest_indices(sh, dh, yi);
    for (int y = 0; y < dh; y++) {
        uint8_t *out = dst + (size_t)y * dw * ch;
        if (yi[y] < 0) {
            memset(out, 0, (size_t)dw * ch);
            continue;
        }
        const uint8_t *in = src + (size_t)yi[y] * sw * ch;
        for (int x = 0; x < dw; x++) {
            if (xi[x] < 0) {
                memset(out + (size_t)x * ch, 0, (size_t)ch);
                continue;
            }
            memcpy(out + (size_t)x * ch, in + (size_t)xi[x] * ch, (size_t)ch);
        }
    }
    free(xi);
    free(yi);
}

/* ---- OpenCV INTER_LINEAR, 8-bit ---- */

typedef struct {
    int ofs;    /* first source index */
    int w0, w1; /* 11-bit weights */
} tap_t;

/* weights along one axis; clamp_edges: the horizontal rule (sx < 0 or
 * sx >= src - 1 resets the fraction); rows keep the fraction */
static void cv_taps(int src_size, int dst_size, int clamp_edges, tap_t *t) {
    double inv_scale = (double)dst_size / src_size;
    double scale = 1. / inv_scale;
    for (int d = 0; d < dst_size; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (clamp_edges) {
            if (s < 0) f = 0.f, s = 0;
            if (s >= src_size - 1) f = 0.f, s = src_size - 1;
        }
        t[d].ofs = s;
        float c0 = 1.f - f, c1 = f;
        t[d].w0 = (int)lrintf(c0 * 2048.f);
        t[d].w1 = (int)lrintf(c1 * 2048.f);
    }
}

static int clip(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static uint8_t sat_u8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

static void cv_area_half(const uint8_t *src, int sw, int ch, uint8_t *dst, int dw, int dh) {
    for (int y = 0; y < dh; y++) {
        const uint8_t *r0 = src + (size_t)(2 * y) * sw * ch;
        const uint8_t *r1 = r0 + (size_t)sw * ch;
        uint8_t *out = dst + (size_t)y * dw * ch;
        for (int x = 0; x < dw; x++)
            for (int c = 0; c < ch; c++) {
                int i = 2 * x * ch + c;
                out[x * ch + c] = (uint8_t)((r0[i] + r0[i + ch] + r1[i] + r1[i + ch] + 2) >> 2);
            }
    }
}

void cv_resize_linear_u8(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh) {
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * ch);
        return;
    }
    if (sw == 2 * dw && sh == 2 * dh) {
        cv_area_half(src, sw, ch, dst, dw, dh);
        return;
    }
    tap_t *xt = malloc((size_t)dw * sizeof(tap_t));
    tap_t *yt = malloc((size_t)dh * sizeof(tap_t));
    int width = dw * ch;
    int *h0 = malloc((size_t)width * sizeof(int));
    int *h1 = malloc((size_t)width * sizeof(int));
    if (!xt || !yt || !h0 || !h1) fatal("cv_resize_linear_u8: out of memory");
    cv_taps(sw, dw, 1, xt);
    cv_taps(sh, dh, 0, yt);
    for (int y = 0; y < dh; y++) {
        int rows[2] = {clip(yt[y].ofs, 0, sh - 1), clip(yt[y].ofs + 1, 0, sh - 1)};
        int *hbuf[2] = {h0, h1};
        for (int k = 0; k < 2; k++) {
            const uint8_t *in = src + (size_t)rows[k] * sw * ch;
            int *h = hbuf[k];
            for (int x = 0; x < dw; x++) {
                const uint8_t *p = in + (size_t)xt[x].ofs * ch;
                for (int c = 0; c < ch; c++) {
                    int v = p[c] * xt[x].w0;
                    if (xt[x].w1) v += p[c + ch] * xt[x].w1;
                    h[x * ch + c] = v;
                }
            }
        }
        int b0 = yt[y].w0, b1 = yt[y].w1;
        uint8_t *out = dst + (size_t)y * width;
        for (int x = 0; x < width; x++) {
            /* v_mul_hi on 16-bit lanes, (a * b) >> 16, then a rounding shift by 2 */
            int a = ((h0[x] >> 4) * b0) >> 16;
            int b = ((h1[x] >> 4) * b1) >> 16;
            out[x] = sat_u8((a + b + 2) >> 2);
        }
    }
    free(xt);
    free(yt);
    free(h0);
    free(h1);
}
