/* pixel_decoder.h - Mask2Former's pixel decoder with the AAVS adapters.
 *
 * What it computes is Mask2FormerPixelDecoder of the official AAVS code
 * (GeWu-Lab/Stepping-Stones at de6a17b, <variant>/transformers/models/
 * mask2former/modeling_mask2former.py, "M2F:line" = the avss copy) in
 * evaluation mode (dropout 0), from the backbone's feature maps
 * features[k] [F, C_k, h_k, w_k] (finest first, as the backbone gives them):
 *
 *   levels (coarsest first) = the last three feature maps, reversed; level l:
 *     x_l = GroupNorm(32)(Conv1x1(features[n-1-l]))            input_projections.<l>
 *     pos_l = sine embedding (normalize, scale 2 pi, temperature 10000,
 *             feature_size / 2 features per axis; y then x) + level_embed[l]
 *   tokens = concat over levels of x_l flattened to [F, h_l w_l, C]; then
 *   encoder_layers deformable encoder layers, post-norm:
 *     t = LN(t + MSDeformAttn(t + pos, t))                     self_attn_layer_norm
 *     t = LN(t + fc2(ReLU(fc1(t))))                            final_layer_norm
 *   the tokens back to maps: the multi-scale features (coarsest first);
 *   then FPN levels, coarse to fine (features[n_fpn-1] ... features[0]):
 *     y = GroupNorm(Conv1x1 no bias(feature))                  adapter_<i>
 *         + bilinear(previous output, to the feature's size)   (align_corners False)
 *     y = ReLU(GroupNorm(Conv3x3 pad 1 no bias(y)))            layer_<i>
 *   mask_features = Conv1x1(last output)                       mask_projection
 *
 * Multi-scale deformable attention (3 levels, 4 points, heads of C / heads):
 *   value = value_proj(t) split by heads and levels into maps;
 *   offsets = sampling_offsets(t + pos) [.., heads, levels, points, 2] (x, y);
 *   location = reference point ((j + 0.5) / w_l, (i + 0.5) / h_l) of the token's
 *     own position, the same for every level (valid ratios are 1: no padding mask)
 *     + offset / (w_l, h_l);
 *   sampled = grid_sample(value map, 2 location - 1, bilinear, zeros padding,
 *     align_corners False); weights = softmax over levels x points of
 *     attention_weights(t + pos); out = sum of weights * sampled.
 *   (msdeform_attn.h: a fused op on the CPU, composed ops elsewhere.)
 *   AAVS: out = avs_adapt(output_proj(out)) in the avss code (M2F:982-984) and
 *   out = avs_adapt(out) in the avs code, which comments output_proj out
 *   (avs copy, lines 992-994); avs_adapt = Linear(C, C/4) -> ReLU -> Linear(C/4, C).
 *   Either way the adapter REPLACES the attention output: it is not residual.
 *   Which variant runs is the caller's choice (config.json does not say).
 *
 * Memory: parameters live in the param_list's arena; pixel_decoder_forward
 * allocates every activation from ctx->arena (gone at ctx_reset); without a
 * tape it drops each encoder layer's temporaries when the layer is done. The
 * model struct and its layer array are malloc'd and freed by pixel_decoder_free.
 * Gradients: every parameter can require grad; the backward of the whole module
 * is the ops' backward on the tape (sampling locations included). */
#ifndef STEPSTONE_PIXEL_DECODER_H
#define STEPSTONE_PIXEL_DECODER_H

#include <stdint.h>

#include "config.h"
#include "tape.h"
#include "weights.h"

#define PIXEL_DECODER_LEVELS 3      /* num_feature_levels (M2F:1219) and the attention's n_levels (M2F:996) */
#define PIXEL_DECODER_POINTS 4      /* n_points (fixed, M2F:997) */
#define PIXEL_DECODER_MAX_FEATURES 8
#define PIXEL_DECODER_GROUPS 32     /* nn.GroupNorm(32, feature_size) */

/* Which official code the deformable attention follows (see above). */
typedef enum {
    PIXEL_DECODER_AVS = 0,  /* avs/: out = avs_adapt(attention); output_proj is loaded but unused */
    PIXEL_DECODER_AVSS = 1, /* avss/: out = avs_adapt(output_proj(attention)) */
} pixel_decoder_variant_t;

