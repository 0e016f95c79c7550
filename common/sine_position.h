/* sine_position.h - Mask2Former's sine position embedding of a feature map.
 *
 * Mask2FormerSinePositionEmbedding (M2F:847) with normalize=True, the only way
 * Mask2Former builds it (the pixel decoder, M2F:1216, and the transformer
 * module), on a map without a padding mask: for row i and column j,
 *   y = (i + 1) / (h + 1e-6) * 2 pi,   x = (j + 1) / (w + 1e-6) * 2 pi
 *   dim_t[k] = 10000 ^ (2 floor(k / 2) / num_pos_feats),  k < num_pos_feats
 *   channel k                 = sin(y / dim_t[k]) for even k, cos(y / dim_t[k]) for odd k
 *   channel num_pos_feats + k = the same of x
 * evaluated in float32 in torch's order of operations. */
#ifndef STEPSTONE_SINE_POSITION_H
#define STEPSTONE_SINE_POSITION_H

#include "tape.h"

/* The embedding [1, 2 num_pos_feats, h, w] (torch's [batch, C, h, w] layout, one
 * batch entry: it is the same for every frame), a constant in ctx's arena. */
tensor_t *sine_position_embedding(ctx_t *ctx, int64_t h, int64_t w, int num_pos_feats);

/* The same written to host memory out[2 num_pos_feats * h * w]. */
void sine_position_embedding_host(float *out, int64_t h, int64_t w, int num_pos_feats);

#endif
