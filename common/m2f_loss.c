/* m2f_loss.c - Mask2Former's criterion over the final and auxiliary
 * predictions, the term weights and the total (see m2f_loss.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2f_loss.h"
#include "ops.h"
#include "point_sample.h"

/* What every prediction group shares: the targets stacked once, the
 * normalizer and the class weights. */
typedef struct {
    int frames;
    int64_t *target_offset;  /* [frames + 1]: frame f's targets are rows [offset[f], offset[f+1]) */
    int64_t *target_class;   /* [targets], host */
    tensor_t *target_rows;   /* [targets, H * W]: every frame's masks zero-padded to the batch's largest H, W */
    int64_t height, width;   /* that padded size */
    tensor_t *num_masks;     /* 0-dim: the number of targets, as get_num_masks counts them */
    tensor_t *class_weight;  /* [L + 1]: ones, no_object_weight on L (the criterion's empty_weight) */
} batch_t;

static void *loss_alloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) fatal("m2f_loss: out of memory");
    return p;
}

/* Frees what ctx allocated since mark, which must have recorded no node. */
static void release_to(ctx_t *ctx, ctx_mark_t mark) {
    if (ctx->n_nodes != mark.n_nodes) fatal("m2f_loss: tape nodes recorded during a no-grad stretch");
    arena_release(ctx->arena, mark.arena);
}

/* ---- targets ---- */

static err_code_t batch_init(ctx_t *ctx, const m2f_loss_config_t *cfg, const m2f_targets_t *targets, batch_t *b,
                             err_t *err) {
    char sm[96], sc[96];
    *b = (batch_t){.frames = targets->n_frames};
    b->target_offset = loss_alloc((size_t)b->frames + 1, sizeof(int64_t));
    for (int f = 0; f < b->frames; f++) {
        tensor_t *masks = targets->mask_labels[f], *labels = targets->class_labels[f];
        if (masks->dtype != DTYPE_F32 || masks->device != ctx->device || masks->ndim != 3 ||
            labels->dtype != DTYPE_I64 || labels->ndim != 1 || labels->shape[0] != masks->shape[0])
            return err_set(err, ERR_ARG,
                           "frame %d: mask labels %s %s on %s, class labels %s %s (want F32 [n, H, W] on %s and "
                           "I64 [n])",
                           f, dtype_name(masks->dtype), tensor_shape_str(masks, sm, 96), device_name(masks->device),
                           dtype_name(labels->dtype), tensor_shape_str(labels, sc, 96), device_name(ctx->device));
        b->target_offset[f + 1] = b->target_offset[f] + masks->shape[0];
        if (masks->shape[1] > b->height) b->height = masks->shape[1];
        if (masks->shape[2] > b->width) b->width = masks->shape[2];
    }
    int64_t n = b->target_offset[b->frames];
    if (n == 0)
        return err_set(err, ERR_ARG, "no target mask in any of the %d frames: the official loss divides by "
                                     "num_masks = 0 there (NaN)", b->frames);
    b->target_class = loss_alloc((size_t)n, sizeof(int64_t));
    for (int f = 0; f < b->frames; f++) {
        int64_t *cls = b->target_class + b->target_offset[f];
        tensor_to_host(targets->class_labels[f], cls);
        for (int64_t j = 0; j < targets->class_labels[f]->numel; j++)
            if (cls[j] < 0 || cls[j] >= cfg->num_labels)
                return err_set(err, ERR_ARG, "frame %d: target %lld has class %lld, outside [0, %d)", f,
                               (long long)j, (long long)cls[j], cfg->num_labels);
    }
    /* _pad_images_to_max_in_batch: zero padding right and bottom */
    int64_t plane = b->height * b->width;
    float *rows = loss_alloc((size_t)(n * plane), sizeof(float));
    for (int f = 0; f < b->frames; f++) {
        tensor_t *masks = targets->mask_labels[f];
        int64_t h = masks->shape[1], w = masks->shape[2];
        float *own = loss_alloc((size_t)masks->numel, sizeof(float));
        tensor_to_host(masks, own);
        for (int64_t j = 0; j < masks->shape[0]; j++)
            for (int64_t y = 0; y < h; y++)
                memcpy(rows + (b->target_offset[f] + j) * plane + y * b->width, own + (j * h + y) * w,
                       (size_t)w * sizeof(float));
        free(own);
    }
    int64_t rows_shape[2] = {n, plane};
    b->target_rows = tensor_from_host(ctx->arena, DTYPE_F32, 2, rows_shape, rows);
    free(rows);
    float count = (float)n;
    b->num_masks = tensor_from_host(ctx->arena, DTYPE_F32, 0, NULL, &count);
    int64_t classes = cfg->num_labels + 1;
    float *weight = loss_alloc((size_t)classes, sizeof(float));
    for (int64_t c = 0; c < classes; c++) weight[c] = c == cfg->num_labels ? cfg->no_object_weight : 1.0f;
    b->class_weight = tensor_from_host(ctx->arena, DTYPE_F32, 1, &classes, weight);
    free(weight);
    return ERR_OK;
}

