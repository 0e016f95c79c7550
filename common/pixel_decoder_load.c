/* pixel_decoder_load.c - the pixel decoder's parameters: from a weights file
 * under the HuggingFace names, or drawn at random for tests and benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixel_decoder.h"
#include "rng.h"

const char *const pixel_decoder_weight_prefixes[] = {
    PIXEL_DECODER_AAVS_PREFIX,          /* AdaptiveAVS state dict (AAVS checkpoints, the golden files) */
    "model.pixel_level_module.decoder.", /* Mask2FormerForUniversalSegmentation (the HF hub model) */
    "pixel_level_module.decoder.",       /* Mask2FormerModel */
};
const int pixel_decoder_n_weight_prefixes = 3;

/* A tensor every checkpoint of the pixel decoder has, to recognise the prefix by. */
static const char *const probe_name = "level_embed";

/* Where parameters come from: the file, or a seeded generator. */
typedef struct {
    weights_t *w;         /* NULL: draw everything from rng */
    rng_t rng;            /* the random draws (all of them, or the missing adapters') */
    float std;            /* of the random draws */
    int adapters_in_file; /* 0 (with a file): avs_adapt drawn as from_pretrained initialises missing Linears */
    param_list_t *params;
    const char *param_prefix;
    err_t *err;
} source_t;

/* a + "." + b in buf; the names are HF module paths, far shorter than the buffers */
static const char *join(char *buf, size_t size, const char *a, const char *b) {
    int n = snprintf(buf, size, "%s.%s", a, b);
    if (n < 0 || (size_t)n >= size) fatal("pixel decoder: parameter name %s.%s too long", a, b);
    return buf;
}

/* A new parameter named param_prefix + name, drawn from N(0, std^2) (std 0: zeros). */
static err_code_t make(source_t *src, const char *name, int ndim, const int64_t *shape, float std, tensor_t **out) {
    char reg[512];
    int len = snprintf(reg, sizeof reg, "%s%s", src->param_prefix ? src->param_prefix : "", name);
    if (len < 0 || (size_t)len >= sizeof reg) return err_set(src->err, ERR_ARG, "parameter name '%s' too long", name);
    int64_t n = shape_numel(ndim, shape);
    float *host = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!host) return err_set(src->err, ERR_NOMEM, "%s: out of memory", name);
    for (int64_t i = 0; i < n; i++) host[i] = std > 0.0f ? (float)rng_normal(&src->rng) * std : 0.0f;
    *out = tensor_from_host(src->params->arena, DTYPE_F32, ndim, shape, host);
    free(host);
    return param_list_add(src->params, reg, *out, src->err);
}

static err_code_t get(source_t *src, const char *name, int ndim, const int64_t *shape, tensor_t **out) {
    if (src->w) return weights_load(src->w, name, ndim, shape, src->params, src->param_prefix, out, src->err);
    return make(src, name, ndim, shape, src->std, out);
}

/* weight [out, in] and bias [out] of the Linear called base.leaf */
static err_code_t get_linear(source_t *src, const char *base, const char *leaf, int64_t out_f, int64_t in_f,
                             tensor_t **w, tensor_t **b) {
    char name[256], full[300];
    join(name, sizeof name, base, leaf);
    err_code_t rc = get(src, join(full, sizeof full, name, "weight"), 2, (int64_t[]){out_f, in_f}, w);
    if (rc == ERR_OK) rc = get(src, join(full, sizeof full, name, "bias"), 1, (int64_t[]){out_f}, b);
    return rc;
}

/* weight and bias [dim] of the norm called base.leaf */
static err_code_t get_norm(source_t *src, const char *base, const char *leaf, int64_t dim, tensor_t **w,
                           tensor_t **b) {
    char name[256], full[300];
    join(name, sizeof name, base, leaf);
    err_code_t rc = get(src, join(full, sizeof full, name, "weight"), 1, (int64_t[]){dim}, w);
    if (rc == ERR_OK) rc = get(src, join(full, sizeof full, name, "bias"), 1, (int64_t[]){dim}, b);
    return rc;
}

