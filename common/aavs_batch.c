/* aavs_batch.c - one video as a training batch: cached features stacked over
 * the frames, labels read and turned into targets (see aavs_batch.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aavs_batch.h"
#include "aavs_targets.h"

int aavs_batch_frames(const avs_video_t *v, int *index) {
    int n = avs_video_frames(v);
    /* avs/dataset.py and avss/dataset.py: `_idx = 0 if split == 'train' and ver == 'v1s'` */
    int repeat_first = v->subset == AVS_V1S && v->split == AVS_TRAIN;
    for (int f = 0; f < n; f++) index[f] = repeat_first ? 0 : f;
    return n;
}

/* Level `name` of every batch frame stacked into one [F, C, h, w] tensor. */
static err_code_t load_level(ctx_t *ctx, cache_reader_t *r, const avs_video_t *v, const aavs_batch_t *b,
                             const char *name, tensor_t **out, err_t *err) {
    const char *subset = avs_subset_name(v->subset);
    float *host = NULL;
    int64_t shape[4] = {b->n_frames, 0, 0, 0}, per_frame = 0;
    err_code_t rc = ERR_OK;
    for (int f = 0; f < b->n_frames && rc == ERR_OK; f++) {
        cache_entry_t e;
        rc = cache_get_frame(r, subset, v->uid, b->frame_index[f], &e, err);
        if (rc != ERR_OK) break;
        const cache_view_t *view = cache_entry_find(&e, name);
        if (!view) {
            rc = err_set(err, ERR_NOTFOUND, "cache: %s/%s/%d has no level \"%s\"", subset, v->uid, b->frame_index[f],
                         name);
            break;
        }
        if (f == 0) {
            if (view->ndim != 3) {
                rc = err_set(err, ERR_MISMATCH, "cache: %s/%s/%d level %s has %d dims, [C, h, w] wanted", subset,
                             v->uid, b->frame_index[f], name, view->ndim);
                break;
            }
            memcpy(shape + 1, view->shape, 3 * sizeof(int64_t));
            per_frame = view->numel;
            host = malloc((size_t)(b->n_frames * per_frame) * sizeof(float));
            if (!host) {
                rc = err_set(err, ERR_NOMEM, "out of memory for level %s of %s/%s", name, subset, v->uid);
                break;
            }
        } else if (view->ndim != 3 || memcmp(view->shape, shape + 1, 3 * sizeof(int64_t)) != 0) {
            rc = err_set(err, ERR_MISMATCH, "cache: %s/%s/%d level %s differs in shape from frame %d", subset, v->uid,
                         b->frame_index[f], name, b->frame_index[0]);
            break;
        }
        dtype_convert_host(host + (size_t)f * (size_t)per_frame, DTYPE_F32, view->data, view->dtype, per_frame);
    }
    if (rc == ERR_OK) *out = tensor_from_host(ctx->arena, DTYPE_F32, 4, shape, host);
    free(host);
    return rc;
}

/* The cache's audio, one row per video frame, all of them: a v1s train batch
 * repeats frame 0's picture but keeps the five embeddings, as the official
 * batch does. */
static err_code_t load_audio(ctx_t *ctx, cache_reader_t *r, const avs_video_t *v, aavs_batch_t *b, err_t *err) {
    cache_entry_t e;
    const char *subset = avs_subset_name(v->subset);
    err_code_t rc = cache_get_audio(r, subset, v->uid, &e, err);
    if (rc != ERR_OK) return rc;
    const cache_view_t *view = cache_entry_find(&e, CACHE_AUDIO_TENSOR);
    if (!view || view->ndim != 2 || view->shape[0] != b->n_frames)
        return err_set(err, ERR_MISMATCH, "cache: the audio of %s/%s is not [%d, E] (one row per frame)", subset,
                       v->uid, b->n_frames);
    float *host = malloc((size_t)view->numel * sizeof(float));
    if (!host) return err_set(err, ERR_NOMEM, "out of memory for the audio of %s/%s", subset, v->uid);
    dtype_convert_host(host, DTYPE_F32, view->data, view->dtype, view->numel);
    b->audio = tensor_from_host(ctx->arena, DTYPE_F32, 2, view->shape, host);
    free(host);
    return ERR_OK;
}

