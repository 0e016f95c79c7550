/* swin_load.c - the Swin backbone's parameters: from a weights file under the
 * HuggingFace names, or drawn at random for tests and benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "swin.h"

const char *const swin_weight_prefixes[] = {
    "model.model.pixel_level_module.encoder.", /* AdaptiveAVS state dict (AAVS checkpoints, the golden files) */
    "model.pixel_level_module.encoder.",       /* Mask2FormerForUniversalSegmentation (the HF hub model) */
    "",                                        /* SwinBackbone on its own */
};
const int swin_n_weight_prefixes = 3;

/* A tensor every checkpoint of the backbone has, to recognise the prefix by. */
static const char *const probe_name = "embeddings.patch_embeddings.projection.weight";

/* Where parameters come from: the file, or a seeded generator. */
typedef struct {
    weights_t *w;          /* NULL: draw from rng */
    rng_t rng;
    float std;
    int adapters_in_file;  /* 0: the adapters are made zero */
    param_list_t *params;
    const char *param_prefix;
    err_t *err;
} source_t;

/* The name a parameter is registered under: param_prefix + name. */
static err_code_t registered_name(const source_t *src, const char *name, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s%s", src->param_prefix ? src->param_prefix : "", name);
    if (n < 0 || (size_t)n >= size) return err_set(src->err, ERR_ARG, "parameter name '%s' too long", name);
    return ERR_OK;
}

static err_code_t get(source_t *src, const char *name, int ndim, const int64_t *shape, tensor_t **out) {
    if (src->w) return weights_load(src->w, name, ndim, shape, src->params, src->param_prefix, out, src->err);
    char reg[512];
    err_code_t rc = registered_name(src, name, reg, sizeof reg);
    if (rc != ERR_OK) return rc;
    int64_t n = shape_numel(ndim, shape);
    float *host = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!host) return err_set(src->err, ERR_NOMEM, "%s: out of memory", name);
    for (int64_t i = 0; i < n; i++) host[i] = (float)rng_normal(&src->rng) * src->std;
    *out = tensor_from_host(src->params->arena, DTYPE_F32, ndim, shape, host);
    free(host);
    return param_list_add(src->params, reg, *out, src->err);
}

/* A zero parameter registered under param_prefix + name. */
static err_code_t get_zeros(source_t *src, const char *name, int ndim, const int64_t *shape, tensor_t **out) {
    char reg[512];
    err_code_t rc = registered_name(src, name, reg, sizeof reg);
    if (rc != ERR_OK) return rc;
    return param_list_add_zeros(src->params, reg, ndim, shape, out, src->err);
}

/* a + "." + b in buf. The names are the HF module paths, far shorter than the
 * buffers: one that does not fit is a bug here. */
static const char *join(char *buf, size_t size, const char *a, const char *b) {
    int n = snprintf(buf, size, "%s.%s", a, b);
    if (n < 0 || (size_t)n >= size) fatal("swin: parameter name %s.%s too long", a, b);
    return buf;
}

/* name = base + "." + leaf */
static err_code_t get_leaf(source_t *src, const char *base, const char *leaf, int ndim, const int64_t *shape,
                           tensor_t **out) {
    char name[512];
    return get(src, join(name, sizeof name, base, leaf), ndim, shape, out);
}

/* weight [out, in] and, when bias, bias [out] of the Linear called base.leaf */
static err_code_t get_linear(source_t *src, const char *base, const char *leaf, int64_t out_f, int64_t in_f, int bias,
                             tensor_t **w, tensor_t **b) {
    char name[512];
    join(name, sizeof name, base, leaf);
    err_code_t rc = get_leaf(src, name, "weight", 2, (int64_t[]){out_f, in_f}, w);
    if (rc == ERR_OK && bias) rc = get_leaf(src, name, "bias", 1, (int64_t[]){out_f}, b);
    return rc;
}

/* the LayerNorm called base.leaf */
static err_code_t get_norm(source_t *src, const char *base, const char *leaf, int64_t dim, tensor_t **w,
                           tensor_t **b) {
    char name[512];
    join(name, sizeof name, base, leaf);
    err_code_t rc = get_leaf(src, name, "weight", 1, (int64_t[]){dim}, w);
    if (rc == ERR_OK) rc = get_leaf(src, name, "bias", 1, (int64_t[]){dim}, b);
    return rc;
}

