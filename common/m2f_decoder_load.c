/* m2f_decoder_load.c - the transformer decoder's parameters: from a weights
 * file under the official names, completed as the official training completes
 * a plain HuggingFace checkpoint, or drawn at random for tests and benchmarks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2f_decoder.h"
#include "rng.h"

const char *const m2f_decoder_weight_prefixes[] = {
    "model.model.transformer_module.", /* AdaptiveAVS state dict (AAVS checkpoints, the golden files) */
    "model.transformer_module.",       /* Mask2FormerForUniversalSegmentation (the HF hub model) */
    "transformer_module.",             /* Mask2FormerModel */
};
const int m2f_decoder_n_weight_prefixes = 3;
/* where the class predictor sits beside each of the prefixes above (Mask2FormerModel has none) */
static const char *const class_prefixes[] = {"model.", "", NULL};

/* A tensor every checkpoint of the module has, to recognise the prefix by. */
static const char *const probe_name = "queries_embedder.weight";

/* How a parameter the file does not have is drawn. */
typedef enum { INIT_ZERO, INIT_NORMAL, INIT_XAVIER, INIT_UNIFORM } init_kind_t;

/* Where parameters come from: the file, or a seeded generator. */
typedef struct {
    weights_t *w;             /* NULL: every parameter is drawn N(0, std^2) */
    rng_t rng;
    float std;
    param_list_t *params;
    const char *param_prefix; /* what the names of the current part are registered under */
    err_t *err;
} source_t;

static err_code_t register_host(source_t *src, const char *name, int ndim, const int64_t *shape, const float *host,
                                tensor_t **out) {
    char reg[512];
    int n = snprintf(reg, sizeof reg, "%s%s", src->param_prefix, name);
    if (n < 0 || (size_t)n >= sizeof reg) return err_set(src->err, ERR_ARG, "parameter name '%s' too long", name);
    *out = tensor_from_host(src->params->arena, DTYPE_F32, ndim, shape, host);
    return param_list_add(src->params, reg, *out, src->err);
}

/* A parameter the file lacks, drawn by `kind` (scale: the std, the xavier gain
 * or the uniform bound), registered under param_prefix + name. */
static err_code_t make(source_t *src, const char *name, int ndim, const int64_t *shape, init_kind_t kind,
                       float scale, tensor_t **out) {
    int64_t n = shape_numel(ndim, shape);
    float *host = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!host) return err_set(src->err, ERR_NOMEM, "%s: out of memory", name);
    /* nn.init.xavier_uniform_ on a [fan_out, fan_in] weight */
    float xavier_bound = ndim == 2 ? scale * sqrtf(6.0f / (float)(shape[0] + shape[1])) : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case INIT_ZERO: host[i] = 0.0f; break;
        case INIT_NORMAL: host[i] = (float)rng_normal(&src->rng) * scale; break;
        case INIT_XAVIER: host[i] = (2.0f * rng_float(&src->rng) - 1.0f) * xavier_bound; break;
        case INIT_UNIFORM: host[i] = (2.0f * rng_float(&src->rng) - 1.0f) * scale; break;
        }
    }
    err_code_t rc = register_host(src, name, ndim, shape, host, out);
    free(host);
    return rc;
}

/* From the file, or N(0, std^2) for a random model. */
static err_code_t get(source_t *src, const char *name, int ndim, const int64_t *shape, tensor_t **out) {
    if (src->w) return weights_load(src->w, name, ndim, shape, src->params, src->param_prefix, out, src->err);
    return make(src, name, ndim, shape, INIT_NORMAL, src->std, out);
}

/* weight [out, in] and bias [out] of the Linear called name */
static err_code_t get_linear(source_t *src, const char *name, int64_t out_f, int64_t in_f, tensor_t **w,
                             tensor_t **b) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", name);
    err_code_t rc = get(src, n, 2, (int64_t[]){out_f, in_f}, w);
    snprintf(n, sizeof n, "%s.bias", name);
    if (rc == ERR_OK) rc = get(src, n, 1, (int64_t[]){out_f}, b);
    return rc;
}

