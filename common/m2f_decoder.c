/* m2f_decoder.c - the transformer decoder's forward pass, composed of ops (so
 * it runs on every backend and has a backward). See m2f_decoder.h for what it
 * computes.
 *
 * Layout: the official code runs sequence-first [L, F, C] (nn.MultiheadAttention);
 * here every sequence is batch-first [F, L, C], which changes no value. The
 * debug observer gets the official layouts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2f_attn_mask.h"
#include "m2f_decoder.h"
#include "ops.h"
#include "sine_position.h"

/* nn.LayerNorm's default eps: every norm of the module is built without one */
#define LN_EPS 1e-5f
/* torch.cosine_similarity's default eps (M2F:2128 passes none) */
#define COSINE_EPS 1e-8f

/* ---- debug reports in the official layouts (outside the tape) ---- */

typedef struct {
    m2f_debug_fn_t fn;
    void *user;
} debug_t;

/* x [B, L, C] with B = 1 or frames, reported as [L, frames, C] (sequence first,
 * the batch of 1 repeated, as the official code repeats it) */
static void report_seq_first(ctx_t *ctx, const debug_t *dbg, const char *name, const tensor_t *x, int64_t frames) {
    if (!dbg->fn) return;
    int64_t b = x->shape[0], l = x->shape[1], c = x->shape[2];
    float *src = malloc((size_t)(x->numel ? x->numel : 1) * sizeof(float));
    float *dst = malloc((size_t)(l * frames * c + 1) * sizeof(float));
    if (!src || !dst) fatal("m2f_decoder: out of host memory for a debug report");
    tensor_to_host(x, src);
    for (int64_t i = 0; i < l; i++)
        for (int64_t f = 0; f < frames; f++)
            memcpy(dst + (i * frames + f) * c, src + ((b == 1 ? 0 : f) * l + i) * c, (size_t)c * sizeof(float));
    tensor_t *t = tensor_from_host(ctx->arena, DTYPE_F32, 3, (int64_t[]){l, frames, c}, dst);
    dbg->fn(dbg->user, name, t);
    free(src);
    free(dst);
}

/* x reported with another shape (same data order) */
static void report_as(ctx_t *ctx, const debug_t *dbg, const char *name, const tensor_t *x, int ndim,
                      const int64_t *shape) {
    if (!dbg->fn) return;
    tensor_t *t = arena_alloc_host(ctx->arena, sizeof *t);
    *t = *x;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->grad = NULL;
    t->requires_grad = 0;
    dbg->fn(dbg->user, name, t);
}

/* the U8 mask [F, 1, Q, len] as torch's BOOL [F * heads, Q, len], and the level index */
static void report_attn_mask(ctx_t *ctx, const debug_t *dbg, int layer, const tensor_t *mask, int64_t heads,
                             int level) {
    if (!dbg->fn) return;
    int64_t f = mask->shape[0], q = mask->shape[2], len = mask->shape[3], plane = q * len;
    uint8_t *src = malloc((size_t)(mask->numel ? mask->numel : 1));
    uint8_t *dst = malloc((size_t)(f * heads * plane + 1));
    if (!src || !dst) fatal("m2f_decoder: out of host memory for a debug report");
    tensor_to_host(mask, src);
    for (int64_t i = 0; i < f; i++)
        for (int64_t h = 0; h < heads; h++) memcpy(dst + (i * heads + h) * plane, src + i * plane, (size_t)plane);
    char name[96];
    snprintf(name, sizeof name, "decoder.layer%d.attn_mask", layer);
    dbg->fn(dbg->user, name, tensor_from_host(ctx->arena, DTYPE_BOOL, 3, (int64_t[]){f * heads, q, len}, dst));
    int64_t level64 = level;
    snprintf(name, sizeof name, "decoder.layer%d.level_index", layer);
    dbg->fn(dbg->user, name, tensor_from_host(ctx->arena, DTYPE_I64, 1, (int64_t[]){1}, &level64));
    free(src);
    free(dst);
}

/* ---- building blocks ---- */

/* [B, L, heads * d] -> [B, heads, L, d] */
static tensor_t *split_heads(ctx_t *ctx, tensor_t *y, int64_t heads) {
    int64_t b = y->shape[0], l = y->shape[1], d = y->shape[2] / heads;
    tensor_t *t = op_reshape(ctx, y, 4, (int64_t[]){b, l, heads, d});
    return op_permute(ctx, t, (int[]){0, 2, 1, 3});
}

