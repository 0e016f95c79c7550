/* m2f_decoder_config.c - the transformer decoder's settings from a HuggingFace
 * Mask2Former config.json (see m2f_decoder.h for what is refused and why). */
#include <string.h>

#include "m2f_decoder.h"

/* AdaptiveAVS.audio_proj = Linear(128, 512) -> ReLU -> Linear(512, 256): the
 * widths are written in avs_model.py, not in any config */
#define AUDIO_DIM 128
#define AUDIO_HIDDEN 512

static err_code_t refuse(const config_t *cfg, err_t *err, const char *key, const char *why) {
    return err_set(err, ERR_MISMATCH, "%s: '%s': %s", cfg->path, key, why);
}

/* PretrainedConfig: num_labels = len(id2label) when id2label is given, else
 * the num_labels field, else 2 */
static err_code_t read_num_labels(const config_t *cfg, int *out, err_t *err) {
    json_t *labels = config_lookup(cfg, "id2label");
    if (labels && !json_is_null(labels)) {
        if (!json_is_object(labels) || json_object_size(labels) == 0)
            return refuse(cfg, err, "id2label", "must be a non-empty object of class names");
        *out = (int)json_object_size(labels);
        return ERR_OK;
    }
    return config_get_int_or(cfg, "num_labels", 2, out, err);
}

err_code_t m2f_decoder_config_from_json(const config_t *cfg, m2f_variant_t variant, m2f_decoder_config_t *out,
                                        err_t *err) {
    m2f_decoder_config_t c;
    memset(&c, 0, sizeof c);
    c.variant = variant;
    c.audio_dim = AUDIO_DIM;
    c.audio_hidden = AUDIO_HIDDEN;
    int feature_size, decoder_layers;
    bool pre_norm, enforce_proj;
    double dropout, init_std, xavier_std;
    const char *act;
    err_code_t rc;
    /* defaults: transformers.Mask2FormerConfig.__init__ (4.35.2) */
    if ((rc = config_get_int_or(cfg, "hidden_dim", 256, &c.hidden_dim, err))) return rc;
    if ((rc = config_get_int_or(cfg, "feature_size", 256, &feature_size, err))) return rc;
    if ((rc = config_get_int_or(cfg, "mask_feature_size", 256, &c.mask_feature_size, err))) return rc;
    if ((rc = config_get_int_or(cfg, "num_queries", 100, &c.num_queries, err))) return rc;
    if ((rc = config_get_int_or(cfg, "decoder_layers", 10, &decoder_layers, err))) return rc;
    if ((rc = config_get_int_or(cfg, "num_attention_heads", 8, &c.num_heads, err))) return rc;
    if ((rc = config_get_int_or(cfg, "dim_feedforward", 2048, &c.dim_feedforward, err))) return rc;
    if ((rc = config_get_string_or(cfg, "activation_function", "relu", &act, err))) return rc;
    if ((rc = config_get_bool_or(cfg, "pre_norm", false, &pre_norm, err))) return rc;
    if ((rc = config_get_bool_or(cfg, "enforce_input_projection", false, &enforce_proj, err))) return rc;
    if ((rc = config_get_double_or(cfg, "dropout", 0.0, &dropout, err))) return rc;
    if ((rc = config_get_double_or(cfg, "init_std", 0.02, &init_std, err))) return rc;
    if ((rc = config_get_double_or(cfg, "init_xavier_std", 1.0, &xavier_std, err))) return rc;
    if ((rc = read_num_labels(cfg, &c.num_labels, err))) return rc;
    c.init_std = (float)init_std;
    c.init_xavier_std = (float)xavier_std;

    if (feature_size != c.hidden_dim)
        return err_set(err, ERR_MISMATCH,
                       "%s: 'feature_size' %d != 'hidden_dim' %d: the transformer module would project the pixel "
                       "decoder's features with 1x1 convs kept in a plain Python list (M2F:2069), which are never "
                       "saved in a checkpoint, never trained and random at every build, so no checkpoint can be "
                       "loaded faithfully",
                       cfg->path, feature_size, c.hidden_dim);
    if (enforce_proj)
        return refuse(cfg, err, "enforce_input_projection",
                      "true asks for input projections the module keeps in a plain Python list (M2F:2069): never "
                      "saved, never trained, random at every build, so no checkpoint can be loaded faithfully");
    if (pre_norm)
        return refuse(cfg, err, "pre_norm",
                      "true is not supported: the official configs are post-norm and the pre-norm path has no "
                      "reference to check it against");
    if (dropout != 0.0)
        return refuse(cfg, err, "dropout",
                      "must be 0: the official configs have 0, and training would drop activations and whole "
                      "decoder layers (layerdrop = dropout), which this implementation does not reproduce");
    if (strcmp(act, "relu") == 0) c.activation = M2F_ACT_RELU;
    else if (strcmp(act, "gelu") == 0) c.activation = M2F_ACT_GELU;
    else return refuse(cfg, err, "activation_function", "only relu and gelu are supported");
    if (c.hidden_dim < 4 || c.hidden_dim % 2 != 0)
        return refuse(cfg, err, "hidden_dim",
                      "must be even (the sine position embedding has hidden_dim / 2 features per axis) and at "
                      "least 4 (avs_adapt's width is hidden_dim / 4)");
    if (c.num_heads < 1 || c.hidden_dim % c.num_heads != 0)
        return err_set(err, ERR_MISMATCH, "%s: 'num_attention_heads' %d does not divide 'hidden_dim' %d", cfg->path,
                       c.num_heads, c.hidden_dim);
    if (decoder_layers < 1)
        return refuse(cfg, err, "decoder_layers", "must be at least 1 (decoder_layers - 1 layers run, M2F:1798)");
    if (c.num_queries < 1) return refuse(cfg, err, "num_queries", "must be positive");
    if (c.mask_feature_size < 1) return refuse(cfg, err, "mask_feature_size", "must be positive");
    if (c.dim_feedforward < 1) return refuse(cfg, err, "dim_feedforward", "must be positive");
    if (c.num_labels < 1) return refuse(cfg, err, "num_labels", "must be positive");
    /* Mask2FormerMaskedAttentionDecoder: self.decoder_layers = config.decoder_layers - 1 */
    c.num_layers = decoder_layers - 1;
    *out = c;
    return ERR_OK;
}
