/* cache_internal.h - what the cache_*.c files share; not for other modules. */
#ifndef STEPSTONE_CACHE_INTERNAL_H
#define STEPSTONE_CACHE_INTERNAL_H

#include <jansson.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "cache.h"

struct cache {
    MDB_env *env;
    MDB_dbi dbi[CACHE_DB_COUNT];
    char *dir; /* owned */
    cache_mode_t mode;
    cache_options_t options;
    dtype_t dtype;           /* the storage dtype recorded in "format" */
    atomic_int open_readers; /* read transactions open now; the map cannot grow while any is */
    /* the folder's identity, in the process-wide list of open caches: LMDB
     * breaks (its locks and reader table) when one process opens an
     * environment twice, so cache_open refuses a second handle */
    dev_t dev;
    ino_t ino;
    int registered;
    struct cache *next_open;
};

struct cache_reader {
    cache_t *cache;
    MDB_txn *txn;
    void **copies; /* aligned copies of misaligned tensors; freed at end/refresh */
    int n_copies, cap_copies;
};

/* Sets err from an LMDB (negative MDB_*) or errno (positive) code: ERR_IO
 * mostly, ERR_FORMAT for MDB_INVALID/MDB_CORRUPTED/MDB_VERSION_MISMATCH. The
 * message is "cache DIR: <what>: <lmdb's text>". */
err_code_t cache_lmdb_error(err_t *err, const cache_t *c, int rc, const char *what);

/* A function that does the work of one write transaction. It returns 0 on
 * success, an LMDB or errno code when LMDB failed (cache_write_txn then
 * grows the map and calls it again for MDB_MAP_FULL, or reports the code),
 * or CACHE_TXN_FAILED after setting err itself. */
#define CACHE_TXN_FAILED (-1)
typedef int (*cache_txn_fn)(cache_t *c, MDB_txn *txn, void *ctx, err_t *err);

/* Runs fn in a write transaction and commits, growing the map and retrying
 * on MDB_MAP_FULL as cache.h describes; aborts on any failure, so the cache
 * is unchanged. what names the work in messages ("video v2/abc");
 * bytes_hint is about how many bytes it writes (for the growth step). */
err_code_t cache_write_txn(cache_t *c, const char *what, uint64_t bytes_hint, cache_txn_fn fn, void *ctx,
                           err_t *err);

/* A short read transaction for one lookup; the caller aborts it with
 * cache_read_txn_end. Counts as an open reader. */
err_code_t cache_read_txn_begin(cache_t *c, MDB_txn **txn, err_t *err);
void cache_read_txn_end(cache_t *c, MDB_txn *txn);

/* Checks a subset or uid: 1..CACHE_MAX_NAME printable ASCII bytes, no '/' or space. */
err_code_t cache_check_name(const char *what, const char *name, err_t *err);

/* The videos record as JSON text, and its parse. */
int cache_video_record(char *buf, size_t size, const cache_video_info_t *info);
int cache_video_record_parse(const void *bytes, size_t size, cache_video_info_t *out);

/* The first difference between two JSON values as "path: the cache has X,
 * asked for Y" into msg; returns 0 when equal (numbers compare by value). */
int cache_json_diff(const json_t *cached, const json_t *expected, const char *cached_label,
                    const char *expected_label, char *msg, size_t size);

#endif
