/* feature_producer.h - the "producer" record of a feature cache: what made
 * its features, as JSON. stepstone-extract stores it (cache_meta_ensure) and
 * the training stages build the same record from their own inputs and check
 * it (cache_check_meta), so a cache made from other weights, another image
 * size or another dtype is refused with the field that differs.
 *
 * It holds only what the features depend on: the backbone's architecture and
 * output levels, the image processor's settings (the image size among them),
 * the audio path (resampler, embedding size, the rule that fits embeddings
 * to the frame count), both weight files' size and SHA-256, the storage
 * dtype, and the producing program and its version. No paths, times, shard
 * numbers or thread counts: shards of one job and reruns give equal records,
 * which stepstone-cache merge requires.
 *
 *   {"audio": {"embedding_size": 128, "fit_to_frames": "repeat-last-or-cut",
 *              "resampler": "resampy", "vggish": "towhee",
 *              "weights": {"bytes": N, "sha256": "..."}},
 *    "backbone": {"depths": [2, 2, 18, 2], "embed_dim": 128, ...,
 *                 "out_features": ["stage1", ...],
 *                 "weights": {"bytes": N, "sha256": "..."}},
 *    "dtype": "F16",
 *    "image": {"height": 384, "width": 384, "size_divisor": 32, ...},
 *    "program": "stepstone-extract", "version": "0.1.0"} */
#ifndef STEPSTONE_FEATURE_PRODUCER_H
#define STEPSTONE_FEATURE_PRODUCER_H

#include <jansson.h>
#include <stdint.h>

#include "audio.h"
#include "dtype.h"
#include "image_processor.h"
#include "fingerprint.h"
#include "swin.h"

typedef struct {
    const swin_config_t *backbone;
    file_fingerprint_t backbone_weights;
    const image_processor_t *processor;
    int64_t audio_embedding_size;
    audio_resampler_t resampler;
    file_fingerprint_t audio_weights;
    dtype_t dtype; /* the cache's storage dtype */
} feature_producer_t;

/* The record as a new JSON object (json_decref it), or NULL when out of memory. */
json_t *feature_producer_json(const feature_producer_t *p);

/* The name of output stage index s as the cache and the HF config name it:
 * "stem" for 0, "stage<s>" otherwise, into buf[16]. */
const char *feature_level_name(int stage_index, char buf[16]);

/* "resampy", "resampy-0.2", "swr"; parse returns 0 or -1. */
const char *audio_resampler_name(audio_resampler_t how);
int audio_resampler_parse(const char *text, audio_resampler_t *out);

/* The processor's settings as a JSON object (json_decref it), or NULL. */
json_t *image_processor_json(const image_processor_t *p);
/* The backbone's architecture and out_features as a JSON object, or NULL. */
json_t *swin_config_json(const swin_config_t *c);

#endif