/* [B, heads, L, d] -> [B, L, heads * d] */
static tensor_t *merge_heads(ctx_t *ctx, tensor_t *y) {
    int64_t b = y->shape[0], heads = y->shape[1], l = y->shape[2], d = y->shape[3];
    tensor_t *t = op_permute(ctx, y, (int[]){0, 2, 1, 3});
    return op_reshape(ctx, t, 3, (int64_t[]){b, l, heads * d});
}

/* softmax(q k^T / sqrt(d) + mask) v over heads, on [B, L, C] projections */
static tensor_t *multi_head(ctx_t *ctx, tensor_t *q, tensor_t *k, tensor_t *v, tensor_t *block_mask, int64_t heads) {
    int64_t d = q->shape[2] / heads;
    tensor_t *o = op_attention(ctx, split_heads(ctx, q, heads), split_heads(ctx, k, heads), split_heads(ctx, v, heads),
                               block_mask, block_mask ? ATTN_MASK_BLOCK : ATTN_MASK_NONE, 1.0f / sqrtf((float)d));
    return merge_heads(ctx, o);
}

/* nn.MultiheadAttention (cross_attn) with query x + qpos, key values + pos,
 * value values: the packed in-projection split into its q, k, v rows */
static tensor_t *cross_attention(ctx_t *ctx, const m2f_decoder_t *dec, const m2f_decoder_layer_t *ly, tensor_t *x,
                                 tensor_t *qpos, tensor_t *values, tensor_t *pos, tensor_t *block_mask) {
    int64_t c = dec->cfg.hidden_dim;
    tensor_t *w[3], *b[3];
    for (int i = 0; i < 3; i++) {
        w[i] = op_slice(ctx, ly->ca_in_w, 0, i * c, (i + 1) * c);
        b[i] = op_slice(ctx, ly->ca_in_b, 0, i * c, (i + 1) * c);
    }
    tensor_t *q = op_linear(ctx, op_add(ctx, x, qpos), w[0], b[0]);
    tensor_t *k = op_linear(ctx, op_add(ctx, values, pos), w[1], b[1]);
    tensor_t *v = op_linear(ctx, values, w[2], b[2]);
    tensor_t *o = multi_head(ctx, q, k, v, block_mask, dec->cfg.num_heads);
    return op_linear(ctx, o, ly->ca_out_w, ly->ca_out_b);
}

/* Mask2FormerAttention (self_attn): queries and keys from x + qpos, values from
 * x; the AAVS adapter replaces the output (avss after out_proj, avs instead of it) */
static tensor_t *self_attention(ctx_t *ctx, const m2f_decoder_t *dec, const m2f_decoder_layer_t *ly, tensor_t *x,
                                tensor_t *qpos) {
    tensor_t *xq = op_add(ctx, x, qpos);
    tensor_t *q = op_linear(ctx, xq, ly->sa_q_w, ly->sa_q_b);
    tensor_t *k = op_linear(ctx, xq, ly->sa_k_w, ly->sa_k_b);
    tensor_t *v = op_linear(ctx, x, ly->sa_v_w, ly->sa_v_b);
    tensor_t *o = multi_head(ctx, q, k, v, NULL, dec->cfg.num_heads);
    if (dec->cfg.variant == M2F_VARIANT_AVSS) o = op_linear(ctx, o, ly->sa_out_w, ly->sa_out_b);
    tensor_t *hid = op_relu(ctx, op_linear(ctx, o, ly->adapt_down_w, ly->adapt_down_b));
    return op_linear(ctx, hid, ly->adapt_up_w, ly->adapt_up_b);
}

static tensor_t *feed_forward(ctx_t *ctx, const m2f_decoder_t *dec, const m2f_decoder_layer_t *ly, tensor_t *x) {
    tensor_t *h = op_linear(ctx, x, ly->fc1_w, ly->fc1_b);
    h = dec->cfg.activation == M2F_ACT_GELU ? op_gelu(ctx, h) : op_relu(ctx, h);
    return op_linear(ctx, h, ly->fc2_w, ly->fc2_b);
}

