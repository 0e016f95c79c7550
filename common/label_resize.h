/* label_resize.h - the two label resizes of the official AVSBench code, bit
 * for bit.
 *
 * The official loaders bring every label map to 224x224 before scoring, and
 * the two subtasks do it differently (see ../shared/spec/avsbench-data.md):
 *
 *   AVSS (semantic):  PIL Image.resize((224, 224), Image.NEAREST) on the RGB
 *                     colour map, then exact colour -> class matching.
 *   S4/MS3 (binary):  cv2.resize(bgr, (224, 224)) (INTER_LINEAR on 8-bit),
 *                     cv2.cvtColor(BGR2GRAY), then gray > 0.
 *
 * Both are ported here and checked against Pillow and OpenCV by
 * tests/reference/metrics_ref.py (fixture) and test_avsbench.c.
 *
 * PIL nearest (Pillow's ImagingScaleAffine): the step a = src/dst is a double,
 * the source coordinate starts at a/2 and is advanced by repeated addition
 * (xo += a), and the index is (int)xo. The accumulated rounding matters: on a
 * 640-wide map, output column 17 reads source column 49 (the exact value is
 * 50). A size that does not change is a plain copy.
 *
 * OpenCV INTER_LINEAR, 8-bit (cv::resize's generic path, as OpenCV 4.x and
 * 5.0 on x86 compute it): per output column fx = (float)((dx + 0.5) * scale -
 * 0.5), sx = floor(fx), fx -= sx; sx < 0 gives (sx, fx) = (0, 0) and sx >=
 * src - 1 gives (src - 1, 0); the weights are rint((1 - fx) * 2048) and
 * rint(fx * 2048) (11 bits). Rows use the same weights but are not clamped:
 * the two source rows are clipped to the image instead. The horizontal pass
 * is exact integer arithmetic; the vertical pass rounds as OpenCV's SIMD
 * code does (its scalar rounding, (h0 b0 + h1 b1 + 2^21) >> 22, differs in
 * the last bit and is never taken by the x86 builds of OpenCV 4.10 and 5.0
 * that the checks ran against, whatever the width):
 * out = (((h0 >> 4) * b0 >> 16) + ((h1 >> 4) * b1 >> 16) + 2) >> 2,
 * saturated to 0..255. Exactly halving both sides switches OpenCV to its
 * INTER_AREA fast path: out = (sum of the 2x2 block + 2) >> 2. An unchanged
 * size is a copy. */
#ifndef STEPSTONE_LABEL_RESIZE_H
#define STEPSTONE_LABEL_RESIZE_H

#include <stdint.h>

/* src: sh rows of sw * ch bytes; dst: dh rows of dw * ch bytes (caller
 * allocates). ch is 1..4. Pixels PIL would leave outside the source are 0. */
void pil_resize_nearest_u8(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh);

/* The source index PIL reads for each of the dst outputs along one axis
 * (idx[dst]); -1 where PIL would read outside (never for a plain downscale). */
void pil_nearest_indices(int src_size, int dst_size, int *idx);

/* cv2.resize(src, (dw, dh)) with the default INTER_LINEAR, for ch 1..4. */
void cv_resize_linear_u8(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh);

/* cv2.cvtColor(BGR2GRAY)(b, g, r) > 0, which is
 * 1868 b + 9617 g + 4899 r >= 8192 (checked against cv2 on all 2^24 colours). */
static inline int cv_gray_positive(uint8_t r, uint8_t g, uint8_t b) {
    return 1868 * (int)b + 9617 * (int)g + 4899 * (int)r >= 8192;
}

#endif
