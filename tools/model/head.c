/* head.c - the AAVS head in `stepstone-model forward`: pixel decoder,
 * transformer decoder, post-processing and, with labels, the loss and the
 * gradients of the trainable parameters, under the names of the golden files
 * (../shared/golden/README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aavs_postprocess.h"
#include "adamw.h"
#include "log.h"
#include "model_cli.h"
#include "swin.h"

int model_head_requested(const safetensors_t *in) { return in && safetensors_find(in, "audio_embeddings") != NULL; }

static const char *variant_name(m2f_variant_t v) { return v == M2F_VARIANT_AVSS ? "avss" : "avs"; }

/* The variant a weights file was trained as: prompt embeddings exist only in
 * avss checkpoints; an AAVS checkpoint without them is avs. A plain HuggingFace
 * Mask2Former says nothing: then an audio_boost_mask input means avss. */
static m2f_variant_t detect_variant(const weights_t *w, const safetensors_t *in, const char **why) {
    int has_adapters = 0;
    for (int i = 0; i < w->st.n_entries; i++) {
        const char *name = w->st.entries[i].name;
        if (strstr(name, "transformer_module.silence_embed")) {
            *why = "the weights hold the avss prompt embeddings";
            return M2F_VARIANT_AVSS;
        }
        if (strstr(name, "transformer_module.") && strstr(name, "avs_adapt")) has_adapters = 1;
    }
    if (has_adapters) {
        *why = "an AAVS checkpoint without prompt embeddings";
        return M2F_VARIANT_AVS;
    }
    if (in && safetensors_find(in, "audio_boost_mask")) {
        *why = "a plain Mask2Former checkpoint and an audio_boost_mask input";
        return M2F_VARIANT_AVSS;
    }
    *why = "a plain Mask2Former checkpoint and no audio_boost_mask input";
    return M2F_VARIANT_AVS;
}

/* Reads the head and backbone configs; opens the weights and settles the variant. */
static err_code_t load_head(const model_head_options_t *o, const safetensors_t *in, arena_t *param_arena,
                            param_list_t *params, swin_config_t *sc, aavs_head_t **head, err_t *err) {
    config_t cfg;
    err_code_t rc = config_load(o->config, &cfg, err);
    if (rc != ERR_OK) return rc;
    weights_t w;
    rc = swin_config_from_json(&cfg, sc, err);
    if (rc != ERR_OK) err_prefix(err, "%s: ", o->config);
    if (rc == ERR_OK) rc = weights_open(o->weights, &w, err);
    if (rc != ERR_OK) {
        config_free(&cfg);
        return rc;
    }
    m2f_variant_t variant;
    const char *why = "--variant";
    if (o->variant == MODEL_HEAD_VARIANT_DETECT) variant = detect_variant(&w, in, &why);
    else variant = (m2f_variant_t)o->variant;
    aavs_head_config_t hc;
    rc = aavs_head_config_from_json(&cfg, variant, &hc, err);
    config_free(&cfg);
    param_list_init(params, param_arena);
    if (rc == ERR_OK) rc = aavs_head_load(&hc, &w, params, o->seed, head, err);
    weights_close(&w);
    if (rc != ERR_OK) {
        param_list_free(params);
        return rc; /* the messages name the file and the key or tensor */
    }
    log_info("head: %s (%s); %d queries, hidden %d, %d labels, %d decoder layers, %d encoder layers",
             variant_name(variant), why, hc.decoder.num_queries, hc.decoder.hidden_dim, hc.decoder.num_labels,
             hc.decoder.num_layers, hc.pixel_decoder.encoder_layers);
    return ERR_OK;
}

/* An input as dtype on ctx's device; ERR_NOTFOUND naming the file when absent. */
static err_code_t input(const model_head_options_t *o, const safetensors_t *in, const char *name, ctx_t *ctx,
                        dtype_t dtype, tensor_t **out, err_t *err) {
    if (!in || !safetensors_find(in, name))
        return err_set(err, ERR_NOTFOUND, "%s: the head needs the input %s",
                       o->inputs_path ? o->inputs_path : "--inputs", name);
    return safetensors_load(in, name, ctx->arena, dtype, 0, NULL, out, err);
}

static void stage_name(int stage, char *buf, size_t n) {
    if (stage == 0) snprintf(buf, n, "backbone.stem");
    else snprintf(buf, n, "backbone.stage%d", stage);
}

/* The pixel decoder's inputs: what the backbone made here, or backbone.<stage>
 * from the inputs, checked against the config's channels and frame count. */