/* nn.Sequential(Conv2d(in, C, k, bias=bias), GroupNorm(32, C), ...) called base: ".0" and ".1" */
static err_code_t get_conv_norm(source_t *src, const char *base, int64_t in_c, int64_t out_c, int64_t k, int bias,
                                pixel_decoder_conv_norm_t *cn) {
    char name[256];
    err_code_t rc = get(src, join(name, sizeof name, base, "0.weight"), 4, (int64_t[]){out_c, in_c, k, k}, &cn->conv_w);
    cn->conv_b = NULL;
    if (rc == ERR_OK && bias)
        rc = get(src, join(name, sizeof name, base, "0.bias"), 1, (int64_t[]){out_c}, &cn->conv_b);
    if (rc == ERR_OK) rc = get_norm(src, base, "1", out_c, &cn->norm_w, &cn->norm_b);
    return rc;
}

/* avs_adapt = nn.Sequential(Linear(C, C/4), ReLU, Linear(C/4, C)) of layer base */
static err_code_t get_adapter(source_t *src, const char *base, int64_t dim, pixel_decoder_layer_t *l) {
    int64_t small = dim / 4;
    char seq[256];
    join(seq, sizeof seq, base, "self_attn.avs_adapt");
    if (src->w && !src->adapters_in_file) {
        /* a plain HF checkpoint: from_pretrained initialises the missing Linear
         * layers with _init_weights (M2F:2253): weight N(0, init_std^2), bias 0 */
        char n[300];
        float std = src->std;
        int64_t down[2] = {small, dim}, up[2] = {dim, small};
        err_code_t rc = make(src, join(n, sizeof n, seq, "0.weight"), 2, down, std, &l->adapt_down_w);
        if (rc == ERR_OK) rc = make(src, join(n, sizeof n, seq, "0.bias"), 1, &small, 0.0f, &l->adapt_down_b);
        if (rc == ERR_OK) rc = make(src, join(n, sizeof n, seq, "2.weight"), 2, up, std, &l->adapt_up_w);
        if (rc == ERR_OK) rc = make(src, join(n, sizeof n, seq, "2.bias"), 1, &dim, 0.0f, &l->adapt_up_b);
        return rc;
    }
    err_code_t rc = get_linear(src, seq, "0", small, dim, &l->adapt_down_w, &l->adapt_down_b);
    if (rc == ERR_OK) rc = get_linear(src, seq, "2", dim, small, &l->adapt_up_w, &l->adapt_up_b);
    return rc;
}

static err_code_t get_layer(source_t *src, const pixel_decoder_config_t *c, int j, pixel_decoder_layer_t *l) {
    int64_t dim = c->feature_size, heads = c->num_heads, ffn = c->encoder_ffn_dim;
    int64_t samples = heads * PIXEL_DECODER_LEVELS * PIXEL_DECODER_POINTS;
    char base[64];
    snprintf(base, sizeof base, "encoder.layers.%d", j);
    err_code_t rc = get_linear(src, base, "self_attn.sampling_offsets", samples * 2, dim, &l->sampling_offsets_w,
                               &l->sampling_offsets_b);
    if (rc == ERR_OK)
        rc = get_linear(src, base, "self_attn.attention_weights", samples, dim, &l->attention_weights_w,
                        &l->attention_weights_b);
    if (rc == ERR_OK) rc = get_linear(src, base, "self_attn.value_proj", dim, dim, &l->value_proj_w, &l->value_proj_b);
    /* loaded in both variants (the avs state dict has it too), used by avss only */
    if (rc == ERR_OK)
        rc = get_linear(src, base, "self_attn.output_proj", dim, dim, &l->output_proj_w, &l->output_proj_b);
    if (rc == ERR_OK) rc = get_adapter(src, base, dim, l);
    if (rc == ERR_OK) rc = get_norm(src, base, "self_attn_layer_norm", dim, &l->attn_norm_w, &l->attn_norm_b);
    if (rc == ERR_OK) rc = get_linear(src, base, "fc1", ffn, dim, &l->fc1_w, &l->fc1_b);
    if (rc == ERR_OK) rc = get_linear(src, base, "fc2", dim, ffn, &l->fc2_w, &l->fc2_b);
    if (rc == ERR_OK) rc = get_norm(src, base, "final_layer_norm", dim, &l->final_norm_w, &l->final_norm_b);
    return rc;
}

void pixel_decoder_free(pixel_decoder_t *pd) {
    if (!pd) return;
    free(pd->layers);
    free(pd);
}