static void batch_free(batch_t *b) {
    free(b->target_offset);
    free(b->target_class);
}

/* ---- point draws ---- */

/* Fills out (numel of shape) with the draw `what` ("matcher", "oversampled",
 * "random") of group g: uniforms from the rng, or the tensor
 * loss.<g>.<what>_point_coords of the fixed file. */
static err_code_t draw_points(const m2f_point_source_t *src, const char *group, const char *what, int ndim,
                              const int64_t *shape, float *out, err_t *err) {
    int64_t numel = shape_numel(ndim, shape);
    if (src->kind == M2F_POINTS_RANDOM) {
        if (!src->rng) fatal("m2f_loss: random point source without an rng");
        for (int64_t i = 0; i < numel; i++) out[i] = rng_float(src->rng);
        return ERR_OK;
    }
    if (!src->fixed) fatal("m2f_loss: fixed point source without a file");
    char name[96], want[96], got[96];
    snprintf(name, sizeof name, "loss.%s.%s_point_coords", group, what);
    const st_entry_t *e = safetensors_find(src->fixed, name);
    if (!e) return err_set(err, ERR_NOTFOUND, "%s: no tensor '%s'", src->fixed->path, name);
    int same = e->dtype == DTYPE_F32 && e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = e->shape[i] == shape[i];
    if (!same)
        return err_set(err, ERR_MISMATCH, "%s: '%s' is %s %s, want F32 %s", src->fixed->path, name,
                       dtype_name(e->dtype), shape_str(e->ndim, e->shape, got, 96), shape_str(ndim, shape, want, 96));
    memcpy(out, e->data, (size_t)numel * sizeof(float)); /* the mapping may be unaligned for floats */
    return ERR_OK;
}

/* ---- one prediction group ---- */

typedef struct {
    tensor_t *mask, *dice, *cross_entropy; /* unweighted, 0-dim, on the tape */
} group_terms_t;

/* loss_masks: the M matched masks' logits at their P training points, with
 * their targets read there. Fills the point coordinates (host, [M, P, 2])
 * and returns the two terms. */