static err_code_t gather_features(const model_head_options_t *o, const swin_config_t *sc, const aavs_head_t *head,
                                  const safetensors_t *in, ctx_t *ctx, tensor_t *const *backbone, int n_backbone,
                                  tensor_t **features, err_t *err) {
    const pixel_decoder_config_t *pc = &head->cfg.pixel_decoder;
    if (sc->n_out != pc->n_features)
        return err_set(err, ERR_MISMATCH, "%s: %d backbone outputs, the pixel decoder takes %d", o->config, sc->n_out,
                       pc->n_features);
    if (backbone && n_backbone != pc->n_features)
        return err_set(err, ERR_MISMATCH, "the backbone gave %d outputs, the pixel decoder takes %d", n_backbone,
                       pc->n_features);
    for (int k = 0; k < pc->n_features; k++) {
        char name[64];
        stage_name(sc->out_stages[k], name, sizeof name);
        if (backbone) {
            features[k] = backbone[k];
        } else {
            err_code_t rc = input(o, in, name, ctx, DTYPE_F32, &features[k], err);
            if (rc != ERR_OK) return rc;
        }
        const tensor_t *t = features[k];
        if (t->ndim != 4 || t->shape[1] != pc->in_channels[k] || t->shape[0] != features[0]->shape[0]) {
            char s[64];
            return err_set(err, ERR_MISMATCH, "%s is %s: [F, %d, h, w] wanted (the config's channels, %lld frames)",
                           name, tensor_shape_str(t, s, sizeof s), pc->in_channels[k],
                           (long long)features[0]->shape[0]);
        }
    }
    return ERR_OK;
}

/* audio_embeddings [F, audio_dim] and, for avss, audio_boost_mask [F, h, w]. */
static err_code_t gather_audio(const model_head_options_t *o, const aavs_head_t *head, const safetensors_t *in,
                               ctx_t *ctx, int64_t frames, tensor_t **audio, tensor_t **boost, err_t *err) {
    err_code_t rc = input(o, in, "audio_embeddings", ctx, DTYPE_F32, audio, err);
    if (rc != ERR_OK) return rc;
    char s[64];
    if ((*audio)->ndim != 2 || (*audio)->shape[0] != frames || (*audio)->shape[1] != head->cfg.decoder.audio_dim)
        return err_set(err, ERR_MISMATCH, "%s: audio_embeddings is %s, [%lld, %d] wanted (one row per frame)",
                       o->inputs_path, tensor_shape_str(*audio, s, sizeof s), (long long)frames,
                       head->cfg.decoder.audio_dim);
    *boost = NULL;
    int has_boost = safetensors_find(in, "audio_boost_mask") != NULL;
    if (head->cfg.variant == M2F_VARIANT_AVS) {
        if (has_boost) log_warn("the avs head takes no audio_boost_mask: ignored");
        return ERR_OK;
    }
    rc = input(o, in, "audio_boost_mask", ctx, DTYPE_F32, boost, err);
    if (rc != ERR_OK) return err_prefix(err, "avss: ");
    if ((*boost)->ndim != 3 || (*boost)->shape[0] != frames)
        return err_set(err, ERR_MISMATCH, "%s: audio_boost_mask is %s, [%lld, h, w] wanted", o->inputs_path,
                       tensor_shape_str(*boost, s, sizeof s), (long long)frames);
    return ERR_OK;
}

/* mask_labels.<f> [n_f, H, W] and class_labels.<f> [n_f] for every frame, or
 * *present = 0 when the inputs hold no mask_labels.0. */
static err_code_t gather_labels(const model_head_options_t *o, const safetensors_t *in, ctx_t *ctx, int frames,
                                m2f_targets_t *targets, int *present, err_t *err) {
    *present = safetensors_find(in, "mask_labels.0") != NULL;
    if (!*present) return ERR_OK;
    targets->n_frames = frames;
    targets->mask_labels = arena_alloc_host(ctx->arena, (size_t)frames * sizeof(tensor_t *));
    targets->class_labels = arena_alloc_host(ctx->arena, (size_t)frames * sizeof(tensor_t *));
    for (int f = 0; f < frames; f++) {
        char mn[64], cn[64];
        snprintf(mn, sizeof mn, "mask_labels.%d", f);
        snprintf(cn, sizeof cn, "class_labels.%d", f);
        err_code_t rc = input(o, in, mn, ctx, DTYPE_F32, &targets->mask_labels[f], err);
        if (rc == ERR_OK) rc = input(o, in, cn, ctx, DTYPE_I64, &targets->class_labels[f], err);
        if (rc != ERR_OK) return rc;
        const tensor_t *m = targets->mask_labels[f], *c = targets->class_labels[f];
        if (m->ndim != 3 || c->ndim != 1 || m->shape[0] != c->shape[0])
            return err_set(err, ERR_MISMATCH, "%s: %s [n, H, W] and %s [n] disagree", o->inputs_path, mn, cn);
    }
    return ERR_OK;
}

