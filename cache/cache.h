/* cache.h - the LMDB feature cache: frozen-backbone features of every frame
 * and the audio embeddings of every video, written once by stepstone-extract
 * and read by both training stages (../shared/DESIGN.md, "Why a feature cache").
 *
 * ON DISK
 *
 * A cache is a folder holding one LMDB environment (data.mdb, lock.mdb; the
 * extractor adds manifest.json) with four named databases:
 *
 *   visual  "<subset>/<uid>/<frame>"  one value per frame: the backbone levels
 *                                     in the order given (e.g. "stage1".."stage4",
 *                                     each [C, h, w]); frame is decimal, from 0
 *   audio   "<subset>/<uid>"          one value per video: tensor "audio" [T, 128]
 *   videos  "<subset>/<uid>"          JSON text {"frames":N,"audio":true|false}:
 *                                     the video's index record, written in the
 *                                     same transaction as its frames and audio
 *   meta    "format"                  JSON text written by this library:
 *                                     {"format":"stepstone-feature-cache",
 *                                      "version":1,"dtype":"F16"}
 *           "producer"                JSON text from the writer: what produced
 *                                     the features (model config, weight file
 *                                     fingerprints, image size, dtype, program
 *                                     version). Readers compare it with what they
 *                                     expect (cache_check_meta); merge requires
 *                                     equal producers, so keep per-shard facts out.
 *           other keys                JSON text, free for writers
 *
 * visual and audio values are cache_value.h records: magic, format version, a
 * table of tensors (name, dtype, shape, offset, size), a CRC-32C of the whole
 * value, and the tensors placed so that large values are 64-byte aligned in
 * the memory map. Meta values are compact JSON with sorted keys. Subsets and
 * uids are 1..200 bytes of printable ASCII without '/' or spaces. Everything
 * is inspectable from the shell: `mdb_stat -a DIR`, `mdb_dump -s meta -p DIR`.
 *
 * One cache holds one storage dtype (F16 by default; F32 or BF16 on request),
 * recorded in "format"; opening a cache for writing with another dtype is
 * ERR_MISMATCH.
 *
 * TRANSACTIONS
 *
 * cache_put_video writes a video's frames, audio and index record in one LMDB
 * write transaction: a video is in the cache completely or not at all, whether
 * the writer returns an error, runs out of map or disk, or is killed. A reader
 * sees a snapshot as of cache_reader_begin/refresh. The map (the largest size
 * the data file may reach) starts at options.map_size and, on MDB_MAP_FULL,
 * grows (doubling, or more for a large video, up to map_size_max) and the
 * transaction is run again; with no_grow, or at map_size_max, or when the disk
 * is full, the put fails with an error saying which and leaves the cache as it
 * was before the put. The map can grow only while no reader of this cache_t
 * is open (LMDB remaps the file); a put that needs to grow while one is open
 * fails with ERR_IO saying so.
 *
 * HOW stepstone-extract USES IT (killable, resumable, shardable)
 *
 *   cache_options_t o = cache_default_options();   // --dtype, --map-size
 *   cache_open(dir, CACHE_WRITE, &o, &c, &err);     // ERR_MISMATCH: other dtype
 *   cache_meta_ensure(c, producer_json, &err);      // ERR_MISMATCH names the field
 *   for each video of this shard (metadata.csv order):
 *       cache_has_video(c, subset, uid, &present, &err); if (present) skip;
 *       decode, run the backbone and VGGish, then
 *       cache_put_video(c, &video, &err);            // one transaction
 *   cache_close(c);
 *
 * A kill at any moment loses at most the video being written; running the
 * same command again skips what is there and writes the rest, and because a
 * value's bytes depend only on its tensors (fixed layout, zero padding), the
 * keys and values equal those of an uninterrupted run (data.mdb's page
 * layout may differ; compare with `stepstone-cache ls`/`show` or key by key).
 * The producer record must describe the features only (config, weight
 * fingerprints, image size, dtype, program version): no shard number, no
 * paths or times, or shards could not be merged. Shards (--shard k/N) write
 * separate caches that `stepstone-cache merge OUT IN...` joins. Videos that
 * fail to decode are the extractor's manifest's business: the cache holds
 * only complete videos. Tensors may be F32 on the GPU (converted and
 * downloaded here) or already F16 on the GPU (downloaded straight into the
 * value: half the bytes over PCIe and no CPU conversion).
 *
 * THREADS
 *
 * A cache_t may be shared by threads that each begin their own reader (the
 * environment is opened with MDB_NOTLS, so a reader is not tied to a thread,
 * but one reader must be used by one thread at a time). Writes (put, meta,
 * merge) are for one thread at a time; LMDB serialises writers across
 * processes.
 *
 * ALIGNMENT AND ZERO COPY
 *
 * cache_get_frame/cache_get_audio return views: pointers into the memory map,
 * valid until the reader ends or is refreshed. LMDB places values larger than
 * about 2 KB on overflow pages at page start + 16, so the tensors of every
 * real frame and audio track are 64-byte aligned in place (cache_value.h
 * explains the placement). A small value stored inside a B-tree page can sit
 * at any byte address; a tensor whose address is not a multiple of its element
 * size is copied into aligned memory owned by the reader (entry->copied > 0,
 * entry->zero_copy == 0), so views are always aligned for their dtype.
 *
 * ERRORS (err_code_t; messages name the cache folder and the key)
 *   ERR_NOTFOUND  the folder, a key, a tensor or a meta record is missing
 *   ERR_FORMAT    not a stepstone cache, a newer format, a corrupt value
 *   ERR_MISMATCH  metadata or dtype differs from what was asked for
 *   ERR_IO        LMDB or file system failures, map or disk full
 *   ERR_ARG       bad arguments (a write on a read-only cache, a bad uid)
 *   ERR_NOMEM     out of memory
 */
