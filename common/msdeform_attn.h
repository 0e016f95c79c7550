/* msdeform_attn.h - the sampling core of multi-scale deformable attention.
 *
 * multi_scale_deformable_attention (M2F:807) as the official code runs it:
 * given values [F, S, heads * d] whose S positions are the levels' maps
 * flattened one after another (level l: h_l x w_l, row-major), sampling
 * locations [F, Q, heads, L, P, 2] as (x, y) in [0, 1] of each level, and
 * attention weights [F, Q, heads, L, P] (already softmaxed), the output
 * [F, Q, heads * d] is, per query and head,
 *   sum over l, p of weight * grid_sample(value map of level l and head,
 *                                         2 location - 1, bilinear, zeros,
 *                                         align_corners=False).
 *
 * Two implementations of the same function, both differentiable in all
 * three inputs:
 *   msdeform_core_composed  grid_sample, concat, mul and sum ops, exactly the
 *                           official code's steps; runs on every backend, but
 *                           materialises every sampled value ([F * heads, d,
 *                           Q, L * P], twice): ~0.4 GB per layer at 384^2 x 5;
 *   op_msdeform_core        one fused op with a CPU kernel (msdeform_fused.c):
 *                           nothing but the output is stored, its backward
 *                           recomputes the bilinear corners. CPU tensors only.
 * msdeform_core picks the fused op on the CPU and the composition elsewhere;
 * the tests check the two against each other, values and gradients. */
#ifndef STEPSTONE_MSDEFORM_ATTN_H
#define STEPSTONE_MSDEFORM_ATTN_H

#include "tape.h"

#define MSDEFORM_MAX_LEVELS 8

tensor_t *msdeform_core(ctx_t *ctx, tensor_t *value, tensor_t *locations, tensor_t *weights, int n_levels,
                        const int64_t (*shapes)[2]);
tensor_t *msdeform_core_composed(ctx_t *ctx, tensor_t *value, tensor_t *locations, tensor_t *weights, int n_levels,
                                 const int64_t (*shapes)[2]);
tensor_t *op_msdeform_core(ctx_t *ctx, tensor_t *value, tensor_t *locations, tensor_t *weights, int n_levels,
                           const int64_t (*shapes)[2]);

#endif
