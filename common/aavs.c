/* aavs.c - the whole AAVS head: configs, loading, forward and loss of the
 * pixel decoder and the transformer decoder together (see aavs.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aavs.h"

static pixel_decoder_variant_t pixel_variant(m2f_variant_t v) {
    return v == M2F_VARIANT_AVSS ? PIXEL_DECODER_AVSS : PIXEL_DECODER_AVS;
}

err_code_t aavs_head_config_from_json(const config_t *cfg, m2f_variant_t variant, aavs_head_config_t *out,
                                      err_t *err) {
    aavs_head_config_t c;
    memset(&c, 0, sizeof c);
    c.variant = variant;
    err_code_t rc = m2f_decoder_config_from_json(cfg, variant, &c.decoder, err);
    if (rc == ERR_OK) rc = pixel_decoder_config_from_json(cfg, pixel_variant(variant), &c.pixel_decoder, err);
    if (rc == ERR_OK) rc = m2f_loss_config_from_json(cfg, &c.loss, err);
    if (rc != ERR_OK) return rc;
    /* one file gives all three, so these agree unless a module reads a key otherwise */
    if (c.pixel_decoder.mask_feature_size != c.decoder.mask_feature_size ||
        c.pixel_decoder.feature_size != c.decoder.hidden_dim || c.loss.num_labels != c.decoder.num_labels)
        return err_set(err, ERR_MISMATCH,
                       "%s: the modules read different sizes (mask features %d / %d, features %d / %d, labels %d / %d)",
                       cfg->path, c.pixel_decoder.mask_feature_size, c.decoder.mask_feature_size,
                       c.pixel_decoder.feature_size, c.decoder.hidden_dim, c.loss.num_labels, c.decoder.num_labels);
    *out = c;
    return ERR_OK;
}

void aavs_head_free(aavs_head_t *head) {
    if (!head) return;
    pixel_decoder_free(head->pixel_decoder);
    m2f_decoder_free(head->decoder);
    free(head);
}

err_code_t aavs_head_load(const aavs_head_config_t *cfg, weights_t *w, param_list_t *params, uint64_t init_seed,
                          aavs_head_t **out, err_t *err) {
    *out = NULL;
    aavs_head_t *h = calloc(1, sizeof *h);
    if (!h) return err_set(err, ERR_NOMEM, "AAVS head: out of memory");
    h->cfg = *cfg;
    /* the two modules draw what a plain HF file lacks from seeds of their own */
    err_code_t rc = pixel_decoder_load(&cfg->pixel_decoder, w, params, PIXEL_DECODER_AAVS_PREFIX, init_seed,
                                       &h->pixel_decoder, err);
    if (rc == ERR_OK) rc = m2f_decoder_load(&cfg->decoder, w, params, init_seed + 1, &h->decoder, err);
    if (rc != ERR_OK) {
        aavs_head_free(h);
        return rc;
    }
    *out = h;
    return ERR_OK;
}

aavs_head_t *aavs_head_random(const aavs_head_config_t *cfg, param_list_t *params, uint64_t seed, float std) {
    aavs_head_t *h = calloc(1, sizeof *h);
    if (!h) fatal("aavs_head_random: out of memory");
    h->cfg = *cfg;
    h->pixel_decoder = pixel_decoder_random(&cfg->pixel_decoder, params, PIXEL_DECODER_AAVS_PREFIX, seed, std);
    h->decoder = m2f_decoder_random(&cfg->decoder, params, seed + 1, std);
    return h;
}

/* the pixel decoder's names get their module's prefix */
typedef struct {
    aavs_debug_fn_t fn;
    void *user;
} debug_forward_t;

static void pixel_decoder_debug(void *user, const char *name, const tensor_t *t) {
    debug_forward_t *d = user;
    char full[256];
    snprintf(full, sizeof full, "pixel_decoder.%s", name);
    d->fn(d->user, full, t);
}

void aavs_head_forward(ctx_t *ctx, const aavs_head_t *head, tensor_t *const *features, tensor_t *audio_embeddings,
                       tensor_t *audio_boost_mask, aavs_head_output_t *out, aavs_debug_fn_t debug, void *debug_user) {
    debug_forward_t d = {debug, debug_user};
    pixel_decoder_forward(ctx, head->pixel_decoder, features, &out->pixel_decoder, debug ? pixel_decoder_debug : NULL,
                          &d);
    m2f_decoder_forward(ctx, head->decoder, out->pixel_decoder.multi_scale_features, out->pixel_decoder.mask_features,
                        audio_embeddings, audio_boost_mask, &out->decoder, debug, debug_user);
}

err_code_t aavs_head_loss(ctx_t *ctx, const aavs_head_t *head, const aavs_head_output_t *out,
                          const m2f_targets_t *targets, const m2f_point_source_t *points,
                          const tensor_t *v1m_label_maps, tensor_t **total, m2f_loss_report_t *report, err_t *err) {
    const m2f_decoder_output_t *dec = &out->decoder;
    int n = dec->n_predictions;
    /* predictions 0 .. n-2 are the auxiliary ones, n-1 the output */
    m2f_prediction_t *aux = malloc((size_t)(n > 1 ? n - 1 : 1) * sizeof *aux);
    if (!aux) return err_set(err, ERR_NOMEM, "AAVS loss: out of memory");
    for (int i = 0; i + 1 < n; i++) aux[i] = (m2f_prediction_t){dec->class_logits[i], dec->mask_logits[i]};
    m2f_predictions_t preds = {
        .final = {dec->class_logits[n - 1], dec->mask_logits[n - 1]}, .aux = aux, .n_aux = n - 1};
    m2f_loss_options_t opts = {.variant = head->cfg.variant, .v1m_label_maps = v1m_label_maps};
    err_code_t rc = m2f_loss(ctx, &head->cfg.loss, &preds, targets, points, &opts, total, report, err);
    free(aux);
    return rc;
}

const char *const *aavs_trainable_patterns(m2f_variant_t variant, aavs_trainable_t preset, int *n) {
    /* set_params of avs/train.py and avss/train.py (de6a17b) */
    static const char *const avs_phase1[] = {"queries_embedder", "queries_features", "avs_adapt", "class_predictor",
                                             "audio_proj"};
    static const char *const avss_phase1[] = {"queries_embedder", "avs_adapt",     "class_predictor", "audio_proj",
                                              "audio_embed",      "silence_embed", "uncertain_embed"};
    if (preset == AAVS_TRAIN_ALL_HEAD) {
        *n = 0;
        return NULL;
    }
    if (variant == M2F_VARIANT_AVSS) {
        *n = (int)(sizeof avss_phase1 / sizeof *avss_phase1);
        return avss_phase1;
    }
    *n = (int)(sizeof avs_phase1 / sizeof *avs_phase1);
    return avs_phase1;
}