/* Gives the selected parameters gradient buffers; the rest none. Returns how many. */
static int set_trainable(aavs_head_t *head, param_list_t *params, aavs_trainable_t preset) {
    int n, count = 0;
    const char *const *patterns = aavs_trainable_patterns(head->cfg.variant, preset, &n);
    for (int i = 0; i < params->count; i++) {
        tensor_t *t = params->tensors[i];
        t->requires_grad = patterns ? adamw_name_selected(params->names[i], patterns, n) : 1;
        if (t->requires_grad) {
            tensor_alloc_grad(params->arena, t);
            tensor_zero_grad(t);
            count++;
        }
    }
    return count;
}

static err_code_t write_forward(const aavs_head_output_t *out, st_writer_t *w, err_t *err) {
    char name[64];
    err_code_t rc = ERR_OK;
    for (int i = 0; i < PIXEL_DECODER_LEVELS && rc == ERR_OK; i++) {
        snprintf(name, sizeof name, "pixel_decoder.multi_scale_features.%d", i);
        rc = safetensors_writer_add_tensor(w, name, out->pixel_decoder.multi_scale_features[i], err);
    }
    if (rc == ERR_OK)
        rc = safetensors_writer_add_tensor(w, "pixel_decoder.mask_features", out->pixel_decoder.mask_features, err);
    const m2f_decoder_output_t *d = &out->decoder;
    int last = d->n_predictions - 1;
    if (rc == ERR_OK) rc = safetensors_writer_add_tensor(w, "class_queries_logits", d->class_logits[last], err);
    if (rc == ERR_OK) rc = safetensors_writer_add_tensor(w, "masks_queries_logits", d->mask_logits[last], err);
    for (int i = 0; i < last && rc == ERR_OK; i++) {
        snprintf(name, sizeof name, "aux.%d.class_queries_logits", i);
        rc = safetensors_writer_add_tensor(w, name, d->class_logits[i], err);
        snprintf(name, sizeof name, "aux.%d.masks_queries_logits", i);
        if (rc == ERR_OK) rc = safetensors_writer_add_tensor(w, name, d->mask_logits[i], err);
    }
    return rc;
}

static err_code_t write_scalar(st_writer_t *w, const char *name, float v, err_t *err) {
    return safetensors_writer_add(w, name, DTYPE_F32, 1, (int64_t[]){1}, &v, err);
}

/* The loss's terms, matchings and points, as the golden files name them. */
static err_code_t write_loss(const m2f_loss_report_t *r, st_writer_t *w, err_t *err) {
    err_code_t rc = write_scalar(w, "loss.total", r->total, err);
    char name[128];
    for (int t = 0; t < r->n_terms && rc == ERR_OK; t++) {
        snprintf(name, sizeof name, "loss_terms.%s", r->terms[t].name);
        rc = write_scalar(w, name, r->terms[t].weighted, err);
        snprintf(name, sizeof name, "loss_unweighted.%s", r->terms[t].name);
        if (rc == ERR_OK) rc = write_scalar(w, name, r->terms[t].unweighted, err);
    }
    for (int g = 0; g < r->n_groups && rc == ERR_OK; g++) {
        const m2f_loss_group_t *grp = &r->groups[g];
        const m2f_matching_t *m = &grp->matching;
        for (int f = 0; f < m->n_frames && rc == ERR_OK; f++) {
            int64_t a = m->offset[f], n = m->offset[f + 1] - a;
            snprintf(name, sizeof name, "loss.%s.match_pred_idx.%d", grp->name, f);
            rc = safetensors_writer_add(w, name, DTYPE_I64, 1, &n, m->pred_idx + a, err);
            snprintf(name, sizeof name, "loss.%s.match_tgt_idx.%d", grp->name, f);
            if (rc == ERR_OK) rc = safetensors_writer_add(w, name, DTYPE_I64, 1, &n, m->tgt_idx + a, err);
        }
        int64_t shape[3] = {m->offset[m->n_frames], grp->n_points, 2};
        snprintf(name, sizeof name, "loss.%s.point_coords", grp->name);
        if (rc == ERR_OK && grp->point_coords)
            rc = safetensors_writer_add(w, name, DTYPE_F32, 3, shape, grp->point_coords, err);
    }
    return rc;
}

static err_code_t write_grads(const param_list_t *params, st_writer_t *w, err_t *err) {
    err_code_t rc = ERR_OK;
    for (int i = 0; i < params->count && rc == ERR_OK; i++) {
        const tensor_t *t = params->tensors[i];
        if (!t->requires_grad || !t->grad) continue;
        tensor_t view = *t; /* the gradient has the parameter's shape and device */
        view.data = t->grad;
        view.dtype = DTYPE_F32;
        char name[600];
        snprintf(name, sizeof name, "grad.%s", params->names[i]);
        rc = safetensors_writer_add_tensor(w, name, &view, err);
    }
    return rc;
}

/* The loss of the forward's predictions (fixed points when the inputs hold
 * them, else seeded random ones), its backward, and their outputs. */