static err_code_t mask_terms(ctx_t *ctx, const m2f_loss_config_t *cfg, const m2f_prediction_t *pred,
                             const batch_t *b, const m2f_matching_t *match, const m2f_point_source_t *src,
                             const char *group, float *coords, group_terms_t *terms, err_t *err) {
    int64_t frames = pred->mask_logits->shape[0], queries = pred->mask_logits->shape[1];
    int64_t h = pred->mask_logits->shape[2], w = pred->mask_logits->shape[3];
    int64_t matched = match->offset[frames], points = cfg->train_num_points;
    /* Python's int() of the float products, as the official code forms them */
    int64_t oversampled = (int64_t)((double)points * cfg->oversample_ratio);
    int64_t uncertain = (int64_t)(cfg->importance_sample_ratio * (double)points);
    int64_t random = points - uncertain;

    /* pred_masks = masks_queries_logits[src_idx]: rows f * Q + query */
    int64_t *pred_rows = loss_alloc((size_t)matched, sizeof(int64_t));
    int64_t *tgt_rows = loss_alloc((size_t)matched, sizeof(int64_t));
    for (int64_t f = 0; f < frames; f++)
        for (int64_t i = match->offset[f]; i < match->offset[f + 1]; i++) {
            pred_rows[i] = f * queries + match->pred_idx[i];
            tgt_rows[i] = b->target_offset[f] + match->tgt_idx[i];
        }
    int64_t flat_shape[2] = {frames * queries, h * w}, mask_shape[4] = {matched, 1, h, w};
    tensor_t *pred_idx = tensor_from_host(ctx->arena, DTYPE_I64, 1, &matched, pred_rows);
    tensor_t *pred_masks = op_reshape(
        ctx, op_embedding(ctx, op_reshape(ctx, pred->mask_logits, 2, flat_shape), pred_idx), 4, mask_shape);

    float *over_coords = loss_alloc((size_t)(matched * oversampled * 2), sizeof(float));
    float *over_logits = loss_alloc((size_t)(matched * oversampled), sizeof(float));
    float *random_coords = loss_alloc((size_t)(matched * random * 2), sizeof(float));
    int64_t over_shape[3] = {matched, oversampled, 2}, random_shape[3] = {matched, random, 2};
    err_code_t rc = draw_points(src, group, "oversampled", 3, over_shape, over_coords, err);
    int grad_was = ctx_set_grad(ctx, 0);
    if (rc == ERR_OK) {
        /* the uncertainty is read from the logits' values, off the tape */
        ctx_mark_t mark = ctx_mark(ctx);
        tensor_t *over = tensor_from_host(ctx->arena, DTYPE_F32, 3, over_shape, over_coords);
        tensor_to_host(point_sample(ctx, pred_masks, over), over_logits);
        release_to(ctx, mark);
        if (random > 0) rc = draw_points(src, group, "random", 3, random_shape, random_coords, err);
    }
    tensor_t *labels = NULL, *coords_t = NULL;
    if (rc == ERR_OK) {
        point_select_uncertain(over_logits, over_coords, matched, oversampled, uncertain, random_coords, random,
                               coords);
        int64_t coords_shape[3] = {matched, points, 2}, label_shape[2] = {matched, points};
        int64_t target_shape[4] = {matched, 1, b->height, b->width};
        coords_t = tensor_from_host(ctx->arena, DTYPE_F32, 3, coords_shape, coords);
        ctx_mark_t mark = ctx_mark(ctx);
        tensor_t *tgt_idx = tensor_from_host(ctx->arena, DTYPE_I64, 1, &matched, tgt_rows);
        tensor_t *target_masks = op_reshape(ctx, op_embedding(ctx, b->target_rows, tgt_idx), 4, target_shape);
        labels = ctx_keep(ctx, mark, op_reshape(ctx, point_sample(ctx, target_masks, coords_t), 2, label_shape));
    }
    ctx_set_grad(ctx, grad_was);
    if (rc == ERR_OK) {
        int64_t logit_shape[2] = {matched, points};
        tensor_t *point_logits = op_reshape(ctx, point_sample(ctx, pred_masks, coords_t), 2, logit_shape);
        /* sigmoid_cross_entropy_loss: mean over points, sum over masks, / num_masks */
        tensor_t *bce = op_bce_with_logits(ctx, point_logits, labels);
        terms->mask = op_div(ctx, op_sum_all(ctx, op_mean(ctx, bce, 1, 0)), b->num_masks);
        terms->dice = op_div(ctx, op_sum_all(ctx, op_dice_loss(ctx, point_logits, labels)), b->num_masks);
    }
    free(pred_rows);
    free(tgt_rows);
    free(over_coords);
    free(over_logits);
    free(random_coords);
    return rc;
}

/* loss_labels: every query against its matched class or no-object */
static tensor_t *class_term(ctx_t *ctx, const m2f_loss_config_t *cfg, const m2f_prediction_t *pred,
                            const batch_t *b, const m2f_matching_t *match) {
    int64_t frames = pred->class_logits->shape[0], queries = pred->class_logits->shape[1];
    int64_t rows = frames * queries, classes = pred->class_logits->shape[2];
    int64_t *target = loss_alloc((size_t)rows, sizeof(int64_t));
    for (int64_t r = 0; r < rows; r++) target[r] = cfg->num_labels;
    for (int64_t f = 0; f < frames; f++)
        for (int64_t i = match->offset[f]; i < match->offset[f + 1]; i++)
            target[f * queries + match->pred_idx[i]] = b->target_class[b->target_offset[f] + match->tgt_idx[i]];
    tensor_t *target_t = tensor_from_host(ctx->arena, DTYPE_I64, 1, &rows, target);
    free(target);
    int64_t logit_shape[2] = {rows, classes};
    /* nn.CrossEntropyLoss's defaults: ignore_index -100 (never a target here), mean weighted by class */
    return op_cross_entropy(ctx, op_reshape(ctx, pred->class_logits, 2, logit_shape), target_t, b->class_weight,
                            -100);
}

