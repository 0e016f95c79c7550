/* swin.h - the Swin Transformer backbone of Mask2Former, as AAVS runs it.
 *
 * What it computes is HuggingFace's SwinBackbone (transformers 4.35.2, the copy
 * vendored by GeWu-Lab/Stepping-Stones at de6a17b, avss/transformers/models/
 * swin/modeling_swin.py, "SWIN:line" below) in evaluation mode:
 *   patch embedding (conv k = stride = patch, the input padded right/bottom with
 *   zeros to a multiple of the patch) -> LayerNorm -> stages. Stage k has
 *   depth_k blocks of dim C_k = embed_dim * 2^k; block j:
 *     x = x + attn(LN_before(x))      windowed attention; odd j shifted by window/2
 *     x = x + mlp(LN_after(x))        Linear(C, mlp_ratio C) -> act -> Linear
 *   with the AAVS adapters: the attention output dense and the MLP output dense
 *   are each followed by y = y + Linear(C/4, C)(ReLU(Linear(C, C/4)(y)))
 *   (swin_adapt_1, SWIN:523; swin_adapt_3, SWIN:607). Every stage but the last
 *   ends with patch merging (2x2 neighbours concatenated as x00, x10, x01, x11,
 *   odd sizes padded with zeros, LayerNorm(4C), Linear(4C, 2C) without bias).
 *   The outputs are each requested stage's tokens BEFORE its patch merging,
 *   through that stage's own LayerNorm (hidden_states_norms.stage<k>), as
 *   [F, C_k, h_k, w_k].
 *
 * Window attention, as the backbone runs it (SwinBackbone passes
 * always_partition=True, SWIN:1353, so the window and the shift never shrink,
 * even when a stage is smaller than the window):
 *   - the tokens [F, h, w, C] are padded with zero tokens right/bottom to a
 *     multiple of the window AFTER LN_before; the padded tokens take part in the
 *     attention as keys and values (only the shift mask below ever masks);
 *   - shifted blocks roll by (-s, -s), and the scores get -100 where query and
 *     key come from different regions of the 3x3 split of the padded map at
 *     (-window, -shift) (the standard SW-MSA mask, computed on the padded size);
 *   - scores = q k^T / sqrt(head_dim) + relative position bias (table indexed by
 *     relative_position_index) + mask; softmax; crop back to [h, w].
 * Sizes of any kind work: non-square, not divisible by patch * window * 2^k,
 * stages smaller than the window.
 *
 * Memory: parameters live in the param_list's arena; swin_forward allocates
 * every activation from ctx->arena (gone at ctx_reset). The model struct and
 * its block array are malloc'd and freed by swin_free. Gradients: every
 * parameter can require grad (the official phase 2 trains swin_adapt only). */
#ifndef STEPSTONE_SWIN_H
#define STEPSTONE_SWIN_H

#include "config.h"
#include "tape.h"
#include "weights.h"

#define SWIN_MAX_STAGES 8

typedef enum { SWIN_ACT_GELU = 0, SWIN_ACT_RELU = 1 } swin_act_t;

typedef struct {
    int num_channels;          /* input channels (3) */
    int patch_h, patch_w;      /* patch_size */
    int embed_dim;             /* C_0 */
    int n_stages;              /* len(depths) */
    int depths[SWIN_MAX_STAGES];
    int num_heads[SWIN_MAX_STAGES];
    int window_size;
    int mlp_hidden[SWIN_MAX_STAGES]; /* int(mlp_ratio * C_k), as HF truncates it */
    int qkv_bias;
    float layer_norm_eps;      /* of the blocks' norms; the other norms use torch's default 1e-5 */
    swin_act_t hidden_act;
    /* out_features as stage indices: 0 = "stem" (the embeddings), k = "stage<k>" */
    int n_out;
    int out_stages[SWIN_MAX_STAGES + 1];
    int image_h, image_w;      /* the config's image_size (informational: any size runs) */
} swin_config_t;

/* Reads the Swin config from a HuggingFace config.json: a Mask2Former config
 * with "backbone_config", or a Swin config itself (model_type "swin"). Missing
 * fields take SwinConfig's defaults; out_features (or out_indices) default to
 * the last stage as HF does. Refused with ERR_MISMATCH naming the key:
 * use_absolute_embeddings (HF itself cannot run it at other sizes), an
 * activation other than gelu/relu, heads not dividing a stage's dim, more than
 * SWIN_MAX_STAGES stages. */
err_code_t swin_config_from_json(const config_t *cfg, swin_config_t *out, err_t *err);

/* Channels of output stage index s (0 = stem). */
int swin_stage_dim(const swin_config_t *cfg, int s);