#ifndef STEPSTONE_CACHE_H
#define STEPSTONE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cache_value.h"
#include "error.h"
#include "tensor.h"

#define CACHE_FORMAT_NAME "stepstone-feature-cache"
#define CACHE_FORMAT_VERSION 1
#define CACHE_META_FORMAT "format"
#define CACHE_META_PRODUCER "producer"
#define CACHE_AUDIO_TENSOR "audio"
#define CACHE_MAX_NAME 200   /* bytes of a subset or uid */
#define CACHE_MAX_KEY 511    /* LMDB's default key limit */
#define CACHE_DEFAULT_MAP_SIZE ((size_t)1 << 30)

typedef enum { CACHE_READ = 0, CACHE_WRITE = 1 } cache_mode_t;

typedef enum { CACHE_DB_VISUAL = 0, CACHE_DB_AUDIO = 1, CACHE_DB_VIDEOS = 2, CACHE_DB_META = 3, CACHE_DB_COUNT = 4 } cache_db_t;

/* Start from cache_default_options() (a zeroed struct would ask for F32). */
typedef struct {
    size_t map_size;     /* initial map size in bytes (write mode); 0: 1 GiB, or the data file's size if larger */
    size_t map_size_max; /* growth stops here; 0: no limit but the disk */
    int no_grow;         /* nonzero: a full map is an error instead of a reason to grow */
    dtype_t dtype;       /* storage dtype of a new cache (write mode): F16 (default), F32 or BF16 */
    int verify_reads;    /* nonzero (default): check each value's CRC when it is read */
    int no_sync;         /* nonzero: commit without fsync (MDB_NOSYNC). A killed process still
                            loses nothing; a machine crash may lose or damage recent videos.
                            For tests and scratch caches. */
} cache_options_t;

cache_options_t cache_default_options(void);

typedef struct cache cache_t;

/* Opens the cache in folder dir. CACHE_WRITE creates the folder (and its
 * parents) and a new cache when there is none; it refuses a non-empty folder
 * that holds no cache, and an LMDB environment that is not a stepstone cache.
 * CACHE_READ needs an existing cache. options may be NULL (the defaults).
 * A folder already open in this process is refused (ERR_ARG): LMDB's locks
 * break when one process opens an environment twice; share the cache_t.
 * On error *out is NULL. */
err_code_t cache_open(const char *dir, cache_mode_t mode, const cache_options_t *options, cache_t **out, err_t *err);
/* Closes the environment; every reader must have ended. NULL is fine. */
void cache_close(cache_t *c);