static err_code_t group_loss(ctx_t *ctx, const m2f_loss_config_t *cfg, const m2f_prediction_t *pred,
                             const m2f_targets_t *targets, const batch_t *b, const m2f_point_source_t *src,
                             const char *group, group_terms_t *terms, m2f_loss_group_t *report, err_t *err) {
    tensor_t *cl = pred->class_logits, *ml = pred->mask_logits;
    char sc[96], sm[96];
    if (!cl || !ml || cl->ndim != 3 || ml->ndim != 4 || cl->shape[0] != b->frames || ml->shape[0] != b->frames ||
        ml->shape[1] != cl->shape[1] || cl->shape[1] < 1 || cl->shape[2] != cfg->num_labels + 1)
        return err_set(err, ERR_ARG,
                       "prediction %s: class logits %s, mask logits %s for %d frames and %d labels (want [F, Q, %d] "
                       "and [F, Q, h, w], Q >= 1)",
                       group, cl ? tensor_shape_str(cl, sc, 96) : "(none)", ml ? tensor_shape_str(ml, sm, 96) : "(none)",
                       b->frames, cfg->num_labels, cfg->num_labels + 1);
    int64_t points = cfg->train_num_points;
    int64_t matcher_shape[4] = {b->frames, 1, points, 2};
    float *matcher_coords = loss_alloc((size_t)(b->frames * points * 2), sizeof(float));
    err_code_t rc = draw_points(src, group, "matcher", 4, matcher_shape, matcher_coords, err);
    m2f_matching_t match = {0};
    if (rc == ERR_OK) {
        ctx_mark_t mark = ctx_mark(ctx);
        int grad_was = ctx_set_grad(ctx, 0);
        tensor_t *coords = tensor_from_host(ctx->arena, DTYPE_F32, 4, matcher_shape, matcher_coords);
        /* the criterion builds its matcher with cost_class = 1.0, whatever class_weight says */
        m2f_match_weights_t weights = {.cost_class = 1.0f, .cost_mask = cfg->mask_weight, .cost_dice = cfg->dice_weight};
        rc = m2f_match(ctx, weights, cl, ml, targets, coords, &match, NULL, err);
        ctx_set_grad(ctx, grad_was);
        release_to(ctx, mark);
        if (rc != ERR_OK) err_prefix(err, "prediction %s: ", group);
    }
    free(matcher_coords);
    float *coords = NULL;
    if (rc == ERR_OK) {
        coords = loss_alloc((size_t)(match.offset[b->frames] * points * 2), sizeof(float));
        rc = mask_terms(ctx, cfg, pred, b, &match, src, group, coords, terms, err);
    }
    if (rc == ERR_OK) terms->cross_entropy = class_term(ctx, cfg, pred, b, &match);
    if (rc == ERR_OK && report) {
        snprintf(report->name, sizeof report->name, "%s", group);
        report->matching = match;
        report->n_points = points;
        report->point_coords = coords;
    } else {
        m2f_matching_free(&match);
        free(coords);
    }
    return rc;
}

/* ---- the avs/ empty-mask rule ---- */

/* torch.mean(mask_recs) == 0 for label maps that are never negative */
static int all_zero(const tensor_t *t) {
    size_t bytes = (size_t)t->numel * dtype_size(t->dtype);
    unsigned char *host = loss_alloc(bytes, 1);
    tensor_to_host(t, host);
    int zero = 1;
    if (t->dtype == DTYPE_F32) {
        for (int64_t i = 0; i < t->numel && zero; i++) {
            float v;
            memcpy(&v, host + (size_t)i * sizeof v, sizeof v);
            zero = v == 0.0f;
        }
    } else if (t->dtype == DTYPE_F16 || t->dtype == DTYPE_BF16) {
        for (int64_t i = 0; i < t->numel && zero; i++) {
            uint16_t v;
            memcpy(&v, host + (size_t)i * sizeof v, sizeof v);
            zero = (v & 0x7fffu) == 0; /* +0 or -0 */
        }
    } else {
        for (size_t i = 0; i < bytes && zero; i++) zero = host[i] == 0;
    }
    free(host);
    return zero;
}

/* ---- the whole criterion ---- */

