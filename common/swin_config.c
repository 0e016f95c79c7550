/* swin_config.c - the Swin backbone's settings from a HuggingFace config.json. */
#include <stdio.h>
#include <string.h>

#include "swin.h"

/* base + "." + name into buf (base "" for the top level) */
static const char *key(char *buf, size_t size, const char *base, const char *name) {
    snprintf(buf, size, "%s%s%s", base, *base ? "." : "", name);
    return buf;
}

/* An int, or a pair [a, b] of ints, as HF accepts for patch_size and image_size. */
static err_code_t get_int_or_pair(const config_t *cfg, const char *k, int fallback, int *a, int *b, err_t *err) {
    json_t *v = config_lookup(cfg, k);
    if (!v || json_is_null(v)) {
        *a = *b = fallback;
        return ERR_OK;
    }
    if (json_is_array(v)) {
        int pair[2], n = 0;
        err_code_t rc = config_get_int_array(cfg, k, pair, 2, &n, err);
        if (rc != ERR_OK) return rc;
        if (n != 2) return err_set(err, ERR_MISMATCH, "%s: '%s' has %d elements, expected 2", cfg->path, k, n);
        *a = pair[0];
        *b = pair[1];
        return ERR_OK;
    }
    int x;
    err_code_t rc = config_get_int(cfg, k, &x, err);
    if (rc != ERR_OK) return rc;
    *a = *b = x;
    return ERR_OK;
}

/* "stem" -> 0, "stage<k>" -> k (1..n_stages); -1 otherwise */
static int stage_index(const char *name, int n_stages) {
    if (strcmp(name, "stem") == 0) return 0;
    int k;
    char tail;
    if (sscanf(name, "stage%d%c", &k, &tail) == 1 && k >= 1 && k <= n_stages) return k;
    return -1;
}

static err_code_t read_out_features(const config_t *cfg, const char *base, swin_config_t *c, err_t *err) {
    char k[256];
    json_t *features = config_lookup(cfg, key(k, sizeof k, base, "out_features"));
    if (features && !json_is_null(features)) {
        if (!json_is_array(features) || json_array_size(features) == 0 ||
            json_array_size(features) > SWIN_MAX_STAGES + 1)
            return err_set(err, ERR_MISMATCH, "%s: '%s' must be a list of 1 to %d stage names", cfg->path, k,
                           SWIN_MAX_STAGES + 1);
        c->n_out = 0;
        for (size_t i = 0; i < json_array_size(features); i++) {
            json_t *s = json_array_get(features, i);
            int idx = json_is_string(s) ? stage_index(json_string_value(s), c->n_stages) : -1;
            if (idx < 0)
                return err_set(err, ERR_MISMATCH, "%s: '%s.%zu' is not one of stem, stage1 .. stage%d", cfg->path, k, i,
                               c->n_stages);
            c->out_stages[c->n_out++] = idx;
        }
        return ERR_OK;
    }
    json_t *indices = config_lookup(cfg, key(k, sizeof k, base, "out_indices"));
    if (indices && !json_is_null(indices)) {
        int n = 0;
        err_code_t rc = config_get_int_array(cfg, k, c->out_stages, SWIN_MAX_STAGES + 1, &n, err);
        if (rc != ERR_OK) return rc;
        if (n == 0) return err_set(err, ERR_MISMATCH, "%s: '%s' is empty", cfg->path, k);
        for (int i = 0; i < n; i++)
            if (c->out_stages[i] < 0 || c->out_stages[i] > c->n_stages)
                return err_set(err, ERR_MISMATCH, "%s: '%s.%d' = %d is not a stage index 0..%d", cfg->path, k, i,
                               c->out_stages[i], c->n_stages);
        c->n_out = n;
        return ERR_OK;
    }
    /* BackboneMixin's default: the last stage only */
    c->n_out = 1;
    c->out_stages[0] = c->n_stages;
    return ERR_OK;
}