static err_code_t get_layer(source_t *src, const m2f_decoder_config_t *c, int l, int adapters_missing,
                            m2f_decoder_layer_t *ly) {
    int64_t dim = c->hidden_dim, small = c->hidden_dim / 4;
    char base[128], n[256];
    snprintf(base, sizeof base, "decoder.layers.%d", l);
    err_code_t rc;
    struct {
        const char *leaf;
        int64_t out_f, in_f;
        tensor_t **w, **b;
    } linears[] = {
        {"self_attn.k_proj", dim, dim, &ly->sa_k_w, &ly->sa_k_b},
        {"self_attn.v_proj", dim, dim, &ly->sa_v_w, &ly->sa_v_b},
        {"self_attn.q_proj", dim, dim, &ly->sa_q_w, &ly->sa_q_b},
        {"self_attn.out_proj", dim, dim, &ly->sa_out_w, &ly->sa_out_b},
        {"cross_attn.out_proj", dim, dim, &ly->ca_out_w, &ly->ca_out_b},
        {"fc1", c->dim_feedforward, dim, &ly->fc1_w, &ly->fc1_b},
        {"fc2", dim, c->dim_feedforward, &ly->fc2_w, &ly->fc2_b},
    };
    for (size_t i = 0; i < sizeof linears / sizeof *linears; i++) {
        snprintf(n, sizeof n, "%s.%s", base, linears[i].leaf);
        if ((rc = get_linear(src, n, linears[i].out_f, linears[i].in_f, linears[i].w, linears[i].b))) return rc;
    }
    struct {
        const char *leaf;
        tensor_t **w, **b;
    } norms[] = {
        {"self_attn_layer_norm", &ly->sa_norm_w, &ly->sa_norm_b},
        {"cross_attn_layer_norm", &ly->ca_norm_w, &ly->ca_norm_b},
        {"final_layer_norm", &ly->final_norm_w, &ly->final_norm_b},
    };
    for (size_t i = 0; i < sizeof norms / sizeof *norms; i++) {
        snprintf(n, sizeof n, "%s.%s.weight", base, norms[i].leaf);
        if ((rc = get(src, n, 1, (int64_t[]){dim}, norms[i].w))) return rc;
        snprintf(n, sizeof n, "%s.%s.bias", base, norms[i].leaf);
        if ((rc = get(src, n, 1, (int64_t[]){dim}, norms[i].b))) return rc;
    }
    /* nn.MultiheadAttention packs the q, k and v projections in one [3C, C] weight */
    snprintf(n, sizeof n, "%s.cross_attn.in_proj_weight", base);
    if ((rc = get(src, n, 2, (int64_t[]){3 * dim, dim}, &ly->ca_in_w))) return rc;
    snprintf(n, sizeof n, "%s.cross_attn.in_proj_bias", base);
    if ((rc = get(src, n, 1, (int64_t[]){3 * dim}, &ly->ca_in_b))) return rc;
    if (!adapters_missing) {
        snprintf(n, sizeof n, "%s.self_attn.avs_adapt.0", base);
        if ((rc = get_linear(src, n, small, dim, &ly->adapt_down_w, &ly->adapt_down_b))) return rc;
        snprintf(n, sizeof n, "%s.self_attn.avs_adapt.2", base);
        return get_linear(src, n, dim, small, &ly->adapt_up_w, &ly->adapt_up_b);
    }
    /* from_pretrained's _init_weights: the Linear rule (N(0, init_std^2), bias 0)
     * runs first, then the decoder layer's rule redraws every 2-D parameter of the
     * layer xavier_uniform(init_xavier_std): the biases stay 0 */
    float gain = c->init_xavier_std;
    snprintf(n, sizeof n, "%s.self_attn.avs_adapt.0.weight", base);
    if ((rc = make(src, n, 2, (int64_t[]){small, dim}, INIT_XAVIER, gain, &ly->adapt_down_w))) return rc;
    snprintf(n, sizeof n, "%s.self_attn.avs_adapt.0.bias", base);
    if ((rc = make(src, n, 1, (int64_t[]){small}, INIT_ZERO, 0.0f, &ly->adapt_down_b))) return rc;
    snprintf(n, sizeof n, "%s.self_attn.avs_adapt.2.weight", base);
    if ((rc = make(src, n, 2, (int64_t[]){dim, small}, INIT_XAVIER, gain, &ly->adapt_up_w))) return rc;
    snprintf(n, sizeof n, "%s.self_attn.avs_adapt.2.bias", base);
    return make(src, n, 1, (int64_t[]){dim}, INIT_ZERO, 0.0f, &ly->adapt_up_b);
}

/* The transformer module: queries, level and prompt embeddings, layers, the
 * final norm and the mask predictor. */
