/* m2f_decoder.h - Mask2Former's transformer decoder with the AAVS additions,
 * from the pixel decoder's outputs and the VGGish embeddings to the class and
 * mask logits of every prediction.
 *
 * What it computes is, in evaluation mode (dropout 0), the official AAVS code
 * (GeWu-Lab/Stepping-Stones at de6a17b, <variant>/transformers/models/
 * mask2former/modeling_mask2former.py, "M2F:line" = the avss copy, and
 * <variant>/avs_model.py): AdaptiveAVS.audio_proj, Mask2FormerTransformerModule,
 * Mask2FormerMaskedAttentionDecoder and the class predictor of
 * Mask2FormerForUniversalSegmentation. With F frames, Q queries, C = hidden_dim:
 *
 *   audio   = Linear(512, C)(ReLU(Linear(128, 512)(audio_embeddings [F, 128])))
 *   sim     = cosine_similarity(queries_embedder.weight [Q, C], audio [F, C]) [Q, F]
 *   queries = queries_features.weight + sim[:, f] * audio[f]   per frame  (M2F:2128)
 *   query position = queries_embedder.weight
 *   level i (0..2, the pixel decoder's multi_scale_features, coarsest first):
 *     values_i = features_i (input projection = identity, see the config) + level_embed[i]
 *     keys' position_i = sine embedding (C/2 per axis)
 *        avss: + silence_embed where p <= 0.4, audio_embed where p >= 0.6,
 *          uncertain_embed otherwise, p = bilinear(audio_boost_mask, level size) (M2F:2098)
 *   mask_features: the pixel decoder's; avss: + bilinear(audio_boost_mask) on every
 *     channel (M2F:2333)
 *   prediction(x) = (class_predictor(LN(x)), einsum(MLP(LN(x)), mask_features)),
 *     LN = decoder.layernorm, MLP = mask_embedder (3 Linear, ReLU between);
 *     the attention mask for the next layer = bilinear(mask logits, the next
 *     level's size), sigmoid < 0.5 blocked (detached), a row blocking every key
 *     opened whole (M2F:1913)
 *   prediction 0 from the queries; avss: its attention mask REPLACED by
 *     bilinear(audio_boost_mask, level 0 size) < 0.5 (M2F:1876)
 *   layer l (decoder_layers - 1 of them, M2F:1798), on level l % 3, post-norm:
 *     x = LN(x + MHA(x + qpos, values + pos, values, attention mask))  cross_attn
 *     x = LN(x + SA(x))                                                self_attn
 *     x = LN(x + fc2(act(fc1(x))))
 *     prediction l + 1 from x
 *   SA (Mask2FormerAttention) with queries and keys from x + qpos and values from x:
 *     avss: avs_adapt(out_proj(attention))   (M2F:1556)
 *     avs:  avs_adapt(attention)             (the avs copy comments out_proj out;
 *                                             out_proj is loaded and never used)
 *     avs_adapt = Linear(C, C/4) -> ReLU -> Linear(C/4, C), REPLACING the output.
 * The last prediction is the model's output, the others are auxiliary (aux.0
 * comes before the first layer).
 *
 * Memory: parameters live in the param_list's arena; m2f_decoder_forward
 * allocates every activation (and the output arrays) from ctx->arena, gone at
 * ctx_reset. The model struct and its layer array are malloc'd and freed by
 * m2f_decoder_free. Gradients: every parameter and the inputs (features, mask
 * features) can require grad; the backward is the ops' backward on the tape. */
#ifndef STEPSTONE_M2F_DECODER_H
#define STEPSTONE_M2F_DECODER_H

#include <stdint.h>

#include "config.h"
#include "m2f_variant.h"
#include "tape.h"
#include "weights.h"

#define M2F_LEVELS 3 /* num_feature_levels: fixed in the transformer module (M2F:2067) */


typedef enum { M2F_ACT_RELU = 0, M2F_ACT_GELU = 1 } m2f_act_t;

typedef struct {
    m2f_variant_t variant;
    int hidden_dim;        /* C */
    int mask_feature_size; /* channels of the mask features, mask_embedder's output */
    int num_queries;       /* Q */
    int num_layers;        /* decoder_layers - 1: the layers that run (M2F:1798) */
    int num_heads;         /* num_attention_heads; divides C */
    int dim_feedforward;
    m2f_act_t activation;  /* activation_function of the FFN */
    int num_labels;        /* L, without the no-object class: len(id2label) */
    int audio_dim;         /* 128: a VGGish embedding (AdaptiveAVS.audio_proj's input) */
    int audio_hidden;      /* 512: audio_proj's hidden width */
    float init_std;        /* init_std: for parameters a plain HF checkpoint lacks */
    float init_xavier_std; /* init_xavier_std: likewise */
} m2f_decoder_config_t;