/* Mask2FormerMaskedAttentionDecoderLayer.forward_post */
static tensor_t *decoder_layer(ctx_t *ctx, const m2f_decoder_t *dec, const m2f_decoder_layer_t *ly, tensor_t *x,
                               tensor_t *qpos, tensor_t *values, tensor_t *pos, tensor_t *block_mask) {
    tensor_t *a = cross_attention(ctx, dec, ly, x, qpos, values, pos, block_mask);
    x = op_layer_norm(ctx, op_add(ctx, x, a), ly->ca_norm_w, ly->ca_norm_b, LN_EPS);
    a = self_attention(ctx, dec, ly, x, qpos);
    x = op_layer_norm(ctx, op_add(ctx, x, a), ly->sa_norm_w, ly->sa_norm_b, LN_EPS);
    a = feed_forward(ctx, dec, ly, x);
    return op_layer_norm(ctx, op_add(ctx, x, a), ly->final_norm_w, ly->final_norm_b, LN_EPS);
}

/* One prediction from the queries x [F, Q, C]: the normed states, the class
 * logits and the mask logits einsum("bqc,bchw->bqhw", MLP(normed), mask features) */
typedef struct {
    tensor_t *normed, *class_logits, *mask_logits;
} prediction_t;

static prediction_t predict(ctx_t *ctx, const m2f_decoder_t *dec, tensor_t *x, tensor_t *mask_flat, int64_t hm,
                            int64_t wm) {
    prediction_t p;
    p.normed = op_layer_norm(ctx, x, dec->norm_w, dec->norm_b, LN_EPS);
    p.class_logits = op_linear(ctx, p.normed, dec->class_w, dec->class_b);
    tensor_t *e = p.normed;
    for (int i = 0; i < 3; i++) {
        e = op_linear(ctx, e, dec->mask_mlp_w[i], dec->mask_mlp_b[i]);
        if (i < 2) e = op_relu(ctx, e);
    }
    tensor_t *m = op_matmul(ctx, e, mask_flat);
    p.mask_logits = op_reshape(ctx, m, 4, (int64_t[]){x->shape[0], x->shape[1], hm, wm});
    return p;
}

tensor_t *m2f_audio_proj_forward(ctx_t *ctx, const m2f_decoder_t *dec, tensor_t *audio_embeddings) {
    char s[96];
    if (audio_embeddings->ndim != 2 || audio_embeddings->shape[1] != dec->cfg.audio_dim)
        fatal("m2f_decoder: audio embeddings %s, want [F, %d]", tensor_shape_str(audio_embeddings, s, 96),
              dec->cfg.audio_dim);
    tensor_t *h = op_relu(ctx, op_linear(ctx, audio_embeddings, dec->audio_w0, dec->audio_b0));
    return op_linear(ctx, h, dec->audio_w2, dec->audio_b2);
}

/* ---- inputs ---- */

static void check_inputs(const m2f_decoder_t *dec, tensor_t *const features[M2F_LEVELS], tensor_t *mask_features,
                         tensor_t *audio_embeddings, tensor_t *boost) {
    const m2f_decoder_config_t *c = &dec->cfg;
    char s[96];
    int64_t f = mask_features->shape[0];
    if (mask_features->ndim != 4 || mask_features->shape[1] != c->mask_feature_size)
        fatal("m2f_decoder: mask features %s, want [F, %d, H, W]", tensor_shape_str(mask_features, s, 96),
              c->mask_feature_size);
    for (int i = 0; i < M2F_LEVELS; i++)
        if (features[i]->ndim != 4 || features[i]->shape[0] != f || features[i]->shape[1] != c->hidden_dim)
            fatal("m2f_decoder: multi-scale feature %d is %s, want [%lld, %d, h, w]", i,
                  tensor_shape_str(features[i], s, 96), (long long)f, c->hidden_dim);
    if (audio_embeddings->ndim != 2 || audio_embeddings->shape[0] != f)
        fatal("m2f_decoder: audio embeddings %s for %lld frames", tensor_shape_str(audio_embeddings, s, 96),
              (long long)f);
    if (c->variant == M2F_VARIANT_AVSS && !boost)
        fatal("m2f_decoder: the avss variant needs the audio_boost_mask (the stage-1 mask)");
    if (c->variant == M2F_VARIANT_AVS && boost)
        fatal("m2f_decoder: the avs variant takes no audio_boost_mask");
    if (boost && (boost->ndim != 3 || boost->shape[0] != f))
        fatal("m2f_decoder: audio_boost_mask %s, want [%lld, h, w]", tensor_shape_str(boost, s, 96), (long long)f);
}

