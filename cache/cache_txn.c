/* cache_txn.c - transactions: LMDB errors as err_t, read transactions, and
 * the write transaction that grows the map and retries. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cache_internal.h"

err_code_t cache_lmdb_error(err_t *err, const cache_t *c, int rc, const char *what) {
    err_code_t code = ERR_IO;
    switch (rc) {
    case MDB_NOTFOUND: code = ERR_NOTFOUND; break;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE: code = ERR_FORMAT; break;
    case ENOMEM: code = ERR_NOMEM; break;
    default: break;
    }
    return err_set(err, code, "cache %s: %s: %s", c->dir, what, mdb_strerror(rc));
}

err_code_t cache_read_txn_begin(cache_t *c, MDB_txn **txn, err_t *err) {
    *txn = NULL;
    int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED && atomic_load(&c->open_readers) == 0) {
        /* another process grew the map past ours: adopt its size */
        rc = mdb_env_set_mapsize(c->env, 0);
        if (rc == 0) rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, txn);
    }
    if (rc) return cache_lmdb_error(err, c, rc, "beginning a read transaction");
    atomic_fetch_add(&c->open_readers, 1);
    return ERR_OK;
}

void cache_read_txn_end(cache_t *c, MDB_txn *txn) {
    if (!txn) return;
    mdb_txn_abort(txn);
    atomic_fetch_sub(&c->open_readers, 1);
}

static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

static err_code_t grow_map(cache_t *c, const char *what, uint64_t bytes_hint, err_t *err) {
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(c->env, &info);
    mdb_env_stat(c->env, &st);
    uint64_t cur = info.me_mapsize, used = (info.me_last_pgno + 1) * (uint64_t)st.ms_psize;
    if (c->options.no_grow)
        return err_set(err, ERR_IO,
                       "cache %s: the map is full (%.1f of %.1f MiB used) writing %s, and growing it is off; %s is not "
                       "in the cache: open it with a larger map size",
                       c->dir, mib(used), mib(cur), what, what);
    if (c->options.map_size_max && cur >= c->options.map_size_max)
        return err_set(err, ERR_IO,
                       "cache %s: the map reached its limit of %.1f MiB writing %s; %s is not in the cache: raise the "
                       "map size limit",
                       c->dir, mib(c->options.map_size_max), what, what);
    int readers = atomic_load(&c->open_readers);
    if (readers > 0)
        return err_set(err, ERR_IO,
                       "cache %s: the map is full writing %s and cannot grow while %d reader(s) of this process are "
                       "open; %s is not in the cache",
                       c->dir, what, readers, what);
    uint64_t grown = cur * 2 > cur + 2 * bytes_hint ? cur * 2 : cur + 2 * bytes_hint;
    grown = (grown + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    if (c->options.map_size_max && grown > c->options.map_size_max) grown = c->options.map_size_max;
    int rc = mdb_env_set_mapsize(c->env, (size_t)grown);
    if (rc) return cache_lmdb_error(err, c, rc, "growing the map");
    return ERR_OK;
}

/* LMDB reports a short write (what a full disk or a file size limit usually
 * gives) as EIO, so the reason is found by looking at the disk and the limit. */
static err_code_t write_failure(cache_t *c, int rc, const char *what, uint64_t bytes_hint, err_t *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", c->dir);
    struct stat st;
    uint64_t file_size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    struct rlimit lim;
    if (getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
        (rc == EFBIG || file_size + bytes_hint > (uint64_t)lim.rlim_cur))
        return err_set(err, ERR_IO,
                       "cache %s: writing %s went past the file size limit (ulimit -f: %.1f MiB; data.mdb has %.1f "
                       "MiB and this needs about %.1f more); %s is not in the cache: raise the limit and run again",
                       c->dir, what, mib((uint64_t)lim.rlim_cur), mib(file_size), mib(bytes_hint), what);
    struct statvfs fs;
    uint64_t free_bytes = statvfs(c->dir, &fs) == 0 ? (uint64_t)fs.f_bavail * fs.f_frsize : UINT64_MAX;
    if (rc == ENOSPC || rc == EDQUOT || free_bytes < bytes_hint + (16u << 20))
        return err_set(err, ERR_IO,
                       "cache %s: the disk is full writing %s (%.1f MiB free, it needs about %.1f MiB); %s is not in "
                       "the cache: free some space and run again",
                       c->dir, what, mib(free_bytes), mib(bytes_hint), what);
    return err_set(err, ERR_IO, "cache %s: writing %s failed: %s; %s is not in the cache", c->dir, what, strerror(rc),
                   what);
}

err_code_t cache_write_txn(cache_t *c, const char *what, uint64_t bytes_hint, cache_txn_fn fn, void *ctx,
                           err_t *err) {
    err_t local;
    if (!err) err = &local;
    if (c->mode != CACHE_WRITE)
        return err_set(err, ERR_ARG, "cache %s is open for reading; cannot write %s", c->dir, what);
    for (int attempt = 0; attempt < 64; attempt++) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(c->env, NULL, 0, &txn);
        if (rc == MDB_MAP_RESIZED && atomic_load(&c->open_readers) == 0) {
            rc = mdb_env_set_mapsize(c->env, 0);
            if (rc == 0) continue;
        }
        if (rc) return cache_lmdb_error(err, c, rc, "beginning a write transaction");
        rc = fn(c, txn, ctx, err);
        if (rc == 0) {
            rc = mdb_txn_commit(txn); /* frees txn, also on failure */
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == 0) return ERR_OK;
        if (rc == CACHE_TXN_FAILED) return err->code;
        if (rc == MDB_MAP_FULL) {
            err_code_t ec = grow_map(c, what, bytes_hint, err);
            if (ec != ERR_OK) return ec;
            continue;
        }
        if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG || rc == EIO) return write_failure(c, rc, what, bytes_hint, err);
        if (rc == MDB_TXN_FULL)
            return err_set(err, ERR_IO, "cache %s: %s is too large for one LMDB transaction", c->dir, what);
        char buf[300];
        snprintf(buf, sizeof buf, "writing %s (not stored)", what);
        return cache_lmdb_error(err, c, rc, buf);
    }
    return err_set(err, ERR_IO, "cache %s: writing %s: the map kept filling after growing it 64 times", c->dir, what);
}
