/* pixel_decoder.c - the pixel decoder's forward pass (Mask2FormerPixelDecoder,
 * M2F:1208), composed of ops: input projections, position and level
 * embeddings, the deformable encoder (attention in msdeform_attn.c), the FPN
 * levels and the mask projection. See pixel_decoder.h for what it computes. */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "pixel_decoder.h"
#include "sine_position.h"

#define LEVELS PIXEL_DECODER_LEVELS
/* torch's defaults: nn.GroupNorm and nn.LayerNorm are built without eps */
#define GROUP_NORM_EPS 1e-5f
#define LAYER_NORM_EPS 1e-5f

/* GroupNorm(32)(conv(x)) with padding k / 2 */
static tensor_t *conv_norm(ctx_t *ctx, const pixel_decoder_conv_norm_t *cn, tensor_t *x) {
    int pad = (int)(cn->conv_w->shape[2] / 2);
    tensor_t *y = op_conv2d(ctx, x, cn->conv_w, cn->conv_b, 1, 1, pad, pad);
    return op_group_norm(ctx, y, PIXEL_DECODER_GROUPS, cn->norm_w, cn->norm_b, GROUP_NORM_EPS);
}

/* [F, C, h, w] -> [F, h * w, C] (flatten(2).transpose(1, 2)) */
static tensor_t *map_to_tokens(ctx_t *ctx, tensor_t *x) {
    int64_t f = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    tensor_t *t = op_reshape(ctx, x, 3, (int64_t[]){f, c, hw});
    return op_permute(ctx, t, (int[]){0, 2, 1});
}

/* [F, h * w, C] -> [F, C, h, w] (transpose(1, 2).view) */
static tensor_t *tokens_to_map(ctx_t *ctx, tensor_t *t, int64_t h, int64_t w) {
    int64_t f = t->shape[0], c = t->shape[2];
    tensor_t *x = op_permute(ctx, t, (int[]){0, 2, 1});
    return op_reshape(ctx, x, 4, (int64_t[]){f, c, h, w});
}

/* Mask2FormerPixelDecoderEncoderLayer (M2F:989), post-norm, dropout 0 */
static tensor_t *encoder_layer(ctx_t *ctx, const pixel_decoder_t *pd, const pixel_decoder_layer_t *l, tensor_t *x,
                               tensor_t *pos, const int64_t (*shapes)[2]) {
    tensor_t *attn = pixel_decoder_deform_attn(ctx, pd, l, x, pos, shapes);
    x = op_layer_norm(ctx, op_add(ctx, x, attn), l->attn_norm_w, l->attn_norm_b, LAYER_NORM_EPS);
    tensor_t *h = op_relu(ctx, op_linear(ctx, x, l->fc1_w, l->fc1_b));
    h = op_linear(ctx, h, l->fc2_w, l->fc2_b);
    return op_layer_norm(ctx, op_add(ctx, x, h), l->final_norm_w, l->final_norm_b, LAYER_NORM_EPS);
}

/* The position embeddings of every level plus its level embedding, [1, S, C]
 * (the same for every frame: no padding mask). */
static tensor_t *level_position_embeddings(ctx_t *ctx, const pixel_decoder_t *pd, const int64_t (*shapes)[2]) {
    int64_t c = pd->cfg.feature_size;
    tensor_t *parts[LEVELS];
    for (int l = 0; l < LEVELS; l++) {
        tensor_t *pos = sine_position_embedding(ctx, shapes[l][0], shapes[l][1], (int)(c / 2));
        tensor_t *embed = op_slice(ctx, pd->level_embed, 0, l, l + 1); /* level_embed[l].view(1, 1, -1) */
        embed = op_reshape(ctx, embed, 3, (int64_t[]){1, 1, c});
        parts[l] = op_add(ctx, map_to_tokens(ctx, pos), embed);
    }
    return op_concat(ctx, parts, LEVELS, 1);
}

/* A tensor of ones, or of zeros, of the given shape in ctx's arena. */
static tensor_t *filled(ctx_t *ctx, int ndim, const int64_t *shape, float value) {
    return op_affine(ctx, tensor_zeros(ctx->arena, DTYPE_F32, ndim, shape), 0.0f, value);
}

/* Reports the encoder's constant inputs as the golden files hold them: per
 * frame (the forward keeps one copy of the position embeddings for all). */