const char *cache_dir(const cache_t *c);
dtype_t cache_dtype(const cache_t *c);
cache_mode_t cache_mode(const cache_t *c);
const char *cache_db_name(cache_db_t db);
/* Parses "visual", "audio", "videos", "meta"; 0 or -1. */
int cache_db_parse(const char *name, cache_db_t *out);

/* ---- writing ---- */

/* One video to store. levels holds n_frames * n_levels tensors, frame-major
 * (levels[f * n_levels + l] is level l of frame f), F32/F16/BF16 on any
 * device; each is converted to the cache's dtype. audio is [T, 128] or any
 * float tensor, or NULL for a video without audio. Nothing is owned. */
typedef struct {
    const char *subset;
    const char *uid;
    int n_frames;                   /* >= 1 */
    int n_levels;                   /* 1..CACHE_MAX_TENSORS */
    const char *const *level_names; /* n_levels names */
    const tensor_t *const *levels;
    const tensor_t *audio;
} cache_video_t;

/* Stores one video in one transaction, replacing any earlier copy of it
 * (frames beyond the new count included). On any error the cache is as it
 * was before the call. ERR_ARG (bad names, shapes, dtypes, read-only cache),
 * ERR_IO (map full and not allowed to grow, disk full, LMDB failure). */
err_code_t cache_put_video(cache_t *c, const cache_video_t *video, err_t *err);

/* *present = 1 when the video is in the cache (all of it), else 0. */
err_code_t cache_has_video(cache_t *c, const char *subset, const char *uid, int *present, err_t *err);

/* ---- metadata (JSON text) ---- */

/* Stores json_text (validated, stored compact with sorted keys) under key.
 * The key "format" belongs to the library (ERR_ARG). */
err_code_t cache_meta_put(cache_t *c, const char *key, const char *json_text, err_t *err);
/* *json_text is a new NUL-terminated string (free() it); ERR_NOTFOUND when absent. */
err_code_t cache_meta_get(cache_t *c, const char *key, char **json_text, err_t *err);
/* Compares the "producer" record with expected_json (a JSON object): equal
 * values everywhere (numbers by value: 1 == 1.0). ERR_MISMATCH with a message
 * naming the first differing field by its dotted path ("model.embed_dim: the
 * cache has 128, asked for 96"), ERR_NOTFOUND when the cache has no producer. */
err_code_t cache_check_meta(cache_t *c, const char *expected_json, err_t *err);
/* For a writer that resumes: stores expected_json as the producer when the
 * cache has none, else checks it as cache_check_meta does. */
err_code_t cache_meta_ensure(cache_t *c, const char *expected_json, err_t *err);

/* ---- reading ---- */

typedef struct cache_reader cache_reader_t;

/* Begins a read snapshot. Views from it stay valid until cache_reader_end or
 * cache_reader_refresh. */
err_code_t cache_reader_begin(cache_t *c, cache_reader_t **out, err_t *err);
void cache_reader_end(cache_reader_t *r); /* NULL is fine */
/* Ends every view and moves to the newest committed state (cheap: LMDB's
 * txn reset/renew). A long-lived reader pins old pages, so a data loader that
 * runs beside a writer should refresh now and then. */
err_code_t cache_reader_refresh(cache_reader_t *r, err_t *err);

/* The frame's levels as views. ERR_NOTFOUND naming the key when absent;
 * ERR_FORMAT naming the key when the value is corrupt. */
err_code_t cache_get_frame(cache_reader_t *r, const char *subset, const char *uid, int frame, cache_entry_t *out,
                           err_t *err);
/* The audio value (one tensor, "audio"). */
err_code_t cache_get_audio(cache_reader_t *r, const char *subset, const char *uid, cache_entry_t *out, err_t *err);
/* Any visual or audio key as text ("v2/abc/3"). */
err_code_t cache_get_key(cache_reader_t *r, cache_db_t db, const char *key, cache_entry_t *out, err_t *err);