static err_code_t loss_and_grads(const model_head_options_t *o, ctx_t *ctx, const aavs_head_t *head,
                                 const param_list_t *params, const safetensors_t *in, const aavs_head_output_t *out,
                                 const m2f_targets_t *targets, int n_trainable, st_writer_t *w, err_t *err) {
    rng_t rng;
    rng_seed(&rng, o->seed);
    m2f_point_source_t points = {.kind = M2F_POINTS_RANDOM, .rng = &rng};
    if (safetensors_find(in, "loss.final.matcher_point_coords"))
        points = (m2f_point_source_t){.kind = M2F_POINTS_FIXED, .fixed = in};
    m2f_loss_report_t report = {0};
    tensor_t *total = NULL;
    err_code_t rc = aavs_head_loss(ctx, head, out, targets, &points, NULL, &total, &report, err);
    if (rc == ERR_OK) {
        log_info("loss %.7g over %d terms (%s points); gradients of %d parameters", report.total, report.n_terms,
                 points.kind == M2F_POINTS_FIXED ? "the inputs'" : "random", n_trainable);
        rc = write_loss(&report, w, err);
    }
    if (rc == ERR_OK && n_trainable > 0 && total->requires_grad) {
        ctx_backward(ctx, total, NULL);
        rc = write_grads(params, w, err);
    }
    m2f_loss_report_free(&report);
    return rc;
}

/* semantic_map [F, th, tw] at target_size, or at the frames' size (4 x the mask logits'). */
static err_code_t write_semantic_map(const model_head_options_t *o, ctx_t *ctx, const safetensors_t *in,
                                     const aavs_head_output_t *out, st_writer_t *w, err_t *err) {
    const m2f_decoder_output_t *d = &out->decoder;
    tensor_t *mask_logits = d->mask_logits[d->n_predictions - 1];
    int64_t size[2] = {4 * mask_logits->shape[2], 4 * mask_logits->shape[3]};
    if (in && safetensors_find(in, "target_size")) {
        tensor_t *ts;
        err_code_t rc = safetensors_load(in, "target_size", ctx->arena, DTYPE_I64, 1, (int64_t[]){2}, &ts, err);
        if (rc != ERR_OK) return rc;
        tensor_to_host(ts, size);
        if (size[0] < 1 || size[1] < 1 || size[0] > 65536 || size[1] > 65536)
            return err_set(err, ERR_MISMATCH, "%s: target_size (%lld, %lld) is not a size", o->inputs_path,
                           (long long)size[0], (long long)size[1]);
    }
    tensor_t *map = aavs_semantic_map(ctx, d->class_logits[d->n_predictions - 1], mask_logits, size[0], size[1]);
    return safetensors_writer_add_tensor(w, "semantic_map", map, err);
}

err_code_t model_head_run(const model_head_options_t *o, ctx_t *ctx, arena_t *param_arena, const safetensors_t *in,
                          tensor_t *const *backbone, int n_backbone, st_writer_t *w, err_t *err) {
    if (!o->config || !o->weights)
        return err_set(err, ERR_ARG, "audio_embeddings given: the head needs --config and --weights");
    param_list_t params;
    swin_config_t sc;
    aavs_head_t *head = NULL;
    err_code_t rc = load_head(o, in, param_arena, &params, &sc, &head, err);
    if (rc != ERR_OK) return rc;
    tensor_t *features[PIXEL_DECODER_MAX_FEATURES], *audio = NULL, *boost = NULL;
    m2f_targets_t targets = {0};
    int with_labels = 0, n_trainable = 0;
    rc = gather_features(o, &sc, head, in, ctx, backbone, n_backbone, features, err);
    if (rc == ERR_OK) rc = gather_audio(o, head, in, ctx, features[0]->shape[0], &audio, &boost, err);
    if (rc == ERR_OK) rc = gather_labels(o, in, ctx, (int)features[0]->shape[0], &targets, &with_labels, err);
    if (rc == ERR_OK && with_labels) n_trainable = set_trainable(head, &params, o->train);
    if (rc == ERR_OK) {
        /* the tape only when there is a loss to differentiate */
        int old = ctx_set_grad(ctx, with_labels && n_trainable > 0);
        aavs_head_output_t out;
        aavs_head_forward(ctx, head, features, audio, boost, &out, NULL, NULL);
        rc = write_forward(&out, w, err);
        if (rc == ERR_OK && with_labels)
            rc = loss_and_grads(o, ctx, head, &params, in, &out, &targets, n_trainable, w, err);
        ctx_set_grad(ctx, 0);
        if (rc == ERR_OK) rc = write_semantic_map(o, ctx, in, &out, w, err);
        ctx_set_grad(ctx, old);
    }
    aavs_head_free(head);
    param_list_free(&params);
    return rc;
}