static void report_encoder_inputs(ctx_t *ctx, int64_t f, const int64_t (*shapes)[2], tensor_t *pos,
                                  pixel_decoder_debug_fn_t debug, void *user) {
    int old = ctx_set_grad(ctx, 0); /* what is reported is never part of the graph */
    int64_t per_frame[3] = {f, pos->shape[1], pos->shape[2]};
    debug(user, "encoder.position_embeddings", op_add(ctx, filled(ctx, 3, per_frame, 0.0f), pos));
    int64_t shape_host[LEVELS * 2], start_host[LEVELS], start = 0;
    for (int l = 0; l < LEVELS; l++) {
        shape_host[l * 2] = shapes[l][0];
        shape_host[l * 2 + 1] = shapes[l][1];
        start_host[l] = start;
        start += shapes[l][0] * shapes[l][1];
    }
    debug(user, "spatial_shapes", tensor_from_host(ctx->arena, DTYPE_I64, 2, (int64_t[]){LEVELS, 2}, shape_host));
    debug(user, "level_start_index", tensor_from_host(ctx->arena, DTYPE_I64, 1, (int64_t[]){LEVELS}, start_host));
    debug(user, "valid_ratios", filled(ctx, 3, (int64_t[]){f, LEVELS, 2}, 1.0f)); /* no padding mask */
    ctx_set_grad(ctx, old);
}

void pixel_decoder_forward(ctx_t *ctx, const pixel_decoder_t *pd, tensor_t *const *features,
                           pixel_decoder_output_t *out, pixel_decoder_debug_fn_t debug, void *debug_user) {
    const pixel_decoder_config_t *c = &pd->cfg;
    int n = c->n_features;
    char sp[96];
    for (int k = 0; k < n; k++) {
        const tensor_t *x = features[k];
        if (x->ndim != 4 || x->shape[1] != c->in_channels[k] || x->shape[0] != features[0]->shape[0] ||
            x->shape[0] < 1 || x->shape[2] < 1 || x->shape[3] < 1)
            fatal("pixel_decoder_forward: feature %d is %s, want [F, %d, h, w] with F = %lld", k,
                  tensor_shape_str(x, sp, sizeof sp), c->in_channels[k], (long long)features[0]->shape[0]);
    }
    int64_t f = features[0]->shape[0];

    /* levels coarsest first: features[n - 1], features[n - 2], features[n - 3] */
    int64_t shapes[LEVELS][2];
    tensor_t *tokens[LEVELS];
    for (int l = 0; l < LEVELS; l++) {
        tensor_t *x = features[n - 1 - l];
        shapes[l][0] = x->shape[2];
        shapes[l][1] = x->shape[3];
        tokens[l] = map_to_tokens(ctx, conv_norm(ctx, &pd->input_proj[l], x));
    }
    tensor_t *x = op_concat(ctx, tokens, LEVELS, 1);
    tensor_t *pos = level_position_embeddings(ctx, pd, (const int64_t(*)[2])shapes);
    if (debug) {
        debug(debug_user, "encoder.inputs_embeds", x);
        report_encoder_inputs(ctx, f, (const int64_t(*)[2])shapes, pos, debug, debug_user);
    }
    for (int j = 0; j < c->encoder_layers; j++) {
        /* without a tape (inference) a layer's temporaries are dropped as soon
         * as it is done: the memory of one layer, not of all */
        ctx_mark_t mark = ctx_mark(ctx);
        x = encoder_layer(ctx, pd, &pd->layers[j], x, pos, (const int64_t(*)[2])shapes);
        if (ctx->n_nodes == mark.n_nodes) x = ctx_keep(ctx, mark, x);
        if (debug) {
            char name[64];
            snprintf(name, sizeof name, "encoder.layer%d", j);
            debug(debug_user, name, x);
        }
    }

    /* the encoder's tokens back to maps: the multi-scale features */
    int64_t start = 0;
    for (int l = 0; l < LEVELS; l++) {
        int64_t hw = shapes[l][0] * shapes[l][1];
        tensor_t *t = op_slice(ctx, x, 1, start, start + hw);
        out->multi_scale_features[l] = tokens_to_map(ctx, t, shapes[l][0], shapes[l][1]);
        start += hw;
    }

    /* FPN levels, coarse to fine, each from the one before */
    tensor_t *last = out->multi_scale_features[LEVELS - 1];
    for (int i = 0; i < c->n_fpn_levels; i++) {
        tensor_t *feature = features[c->n_fpn_levels - 1 - i];
        tensor_t *lateral = conv_norm(ctx, &pd->lateral[i], feature);
        tensor_t *up = op_interpolate_bilinear(ctx, last, lateral->shape[2], lateral->shape[3]);
        last = op_relu(ctx, conv_norm(ctx, &pd->output[i], op_add(ctx, lateral, up)));
    }
    out->mask_features = op_conv2d(ctx, last, pd->mask_proj_w, pd->mask_proj_b, 1, 1, 0, 0);
}