void m2f_loss_report_free(m2f_loss_report_t *r) {
    if (!r) return;
    for (int g = 0; g < r->n_groups; g++) {
        m2f_matching_free(&r->groups[g].matching);
        free(r->groups[g].point_coords);
    }
    free(r->groups);
    free(r->terms);
    *r = (m2f_loss_report_t){0};
}

const m2f_loss_term_t *m2f_loss_report_term(const m2f_loss_report_t *r, const char *name) {
    for (int i = 0; i < r->n_terms; i++)
        if (strcmp(r->terms[i].name, name) == 0) return &r->terms[i];
    return NULL;
}

static float scalar_value(const tensor_t *t) {
    float v;
    tensor_to_host(t, &v);
    return v;
}

err_code_t m2f_loss(ctx_t *ctx, const m2f_loss_config_t *cfg, const m2f_predictions_t *preds,
                    const m2f_targets_t *targets, const m2f_point_source_t *points,
                    const m2f_loss_options_t *opts, tensor_t **total, m2f_loss_report_t *report, err_t *err) {
    *total = NULL;
    if (report) *report = (m2f_loss_report_t){0};
    if (opts->v1m_label_maps && opts->variant != M2F_VARIANT_AVS)
        return err_set(err, ERR_ARG, "the empty-mask rule of v1m batches is avs/ only (avss/ has none)");
    if (opts->v1m_label_maps && all_zero(opts->v1m_label_maps)) {
        /* get_loss returns torch.tensor(0.0, requires_grad=True): a leaf that backward leaves alone */
        *total = tensor_zeros(ctx->arena, DTYPE_F32, 0, NULL);
        if (report) report->skipped = 1;
        return ERR_OK;
    }
    if (targets->n_frames < 1) return err_set(err, ERR_ARG, "no frames in the batch");
    batch_t b;
    err_code_t rc = batch_init(ctx, cfg, targets, &b, err);
    int n_groups = 1 + preds->n_aux;
    group_terms_t *terms = loss_alloc((size_t)n_groups, sizeof *terms);
    if (report && rc == ERR_OK) {
        report->groups = loss_alloc((size_t)n_groups, sizeof *report->groups);
        report->terms = loss_alloc((size_t)n_groups * 3, sizeof *report->terms);
    }
    /* the official order: final, then aux 0, 1, ... (the random draws follow it) */
    for (int g = 0; g < n_groups && rc == ERR_OK; g++) {
        char group[16];
        if (g == 0) snprintf(group, sizeof group, "final");
        else snprintf(group, sizeof group, "aux%d", g - 1);
        const m2f_prediction_t *pred = g == 0 ? &preds->final : &preds->aux[g - 1];
        rc = group_loss(ctx, cfg, pred, targets, &b, points, group, &terms[g], report ? &report->groups[g] : NULL,
                        err);
        if (report && rc == ERR_OK) report->n_groups = g + 1;
    }
    if (rc == ERR_OK) {
        /* get_loss_dict multiplies each term by its weight; get_loss sums the
         * dict's values in order: loss_mask, loss_dice, loss_cross_entropy,
         * then the same with _0, _1, ... */
        tensor_t *sum = NULL;
        for (int g = 0; g < n_groups; g++) {
            tensor_t *unweighted[3] = {terms[g].mask, terms[g].dice, terms[g].cross_entropy};
            const char *base[3] = {"loss_mask", "loss_dice", "loss_cross_entropy"};
            float weight[3] = {cfg->mask_weight, cfg->dice_weight, cfg->class_weight};
            for (int t = 0; t < 3; t++) {
                tensor_t *weighted = op_scale(ctx, unweighted[t], weight[t]);
                sum = sum ? op_add(ctx, sum, weighted) : weighted;
                if (!report) continue;
                m2f_loss_term_t *term = &report->terms[g * 3 + t];
                if (g == 0) snprintf(term->name, sizeof term->name, "%s", base[t]);
                else snprintf(term->name, sizeof term->name, "%s_%d", base[t], g - 1);
                term->unweighted = scalar_value(unweighted[t]);
                term->weighted = scalar_value(weighted);
            }
        }
        *total = sum;
        if (report) {
            report->n_terms = n_groups * 3;
            report->total = scalar_value(sum);
        }
    }
    if (rc != ERR_OK && report) m2f_loss_report_free(report);
    free(terms);
    batch_free(&b);
    return rc;
}
