/* extract.h - the parts of stepstone-extract, one file each:
 *
 *   options.c         the command line (--help text, parsing, exit codes)
 *   plan.c            which videos of metadata.csv this run covers (filters, shard)
 *   decode_video.c    one video's frames and audio from disk to network inputs
 *   decoder.c         the decode thread: decodes the next video while the
 *                     networks work on the current one (a one-video-ahead queue)
 *   networks.c        loading the frozen backbone and VGGish
 *   store_video.c     running them on a decoded video and storing the result
 *                     in the cache in one transaction
 *   manifest.c        manifest.json in the cache folder
 *   main.c            the loop
 *
 * Ownership: every struct below that owns memory says so and has a _free or
 * _clear; borrowed pointers are marked "not owned". */
#ifndef STEPSTONE_EXTRACT_H
#define STEPSTONE_EXTRACT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "audio.h"
#include "avsbench.h"
#include "cache.h"
#include "image_processor.h"
#include "fingerprint.h"
#include "swin.h"
#include "vggish.h"

/* Exit codes (options.c's --help lists them). */
enum {
    EXTRACT_EXIT_OK = 0,
    EXTRACT_EXIT_VIDEOS_FAILED = 1, /* some videos could not be read; 0 with --keep-going */
    EXTRACT_EXIT_USAGE = 2,
    EXTRACT_EXIT_INPUT = 3,    /* the data set, a config or a weights file could not be used, or the device */
    EXTRACT_EXIT_MISMATCH = 4, /* the cache holds features of another producer or dtype, or is no cache */
    EXTRACT_EXIT_CACHE_IO = 5, /* the cache could not be written (disk or map full, LMDB failure) */
    EXTRACT_EXIT_OTHER = 6     /* out of memory, a device failure during the run */
    /* a run stopped by SIGINT or SIGTERM exits with 128 + the signal number */
};

/* ---- options.c ---- */

typedef struct {
    const char *data_dir, *cache_dir;                      /* not owned (argv) */
    const char *config_path, *weights_path, *audio_weights_path;
    const char *processor_path;                            /* NULL: the official preprocessor */
    avs_layout_t layout;
    int subsets[3];       /* subsets[AVS_V2] != 0: v2 videos are extracted */
    int splits[3];        /* likewise by avs_split_t */
    device_t device;
    int shard_k, shard_n; /* shard k of n, 1 <= k <= n; 1/1 without --shard */
    dtype_t dtype;        /* storage dtype of the cache */
    int keep_going;
    size_t map_size;      /* 0: the cache's default */
    audio_resampler_t resampler;
    int decode_threads;   /* threads decoding one video's frames; 0: 1 on cpu, all cores on cuda */
    int no_sync;          /* commit without fsync (scratch caches, tests) */
} extract_options_t;

/* Parses argv. Returns -1 after printing --help or --version (exit 0), 0 when
 * the options are usable, or EXTRACT_EXIT_USAGE after saying what is wrong. */
int extract_parse_args(int argc, char **argv, extract_options_t *o);

/* ---- plan.c ---- */

/* The videos this run is responsible for. Shards are taken by row of
 * metadata.csv (the data rows, counted from 0, before any filter): row r
 * belongs to shard k of n when r mod n == k - 1. Round robin keeps shards
 * balanced over subsets and splits however the file is sorted, and a video's
 * shard depends on its row alone, not on --subsets or --splits. */
typedef struct {
    int *videos;    /* indices into ds->videos, in file order; owned */
    int n_videos;   /* of this shard that pass the subset and split filters */
    int n_selected; /* passing the filters in all shards together */
} extract_plan_t;

int plan_row_in_shard(int row, int shard_k, int shard_n);
err_code_t plan_make(const avs_dataset_t *ds, const extract_options_t *o, extract_plan_t *plan, err_t *err);
void plan_free(extract_plan_t *plan);

/* ---- decode_video.c ---- */

typedef struct {
    const avs_dataset_t *ds;            /* not owned */
    const image_processor_t *processor; /* not owned */
    audio_resampler_t resampler;
} decode_settings_t;

/* One video read from disk: what the networks need. */
typedef struct {
    int video;              /* index into ds->videos */
    err_code_t status;      /* ERR_OK, or why the video cannot be read (err says, naming the file) */
    err_t err;
    arena_t *arena;         /* host arena holding pixel_values; owned by whoever made the struct */
    tensor_t *pixel_values; /* [F, 3, H, W] F32, processed as the official loader does */
    int n_frames;
    float *audio_examples;  /* [T, 1, 96, 64] log-mel examples; malloc'd, owned */
    int64_t n_examples;
    double seconds;         /* wall time spent decoding */
} decoded_video_t;

