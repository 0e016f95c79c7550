/* train_step.c - forward, loss, backward and AdamW on one video (see
 * train_step.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aavs_postprocess.h"
#include "train_step.h"

/* The global L2 norm of the optimizer's gradients (torch: the norm of the
 * per-parameter norms), each squared norm a dot product on the device. */
static double grad_norm(ctx_t *ctx, const adamw_t *opt) {
    int n = adamw_n_params(opt);
    if (n <= 0) return 0.0;
    tensor_t *squares = tensor_new(ctx->arena, DTYPE_F32, 1, (int64_t[]){n});
    float *sq = squares->data;
    for (int i = 0; i < n; i++) {
        const tensor_t *p = adamw_param(opt, i, NULL);
        /* [1, k] @ [1, k]^T */
        ctx->be->gemm(0, 1, 1, 1, p->numel, 1.0f, p->grad, p->numel, p->grad, p->numel, 0.0f, sq + i, 1);
    }
    float *host = malloc((size_t)(unsigned)n * sizeof(float));
    if (!host) fatal("train_step: out of memory");
    tensor_to_host(squares, host);
    double total = 0.0;
    for (int i = 0; i < n; i++) total += host[i];
    free(host);
    return sqrt(total);
}

static void scale_grads(ctx_t *ctx, const adamw_t *opt, float coefficient) {
    for (int i = 0; i < adamw_n_params(opt); i++) {
        tensor_t *p = adamw_param(opt, i, NULL);
        ctx->be->affine(p->grad, p->grad, coefficient, 0.0f, p->numel);
    }
}

err_code_t train_step(ctx_t *ctx, const aavs_head_t *head, adamw_t *opt, const aavs_batch_t *b, rng_t *points,
                      const train_step_options_t *o, train_step_result_t *res, err_t *err) {
    memset(res, 0, sizeof *res);
    int old = ctx_set_grad(ctx, 1);
    aavs_head_output_t out;
    aavs_head_forward(ctx, head, (tensor_t *const *)b->features, b->audio, b->audio_boost_mask, &out, NULL, NULL);
    m2f_point_source_t source = {.kind = M2F_POINTS_RANDOM, .rng = points};
    m2f_loss_report_t report = {0};
    tensor_t *total = NULL;
    err_code_t rc = aavs_head_loss(ctx, head, &out, &b->targets, &source, b->v1m_label_maps, &total, &report, err);
    if (rc == ERR_OK) {
        res->loss = report.total;
        res->skipped = report.skipped;
    }
    if (rc == ERR_OK && !report.skipped) {
        ctx_backward(ctx, total, NULL);
        adamw_note_backward(opt, ctx);
        res->grad_norm = grad_norm(ctx, opt);
        if (o && o->max_grad_norm > 0.0) {
            double coefficient = o->max_grad_norm / (res->grad_norm + 1e-6);
            if (coefficient < 1.0) scale_grads(ctx, opt, (float)coefficient);
        }
        res->n_updated = adamw_step(opt);
    }
    adamw_zero_grad(opt);
    m2f_loss_report_free(&report);
    ctx_set_grad(ctx, old);
    ctx_reset(ctx);
    return rc;
}

err_code_t train_step_video(ctx_t *ctx, const aavs_head_t *head, adamw_t *opt, cache_reader_t *r,
                            const avs_dataset_t *ds, const avs_video_t *v, const aavs_batch_options_t *bo,
                            rng_t *points, const train_step_options_t *o, train_step_result_t *res, err_t *err) {
    aavs_batch_t b;
    err_code_t rc = aavs_batch_load(ctx, r, ds, v, bo, &b, err);
    if (rc != ERR_OK) {
        ctx_reset(ctx);
        return rc;
    }
    return train_step(ctx, head, opt, &b, points, o, res, err);
}

void train_predict(ctx_t *ctx, const aavs_head_t *head, const aavs_batch_t *b, uint8_t *pred) {
    int old = ctx_set_grad(ctx, 0);
    aavs_head_output_t out;
    aavs_head_forward(ctx, head, (tensor_t *const *)b->features, b->audio, b->audio_boost_mask, &out, NULL, NULL);
    const m2f_decoder_output_t *d = &out.decoder;
    tensor_t *cls = d->class_logits[d->n_predictions - 1], *masks = d->mask_logits[d->n_predictions - 1];
    tensor_t *map = head->cfg.variant == M2F_VARIANT_AVS ? aavs_binary_mask(ctx, cls, masks, AVS_SIZE, AVS_SIZE)
                                                         : aavs_semantic_map(ctx, cls, masks, AVS_SIZE, AVS_SIZE);
    int64_t *ids = malloc((size_t)map->numel * sizeof(int64_t));
    if (!ids) fatal("train_predict: out of memory");
    tensor_to_host(map, ids);
    for (int64_t i = 0; i < map->numel; i++) pred[i] = (uint8_t)ids[i];
    free(ids);
    ctx_set_grad(ctx, old);
}
