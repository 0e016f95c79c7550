/* aavs.h - the whole AAVS head: what both stages train on cached backbone
 * features.
 *
 * The head of the official AdaptiveAVS (GeWu-Lab/Stepping-Stones at de6a17b,
 * avs/avs_model.py and avss/avs_model.py) after the frozen Swin backbone:
 *   pixel decoder (pixel_decoder.h) on the backbone's feature maps
 *   -> transformer decoder with audio_proj, queries, prompts and the class
 *      and mask heads (m2f_decoder.h)
 *   -> the Mask2Former loss of the last and every auxiliary prediction (m2f_loss.h)
 * for either variant (m2f_variant.h): avs (binary, stage 1) and avss (semantic,
 * stage 2, which also takes the stage-1 mask, audio_boost_mask).
 * Post-processing to semantic maps and binary masks: aavs_postprocess.h.
 *
 * Parameters are registered under their AdaptiveAVS state-dict names
 * ("model.model.pixel_level_module.decoder.*", "model.model.transformer_module.*",
 * "model.class_predictor.*", "audio_proj.*"), the names the official
 * set_params patterns select from and the golden files' grad.<name> use.
 *
 * Memory: parameters live in the param_list's arena; the forward and the loss
 * allocate from ctx->arena (gone at ctx_reset). The head struct is malloc'd and
 * freed by aavs_head_free, with its two modules. */
#ifndef STEPSTONE_AAVS_H
#define STEPSTONE_AAVS_H

#include "m2f_decoder.h"
#include "m2f_loss.h"
#include "m2f_variant.h"
#include "pixel_decoder.h"

typedef struct {
    m2f_variant_t variant;
    pixel_decoder_config_t pixel_decoder;
    m2f_decoder_config_t decoder;
    m2f_loss_config_t loss;
} aavs_head_config_t;

/* Reads the three modules' settings from a HuggingFace Mask2Former config.json
 * (with its backbone_config: the pixel decoder's input channels), for the
 * variant the caller names (the config does not say which code it is for).
 * Errors are the modules' (each names the key and why). */
err_code_t aavs_head_config_from_json(const config_t *cfg, m2f_variant_t variant, aavs_head_config_t *out,
                                      err_t *err);

typedef struct {
    aavs_head_config_t cfg;
    pixel_decoder_t *pixel_decoder;
    m2f_decoder_t *decoder;
} aavs_head_t;

/* Loads the head from an open weights file (an AAVS checkpoint, or a plain
 * HuggingFace Mask2Former completed as each module documents; init_seed draws
 * what such a file lacks). Returns a malloc'd head in *out (aavs_head_free), or
 * an error naming the tensor. */
err_code_t aavs_head_load(const aavs_head_config_t *cfg, weights_t *w, param_list_t *params, uint64_t init_seed,
                          aavs_head_t **out, err_t *err);
/* Every parameter N(0, std^2), for tests and benchmarks. */
aavs_head_t *aavs_head_random(const aavs_head_config_t *cfg, param_list_t *params, uint64_t seed, float std);
void aavs_head_free(aavs_head_t *head);

typedef struct {
    pixel_decoder_output_t pixel_decoder; /* multi-scale features (coarsest first) and mask features */
    m2f_decoder_output_t decoder;         /* every prediction; the last is the output */
} aavs_head_output_t;

/* Observer of intermediate tensors named as the golden files name them after
 * "debug.": "pixel_decoder.<name>" (pixel_decoder.h) and the decoder's names
 * (m2f_decoder.h). The tensor is ctx's: copy what you keep. */
typedef void (*aavs_debug_fn_t)(void *user, const char *name, const tensor_t *t);

/* Runs the head on the backbone's feature maps features[0 .. n_features)
 * [F, C_k, h_k, w_k] (finest first, as the backbone and the cache give them),
 * audio_embeddings [F, 128] and, for avss, audio_boost_mask [F, hb, wb] (NULL
 * for avs). debug may be NULL. Shapes that cannot run are fatal. */
void aavs_head_forward(ctx_t *ctx, const aavs_head_t *head, tensor_t *const *features, tensor_t *audio_embeddings,
                       tensor_t *audio_boost_mask, aavs_head_output_t *out, aavs_debug_fn_t debug, void *debug_user);

/* The loss of a forward's predictions (m2f_loss: the last prediction and every
 * auxiliary one), with the head's loss config and variant. v1m_label_maps: avs
 * only, the label maps of a v1m batch (the empty-mask rule), else NULL. */
err_code_t aavs_head_loss(ctx_t *ctx, const aavs_head_t *head, const aavs_head_output_t *out,
                          const m2f_targets_t *targets, const m2f_point_source_t *points,
                          const tensor_t *v1m_label_maps, tensor_t **total, m2f_loss_report_t *report, err_t *err);

/* Which parameters train. */
typedef enum {
    AAVS_TRAIN_PHASE1 = 0,   /* the official phase 1 (train.py set_params): name patterns per variant */
    AAVS_TRAIN_ALL_HEAD = 1, /* every head parameter, for training from scratch */
} aavs_trainable_t;

/* The name patterns of a preset (a parameter trains when its name contains
 * one), for adamw_add_params: phase 1 of avs/train.py: queries_embedder,
 * queries_features, avs_adapt, class_predictor, audio_proj; of avss/train.py:
 * queries_embedder, avs_adapt, class_predictor, audio_proj, audio_embed,
 * silence_embed, uncertain_embed. AAVS_TRAIN_ALL_HEAD: NULL with *n = 0 (every
 * parameter, adamw_add_params's NULL patterns). The phase-2 swin_adapt of the
 * official code trains the backbone, which is not part of the head. */
const char *const *aavs_trainable_patterns(m2f_variant_t variant, aavs_trainable_t preset, int *n);

#endif
