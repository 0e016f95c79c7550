/* feature_image.h - pictures of feature maps, for looking at cached features.
 *
 * A feature map is C channels of H x W (f32, channel-major as the backbone
 * writes it).
 *   feature_image_pca   one RGB picture: the first three principal components
 *                       over channels (each pixel a C-vector, centred, projected
 *                       on the top three eigenvectors of the C x C covariance,
 *                       found by power iteration with deflation). Each component
 *                       is mapped to 0..255 from its 1st to its 99th percentile,
 *                       so a few extreme pixels do not wash the picture out. The
 *                       sign of a component is fixed (largest coefficient
 *                       positive) so the same features give the same colours.
 *                       C = 1 gives gray; C = 2 leaves blue at 0.
 *   feature_image_grid  one gray picture of every channel side by side, each
 *                       scaled from its own min to max, in a grid of
 *                       ceil(sqrt(C)) columns with a 1-pixel dark gap.
 * Both scale up by an integer factor (nearest neighbour) so small maps are
 * visible; scale <= 0 picks the smallest factor making the picture at least
 * 256 pixels on its longer side (at most 16).
 *
 * The pixels are a new buffer (free()); ERR_NOMEM or ERR_ARG (sizes). */
#ifndef STEPSTONE_FEATURE_IMAGE_H
#define STEPSTONE_FEATURE_IMAGE_H

#include <stdint.h>

#include "error.h"

err_code_t feature_image_pca(const float *x, int64_t c, int64_t h, int64_t w, int scale, uint8_t **rgb, int *out_w,
                             int *out_h, err_t *err);
err_code_t feature_image_grid(const float *x, int64_t c, int64_t h, int64_t w, int scale, uint8_t **gray, int *out_w,
                              int *out_h, err_t *err);

#endif