static err_code_t build(const pixel_decoder_config_t *cfg, source_t *src, pixel_decoder_t **out) {
    *out = NULL;
    pixel_decoder_t *pd = calloc(1, sizeof *pd);
    if (!pd) return err_set(src->err, ERR_NOMEM, "pixel decoder: out of memory");
    pd->cfg = *cfg;
    pd->adapters_from_file = src->w ? src->adapters_in_file : 1;
    const pixel_decoder_config_t *c = cfg;
    int64_t dim = c->feature_size;
    int n = c->n_features;
    err_code_t rc;
    char base[64];
    if ((rc = get(src, "level_embed", 2, (int64_t[]){PIXEL_DECODER_LEVELS, dim}, &pd->level_embed))) goto fail;
    /* input_projections.<l> maps features[n - 1 - l] (transformer_in_channels[::-1]) */
    for (int l = 0; l < PIXEL_DECODER_LEVELS; l++) {
        snprintf(base, sizeof base, "input_projections.%d", l);
        if ((rc = get_conv_norm(src, base, c->in_channels[n - 1 - l], dim, 1, 1, &pd->input_proj[l]))) goto fail;
    }
    pd->layers = calloc((size_t)(c->encoder_layers ? c->encoder_layers : 1), sizeof *pd->layers);
    if (!pd->layers) {
        rc = err_set(src->err, ERR_NOMEM, "pixel decoder: out of memory");
        goto fail;
    }
    for (int j = 0; j < c->encoder_layers; j++)
        if ((rc = get_layer(src, c, j, &pd->layers[j]))) goto fail;
    if ((rc = get(src, "mask_projection.weight", 4, (int64_t[]){c->mask_feature_size, dim, 1, 1}, &pd->mask_proj_w)))
        goto fail;
    if ((rc = get(src, "mask_projection.bias", 1, (int64_t[]){c->mask_feature_size}, &pd->mask_proj_b))) goto fail;
    /* adapter_<k + 1> / layer_<k + 1> belong to features[k] (HF registers them
     * finest first); the forward runs them coarsest first */
    for (int k = 0; k < c->n_fpn_levels; k++) {
        int i = c->n_fpn_levels - 1 - k;
        snprintf(base, sizeof base, "adapter_%d", k + 1);
        if ((rc = get_conv_norm(src, base, c->in_channels[k], dim, 1, 0, &pd->lateral[i]))) goto fail;
        snprintf(base, sizeof base, "layer_%d", k + 1);
        if ((rc = get_conv_norm(src, base, dim, dim, 3, 0, &pd->output[i]))) goto fail;
    }
    *out = pd;
    return ERR_OK;
fail:
    pixel_decoder_free(pd);
    return rc;
}

/* Nonzero when some tensor under the resolved prefix is an avs_adapt parameter. */
static int file_has_adapters(const weights_t *w) {
    size_t plen = strlen(w->prefix);
    for (int i = 0; i < w->st.n_entries; i++) {
        const char *name = w->st.entries[i].name;
        if (strncmp(name, w->prefix, plen) == 0 && strstr(name + plen, ".avs_adapt.")) return 1;
    }
    return 0;
}

err_code_t pixel_decoder_load(const pixel_decoder_config_t *cfg, weights_t *w, param_list_t *params,
                              const char *param_prefix, uint64_t adapter_seed, pixel_decoder_t **out, err_t *err) {
    *out = NULL;
    err_code_t rc =
        weights_select_prefix(w, pixel_decoder_weight_prefixes, pixel_decoder_n_weight_prefixes, probe_name, err);
    if (rc != ERR_OK) return err_prefix(err, "pixel decoder: ");
    source_t src = {.w = w, .std = cfg->init_std, .params = params, .param_prefix = param_prefix, .err = err};
    rng_seed(&src.rng, adapter_seed);
    src.adapters_in_file = file_has_adapters(w);
    rc = build(cfg, &src, out);
    if (rc != ERR_OK) return err_prefix(err, "pixel decoder: ");
    rc = weights_check_all_used(w, NULL, 0, err);
    if (rc != ERR_OK) {
        pixel_decoder_free(*out);
        *out = NULL;
        return err_prefix(err, "pixel decoder: ");
    }
    return ERR_OK;
}

pixel_decoder_t *pixel_decoder_random(const pixel_decoder_config_t *cfg, param_list_t *params,
                                      const char *param_prefix, uint64_t seed, float std) {
    err_t err;
    source_t src = {.w = NULL, .std = std, .params = params, .param_prefix = param_prefix, .err = &err};
    rng_seed(&src.rng, seed);
    pixel_decoder_t *pd;
    if (build(cfg, &src, &pd) != ERR_OK) fatal("pixel_decoder_random: %s", err.msg);
    return pd;
}