typedef struct {
    int n_frames;
    int has_audio;
} cache_video_info_t;
/* The index record of a video; ERR_NOTFOUND when the video is absent. */
err_code_t cache_get_video_info(cache_reader_t *r, const char *subset, const char *uid, cache_video_info_t *out,
                                err_t *err);

/* A copy of a view as a tensor of arena a (on a's device), converted to want
 * (F32, F16 or BF16). */
err_code_t cache_view_to_tensor(const cache_view_t *v, arena_t *a, dtype_t want, tensor_t **out, err_t *err);
/* cache_get_frame, then every level as an F32 tensor of arena a, in stored
 * order (tensor->name points into the arena). levels has room for max_levels. */
err_code_t cache_load_frame(cache_reader_t *r, const char *subset, const char *uid, int frame, arena_t *a,
                            tensor_t **levels, int max_levels, int *n_levels, err_t *err);
/* cache_get_audio, then the audio [T, 128] as an F32 tensor of arena a. */
err_code_t cache_load_audio(cache_reader_t *r, const char *subset, const char *uid, arena_t *a, tensor_t **audio,
                            err_t *err);

/* Calls fn for every entry of db whose key starts with prefix (NULL or "":
 * all), in key order. key is NUL-terminated; value is the stored bytes (in
 * the map: valid during the call). fn returns nonzero to stop early. */
typedef int (*cache_visit_fn)(void *ctx, cache_db_t db, const char *key, const void *value, size_t size);
err_code_t cache_foreach(cache_reader_t *r, cache_db_t db, const char *prefix, cache_visit_fn fn, void *ctx,
                         err_t *err);

/* ---- whole-cache operations ---- */

typedef struct {
    int64_t entries[CACHE_DB_COUNT];
    uint64_t value_bytes[CACHE_DB_COUNT]; /* sum of the values' sizes */
    uint64_t page_size;
    uint64_t map_size;   /* the map's current size */
    uint64_t map_used;   /* bytes of the map in use (last page + 1) */
    uint64_t file_bytes; /* size of data.mdb */
    dtype_t dtype;
} cache_stat_t;
err_code_t cache_stat(cache_t *c, cache_stat_t *out, err_t *err);

/* Checks every value: visual and audio values parse and their checksums
 * match, meta values are JSON, every video's index record has all its frames
 * and its audio, and no frame or audio lacks an index record. on_bad (may be
 * NULL) is called for each bad key with the problem. Returns ERR_OK when the
 * scan ran (bad counts what it found); an error only when it could not. */
typedef void (*cache_bad_fn)(void *ctx, cache_db_t db, const char *key, const char *problem);
typedef struct {
    int64_t checked; /* values looked at */
    int64_t bad;     /* problems found */
    uint64_t bytes;  /* bytes checksummed */
} cache_verify_report_t;
err_code_t cache_verify(cache_t *c, cache_bad_fn on_bad, void *ctx, cache_verify_report_t *report, err_t *err);

/* Whether caches a and b may be merged: the same dtype, and equal producer
 * records (a cache without one is accepted only while it holds no video).
 * ERR_MISMATCH naming both folders and the first difference. */
err_code_t cache_merge_check(cache_t *a, cache_t *b, err_t *err);

/* Copies every video of in that out lacks, one transaction per video (so an
 * interrupted merge can be run again), checking each value's checksum on the
 * way (ERR_FORMAT naming the key). A video already in out must be byte-equal
 * (ERR_MISMATCH otherwise) and is skipped. out (write mode) takes in's
 * producer record when it has none. Runs cache_merge_check first. */
typedef struct {
    int64_t videos_copied;
    int64_t videos_present; /* already in out, equal */
    uint64_t bytes_copied;
} cache_merge_report_t;
err_code_t cache_merge(cache_t *out, cache_t *in, cache_merge_report_t *report, err_t *err);

/* Key text: "<subset>/<uid>/<frame>" and "<subset>/<uid>" into buf[CACHE_MAX_KEY + 1].
 * ERR_ARG naming the problem for a bad subset or uid. */
err_code_t cache_frame_key(const char *subset, const char *uid, int frame, char *buf, err_t *err);
err_code_t cache_video_key(const char *subset, const char *uid, char *buf, err_t *err);

#endif