/* Decodes video `video` of s->ds into d (whose arena must be set and empty). */
void decode_video(const decode_settings_t *s, int video, decoded_video_t *d);
/* Frees the examples and resets the arena (kept for the next video). */
void decoded_video_clear(decoded_video_t *d);

/* ---- decoder.c ---- */

typedef struct decoder decoder_t;

/* Starts the decode thread on videos[0..n) (not copied: must outlive the
 * decoder). `threads` is the OpenMP team size of the thread's frame decoding.
 * ERR_NOMEM, or ERR_IO when the thread cannot be made. */
err_code_t decoder_start(const decode_settings_t *s, const int *videos, int n, int threads, decoder_t **out,
                         err_t *err);
/* The next video in order, decoded (check its status); blocks until it is
 * ready. NULL after the last. Give it back with decoder_release before the
 * next call but one: only two are in flight. */
decoded_video_t *decoder_next(decoder_t *d);
void decoder_release(decoder_t *d, decoded_video_t *v);
/* Total seconds the thread spent decoding so far. */
double decoder_seconds(decoder_t *d);
/* Stops the thread (it finishes the video it is decoding, if any), joins it
 * and frees everything. NULL is fine. */
void decoder_stop(decoder_t *d);

/* ---- networks.c ---- */

typedef struct {
    device_t device;
    swin_config_t swin_config;
    arena_t *param_arena;   /* owned: the backbone's parameters (VGGish keeps its own) */
    param_list_t swin_params;
    swin_t *swin;           /* owned */
    vggish_t *vggish;       /* owned */
    ctx_t *ctx;             /* owned: activations of one video, reset after each */
    int n_levels;
    char level_names[SWIN_MAX_STAGES + 1][16];
    const char *level_name_ptrs[SWIN_MAX_STAGES + 1];
} networks_t;

/* Loads the backbone (config + weights) and VGGish onto o->device. Errors
 * name the file; ERR_DEVICE when the device is absent. On error everything
 * is freed and *n zeroed. */
err_code_t networks_load(const extract_options_t *o, networks_t *n, err_t *err);
void networks_free(networks_t *n);

/* ---- store_video.c ---- */

typedef struct {
    double backbone_s, audio_s, write_s;
} video_timings_t;

/* Runs the backbone on d's frames and VGGish on its audio (embeddings fitted
 * to the frame count as the official loader does), and stores the video
 * under <subset>/<uid> in one cache transaction. Adds its times to *t.
 * Errors: the cache's (ERR_IO, ERR_ARG...), ERR_NOMEM, ERR_DEVICE. */
err_code_t store_video(networks_t *n, cache_t *c, const char *subset, const char *uid, const decoded_video_t *d,
                       video_timings_t *t, err_t *err);

/* ---- manifest.c ---- */

typedef struct {
    char *video;  /* "<subset>/<uid>"; owned */
    char *reason; /* the message naming the file and the problem; owned */
} failed_video_t;

/* What one run did, for manifest.json. */
typedef struct {
    const char *status; /* "complete", "incomplete", "interrupted", "error" */
    /* inputs */
    file_fingerprint_t metadata, config, weights, audio_weights, processor;
    /* counts */
    int videos_in_data, videos_selected, videos_in_shard, videos_present_before, videos_extracted;
    int64_t frames_extracted;
    failed_video_t *failed; /* owned array */
    int n_failed, cap_failed;
    /* timings, seconds */
    double setup_s, decode_s, decode_wait_s, backbone_s, audio_s, write_s, loop_s, wall_s;
    char started[32], finished[32]; /* UTC, ISO 8601 */
    /* the error that ended the run early, when status is "error" */
    char error[2048];
    /* the cache at the end (have_cache_stat == 0 when it could not be read) */
    int have_cache_stat;
    cache_stat_t cache_stat;
} run_record_t;

/* Appends a failed video (copies the strings). ERR_NOMEM. */
err_code_t run_record_fail(run_record_t *r, const char *video, const char *reason, err_t *err);
void run_record_free(run_record_t *r);
/* The UTC time now as "2025-11-25T14:38:02Z". */
void utc_now(char buf[32]);

/* Writes <cache>/manifest.json (to a temporary file, then renamed over the
 * old one, so a reader never sees half a manifest). producer is the cache's
 * producer record (borrowed). ERR_IO naming the file. */
err_code_t manifest_write(const extract_options_t *o, const avs_dataset_t *ds, const networks_t *n,
                          const image_processor_t *processor, json_t *producer, const run_record_t *r, err_t *err);

#endif
