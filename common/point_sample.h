/* point_sample.h - Mask2Former's point sampling: reading logits or masks at
 * points in [0, 1]^2 (sample_point) and choosing the training points by
 * uncertainty (sample_points_using_uncertainty, M2F:689-741, avss copy of
 * modeling_mask2former.py in GeWu-Lab/Stepping-Stones de6a17b).
 *
 * Coordinates are (x, y) pairs in [0, 1], x along the width, as torch.rand
 * draws them there; they address the map with align_corners=False, so 0 and 1
 * are the outer edges of the border pixels. */
#ifndef STEPSTONE_POINT_SAMPLE_H
#define STEPSTONE_POINT_SAMPLE_H

#include <stdint.h>

#include "tape.h"

/* features [n, c, h, w], coords [n, p, 2] -> [n, c, p]:
 * grid_sample(features, 2 coords - 1, bilinear, zeros, align_corners=False).
 * On the tape like any op (the loss differentiates it w.r.t. features). */
tensor_t *point_sample(ctx_t *ctx, tensor_t *features, tensor_t *coords);

/* The choice of sample_points_using_uncertainty once its random draws are
 * made, on host arrays, for n masks:
 *   oversampled_logits [n, m]  the mask logits at the m oversampled points
 *   oversampled_coords [n, m, 2]
 *   random_coords      [n, n_random, 2]
 *   out                [n, k + n_random, 2]
 * Row i of out is the k oversampled points of mask i with the smallest
 * |logit| (torch.topk of -|logit|, most uncertain first), then its random
 * points. Among equal |logit| the lower index comes first (torch leaves that
 * order unspecified). A NaN logit counts as the most uncertain, as topk puts
 * NaN above every number. Requires 0 <= k <= m. */
void point_select_uncertain(const float *oversampled_logits, const float *oversampled_coords, int64_t n, int64_t m,
                            int64_t k, const float *random_coords, int64_t n_random, float *out);

#endif