/* nn.Sequential(Linear(d, d//4), ReLU, Linear(d//4, d)) called base.leaf: ".0" and ".2" */
static err_code_t get_adapter(source_t *src, const char *base, const char *leaf, int64_t dim, swin_adapter_t *a) {
    char seq[256], n0[300], n2[300], name[512];
    join(seq, sizeof seq, base, leaf);
    join(n0, sizeof n0, seq, "0");
    join(n2, sizeof n2, seq, "2");
    int64_t small = dim / 4;
    if (src->w && !src->adapters_in_file) {
        /* a plain HF checkpoint: zero adapters, the identity, registered under their names so
         * that an optimizer can still select them (phase 2 of the official training) */
        err_code_t rc;
        if ((rc = get_zeros(src, join(name, sizeof name, n0, "weight"), 2, (int64_t[]){small, dim}, &a->down_w)))
            return rc;
        if ((rc = get_zeros(src, join(name, sizeof name, n0, "bias"), 1, (int64_t[]){small}, &a->down_b))) return rc;
        if ((rc = get_zeros(src, join(name, sizeof name, n2, "weight"), 2, (int64_t[]){dim, small}, &a->up_w)))
            return rc;
        if ((rc = get_zeros(src, join(name, sizeof name, n2, "bias"), 1, (int64_t[]){dim}, &a->up_b))) return rc;
        a->zero_at_load = 1;
        return ERR_OK;
    }
    err_code_t rc = get_linear(src, seq, "0", small, dim, 1, &a->down_w, &a->down_b);
    if (rc == ERR_OK) rc = get_linear(src, seq, "2", dim, small, 1, &a->up_w, &a->up_b);
    return rc;
}

static err_code_t get_block(source_t *src, const swin_config_t *c, int s, int j, swin_block_t *b) {
    int64_t dim = (int64_t)c->embed_dim << s, heads = c->num_heads[s], hidden = c->mlp_hidden[s];
    int64_t table = (int64_t)(2 * c->window_size - 1) * (2 * c->window_size - 1);
    char base[256];
    snprintf(base, sizeof base, "encoder.layers.%d.blocks.%d", s, j);
    b->shift = (j % 2 == 0) ? 0 : c->window_size / 2; /* SwinStage: shift_size = 0 if i % 2 == 0 else window // 2 */
    err_code_t rc = get_norm(src, base, "layernorm_before", dim, &b->ln_before_w, &b->ln_before_b);
    if (rc == ERR_OK) rc = get_linear(src, base, "attention.self.query", dim, dim, c->qkv_bias, &b->q_w, &b->q_b);
    if (rc == ERR_OK) rc = get_linear(src, base, "attention.self.key", dim, dim, c->qkv_bias, &b->k_w, &b->k_b);
    if (rc == ERR_OK) rc = get_linear(src, base, "attention.self.value", dim, dim, c->qkv_bias, &b->v_w, &b->v_b);
    if (rc == ERR_OK)
        rc = get_leaf(src, base, "attention.self.relative_position_bias_table", 2, (int64_t[]){table, heads},
                  &b->rel_bias_table);
    if (rc == ERR_OK)
        rc = get_linear(src, base, "attention.output.dense", dim, dim, 1, &b->attn_out_w, &b->attn_out_b);
    if (rc == ERR_OK) rc = get_adapter(src, base, "attention.output.swin_adapt_1", dim, &b->adapt_attn);
    if (rc == ERR_OK) rc = get_norm(src, base, "layernorm_after", dim, &b->ln_after_w, &b->ln_after_b);
    if (rc == ERR_OK) rc = get_linear(src, base, "intermediate.dense", hidden, dim, 1, &b->mlp_in_w, &b->mlp_in_b);
    if (rc == ERR_OK) rc = get_linear(src, base, "output.dense", dim, hidden, 1, &b->mlp_out_w, &b->mlp_out_b);
    if (rc == ERR_OK) rc = get_adapter(src, base, "output.swin_adapt_3", dim, &b->adapt_mlp);
    return rc;
}

/* relative_position_index as SwinSelfAttention builds it (SWIN:447): for tokens
 * p = (i1, j1) and q = (i2, j2) of a window, (i1 - i2 + w - 1) * (2w - 1) + (j1 - j2 + w - 1). */
static tensor_t *relative_position_index(arena_t *a, int w) {
    int64_t l = (int64_t)w * w;
    int64_t *idx = malloc((size_t)(l * l) * sizeof *idx);
    if (!idx) fatal("swin: out of memory for the relative position index");
    for (int64_t p = 0; p < l; p++)
        for (int64_t q = 0; q < l; q++)
            idx[p * l + q] = (p / w - q / w + w - 1) * (2 * w - 1) + (p % w - q % w + w - 1);
    tensor_t *t = tensor_from_host(a, DTYPE_I64, 1, (int64_t[]){l * l}, idx);
    free(idx);
    return t;
}

static int all_zero(const tensor_t *t) {
    float *h = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!h) fatal("swin: out of memory");
    tensor_to_host(t, h);
    int zero = 1;
    for (int64_t i = 0; i < t->numel && zero; i++) zero = h[i] == 0.0f;
    free(h);
    return zero;
}

void swin_refresh_adapter_flags(swin_t *m) {
    for (int s = 0; s < m->cfg.n_stages; s++)
        for (int j = 0; j < m->stages[s].depth; j++) {
            swin_block_t *b = &m->stages[s].blocks[j];
            swin_adapter_t *ad[2] = {&b->adapt_attn, &b->adapt_mlp};
            for (int k = 0; k < 2; k++) ad[k]->zero_at_load = all_zero(ad[k]->up_w) && all_zero(ad[k]->up_b);
        }
}

