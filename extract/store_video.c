/* store_video.c - one decoded video through the backbone and VGGish and into
 * the cache in one transaction. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "extract.h"

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A view of frame f of batch [F, C, h, w] as a tensor [C, h, w]: a header
 * from the ctx arena over the batch's memory (no copy). */
static tensor_t *frame_view(arena_t *a, const tensor_t *batch, int f) {
    tensor_t *t = arena_alloc_host(a, sizeof *t);
    t->dtype = batch->dtype;
    t->device = batch->device;
    t->ndim = batch->ndim - 1;
    for (int i = 1; i < batch->ndim; i++) t->shape[i - 1] = batch->shape[i];
    t->numel = batch->numel / batch->shape[0];
    t->data = (char *)batch->data + (size_t)f * (size_t)t->numel * dtype_size(batch->dtype);
    t->name = batch->name;
    return t;
}

err_code_t store_video(networks_t *n, cache_t *c, const char *subset, const char *uid, const decoded_video_t *d,
                       video_timings_t *t, err_t *err) {
    ctx_t *ctx = n->ctx;
    double t0 = seconds_now();
    tensor_t *pixels = d->pixel_values;
    if (n->device != DEVICE_CPU) pixels = tensor_copy_to(ctx->arena, pixels);
    tensor_t *features[SWIN_MAX_STAGES + 1];
    swin_forward(ctx, n->swin, pixels, features, NULL, NULL);
    dtype_t stored = cache_dtype(c);
    if (n->device != DEVICE_CPU && stored != DTYPE_F32) {
        /* converted on the device: half the bytes to download and no CPU
         * conversion (the rounding is the same round-to-nearest-even) */
        for (int l = 0; l < n->n_levels; l++) features[l] = tensor_convert(ctx->arena, features[l], stored);
    }
    double t1 = seconds_now();

    float *embeddings = NULL, *fitted = NULL;
    err_code_t rc = vggish_embed(n->vggish, d->audio_examples, d->n_examples, 0, &embeddings, err);
    int64_t e = vggish_embedding_size(n->vggish);
    if (rc == ERR_OK) {
        fitted = vggish_fit_frames(embeddings, d->n_examples, e, d->n_frames);
        if (!fitted) rc = err_set(err, ERR_NOMEM, "%s/%s: out of memory fitting the audio embeddings", subset, uid);
    }
    double t2 = seconds_now();

    if (rc == ERR_OK) {
        int n_tensors = d->n_frames * n->n_levels;
        const tensor_t **levels = arena_alloc_host(ctx->arena, sizeof(tensor_t *) * (size_t)n_tensors);
        for (int f = 0; f < d->n_frames; f++)
            for (int l = 0; l < n->n_levels; l++) levels[f * n->n_levels + l] = frame_view(ctx->arena, features[l], f);
        tensor_t audio = {0};
        audio.dtype = DTYPE_F32;
        audio.device = DEVICE_CPU;
        audio.ndim = 2;
        audio.shape[0] = d->n_frames;
        audio.shape[1] = e;
        audio.numel = (int64_t)d->n_frames * e;
        audio.data = fitted;
        cache_video_t video = {subset, uid, d->n_frames, n->n_levels, n->level_name_ptrs, levels, &audio};
        rc = cache_put_video(c, &video, err);
    }
    double t3 = seconds_now();
    free(embeddings);
    free(fitted);
    ctx_reset(ctx);
    t->backbone_s += t1 - t0;
    t->audio_s += t2 - t1;
    t->write_s += t3 - t2;
    return rc;
}
