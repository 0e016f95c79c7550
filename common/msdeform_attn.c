/* msdeform_attn.c - the pixel decoder's multi-scale deformable attention
 * (Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention, M2F:888) and
 * the composed form of its sampling core (multi_scale_deformable_attention,
 * M2F:807; the fused form is msdeform_fused.c). Composed of ops, so the
 * backward, through the sampling locations too, comes from the tape. The
 * layouts follow the official code step by step. */
#include <stdlib.h>

#include "msdeform_attn.h"
#include "ops.h"
#include "pixel_decoder.h"

#define LEVELS PIXEL_DECODER_LEVELS
#define POINTS PIXEL_DECODER_POINTS

/* ---- the sampling core ---- */

tensor_t *msdeform_core_composed(ctx_t *ctx, tensor_t *value, tensor_t *locations, tensor_t *weights, int n_levels,
                                 const int64_t (*shapes)[2]) {
    int64_t f = locations->shape[0], q = locations->shape[1], heads = locations->shape[2];
    int64_t points = locations->shape[4], c = value->shape[2], d = c / heads;
    if (n_levels < 1 || n_levels > MSDEFORM_MAX_LEVELS || locations->shape[3] != n_levels)
        fatal("msdeform_core_composed: %d levels for locations of %lld", n_levels, (long long)locations->shape[3]);
    /* grids: 2 * sampling_locations - 1, per level [F * heads, Q, P, 2] (one
     * permute to [levels, F, heads, Q, P, 2] serves every level) */
    tensor_t *grid = op_affine(ctx, locations, 2.0f, -1.0f);
    grid = op_permute(ctx, grid, (int[]){3, 0, 2, 1, 4, 5});
    /* values [F, S, C] -> [F, C, S]: level l's positions are a slice, viewed as
     * [F * heads, d, h_l, w_l] (value.flatten(2).transpose(1, 2).reshape) */
    tensor_t *value_t = op_permute(ctx, value, (int[]){0, 2, 1});
    tensor_t *sampled[MSDEFORM_MAX_LEVELS];
    int64_t start = 0;
    for (int l = 0; l < n_levels; l++) {
        int64_t h = shapes[l][0], w = shapes[l][1];
        tensor_t *v = op_slice(ctx, value_t, 2, start, start + h * w);
        v = op_reshape(ctx, v, 4, (int64_t[]){f * heads, d, h, w});
        tensor_t *g = op_slice(ctx, grid, 0, l, l + 1);
        g = op_reshape(ctx, g, 4, (int64_t[]){f * heads, q, points, 2});
        sampled[l] = op_grid_sample(ctx, v, g); /* [F * heads, d, Q, P] */
        start += h * w;
    }
    if (start != value->shape[1])
        fatal("msdeform_core_composed: %lld value positions for levels of %lld", (long long)value->shape[1],
              (long long)start);
    /* torch.stack(dim=-2).flatten(-2): levels then points along the last dim */
    tensor_t *stacked = op_concat(ctx, sampled, n_levels, 3);
    /* weights [F, Q, heads, L, P] -> [F * heads, 1, Q, L * P] */
    tensor_t *w = op_reshape(ctx, weights, 4, (int64_t[]){f, q, heads, n_levels * points});
    w = op_permute(ctx, w, (int[]){0, 2, 1, 3});
    w = op_reshape(ctx, w, 4, (int64_t[]){f * heads, 1, q, n_levels * points});
    tensor_t *out = op_sum(ctx, op_mul(ctx, stacked, w), -1, 0); /* [F * heads, d, Q] */
    out = op_reshape(ctx, out, 3, (int64_t[]){f, c, q});
    return op_permute(ctx, out, (int[]){0, 2, 1});
}

tensor_t *msdeform_core(ctx_t *ctx, tensor_t *value, tensor_t *locations, tensor_t *weights, int n_levels,
                        const int64_t (*shapes)[2]) {
    if (ctx->device == DEVICE_CPU) return op_msdeform_core(ctx, value, locations, weights, n_levels, shapes);
    return msdeform_core_composed(ctx, value, locations, weights, n_levels, shapes);
}

/* ---- the attention module ---- */

/* The reference points [S, 1, LEVELS, 1, 2] (x, y), broadcast over frames,
 * heads and points: get_reference_points (M2F:1104) with valid ratios 1, i.e.
 * linspace(0.5, size - 0.5, size) / size at every token of every level, the
 * same point repeated for each level it samples. */