/* The label maps at AVS_SIZE, the targets, and what the variant derives from them. */
static err_code_t load_labels(ctx_t *ctx, const avs_dataset_t *ds, const avs_video_t *v, const aavs_batch_options_t *o,
                              aavs_batch_t *b, err_t *err) {
    const size_t npix = (size_t)AVS_SIZE * AVS_SIZE;
    int n = b->n_frames;
    b->truth = arena_alloc_host(ctx->arena, (size_t)n * npix);
    b->targets.n_frames = n;
    b->targets.mask_labels = arena_alloc_host(ctx->arena, (size_t)n * sizeof(tensor_t *));
    b->targets.class_labels = arena_alloc_host(ctx->arena, (size_t)n * sizeof(tensor_t *));
    for (int f = 0; f < n; f++) {
        char path[4096];
        if (avs_label_path(ds, v, b->frame_index[f], path, sizeof path) != 0)
            return err_set(err, ERR_ARG, "%s/%s: the label path is too long", avs_subset_name(v->subset), v->uid);
        uint8_t *map = b->truth + (size_t)f * npix;
        err_code_t rc = o->variant == M2F_VARIANT_AVS ? avs_load_binary_mask(path, AVS_SIZE, map, err)
                                                      : avs_load_class_map(path, AVS_SIZE, map, NULL, err);
        if (rc == ERR_OK)
            rc = aavs_targets_from_label_map(ctx, map, AVS_SIZE, AVS_SIZE, o->image_w, o->image_h, AAVS_IGNORE_INDEX,
                                             &b->targets.mask_labels[f], &b->targets.class_labels[f], err);
        if (rc != ERR_OK) return rc;
    }
    /* avss trains with the ground truth as the stage-1 mask (mask_recs != 0);
     * avs needs the v1m label maps for the empty-mask rule */
    int want_maps = o->variant == M2F_VARIANT_AVSS || v->subset == AVS_V1M;
    if (!want_maps) return ERR_OK;
    float *maps = malloc((size_t)n * npix * sizeof(float));
    if (!maps) return err_set(err, ERR_NOMEM, "out of memory for the label maps of %s", v->uid);
    for (size_t i = 0; i < (size_t)n * npix; i++) maps[i] = b->truth[i] != 0 ? 1.0f : 0.0f;
    tensor_t *t = tensor_from_host(ctx->arena, DTYPE_F32, 3, (int64_t[]){n, AVS_SIZE, AVS_SIZE}, maps);
    free(maps);
    if (o->variant == M2F_VARIANT_AVSS) b->audio_boost_mask = t;
    else b->v1m_label_maps = t;
    return ERR_OK;
}

err_code_t aavs_batch_load(ctx_t *ctx, cache_reader_t *r, const avs_dataset_t *ds, const avs_video_t *v,
                           const aavs_batch_options_t *o, aavs_batch_t *b, err_t *err) {
    memset(b, 0, sizeof *b);
    if (o->n_levels < 1 || o->n_levels > PIXEL_DECODER_MAX_FEATURES)
        return err_set(err, ERR_ARG, "a batch of %d backbone levels (1..%d)", o->n_levels, PIXEL_DECODER_MAX_FEATURES);
    b->n_frames = aavs_batch_frames(v, b->frame_index);
    b->n_features = o->n_levels;
    err_code_t rc = ERR_OK;
    for (int k = 0; k < o->n_levels && rc == ERR_OK; k++)
        rc = load_level(ctx, r, v, b, o->level_names[k], &b->features[k], err);
    if (rc == ERR_OK) rc = load_audio(ctx, r, v, b, err);
    if (rc == ERR_OK) rc = load_labels(ctx, ds, v, o, b, err);
    return rc;
}
