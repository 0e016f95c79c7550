/* aavs_batch.h - one video as a training batch of the AAVS head, from the
 * feature cache and the data set's labels, as the official datasets make it.
 *
 * The official training (GeWu-Lab/Stepping-Stones at de6a17b, avs/dataset.py
 * and avss/dataset.py AVSBench.__getitem__, batch size 1) feeds one video per
 * step, its frames being the batch:
 *   frames: 10 for v2, 5 for v1s and v1m; a v1s TRAIN video repeats frame 0
 *     five times (only frame 0 is labelled), image and label alike;
 *   audio: the video's VGGish embeddings, one row per frame ([F, 128]; the
 *     cache stores them fitted to the frame count, as extract writes them);
 *   label maps at 224 x 224 (AVS_SIZE): avs: the binary rule of avs/dataset.py
 *     (avs_load_binary_mask); avss: palette class ids (avs_load_class_map);
 *   targets: the image processor's per-label masks at the image size
 *     (aavs_targets.h);
 *   avss: audio_boost_mask = (label map != 0) in training (avs_model.py; at
 *     validation time the official code reads the stage-1 masks instead);
 *   avs: the label maps of a v1m video for the empty-mask rule of get_loss.
 * Backbone features come from the cache (cache.h), which holds every frame's
 * levels in evaluation mode; the ones the pixel decoder takes are looked up
 * by name (level_names, in the config's out_features order: "stage1", ...).
 *
 * Memory: every tensor of a batch, and the host truth, come from ctx->arena:
 * a batch lives until the caller's ctx_reset (the end of a training step). */
#ifndef STEPSTONE_AAVS_BATCH_H
#define STEPSTONE_AAVS_BATCH_H

#include <stdint.h>

#include "avsbench.h"
#include "cache.h"
#include "m2f_matcher.h"
#include "m2f_variant.h"
#include "pixel_decoder.h"
#include "tape.h"

typedef struct {
    m2f_variant_t variant;
    int image_h, image_w;                                /* the image processor's output size: the targets' size */
    int n_levels;                                        /* the backbone levels the pixel decoder takes */
    const char *level_names[PIXEL_DECODER_MAX_FEATURES]; /* their names in the cache, in its input order */
} aavs_batch_options_t;

typedef struct {
    int n_frames;                    /* F */
    int frame_index[AVS_MAX_FRAMES]; /* the video frame behind batch frame f */
    int n_features;
    tensor_t *features[PIXEL_DECODER_MAX_FEATURES]; /* [F, C_k, h_k, w_k] F32 on ctx's device */
    tensor_t *audio;                                /* [F, 128] F32 */
    tensor_t *audio_boost_mask;                     /* avss: [F, 224, 224] F32 0/1; avs: NULL */
    m2f_targets_t targets;                          /* F frames of per-label masks at image_h x image_w */
    tensor_t *v1m_label_maps;                       /* avs and a v1m video: [F, 224, 224] F32; else NULL */
    uint8_t *truth; /* [F, AVS_SIZE, AVS_SIZE] host: the label maps (0/1 or class ids) */
} aavs_batch_t;

/* The frames of video v a batch holds (the v1s train rule above) into
 * index[0 .. return value); index has room for AVS_MAX_FRAMES. */
int aavs_batch_frames(const avs_video_t *v, int *index);

/* Loads video v of data set ds as a batch: features and audio from the cache
 * reader r, labels from the data set's PNGs. Errors name the cache key or the
 * file: ERR_NOTFOUND (a frame, a level or the audio missing from the cache, a
 * label PNG missing), ERR_MISMATCH (a level's shape differs between frames,
 * audio rows != frames), the PNG reader's errors. */
err_code_t aavs_batch_load(ctx_t *ctx, cache_reader_t *r, const avs_dataset_t *ds, const avs_video_t *v,
                           const aavs_batch_options_t *o, aavs_batch_t *b, err_t *err);

#endif