/* Reads the decoder's settings from a HuggingFace Mask2Former config.json
 * (hidden_dim, feature_size, mask_feature_size, num_queries, decoder_layers,
 * num_attention_heads, dim_feedforward, activation_function, id2label, pre_norm,
 * enforce_input_projection, dropout, init_std, init_xavier_std, with
 * Mask2FormerConfig's defaults when absent). Refused with ERR_MISMATCH naming
 * the key and why:
 *   feature_size != hidden_dim, or enforce_input_projection: the module keeps
 *     its input projections in a plain Python list (M2F:2069), so they are never
 *     saved, never trained and random at every build: no checkpoint can be
 *     loaded faithfully;
 *   pre_norm true (the official configs are post-norm; the pre-norm path has no
 *     reference here); dropout other than 0 (training would drop, and drop whole
 *     layers: layerdrop = dropout); an activation other than relu or gelu;
 *   heads not dividing hidden_dim, an odd hidden_dim (the sine embedding has C/2
 *     features per axis), hidden_dim < 4 (avs_adapt's C/4), decoder_layers < 1. */
err_code_t m2f_decoder_config_from_json(const config_t *cfg, m2f_variant_t variant, m2f_decoder_config_t *out,
                                        err_t *err);

typedef struct {
    tensor_t *sa_q_w, *sa_q_b, *sa_k_w, *sa_k_b, *sa_v_w, *sa_v_b; /* self_attn.{q,k,v}_proj */
    tensor_t *sa_out_w, *sa_out_b;       /* self_attn.out_proj (unused by avs, see above) */
    tensor_t *adapt_down_w, *adapt_down_b; /* self_attn.avs_adapt.0: Linear(C, C/4) */
    tensor_t *adapt_up_w, *adapt_up_b;   /* self_attn.avs_adapt.2: Linear(C/4, C) */
    tensor_t *sa_norm_w, *sa_norm_b;     /* self_attn_layer_norm */
    tensor_t *ca_in_w, *ca_in_b;         /* cross_attn.in_proj_weight [3C, C], in_proj_bias [3C]: q, k, v */
    tensor_t *ca_out_w, *ca_out_b;       /* cross_attn.out_proj */
    tensor_t *ca_norm_w, *ca_norm_b;     /* cross_attn_layer_norm */
    tensor_t *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    tensor_t *final_norm_w, *final_norm_b; /* final_layer_norm */
} m2f_decoder_layer_t;

typedef struct {
    m2f_decoder_config_t cfg;
    tensor_t *audio_w0, *audio_b0, *audio_w2, *audio_b2; /* audio_proj.0, audio_proj.2 */
    tensor_t *queries_embedder;  /* [Q, C]: query positions, and the cosine similarity */
    tensor_t *queries_features;  /* [Q, C]: query content */
    tensor_t *level_embed;       /* [3, C] */
    tensor_t *silence_embed, *audio_embed, *uncertain_embed; /* [1, C] each; avss only, else NULL */
    m2f_decoder_layer_t *layers; /* cfg.num_layers of them (malloc'd) */
    tensor_t *norm_w, *norm_b;   /* decoder.layernorm */
    tensor_t *mask_mlp_w[3], *mask_mlp_b[3]; /* decoder.mask_predictor.mask_embedder.<i>.0 */
    tensor_t *class_w, *class_b; /* class_predictor: Linear(C, L + 1) */
    /* How a plain HuggingFace checkpoint was completed (all 0 for an AAVS one):
     * the parts it lacks were drawn as from_pretrained and AdaptiveAVS make them */
    int aavs_parts_initialized;  /* avs_adapt, prompt embeddings, audio_proj */
    int class_predictor_initialized; /* its num_labels differed (ignore_mismatched_sizes) */
} m2f_decoder_t;

/* The naming prefixes of the transformer module that m2f_decoder_load tries, in
 * order: AAVS checkpoints ("model.model.transformer_module."), HuggingFace's
 * Mask2FormerForUniversalSegmentation ("model.transformer_module."),
 * Mask2FormerModel ("transformer_module."). */
extern const char *const m2f_decoder_weight_prefixes[];
extern const int m2f_decoder_n_weight_prefixes;

/* Parameters are registered under their AdaptiveAVS state-dict names whatever
 * the file: "model.model.transformer_module.<name>", "model.class_predictor.<name>",
 * "audio_proj.<name>". */
