/* sine_position.c - Mask2Former's sine position embedding (see sine_position.h). */
#include <math.h>
#include <stdlib.h>

#include "error.h"
#include "sine_position.h"

/* torch: scale = 2 * math.pi (a Python float), applied to a float32 tensor */
#define SINE_SCALE ((float)(2.0 * 3.14159265358979323846))
#define SINE_EPS 1e-6f
#define SINE_TEMPERATURE 10000.0f

void sine_position_embedding_host(float *out, int64_t h, int64_t w, int num_pos_feats) {
    float *dim_t = malloc((size_t)(num_pos_feats > 0 ? num_pos_feats : 1) * sizeof *dim_t);
    if (!dim_t) fatal("sine_position_embedding: out of memory");
    for (int k = 0; k < num_pos_feats; k++) {
        /* temperature ** (2 * floor(k / 2) / num_pos_feats), each step in float32 */
        float e = (2.0f * (float)(k / 2)) / (float)num_pos_feats;
        dim_t[k] = powf(SINE_TEMPERATURE, e);
    }
    int64_t plane = h * w;
    for (int axis = 0; axis < 2; axis++) { /* 0: y (rows) first, then 1: x (columns), as torch.cat((pos_y, pos_x)) */
        int64_t len = axis == 0 ? h : w;
        for (int64_t i = 0; i < len; i++) {
            /* cumsum of ones = i + 1, normalized by the last value + eps, times the scale */
            float v = (float)(i + 1) / ((float)len + SINE_EPS) * SINE_SCALE;
            for (int k = 0; k < num_pos_feats; k++) {
                float a = v / dim_t[k];
                float e = (k % 2 == 0) ? sinf(a) : cosf(a);
                float *ch = out + (int64_t)(axis * num_pos_feats + k) * plane;
                if (axis == 0)
                    for (int64_t j = 0; j < w; j++) ch[i * w + j] = e;
                else
                    for (int64_t r = 0; r < h; r++) ch[r * w + i] = e;
            }
        }
    }
    free(dim_t);
}

tensor_t *sine_position_embedding(ctx_t *ctx, int64_t h, int64_t w, int num_pos_feats) {
    if (h < 1 || w < 1 || num_pos_feats < 1)
        fatal("sine_position_embedding: size %lld x %lld with %d features", (long long)h, (long long)w,
              num_pos_feats);
    int64_t shape[4] = {1, 2 * (int64_t)num_pos_feats, h, w};
    int64_t n = shape_numel(4, shape);
    float *host = malloc((size_t)n * sizeof *host);
    if (!host) fatal("sine_position_embedding: out of memory");
    sine_position_embedding_host(host, h, w, num_pos_feats);
    tensor_t *t = tensor_from_host(ctx->arena, DTYPE_F32, 4, shape, host);
    free(host);
    return t;
}