static err_code_t get_transformer(source_t *src, const m2f_decoder_config_t *c, int adapters_missing,
                                  m2f_decoder_t *d) {
    int64_t q = c->num_queries, dim = c->hidden_dim;
    err_code_t rc;
    if ((rc = get(src, "queries_embedder.weight", 2, (int64_t[]){q, dim}, &d->queries_embedder))) return rc;
    if ((rc = get(src, "queries_features.weight", 2, (int64_t[]){q, dim}, &d->queries_features))) return rc;
    if ((rc = get(src, "level_embed.weight", 2, (int64_t[]){M2F_LEVELS, dim}, &d->level_embed))) return rc;
    if (c->variant == M2F_VARIANT_AVSS) {
        const char *names[3] = {"silence_embed.weight", "audio_embed.weight", "uncertain_embed.weight"};
        tensor_t **dst[3] = {&d->silence_embed, &d->audio_embed, &d->uncertain_embed};
        for (int i = 0; i < 3; i++) {
            /* nn.Embedding's _init_weights rule: N(0, init_std^2) */
            rc = adapters_missing ? make(src, names[i], 2, (int64_t[]){1, dim}, INIT_NORMAL, c->init_std, dst[i])
                                  : get(src, names[i], 2, (int64_t[]){1, dim}, dst[i]);
            if (rc) return rc;
        }
    }
    for (int l = 0; l < c->num_layers; l++)
        if ((rc = get_layer(src, c, l, adapters_missing, &d->layers[l]))) return rc;
    if ((rc = get(src, "decoder.layernorm.weight", 1, (int64_t[]){dim}, &d->norm_w))) return rc;
    if ((rc = get(src, "decoder.layernorm.bias", 1, (int64_t[]){dim}, &d->norm_b))) return rc;
    for (int i = 0; i < 3; i++) {
        char n[128];
        int64_t out_f = i < 2 ? dim : c->mask_feature_size;
        snprintf(n, sizeof n, "decoder.mask_predictor.mask_embedder.%d.0", i);
        if ((rc = get_linear(src, n, out_f, dim, &d->mask_mlp_w[i], &d->mask_mlp_b[i]))) return rc;
    }
    return ERR_OK;
}

/* audio_proj from the file, or as torch's nn.Linear draws it (kaiming_uniform
 * with a = sqrt(5) for the weight and U(+-1/sqrt(fan_in)) for the bias: both
 * bounds are 1/sqrt(fan_in)) */
static err_code_t get_audio_proj(source_t *src, const m2f_decoder_config_t *c, int draw, m2f_decoder_t *d) {
    int64_t in0 = c->audio_dim, hid = c->audio_hidden, out = c->hidden_dim;
    if (!draw) {
        err_code_t rc = get_linear(src, "audio_proj.0", hid, in0, &d->audio_w0, &d->audio_b0);
        return rc ? rc : get_linear(src, "audio_proj.2", out, hid, &d->audio_w2, &d->audio_b2);
    }
    float b0 = 1.0f / sqrtf((float)in0), b2 = 1.0f / sqrtf((float)hid);
    err_code_t rc;
    if ((rc = make(src, "audio_proj.0.weight", 2, (int64_t[]){hid, in0}, INIT_UNIFORM, b0, &d->audio_w0))) return rc;
    if ((rc = make(src, "audio_proj.0.bias", 1, (int64_t[]){hid}, INIT_UNIFORM, b0, &d->audio_b0))) return rc;
    if ((rc = make(src, "audio_proj.2.weight", 2, (int64_t[]){out, hid}, INIT_UNIFORM, b2, &d->audio_w2))) return rc;
    return make(src, "audio_proj.2.bias", 1, (int64_t[]){out}, INIT_UNIFORM, b2, &d->audio_b2);
}

static m2f_decoder_t *new_model(const m2f_decoder_config_t *cfg) {
    m2f_decoder_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->cfg = *cfg;
    d->layers = calloc((size_t)(cfg->num_layers > 0 ? cfg->num_layers : 1), sizeof *d->layers);
    if (!d->layers) {
        free(d);
        return NULL;
    }
    return d;
}

void m2f_decoder_free(m2f_decoder_t *dec) {
    if (!dec) return;
    free(dec->layers);
    free(dec);
}

/* Nonzero when some tensor under w's prefix is an avs_adapt parameter. */
static int file_has_adapters(const weights_t *w) {
    size_t plen = strlen(w->prefix);
    for (int i = 0; i < w->st.n_entries; i++) {
        const char *name = w->st.entries[i].name;
        if (strncmp(name, w->prefix, plen) == 0 && strstr(name + plen, ".avs_adapt.")) return 1;
    }
    return 0;
}

/* The index of w's current prefix among m2f_decoder_weight_prefixes. */
static int prefix_index(const weights_t *w) {
    for (int i = 0; i < m2f_decoder_n_weight_prefixes; i++)
        if (strcmp(w->prefix, m2f_decoder_weight_prefixes[i]) == 0) return i;
    return -1;
}

/* The class predictor: from the file; or, completing a plain HF checkpoint
 * whose label count differs (or a Mask2FormerModel without one), drawn as
 * from_pretrained(ignore_mismatched_sizes=True) redraws it: N(0, init_std^2),
 * bias 0. *drawn tells which. */