typedef struct {
    tensor_t *down_w, *down_b; /* Linear(C, C/4) */
    tensor_t *up_w, *up_b;     /* Linear(C/4, C) */
    int zero_at_load;          /* up_w and up_b were all zero: the adapter is the identity */
} swin_adapter_t;

typedef struct {
    int shift;                 /* 0 or window_size / 2 */
    tensor_t *ln_before_w, *ln_before_b;
    tensor_t *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* biases NULL without qkv_bias */
    tensor_t *rel_bias_table;  /* [(2 window - 1)^2, heads] */
    tensor_t *attn_out_w, *attn_out_b;
    swin_adapter_t adapt_attn; /* swin_adapt_1 */
    tensor_t *ln_after_w, *ln_after_b;
    tensor_t *mlp_in_w, *mlp_in_b, *mlp_out_w, *mlp_out_b;
    swin_adapter_t adapt_mlp;  /* swin_adapt_3 */
} swin_block_t;

typedef struct {
    int dim, heads, depth;
    swin_block_t *blocks;      /* depth of them (malloc'd) */
    /* patch merging after the stage; NULL for the last stage */
    tensor_t *merge_norm_w, *merge_norm_b, *merge_reduction_w;
} swin_stage_t;

typedef struct {
    swin_config_t cfg;
    tensor_t *patch_w, *patch_b;         /* Conv2d(num_channels, embed_dim, patch, patch) */
    tensor_t *embed_norm_w, *embed_norm_b;
    swin_stage_t stages[SWIN_MAX_STAGES];
    /* hidden_states_norms per stage index (0 = stem); NULL when not an output */
    tensor_t *out_norm_w[SWIN_MAX_STAGES + 1], *out_norm_b[SWIN_MAX_STAGES + 1];
    tensor_t *rel_index;                 /* I64 [window^2 * window^2], computed (as SWIN:447) */
    int adapters_from_file;              /* 0: the file had none and they were made zero */
} swin_t;

/* The naming prefixes swin_load tries, in order: AAVS checkpoints
 * ("model.model.pixel_level_module.encoder."), HuggingFace Mask2Former
 * ("model.pixel_level_module.encoder."), a bare Swin backbone (""). */
extern const char *const swin_weight_prefixes[];
extern const int swin_n_weight_prefixes;

/* Loads the backbone from an open weights file into params (its arena holds
 * the tensors; the arena's device is where the model runs). The prefix is
 * resolved among swin_weight_prefixes. Parameters are registered as
 * param_prefix + the HF name under the encoder ("embeddings.norm.weight",
 * "encoder.layers.0.blocks.1.attention.output.swin_adapt_1.0.weight", ...);
 * pass "model.model.pixel_level_module.encoder." to keep the AAVS names.
 * Adapters: present in the file (all of them) or absent (all of them: a plain
 * HF checkpoint), in which case they are created zero, the identity, as phase 1
 * of the official training makes them; a partial set is an error. Tensors
 * under the prefix that the config does not use are an error too. Returns a
 * malloc'd model in *out (swin_free), or an error naming the tensor. */
err_code_t swin_load(const swin_config_t *cfg, weights_t *w, param_list_t *params, const char *param_prefix,
                     swin_t **out, err_t *err);
/* A model with every parameter drawn from N(0, std^2) (biases and norms too,
 * so that nothing is trivially 0 or 1), for tests and benchmarks. */
swin_t *swin_random(const swin_config_t *cfg, param_list_t *params, uint64_t seed, float std);
void swin_free(swin_t *m);

/* Recomputes each adapter's zero_at_load flag from its current values (call it
 * after changing adapter weights other than by training them with grad on). */
void swin_refresh_adapter_flags(swin_t *m);

/* Optional observer of intermediate token sequences [F, h*w, C], named as the
 * golden files name them: "embeddings", "stage<k>.block<j>", "stage<k>.downsample"
 * (k from 1). The tensor is ctx's; copy what you keep. */
typedef void (*swin_debug_fn_t)(void *user, const char *name, const tensor_t *tokens);

/* Runs the backbone on pixel_values [F, num_channels, H, W] (F32 on ctx's
 * device) and writes cfg.n_out tensors [F, C_k, h_k, w_k] to features[], in
 * out_features order. debug may be NULL. Sizes that cannot run (a dim of 0, the
 * wrong channel count) are programmer errors (fatal). */
void swin_forward(ctx_t *ctx, const swin_t *m, tensor_t *pixel_values, tensor_t **features, swin_debug_fn_t debug,
                  void *debug_user);

/* One block on tokens [F, h*w, C] of spatial size h x w: exposed for the
 * gradient check of the composition. */
tensor_t *swin_block_forward(ctx_t *ctx, const swin_t *m, const swin_block_t *b, int heads, tensor_t *x, int64_t h,
                             int64_t w);

#endif