/* The sine position embedding of a level as [1, h w, C] (token-major) */
static tensor_t *sine_tokens(ctx_t *ctx, int64_t h, int64_t w, int64_t c) {
    int64_t len = h * w;
    float *chw = malloc((size_t)(c * len) * sizeof(float)), *tok = malloc((size_t)(c * len) * sizeof(float));
    if (!chw || !tok) fatal("m2f_decoder: out of host memory");
    sine_position_embedding_host(chw, h, w, (int)(c / 2));
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < len; i++) tok[i * c + ch] = chw[ch * len + i];
    tensor_t *t = tensor_from_host(ctx->arena, DTYPE_F32, 3, (int64_t[]){1, len, c}, tok);
    free(chw);
    free(tok);
    return t;
}

/* avss: the prompt embedding of each location of a level, chosen by the
 * stage-1 mask resized to it (boost_level [F, 1, h, w]) -> [F, h w, C] */
static tensor_t *prompt_tokens(ctx_t *ctx, const m2f_decoder_t *dec, tensor_t *boost_level) {
    int64_t f = boost_level->shape[0], len = boost_level->shape[2] * boost_level->shape[3];
    float *p = malloc((size_t)(f * len) * sizeof(float));
    int64_t *idx = malloc((size_t)(f * len) * sizeof(int64_t));
    if (!p || !idx) fatal("m2f_decoder: out of host memory");
    tensor_to_host(boost_level, p);
    m2f_prompt_index(idx, p, f * len);
    tensor_t *index = tensor_from_host(ctx->arena, DTYPE_I64, 2, (int64_t[]){f, len}, idx);
    free(p);
    free(idx);
    /* the table's rows in the order of M2F_PROMPT_SILENCE, _AUDIO, _UNCERTAIN */
    tensor_t *rows[3] = {dec->silence_embed, dec->audio_embed, dec->uncertain_embed};
    tensor_t *table = op_concat(ctx, rows, 3, 0);
    return op_embedding(ctx, table, index);
}

/* ---- the forward ---- */