void swin_free(swin_t *m) {
    if (!m) return;
    for (int s = 0; s < SWIN_MAX_STAGES; s++) free(m->stages[s].blocks);
    free(m);
}

static err_code_t build(const swin_config_t *cfg, source_t *src, swin_t **out) {
    *out = NULL;
    swin_t *m = calloc(1, sizeof *m);
    if (!m) return err_set(src->err, ERR_NOMEM, "swin: out of memory");
    m->cfg = *cfg;
    m->adapters_from_file = src->w ? src->adapters_in_file : 1;
    const swin_config_t *c = cfg;
    err_code_t rc;
    int64_t e = c->embed_dim;
    if ((rc = get(src, "embeddings.patch_embeddings.projection.weight", 4,
                  (int64_t[]){e, c->num_channels, c->patch_h, c->patch_w}, &m->patch_w)))
        goto fail;
    if ((rc = get(src, "embeddings.patch_embeddings.projection.bias", 1, (int64_t[]){e}, &m->patch_b))) goto fail;
    if ((rc = get_norm(src, "embeddings", "norm", e, &m->embed_norm_w, &m->embed_norm_b))) goto fail;
    for (int s = 0; s < c->n_stages; s++) {
        swin_stage_t *st = &m->stages[s];
        st->dim = (int)(e << s);
        st->heads = c->num_heads[s];
        st->depth = c->depths[s];
        st->blocks = calloc((size_t)(st->depth ? st->depth : 1), sizeof *st->blocks);
        if (!st->blocks) {
            rc = err_set(src->err, ERR_NOMEM, "swin: out of memory");
            goto fail;
        }
        for (int j = 0; j < st->depth; j++)
            if ((rc = get_block(src, c, s, j, &st->blocks[j]))) goto fail;
        if (s + 1 < c->n_stages) {
            char base[128];
            int64_t dim = st->dim;
            snprintf(base, sizeof base, "encoder.layers.%d.downsample", s);
            if ((rc = get_norm(src, base, "norm", 4 * dim, &st->merge_norm_w, &st->merge_norm_b))) goto fail;
            if ((rc = get_linear(src, base, "reduction", 2 * dim, 4 * dim, 0, &st->merge_reduction_w, NULL))) goto fail;
        }
    }
    for (int i = 0; i < c->n_out; i++) {
        int s = c->out_stages[i];
        if (m->out_norm_w[s]) continue; /* named twice in out_features: one ModuleDict entry */
        char stage[32];
        if (s == 0) snprintf(stage, sizeof stage, "stem");
        else snprintf(stage, sizeof stage, "stage%d", s);
        rc = get_norm(src, "hidden_states_norms", stage, swin_stage_dim(c, s), &m->out_norm_w[s], &m->out_norm_b[s]);
        if (rc != ERR_OK) goto fail;
    }
    m->rel_index = relative_position_index(src->params->arena, c->window_size);
    swin_refresh_adapter_flags(m);
    *out = m;
    return ERR_OK;
fail:
    swin_free(m);
    return rc;
}

/* Nonzero when some tensor under the resolved prefix is a swin_adapt parameter. */
static int file_has_adapters(const weights_t *w) {
    size_t plen = strlen(w->prefix);
    for (int i = 0; i < w->st.n_entries; i++) {
        const char *name = w->st.entries[i].name;
        if (strncmp(name, w->prefix, plen) == 0 && strstr(name + plen, ".swin_adapt_")) return 1;
    }
    return 0;
}

err_code_t swin_load(const swin_config_t *cfg, weights_t *w, param_list_t *params, const char *param_prefix,
                     swin_t **out, err_t *err) {
    *out = NULL;
    err_code_t rc = weights_select_prefix(w, swin_weight_prefixes, swin_n_weight_prefixes, probe_name, err);
    if (rc != ERR_OK) return err_prefix(err, "Swin backbone: ");
    source_t src = {.w = w, .params = params, .param_prefix = param_prefix, .err = err};
    src.adapters_in_file = file_has_adapters(w);
    rc = build(cfg, &src, out);
    if (rc != ERR_OK) return err_prefix(err, "Swin backbone: ");
    /* relative_position_index is a buffer recomputed here from the window size
     * (the bias table's shape already pins the window) */
    static const char *const recomputed[] = {"relative_position_index"};
    rc = weights_check_all_used(w, recomputed, 1, err);
    if (rc != ERR_OK) {
        swin_free(*out);
        *out = NULL;
        return err_prefix(err, "Swin backbone: ");
    }
    return ERR_OK;
}

swin_t *swin_random(const swin_config_t *cfg, param_list_t *params, uint64_t seed, float std) {
    err_t err;
    source_t src = {.w = NULL, .std = std, .params = params, .param_prefix = NULL, .err = &err};
    rng_seed(&src.rng, seed);
    swin_t *m;
    if (build(cfg, &src, &m) != ERR_OK) fatal("swin_random: %s", err.msg);
    return m;
}
