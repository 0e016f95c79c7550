/* train_step.h - one optimisation step of the AAVS head on one video, the
 * core of the training stages:
 *
 *   batch (aavs_batch.h: cached features, audio, targets)
 *   -> aavs_head_forward on the tape
 *   -> aavs_head_loss with random points from the caller's generator
 *   -> ctx_backward -> adamw_note_backward
 *   -> optional clipping of the gradients' global norm
 *   -> adamw_step -> adamw_zero_grad -> ctx_reset
 *
 * as the official loop does per batch (GeWu-Lab/Stepping-Stones at de6a17b,
 * avs/train.py and avss/train.py: loss.backward(), clip_grad_norm (avs only,
 * max_norm 0.01), optimizer.step(); zero_grad comes first there, which is the
 * same as zeroing after the step here). The optimizer decides which
 * parameters train (adamw_add_params with aavs_trainable_patterns).
 *
 * The avs empty-mask rule (m2f_loss.h: a v1m video whose label maps are all
 * zero) gives a constant loss: no backward and no update, as torch skips
 * parameters without a .grad (adamw.h). */
#ifndef STEPSTONE_TRAIN_STEP_H
#define STEPSTONE_TRAIN_STEP_H

#include "aavs.h"
#include "aavs_batch.h"
#include "adamw.h"
#include "rng.h"

typedef struct {
    /* > 0: scale the gradients so that their global L2 norm is at most this,
     * as torch.nn.utils.clip_grad_norm_ (coefficient max_norm / (norm + 1e-6),
     * capped at 1); avs/train.py uses 0.01. 0: no clipping (avss/train.py). */
    double max_grad_norm;
} train_step_options_t;

typedef struct {
    float loss;       /* the total loss; 0 when skipped */
    int skipped;      /* the empty-mask rule applied: nothing was updated */
    double grad_norm; /* the global L2 norm of the gradients before clipping */
    int n_updated;    /* parameters AdamW stepped */
} train_step_result_t;

/* One step on batch b (loaded on ctx, which the step resets at its end: the
 * batch is gone afterwards, whatever the outcome). head's parameters are
 * those of opt. points: the generator of the loss's random points, advanced.
 * Errors are the loss's (bad targets, non-finite costs). */
err_code_t train_step(ctx_t *ctx, const aavs_head_t *head, adamw_t *opt, const aavs_batch_t *b, rng_t *points,
                      const train_step_options_t *o, train_step_result_t *res, err_t *err);

/* Loads video v (aavs_batch_load) and runs train_step on it. */
err_code_t train_step_video(ctx_t *ctx, const aavs_head_t *head, adamw_t *opt, cache_reader_t *r,
                            const avs_dataset_t *ds, const avs_video_t *v, const aavs_batch_options_t *bo,
                            rng_t *points, const train_step_options_t *o, train_step_result_t *res, err_t *err);

/* The prediction for batch b without the tape, as the official evaluation
 * post-processes it at AVS_SIZE x AVS_SIZE: avs: the binary mask
 * (aavs_binary_mask, 1 = sounding); avss: the semantic map. pred gets
 * b->n_frames * AVS_SIZE * AVS_SIZE values. Allocates from ctx->arena and
 * leaves it to the caller's reset. */
void train_predict(ctx_t *ctx, const aavs_head_t *head, const aavs_batch_t *b, uint8_t *pred);

#endif