err_code_t swin_config_from_json(const config_t *cfg, swin_config_t *out, err_t *err) {
    const char *base;
    char k[256];
    if (config_has(cfg, "backbone_config")) {
        base = "backbone_config";
        const char *type;
        err_code_t rc = config_get_string_or(cfg, "backbone_config.model_type", "swin", &type, err);
        if (rc != ERR_OK) return rc;
        if (strcmp(type, "swin") != 0)
            return err_set(err, ERR_MISMATCH,
                           "%s: backbone_config.model_type is '%s'; only a Swin backbone is supported", cfg->path,
                           type);
    } else {
        base = "";
        const char *type;
        err_code_t rc = config_get_string_or(cfg, "model_type", "", &type, err);
        if (rc != ERR_OK) return rc;
        if (strcmp(type, "swin") != 0)
            return err_set(err, ERR_NOTFOUND,
                           "%s: no backbone_config, and model_type is '%s', not 'swin': cannot tell the backbone",
                           cfg->path, type);
    }
    swin_config_t c;
    memset(&c, 0, sizeof c);
    err_code_t rc;
    /* defaults: transformers.SwinConfig.__init__ */
    if ((rc = config_get_int_or(cfg, key(k, sizeof k, base, "num_channels"), 3, &c.num_channels, err))) return rc;
    if ((rc = get_int_or_pair(cfg, key(k, sizeof k, base, "patch_size"), 4, &c.patch_h, &c.patch_w, err))) return rc;
    if ((rc = get_int_or_pair(cfg, key(k, sizeof k, base, "image_size"), 224, &c.image_h, &c.image_w, err))) return rc;
    if ((rc = config_get_int_or(cfg, key(k, sizeof k, base, "embed_dim"), 96, &c.embed_dim, err))) return rc;
    if ((rc = config_get_int_or(cfg, key(k, sizeof k, base, "window_size"), 7, &c.window_size, err))) return rc;
    static const int default_depths[4] = {2, 2, 6, 2}, default_heads[4] = {3, 6, 12, 24};
    int nd = 4, nh = 4;
    memcpy(c.depths, default_depths, sizeof default_depths);
    memcpy(c.num_heads, default_heads, sizeof default_heads);
    if (config_has(cfg, key(k, sizeof k, base, "depths")) &&
        (rc = config_get_int_array(cfg, k, c.depths, SWIN_MAX_STAGES, &nd, err)))
        return rc;
    if (config_has(cfg, key(k, sizeof k, base, "num_heads")) &&
        (rc = config_get_int_array(cfg, k, c.num_heads, SWIN_MAX_STAGES, &nh, err)))
        return rc;
    if (nd < 1 || nd != nh)
        return err_set(err, ERR_MISMATCH, "%s: %s.depths has %d stages and num_heads %d", cfg->path, base, nd, nh);
    c.n_stages = nd;
    double mlp_ratio, eps;
    if ((rc = config_get_double_or(cfg, key(k, sizeof k, base, "mlp_ratio"), 4.0, &mlp_ratio, err))) return rc;
    if ((rc = config_get_double_or(cfg, key(k, sizeof k, base, "layer_norm_eps"), 1e-5, &eps, err))) return rc;
    c.layer_norm_eps = (float)eps;
    bool flag;
    if ((rc = config_get_bool_or(cfg, key(k, sizeof k, base, "qkv_bias"), true, &flag, err))) return rc;
    c.qkv_bias = flag;
    if ((rc = config_get_bool_or(cfg, key(k, sizeof k, base, "use_absolute_embeddings"), false, &flag, err))) return rc;
    if (flag)
        return err_set(err, ERR_MISMATCH,
                       "%s: '%s' is true: absolute position embeddings are not supported (HF's Swin adds a "
                       "[1, patches + 1, C] table that fits no input)",
                       cfg->path, k);
    const char *act;
    if ((rc = config_get_string_or(cfg, key(k, sizeof k, base, "hidden_act"), "gelu", &act, err))) return rc;
    if (strcmp(act, "gelu") == 0) c.hidden_act = SWIN_ACT_GELU;
    else if (strcmp(act, "relu") == 0) c.hidden_act = SWIN_ACT_RELU;
    else return err_set(err, ERR_MISMATCH, "%s: '%s' is '%s'; supported: gelu, relu", cfg->path, k, act);

    if (c.num_channels < 1 || c.patch_h < 1 || c.patch_w < 1 || c.embed_dim < 1 || c.window_size < 1 ||
        !(mlp_ratio > 0.0) || !(eps > 0.0))
        return err_set(err, ERR_MISMATCH,
                       "%s: %s: num_channels %d, patch_size %dx%d, embed_dim %d, window_size %d, mlp_ratio %g and "
                       "layer_norm_eps %g must all be positive",
                       cfg->path, *base ? base : "config", c.num_channels, c.patch_h, c.patch_w, c.embed_dim,
                       c.window_size, mlp_ratio, eps);
    for (int s = 0; s < c.n_stages; s++) {
        if (c.depths[s] < 0 || c.num_heads[s] < 1)
            return err_set(err, ERR_MISMATCH, "%s: stage %d has depth %d and %d heads", cfg->path, s + 1, c.depths[s],
                           c.num_heads[s]);
        long long dim = (long long)c.embed_dim << s;
        if (dim > (1 << 20))
            return err_set(err, ERR_MISMATCH, "%s: stage %d dim %lld too large", cfg->path, s + 1, dim);
        if (dim % c.num_heads[s] != 0)
            return err_set(err, ERR_MISMATCH, "%s: stage %d: dim %lld is not a multiple of its %d heads", cfg->path,
                           s + 1, dim, c.num_heads[s]);
        c.mlp_hidden[s] = (int)(mlp_ratio * (double)dim); /* int(config.mlp_ratio * dim) */
        if (c.mlp_hidden[s] < 1) return err_set(err, ERR_MISMATCH, "%s: stage %d: MLP width 0", cfg->path, s + 1);
    }
    if ((rc = read_out_features(cfg, base, &c, err))) return rc;
    *out = c;
    return ERR_OK;
}

int swin_stage_dim(const swin_config_t *cfg, int s) { return s == 0 ? cfg->embed_dim : cfg->embed_dim << (s - 1); }