static tensor_t *reference_points(ctx_t *ctx, const int64_t (*shapes)[2], int64_t s) {
    float *host = malloc((size_t)(s * LEVELS * 2) * sizeof *host);
    if (!host) fatal("msdeform_attn: out of memory");
    int64_t q = 0;
    for (int l = 0; l < LEVELS; l++) {
        int64_t h = shapes[l][0], w = shapes[l][1];
        for (int64_t i = 0; i < h; i++)
            for (int64_t j = 0; j < w; j++, q++) {
                /* ref / (valid_ratio * size), then * valid_ratio: valid ratios are 1.0f */
                float x = ((float)j + 0.5f) / (float)w, y = ((float)i + 0.5f) / (float)h;
                for (int m = 0; m < LEVELS; m++) {
                    host[(q * LEVELS + m) * 2] = x;
                    host[(q * LEVELS + m) * 2 + 1] = y;
                }
            }
    }
    tensor_t *t = tensor_from_host(ctx->arena, DTYPE_F32, 5, (int64_t[]){s, 1, LEVELS, 1, 2}, host);
    free(host);
    return t;
}

/* offset_normalizer [LEVELS, 1, 2] = (w_l, h_l), broadcast over points */
static tensor_t *offset_normalizer(ctx_t *ctx, const int64_t (*shapes)[2]) {
    float host[LEVELS * 2];
    for (int l = 0; l < LEVELS; l++) {
        host[l * 2] = (float)shapes[l][1];
        host[l * 2 + 1] = (float)shapes[l][0];
    }
    return tensor_from_host(ctx->arena, DTYPE_F32, 3, (int64_t[]){LEVELS, 1, 2}, host);
}

tensor_t *pixel_decoder_deform_attn(ctx_t *ctx, const pixel_decoder_t *pd, const pixel_decoder_layer_t *layer,
                                    tensor_t *tokens, tensor_t *pos, const int64_t (*shapes)[2]) {
    int64_t f = tokens->shape[0], s = tokens->shape[1], heads = pd->cfg.num_heads;
    int64_t s_check = 0;
    for (int l = 0; l < LEVELS; l++) s_check += shapes[l][0] * shapes[l][1];
    if (s_check != s)
        fatal("msdeform_attn: %lld tokens for levels of %lld positions", (long long)s, (long long)s_check);

    /* queries carry the position embedding; the values do not (encoder_hidden_states) */
    tensor_t *query = op_add(ctx, tokens, pos);
    tensor_t *value = op_linear(ctx, tokens, layer->value_proj_w, layer->value_proj_b);

    /* sampling_locations = reference + offset / (w_l, h_l): [F, S, heads, LEVELS, POINTS, 2] */
    tensor_t *offsets = op_linear(ctx, query, layer->sampling_offsets_w, layer->sampling_offsets_b);
    offsets = op_reshape(ctx, offsets, 6, (int64_t[]){f, s, heads, LEVELS, POINTS, 2});
    tensor_t *locations =
        op_add(ctx, reference_points(ctx, shapes, s), op_div(ctx, offsets, offset_normalizer(ctx, shapes)));

    /* attention weights: softmax over LEVELS * POINTS per head -> [F, S, heads, LEVELS, POINTS] */
    tensor_t *weights = op_linear(ctx, query, layer->attention_weights_w, layer->attention_weights_b);
    weights = op_reshape(ctx, weights, 4, (int64_t[]){f, s, heads, LEVELS * POINTS});
    weights = op_softmax(ctx, weights, -1);
    weights = op_reshape(ctx, weights, 5, (int64_t[]){f, s, heads, LEVELS, POINTS});

    tensor_t *out = pd->composed_sampling ? msdeform_core_composed(ctx, value, locations, weights, LEVELS, shapes)
                                          : msdeform_core(ctx, value, locations, weights, LEVELS, shapes);
    if (pd->cfg.variant == PIXEL_DECODER_AVSS) out = op_linear(ctx, out, layer->output_proj_w, layer->output_proj_b);
    /* avs_adapt replaces the output (M2F:984): no residual here */
    out = op_relu(ctx, op_linear(ctx, out, layer->adapt_down_w, layer->adapt_down_b));
    return op_linear(ctx, out, layer->adapt_up_w, layer->adapt_up_b);
}