typedef struct {
    pixel_decoder_variant_t variant;
    int n_features;                               /* backbone feature maps in, finest first */
    int in_channels[PIXEL_DECODER_MAX_FEATURES];  /* C_k of each (the backbone's channels) */
    int feature_size;                             /* C: token width, GroupNorm(32) channels */
    int mask_feature_size;                        /* mask_projection's output channels */
    int encoder_layers;
    int encoder_ffn_dim;                          /* encoder_feedforward_dim */
    int num_heads;                                /* num_attention_heads; divides feature_size */
    int n_fpn_levels;                             /* int(log2(min stride of the 3 levels) - log2(common_stride)) */
    float init_std;                               /* init_std: for avs_adapt missing from a plain HF file */
} pixel_decoder_config_t;

/* Reads the pixel decoder's settings from a HuggingFace Mask2Former config.json
 * (feature_size, mask_feature_size, encoder_layers, encoder_feedforward_dim,
 * num_attention_heads, common_stride, feature_strides, dropout, init_std, with
 * Mask2FormerConfig's defaults when absent) and the backbone's output channels
 * from its backbone_config (swin_config_from_json). Refused with ERR_MISMATCH
 * naming the key and why:
 *   feature_size not a positive multiple of 32 (the GroupNorm(32) of the input
 *   projections and the FPN convs needs it); num_attention_heads not dividing it;
 *   fewer than 3 backbone outputs (the deformable attention is built for 3 levels);
 *   fewer than 3 feature_strides, or a common_stride that gives a negative number
 *   of FPN levels; dropout other than 0 (the official configs have 0, and the
 *   encoder would drop in training). More FPN levels than backbone maps stop at
 *   the last map, as HF's list slicing does. */
err_code_t pixel_decoder_config_from_json(const config_t *cfg, pixel_decoder_variant_t variant,
                                          pixel_decoder_config_t *out, err_t *err);

typedef struct {
    tensor_t *sampling_offsets_w, *sampling_offsets_b; /* Linear(C, heads * 3 * 4 * 2) */
    tensor_t *attention_weights_w, *attention_weights_b; /* Linear(C, heads * 3 * 4) */
    tensor_t *value_proj_w, *value_proj_b;
    tensor_t *output_proj_w, *output_proj_b;           /* used by PIXEL_DECODER_AVSS only */
    tensor_t *adapt_down_w, *adapt_down_b;             /* avs_adapt.0: Linear(C, C/4) */
    tensor_t *adapt_up_w, *adapt_up_b;                 /* avs_adapt.2: Linear(C/4, C) */
    tensor_t *attn_norm_w, *attn_norm_b;               /* self_attn_layer_norm */
    tensor_t *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    tensor_t *final_norm_w, *final_norm_b;             /* final_layer_norm */
} pixel_decoder_layer_t;

typedef struct {
    tensor_t *conv_w, *conv_b; /* conv_b NULL for the FPN's lateral and output convs (bias=False) */
    tensor_t *norm_w, *norm_b; /* GroupNorm(32) */
} pixel_decoder_conv_norm_t;

typedef struct {
    pixel_decoder_config_t cfg;
    tensor_t *level_embed;                                       /* [3, C] */
    pixel_decoder_conv_norm_t input_proj[PIXEL_DECODER_LEVELS];  /* coarsest level first */
    pixel_decoder_layer_t *layers;                               /* encoder_layers of them (malloc'd) */
    /* FPN level i (0 = coarsest FPN level, as the forward runs them) works on
     * features[n_fpn_levels - 1 - i] and is named adapter_<n_fpn_levels - i>,
     * layer_<n_fpn_levels - i> (HF's lateral_convolutions, output_convolutions) */
    pixel_decoder_conv_norm_t lateral[PIXEL_DECODER_MAX_FEATURES];
    pixel_decoder_conv_norm_t output[PIXEL_DECODER_MAX_FEATURES];
    tensor_t *mask_proj_w, *mask_proj_b;                         /* Conv1x1(C, mask_feature_size) */
    int adapters_from_file; /* 0: the file had no avs_adapt and they were drawn as from_pretrained does */
    /* 0 (as loaded): the deformable attention samples with the fused op on the
     * CPU and with the composed ops elsewhere; 1: with the composed ops
     * everywhere (for comparisons; slower, ~0.4 GB more per layer at full size) */
    int composed_sampling;
} pixel_decoder_t;