static err_code_t get_class_predictor(source_t *src, const m2f_decoder_config_t *c, const char *class_prefix,
                                      int completing_hf, m2f_decoder_t *d, int *drawn) {
    int64_t out_f = c->num_labels + 1, dim = c->hidden_dim;
    *drawn = 0;
    if (class_prefix) {
        const char *root[1] = {class_prefix};
        err_code_t rc = weights_select_prefix(src->w, root, 1, "class_predictor.weight", src->err);
        if (rc == ERR_OK) {
            char full[512];
            snprintf(full, sizeof full, "%sclass_predictor.weight", class_prefix);
            const st_entry_t *e = safetensors_find(&src->w->st, full);
            int fits = e->ndim == 2 && e->shape[0] == out_f && e->shape[1] == dim;
            if (fits || !completing_hf) return get_linear(src, "class_predictor", out_f, dim, &d->class_w, &d->class_b);
        } else if (!completing_hf) {
            return rc;
        }
    } else if (!completing_hf) {
        return err_set(src->err, ERR_NOTFOUND,
                       "%s: a Mask2FormerModel checkpoint has no class_predictor, and an AAVS model needs its own",
                       src->w->st.path);
    }
    *drawn = 1;
    err_code_t rc = make(src, "class_predictor.weight", 2, (int64_t[]){out_f, dim}, INIT_NORMAL, c->init_std,
                         &d->class_w);
    return rc ? rc : make(src, "class_predictor.bias", 1, (int64_t[]){out_f}, INIT_ZERO, 0.0f, &d->class_b);
}

err_code_t m2f_decoder_load(const m2f_decoder_config_t *cfg, weights_t *w, param_list_t *params, uint64_t init_seed,
                            m2f_decoder_t **out, err_t *err) {
    *out = NULL;
    err_code_t rc = weights_select_prefix(w, m2f_decoder_weight_prefixes, m2f_decoder_n_weight_prefixes, probe_name,
                                          err);
    if (rc != ERR_OK) return err_prefix(err, "transformer decoder: ");
    m2f_decoder_t *d = new_model(cfg);
    if (!d) return err_set(err, ERR_NOMEM, "transformer decoder: out of memory");
    source_t src = {.w = w, .params = params, .err = err};
    rng_seed(&src.rng, init_seed);
    /* a plain HF checkpoint has no avs_adapt: the official training starts from one */
    int completing_hf = !file_has_adapters(w);
    int pi = prefix_index(w);
    src.param_prefix = M2F_DECODER_TRANSFORMER_PREFIX;
    rc = get_transformer(&src, cfg, completing_hf, d);
    /* a layer too many, or prompt embeddings the variant does not have */
    if (rc == ERR_OK) rc = weights_check_all_used(w, NULL, 0, err);
    if (rc == ERR_OK) {
        src.param_prefix = M2F_DECODER_CLASS_PREFIX;
        rc = get_class_predictor(&src, cfg, class_prefixes[pi], completing_hf, d, &d->class_predictor_initialized);
    }
    if (rc == ERR_OK) {
        static const char *const root[1] = {""};
        int in_file = weights_select_prefix(w, root, 1, "audio_proj.0.weight", NULL) == ERR_OK;
        if (!in_file && !completing_hf)
            rc = err_set(err, ERR_NOTFOUND, "%s: tensor 'audio_proj.0.weight' is missing", w->st.path);
        src.param_prefix = M2F_DECODER_AUDIO_PREFIX;
        if (rc == ERR_OK) rc = get_audio_proj(&src, cfg, !in_file, d);
    }
    if (rc != ERR_OK) {
        m2f_decoder_free(d);
        return err_prefix(err, "transformer decoder: ");
    }
    d->aavs_parts_initialized = completing_hf;
    *out = d;
    return ERR_OK;
}

m2f_decoder_t *m2f_decoder_random(const m2f_decoder_config_t *cfg, param_list_t *params, uint64_t seed, float std) {
    err_t err;
    m2f_decoder_t *d = new_model(cfg);
    if (!d) fatal("m2f_decoder_random: out of memory");
    source_t src = {.w = NULL, .std = std, .params = params, .err = &err};
    rng_seed(&src.rng, seed);
    src.param_prefix = M2F_DECODER_TRANSFORMER_PREFIX;
    err_code_t rc = get_transformer(&src, cfg, 0, d);
    src.param_prefix = M2F_DECODER_CLASS_PREFIX;
    if (rc == ERR_OK) rc = get_linear(&src, "class_predictor", cfg->num_labels + 1, cfg->hidden_dim, &d->class_w,
                                      &d->class_b);
    src.param_prefix = M2F_DECODER_AUDIO_PREFIX;
    if (rc == ERR_OK) rc = get_audio_proj(&src, cfg, 0, d);
    if (rc != ERR_OK) fatal("m2f_decoder_random: %s", err.msg);
    return d;
}
