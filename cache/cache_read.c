/* cache_read.c - read snapshots, zero-copy views, conversion to tensors, and
 * iteration over keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"
#include "dtype.h"

err_code_t cache_reader_begin(cache_t *c, cache_reader_t **out, err_t *err) {
    *out = NULL;
    cache_reader_t *r = calloc(1, sizeof *r);
    if (!r) return err_set(err, ERR_NOMEM, "cache %s: out of memory", c->dir);
    r->cache = c;
    err_code_t ec = cache_read_txn_begin(c, &r->txn, err);
    if (ec != ERR_OK) {
        free(r);
        return ec;
    }
    *out = r;
    return ERR_OK;
}

static void free_copies(cache_reader_t *r) {
    for (int i = 0; i < r->n_copies; i++) free(r->copies[i]);
    r->n_copies = 0;
}

void cache_reader_end(cache_reader_t *r) {
    if (!r) return;
    free_copies(r);
    free(r->copies);
    cache_read_txn_end(r->cache, r->txn);
    free(r);
}

err_code_t cache_reader_refresh(cache_reader_t *r, err_t *err) {
    free_copies(r);
    mdb_txn_reset(r->txn);
    int rc = mdb_txn_renew(r->txn);
    if (rc == 0) return ERR_OK;
    /* e.g. MDB_MAP_RESIZED: start a fresh transaction, which adopts the new
     * map size when this is the process's only reader */
    cache_read_txn_end(r->cache, r->txn);
    r->txn = NULL;
    /* on failure r->txn stays NULL: the reader can still be ended */
    return cache_read_txn_begin(r->cache, &r->txn, err);
}

/* Copies misaligned tensors into memory the reader owns. */
static err_code_t align_views(cache_reader_t *r, cache_entry_t *e, const char *key, err_t *err) {
    for (int i = 0; i < e->n_tensors; i++) {
        cache_view_t *v = &e->tensors[i];
        if ((uintptr_t)v->data % dtype_size(v->dtype) == 0) continue;
        if (r->n_copies == r->cap_copies) {
            int cap = r->cap_copies ? 2 * r->cap_copies : 16;
            void **p = realloc(r->copies, (size_t)cap * sizeof *p);
            if (!p) return err_set(err, ERR_NOMEM, "cache %s: %s: out of memory", r->cache->dir, key);
            r->copies = p;
            r->cap_copies = cap;
        }
        size_t size = ((size_t)v->nbytes + CACHE_VALUE_ALIGN - 1) / CACHE_VALUE_ALIGN * CACHE_VALUE_ALIGN;
        void *copy = aligned_alloc(CACHE_VALUE_ALIGN, size ? size : CACHE_VALUE_ALIGN);
        if (!copy) return err_set(err, ERR_NOMEM, "cache %s: %s: out of memory", r->cache->dir, key);
        memcpy(copy, v->data, (size_t)v->nbytes);
        r->copies[r->n_copies++] = copy;
        v->data = copy;
        e->copied++;
        e->zero_copy = 0;
    }
    return ERR_OK;
}

err_code_t cache_get_key(cache_reader_t *r, cache_db_t db, const char *key, cache_entry_t *out, err_t *err) {
    cache_t *c = r->cache;
    memset(out, 0, sizeof *out);
    if (db != CACHE_DB_VISUAL && db != CACHE_DB_AUDIO)
        return err_set(err, ERR_ARG, "cache %s: %s holds JSON, not tensors", c->dir, cache_db_name(db));
    if (!r->txn) return err_set(err, ERR_IO, "cache %s: the reader has no transaction (a refresh failed)", c->dir);
    size_t klen = strlen(key);
    if (klen == 0 || klen > CACHE_MAX_KEY) return err_set(err, ERR_ARG, "cache %s: bad key \"%.60s\"", c->dir, key);
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(r->txn, c->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND) return err_set(err, ERR_NOTFOUND, "cache %s: no %s entry \"%s\"", c->dir, cache_db_name(db), key);
    if (rc) return cache_lmdb_error(err, c, rc, key);
    err_code_t ec = cache_value_parse(v.mv_data, v.mv_size, c->options.verify_reads, out, err);
    if (ec != ERR_OK) return err_prefix(err, "cache %s: %s \"%s\": ", c->dir, cache_db_name(db), key);
    return align_views(r, out, key, err);
}

err_code_t cache_get_frame(cache_reader_t *r, const char *subset, const char *uid, int frame, cache_entry_t *out,
                           err_t *err) {
    char key[CACHE_MAX_KEY + 1];
    if (cache_frame_key(subset, uid, frame, key, err) != ERR_OK) return err_prefix(err, "cache %s: ", r->cache->dir);
    return cache_get_key(r, CACHE_DB_VISUAL, key, out, err);
}

err_code_t cache_get_audio(cache_reader_t *r, const char *subset, const char *uid, cache_entry_t *out, err_t *err) {
    char key[CACHE_MAX_KEY + 1];
    if (cache_video_key(subset, uid, key, err) != ERR_OK) return err_prefix(err, "cache %s: ", r->cache->dir);
    return cache_get_key(r, CACHE_DB_AUDIO, key, out, err);
}