/* The naming prefixes pixel_decoder_load tries, in order: AAVS checkpoints
 * ("model.model.pixel_level_module.decoder."), HuggingFace's
 * Mask2FormerForUniversalSegmentation ("model.pixel_level_module.decoder."),
 * Mask2FormerModel ("pixel_level_module.decoder."). */
extern const char *const pixel_decoder_weight_prefixes[];
extern const int pixel_decoder_n_weight_prefixes;
/* What AAVS names the module: pass it as param_prefix to keep the official names. */
#define PIXEL_DECODER_AAVS_PREFIX "model.model.pixel_level_module.decoder."

/* Loads the pixel decoder from an open weights file into params (its arena
 * holds the tensors; the arena's device is where the model runs). The prefix
 * is resolved among pixel_decoder_weight_prefixes. Parameters are registered as
 * param_prefix + the HF name under the decoder ("level_embed",
 * "encoder.layers.0.self_attn.avs_adapt.0.weight", "adapter_1.0.weight", ...).
 * avs_adapt: all present in the file, or none (a plain HF checkpoint): then they
 * are made as from_pretrained makes missing Linear layers (_init_weights:
 * weights N(0, init_std^2) drawn from adapter_seed, biases 0; torch's own draws
 * cannot be reproduced); a partial set is an error. Every tensor's shape is
 * checked, and tensors under the prefix that the config does not use (an
 * encoder layer too many) are an error. Returns a malloc'd model in *out
 * (pixel_decoder_free), or an error naming the tensor. */
err_code_t pixel_decoder_load(const pixel_decoder_config_t *cfg, weights_t *w, param_list_t *params,
                              const char *param_prefix, uint64_t adapter_seed, pixel_decoder_t **out, err_t *err);
/* A model with every parameter drawn from N(0, std^2) (biases and norms too, so
 * that nothing is trivially 0 or 1), for tests and benchmarks; names as above
 * with param_prefix (may be NULL). */
pixel_decoder_t *pixel_decoder_random(const pixel_decoder_config_t *cfg, param_list_t *params,
                                      const char *param_prefix, uint64_t seed, float std);
void pixel_decoder_free(pixel_decoder_t *pd);

typedef struct {
    tensor_t *multi_scale_features[PIXEL_DECODER_LEVELS]; /* [F, C, h_l, w_l], coarsest first */
    tensor_t *mask_features;                              /* [F, mask_feature_size, h_0, w_0] of features[0] */
} pixel_decoder_output_t;

/* Optional observer of intermediate tensors, named as the golden files name
 * them after "debug.pixel_decoder.": "encoder.inputs_embeds" and
 * "encoder.position_embeddings" [F, sum h w, C] (levels coarsest first; the
 * position embeddings include the level embedding), "spatial_shapes" I64 [3, 2],
 * "level_start_index" I64 [3], "valid_ratios" [F, 3, 2], "encoder.layer<j>"
 * [F, sum h w, C] after encoder layer j. The tensor is ctx's; copy what you keep. */
typedef void (*pixel_decoder_debug_fn_t)(void *user, const char *name, const tensor_t *t);

/* Runs the pixel decoder on features[0 .. cfg.n_features) [F, C_k, h_k, w_k]
 * (F32 on ctx's device; any sizes, the same F). debug may be NULL. Inputs that
 * cannot run (wrong channel count, frame counts that differ) are programmer
 * errors (fatal). */
void pixel_decoder_forward(ctx_t *ctx, const pixel_decoder_t *pd, tensor_t *const *features,
                           pixel_decoder_output_t *out, pixel_decoder_debug_fn_t debug, void *debug_user);

/* One multi-scale deformable attention (the self_attn of encoder layer `layer`,
 * avs_adapt included) on tokens [F, S, C] with position embeddings pos [1 or F,
 * S, C], for levels of sizes shapes[l] = (h_l, w_l), coarsest first: exposed
 * for tests and benchmarks of the attention alone. */
tensor_t *pixel_decoder_deform_attn(ctx_t *ctx, const pixel_decoder_t *pd, const pixel_decoder_layer_t *layer,
                                    tensor_t *tokens, tensor_t *pos, const int64_t (*shapes)[2]);

#endif