#define M2F_DECODER_TRANSFORMER_PREFIX "model.model.transformer_module."
#define M2F_DECODER_CLASS_PREFIX "model."
#define M2F_DECODER_AUDIO_PREFIX ""

/* Loads the decoder, the class predictor and audio_proj from an open weights
 * file into params (its arena holds the tensors; the arena's device is where
 * the model runs). Every tensor's shape is checked; a missing one is an error
 * naming it, and tensors under the transformer module's prefix that the config
 * does not use (a decoder layer too many, prompt embeddings in an avs load) are
 * an error too.
 * A plain HuggingFace checkpoint (no avs_adapt in the transformer module) is
 * completed as the official training starts from one: avs_adapt weights
 * xavier_uniform(init_xavier_std) and biases 0 (_init_weights of the decoder
 * layer), prompt embeddings N(0, init_std^2), audio_proj as torch's Linear
 * default (U(+-1/sqrt(fan_in))), and a class predictor of another num_labels
 * redrawn N(0, init_std^2) with bias 0 (ignore_mismatched_sizes); draws from
 * init_seed (torch's own draws cannot be reproduced). In an AAVS checkpoint
 * (avs_adapt present) every part must be there. Returns a malloc'd model in
 * *out (m2f_decoder_free), or an error naming the tensor. */
err_code_t m2f_decoder_load(const m2f_decoder_config_t *cfg, weights_t *w, param_list_t *params, uint64_t init_seed,
                            m2f_decoder_t **out, err_t *err);
/* A model with every parameter drawn from N(0, std^2) (biases and norms too, so
 * that nothing is trivially 0 or 1), for tests and benchmarks. */
m2f_decoder_t *m2f_decoder_random(const m2f_decoder_config_t *cfg, param_list_t *params, uint64_t seed, float std);
void m2f_decoder_free(m2f_decoder_t *dec);

typedef struct {
    int n_predictions;        /* num_layers + 1; the last is the output, the rest aux.0 .. */
    tensor_t **class_logits;  /* n_predictions of [F, Q, L + 1] (the array is ctx's) */
    tensor_t **mask_logits;   /* n_predictions of [F, Q, Hm, Wm] at the mask features' size */
    tensor_t *last_hidden_state; /* [F, Q, C]: the last layer's output before the final LN */
    tensor_t *audio;          /* [F, C]: audio_proj's output */
} m2f_decoder_output_t;

/* Optional observer of intermediate tensors, named as the golden files name
 * them after "debug.": "audio_proj.out" and "transformer.prompt_features_projected"
 * [1, F, C]; "transformer.mask_features_in" [F, Cm, Hm, Wm];
 * "transformer.query_features_in", "transformer.query_position_embeddings"
 * [Q, F, C]; "transformer.multi_stage_pos_embed.<i>", "transformer.multi_stage_features.<i>"
 * [h w, F, C]; per layer j "decoder.layer<j>.attn_mask" BOOL [F heads, Q, h w]
 * (True = may not attend, as the layer uses it), "decoder.layer<j>.level_index"
 * I64 [1], "decoder.layer<j>.out" [Q, F, C]; "decoder.intermediate.<i>" [Q, F, C];
 * "transformer_decoder_last_hidden_state" [F, Q, C]. The tensors are built in
 * those (torch) layouts only when an observer is given, outside the tape; they
 * are ctx's: copy what you keep. */
typedef void (*m2f_debug_fn_t)(void *user, const char *name, const tensor_t *t);

/* audio_proj alone: audio_embeddings [F, audio_dim] -> [F, C]. */
tensor_t *m2f_audio_proj_forward(ctx_t *ctx, const m2f_decoder_t *dec, tensor_t *audio_embeddings);

/* Runs the decoder (F32 tensors on ctx's device):
 *   features[i]        [F, C, h_i, w_i], the pixel decoder's multi-scale features, coarsest first
 *   mask_features      [F, Cm, Hm, Wm], the pixel decoder's (without the avss addition)
 *   audio_embeddings   [F, audio_dim]
 *   audio_boost_mask   [F, hb, wb] in [0, 1] for avss (the stage-1 mask at any size); NULL for avs
 * and fills *out. debug may be NULL. Inputs that cannot run (shapes that
 * disagree, a boost mask given to avs or missing for avss) are programmer errors
 * (fatal). */
void m2f_decoder_forward(ctx_t *ctx, const m2f_decoder_t *dec, tensor_t *const features[M2F_LEVELS],
                         tensor_t *mask_features, tensor_t *audio_embeddings, tensor_t *audio_boost_mask,
                         m2f_decoder_output_t *out, m2f_debug_fn_t debug, void *debug_user);

#endif
