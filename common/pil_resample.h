/* pil_resample.h - Pillow's Image.resize for 8-bit images, bit for bit.
 *
 * The Mask2Former image processor resizes frames with PIL on uint8
 * (transformers image_transforms.resize -> PIL.Image.resize, resample 2 =
 * BILINEAR), so its output must be reproduced exactly, not approximated by a
 * float interpolation (which misses by up to 1.8 in normalized units).
 *
 * What Pillow computes (src/libImaging/Resample.c; the weights and the
 * fixed-point arithmetic are the same from Pillow 7.0, which moved the box
 * filter's edges, to 13.0, which changed the pass order as described below):
 *   - A separable filter whose support widens with the downscale factor:
 *     scale = in / out, filterscale = max(scale, 1), support = filter support
 *     * filterscale. For output index i, center = (i + 0.5) * scale, the taps
 *     are the inputs from (int)(center - support + 0.5) (at least 0) to
 *     (int)(center + support + 0.5) (at most in), each weighted by
 *     filter((j - center + 0.5) / filterscale) (the division done as a
 *     multiplication by 1 / filterscale), then divided by their sum; all in
 *     double.
 *   - Weights become integers with 22 fractional bits, rounded half away
 *     from zero: (int)(w * 2^22 +- 0.5).
 *   - Two passes, each accumulating in 32-bit integers from 2^21 (rounding)
 *     and clipping (acc >> 22) to 0..255, so the intermediate image is uint8
 *     and the order of the passes changes the result. Pillow up to 12.x always
 *     runs the horizontal pass first (over only the rows the vertical pass
 *     reads). Pillow 13.0 (2026) runs the vertical pass first when the height
 *     loses more than twice as many pixels as the width:
 *     in_h - out_h > 0 and in_h - out_h > 2 * (in_w - out_w) (e.g. a portrait
 *     360x640 frame to 384x384), so on such frames the two versions differ by
 *     a level on many pixels. The official AAVS environment predates Pillow
 *     13: image_processor_official uses PIL_ORDER_HORIZONTAL_FIRST.
 *   - A pass whose size does not change is skipped; neither changing is a copy.
 * Floating-point contraction would change the weights: the build's -std=c11
 * keeps gcc from fusing multiply-adds (-ffp-contract=off is its default in
 * ISO C mode); a build with -ffp-contract=fast on an FMA target may differ
 * from Pillow in rare last bits of a weight.
 *
 * Filters are Pillow's, numbered as PIL.Image.Resampling; NEAREST (0) is a
 * different algorithm and lives in label_resize.h (pil_resize_nearest_u8);
 * Pillow 13's MKS2013 (6) and MKS2021 (7) are not ported. */
#ifndef STEPSTONE_PIL_RESAMPLE_H
#define STEPSTONE_PIL_RESAMPLE_H

#include <stdint.h>

#include "error.h"

typedef enum {
    PIL_FILTER_LANCZOS = 1,  /* truncated sinc, support 3 */
    PIL_FILTER_BILINEAR = 2, /* triangle, support 1: the image processor's */
    PIL_FILTER_BICUBIC = 3,  /* cubic convolution a = -0.5, support 2 */
    PIL_FILTER_BOX = 4,      /* support 0.5 */
    PIL_FILTER_HAMMING = 5   /* Hamming-windowed sinc, support 1 */
} pil_filter_t;

/* Which pass runs first when both sizes change (see above). */
typedef enum {
    PIL_ORDER_HORIZONTAL_FIRST = 0, /* Pillow <= 12.x: always horizontal first */
    PIL_ORDER_PILLOW13 = 1          /* Pillow >= 13.0: vertical first when the height shrinks much more */
} pil_pass_order_t;

/* A filter's name ("bilinear", ...) or NULL when the number is not one. */
const char *pil_filter_name(int filter);

/* Resizes src (sh rows of sw * ch bytes, channels interleaved) to dst (dh rows
 * of dw * ch bytes, allocated by the caller) as Pillow's
 * Image.resize((dw, dh), filter) does, as the Pillow version that `order`
 * names does it, on an image of 1 (mode L), 3 (RGB) or
 * 4 channels (RGBX or CMYK: every channel filtered alike; Pillow premultiplies
 * RGBA and LA by alpha first, which is not done here, so ch 2 is refused).
 * src and dst must not overlap.
 * Errors: ERR_ARG for sizes < 1, ch not 1, 3 or 4, or an unknown filter or
 * order; ERR_NOMEM. dst is untouched on error. */
err_code_t pil_resample_u8(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh,
                           pil_filter_t filter, pil_pass_order_t order, err_t *err);

#endif