err_code_t cache_get_video_info(cache_reader_t *r, const char *subset, const char *uid, cache_video_info_t *out,
                                err_t *err) {
    cache_t *c = r->cache;
    char key[CACHE_MAX_KEY + 1];
    if (cache_video_key(subset, uid, key, err) != ERR_OK) return err_prefix(err, "cache %s: ", c->dir);
    if (!r->txn) return err_set(err, ERR_IO, "cache %s: the reader has no transaction (a refresh failed)", c->dir);
    MDB_val k = {strlen(key), key}, v;
    int rc = mdb_get(r->txn, c->dbi[CACHE_DB_VIDEOS], &k, &v);
    if (rc == MDB_NOTFOUND) return err_set(err, ERR_NOTFOUND, "cache %s: no video \"%s\"", c->dir, key);
    if (rc) return cache_lmdb_error(err, c, rc, key);
    if (cache_video_record_parse(v.mv_data, v.mv_size, out) != 0)
        return err_set(err, ERR_FORMAT, "cache %s: videos \"%s\": bad index record \"%.*s\"", c->dir, key,
                       (int)(v.mv_size < 80 ? v.mv_size : 80), (const char *)v.mv_data);
    return ERR_OK;
}

err_code_t cache_view_to_tensor(const cache_view_t *v, arena_t *a, dtype_t want, tensor_t **out, err_t *err) {
    *out = NULL;
    if (want != DTYPE_F32 && want != DTYPE_F16 && want != DTYPE_BF16)
        return err_set(err, ERR_ARG, "tensor %s: cannot convert to %s", v->name, dtype_name(want));
    tensor_t *t;
    if (a->device == DEVICE_CPU) {
        t = tensor_new(a, want, v->ndim, v->shape);
        dtype_convert_host(t->data, want, v->data, v->dtype, v->numel);
    } else {
        /* upload the stored (smaller) bytes and convert on the device */
        t = tensor_from_host(a, v->dtype, v->ndim, v->shape, v->data);
        if (want != v->dtype) t = tensor_convert(a, t, want);
    }
    size_t n = strlen(v->name) + 1;
    char *name = arena_alloc_host(a, n);
    memcpy(name, v->name, n);
    t->name = name;
    *out = t;
    return ERR_OK;
}

err_code_t cache_load_frame(cache_reader_t *r, const char *subset, const char *uid, int frame, arena_t *a,
                            tensor_t **levels, int max_levels, int *n_levels, err_t *err) {
    cache_entry_t e;
    *n_levels = 0;
    err_code_t ec = cache_get_frame(r, subset, uid, frame, &e, err);
    if (ec != ERR_OK) return ec;
    if (e.n_tensors > max_levels)
        return err_set(err, ERR_ARG, "cache %s: %s/%s/%d has %d levels, room was given for %d", r->cache->dir, subset,
                       uid, frame, e.n_tensors, max_levels);
    for (int i = 0; i < e.n_tensors; i++) {
        ec = cache_view_to_tensor(&e.tensors[i], a, DTYPE_F32, &levels[i], err);
        if (ec != ERR_OK) return ec;
    }
    *n_levels = e.n_tensors;
    return ERR_OK;
}

err_code_t cache_load_audio(cache_reader_t *r, const char *subset, const char *uid, arena_t *a, tensor_t **audio,
                            err_t *err) {
    cache_entry_t e;
    *audio = NULL;
    err_code_t ec = cache_get_audio(r, subset, uid, &e, err);
    if (ec != ERR_OK) return ec;
    const cache_view_t *v = cache_entry_find(&e, CACHE_AUDIO_TENSOR);
    if (!v) return err_set(err, ERR_FORMAT, "cache %s: audio %s/%s has no tensor \"%s\"", r->cache->dir, subset, uid, CACHE_AUDIO_TENSOR);
    return cache_view_to_tensor(v, a, DTYPE_F32, audio, err);
}

err_code_t cache_foreach(cache_reader_t *r, cache_db_t db, const char *prefix, cache_visit_fn fn, void *ctx,
                         err_t *err) {
    cache_t *c = r->cache;
    if (db < 0 || db >= CACHE_DB_COUNT) return err_set(err, ERR_ARG, "cache %s: no database %d", c->dir, (int)db);
    if (!r->txn) return err_set(err, ERR_IO, "cache %s: the reader has no transaction (a refresh failed)", c->dir);
    size_t plen = prefix ? strlen(prefix) : 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, c->dbi[db], &cur);
    if (rc) return cache_lmdb_error(err, c, rc, "opening a cursor");
    MDB_val k = {plen, (void *)prefix}, v;
    rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    char key[CACHE_MAX_KEY + 1];
    while (rc == 0) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)) break;
        size_t n = k.mv_size < CACHE_MAX_KEY ? k.mv_size : CACHE_MAX_KEY;
        memcpy(key, k.mv_data, n);
        key[n] = '\0';
        if (fn(ctx, db, key, v.mv_data, v.mv_size)) break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) return cache_lmdb_error(err, c, rc, "iterating keys");
    return ERR_OK;
}