void m2f_decoder_forward(ctx_t *ctx, const m2f_decoder_t *dec, tensor_t *const features[M2F_LEVELS],
                         tensor_t *mask_features, tensor_t *audio_embeddings, tensor_t *audio_boost_mask,
                         m2f_decoder_output_t *out, m2f_debug_fn_t debug, void *debug_user) {
    const m2f_decoder_config_t *cfg = &dec->cfg;
    check_inputs(dec, features, mask_features, audio_embeddings, audio_boost_mask);
    debug_t dbg = {debug, debug_user};
    /* the debug reports are built outside the tape */
    int grad = ctx->grad_enabled;
    int64_t f = mask_features->shape[0], q = cfg->num_queries, c = cfg->hidden_dim;
    int64_t cm = cfg->mask_feature_size, hm = mask_features->shape[2], wm = mask_features->shape[3];
    tensor_t *boost = NULL; /* [F, 1, hb, wb] */
    if (audio_boost_mask)
        boost = op_reshape(ctx, audio_boost_mask, 4,
                           (int64_t[]){f, 1, audio_boost_mask->shape[1], audio_boost_mask->shape[2]});

    /* audio -> query contents: queries_features + cos(queries_embedder, audio) * audio */
    tensor_t *audio = m2f_audio_proj_forward(ctx, dec, audio_embeddings);
    ctx_set_grad(ctx, 0);
    report_as(ctx, &dbg, "audio_proj.out", audio, 3, (int64_t[]){1, f, c});
    report_as(ctx, &dbg, "transformer.prompt_features_projected", audio, 3, (int64_t[]){1, f, c});
    ctx_set_grad(ctx, grad);
    tensor_t *audio3 = op_reshape(ctx, audio, 3, (int64_t[]){f, 1, c});
    tensor_t *qe3 = op_reshape(ctx, dec->queries_embedder, 3, (int64_t[]){1, q, c});
    tensor_t *sim = op_cosine_similarity(ctx, audio3, qe3, COSINE_EPS); /* [F, Q] */
    tensor_t *prompted = op_mul(ctx, op_reshape(ctx, sim, 3, (int64_t[]){f, q, 1}), audio3);
    tensor_t *x = op_add(ctx, dec->queries_features, prompted); /* [F, Q, C] */
    tensor_t *qpos = dec->queries_embedder;                      /* [Q, C], the same for every frame */

    /* the levels: values with their level embedding, keys' position embeddings */
    tensor_t *values[M2F_LEVELS], *pos[M2F_LEVELS];
    int64_t lh[M2F_LEVELS], lw[M2F_LEVELS];
    for (int i = 0; i < M2F_LEVELS; i++) {
        lh[i] = features[i]->shape[2];
        lw[i] = features[i]->shape[3];
        tensor_t *flat = op_reshape(ctx, features[i], 3, (int64_t[]){f, c, lh[i] * lw[i]});
        tensor_t *level = op_reshape(ctx, op_slice(ctx, dec->level_embed, 0, i, i + 1), 3, (int64_t[]){1, c, 1});
        values[i] = op_permute(ctx, op_add(ctx, flat, level), (int[]){0, 2, 1}); /* [F, h w, C] */
        pos[i] = sine_tokens(ctx, lh[i], lw[i], c);                                /* [1, h w, C] */
        if (boost) {
            tensor_t *p = op_interpolate_bilinear(ctx, boost, lh[i], lw[i]);
            pos[i] = op_add(ctx, pos[i], prompt_tokens(ctx, dec, p)); /* [F, h w, C] */
        }
    }

    /* avss: the stage-1 mask joins the mask features on every channel */
    tensor_t *mask_in = mask_features;
    if (boost) mask_in = op_add(ctx, mask_features, op_interpolate_bilinear(ctx, boost, hm, wm));
    tensor_t *mask_flat = op_reshape(ctx, mask_in, 3, (int64_t[]){f, cm, hm * wm});

    ctx_set_grad(ctx, 0);
    report_as(ctx, &dbg, "transformer.mask_features_in", mask_in, 4, mask_in->shape);
    report_seq_first(ctx, &dbg, "transformer.query_features_in", x, f);
    tensor_t *qpos3 = op_reshape(ctx, qpos, 3, (int64_t[]){1, q, c});
    report_seq_first(ctx, &dbg, "transformer.query_position_embeddings", qpos3, f);
    for (int i = 0; i < M2F_LEVELS && dbg.fn; i++) {
        char name[96];
        snprintf(name, sizeof name, "transformer.multi_stage_pos_embed.%d", i);
        report_seq_first(ctx, &dbg, name, pos[i], f);
        snprintf(name, sizeof name, "transformer.multi_stage_features.%d", i);
        report_seq_first(ctx, &dbg, name, values[i], f);
    }
    ctx_set_grad(ctx, grad);

    out->n_predictions = cfg->num_layers + 1;
    out->class_logits = arena_alloc_host(ctx->arena, (size_t)out->n_predictions * sizeof(tensor_t *));
    out->mask_logits = arena_alloc_host(ctx->arena, (size_t)out->n_predictions * sizeof(tensor_t *));
    out->audio = audio;

    prediction_t p = predict(ctx, dec, x, mask_flat, hm, wm);
    out->class_logits[0] = p.class_logits;
    out->mask_logits[0] = p.mask_logits;
    ctx_set_grad(ctx, 0);
    report_seq_first(ctx, &dbg, "decoder.intermediate.0", p.normed, f);
    ctx_set_grad(ctx, grad);
    tensor_t *block;
    if (boost) block = m2f_attn_mask_from_boost_map(ctx, op_interpolate_bilinear(ctx, boost, lh[0], lw[0]), q);
    else block = m2f_attn_mask_from_mask_logits(ctx, p.mask_logits, lh[0], lw[0]);

    for (int l = 0; l < cfg->num_layers; l++) {
        int level = l % M2F_LEVELS, next = (l + 1) % M2F_LEVELS;
        ctx_set_grad(ctx, 0);
        report_attn_mask(ctx, &dbg, l, block, cfg->num_heads, level);
        ctx_set_grad(ctx, grad);
        x = decoder_layer(ctx, dec, &dec->layers[l], x, qpos, values[level], pos[level], block);
        p = predict(ctx, dec, x, mask_flat, hm, wm);
        out->class_logits[l + 1] = p.class_logits;
        out->mask_logits[l + 1] = p.mask_logits;
        ctx_set_grad(ctx, 0);
        char name[96];
        snprintf(name, sizeof name, "decoder.layer%d.out", l);
        report_seq_first(ctx, &dbg, name, x, f);
        snprintf(name, sizeof name, "decoder.intermediate.%d", l + 1);
        report_seq_first(ctx, &dbg, name, p.normed, f);
        ctx_set_grad(ctx, grad);
        if (l + 1 < cfg->num_layers) block = m2f_attn_mask_from_mask_logits(ctx, p.mask_logits, lh[next], lw[next]);
    }
    out->last_hidden_state = x;
    ctx_set_grad(ctx, 0);
    report_as(ctx, &dbg, "transformer_decoder_last_hidden_state", x, 3, x->shape);
    ctx_set_grad(ctx, grad);
}
