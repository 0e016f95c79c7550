/* cache_put.c - storing a video (all frames, the audio, the index record) in
 * one write transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"
#include "dtype.h"

typedef struct {
    const cache_video_t *video;
    char video_key[CACHE_MAX_KEY + 1];
    char what[CACHE_MAX_KEY + 16];
    /* host scratch for device tensors and for conversions into unaligned
     * places; grown as needed, freed after the put */
    void *host_copy, *converted;
    size_t host_copy_size, converted_size;
} put_ctx_t;

static int grow_buffer(void **buf, size_t *size, size_t want) {
    if (*size >= want) return 0;
    void *p = realloc(*buf, want);
    if (!p) return -1;
    *buf = p;
    *size = want;
    return 0;
}

/* Converts tensor t into dst (any alignment) as dtype dst_dtype. */
static int store_tensor(cache_t *c, put_ctx_t *p, void *dst, dtype_t dst_dtype, const tensor_t *t, err_t *err) {
    const void *src = t->data;
    size_t src_bytes = (size_t)t->numel * dtype_size(t->dtype), dst_bytes = (size_t)t->numel * dtype_size(dst_dtype);
    if (t->device != DEVICE_CPU && t->dtype == dst_dtype) {
        /* a device tensor already in the storage dtype (converted on the GPU,
         * which also halves the bytes to download): straight into the value */
        tensor_to_host(t, dst);
        return 0;
    }
    if (t->device != DEVICE_CPU) {
        if (grow_buffer(&p->host_copy, &p->host_copy_size, src_bytes)) goto nomem;
        tensor_to_host(t, p->host_copy);
        src = p->host_copy;
    }
    if ((uintptr_t)dst % dtype_size(dst_dtype) == 0) {
        dtype_convert_host(dst, dst_dtype, src, t->dtype, t->numel);
    } else {
        /* a small value inside a B-tree page can start at an odd address */
        if (grow_buffer(&p->converted, &p->converted_size, dst_bytes)) goto nomem;
        dtype_convert_host(p->converted, dst_dtype, src, t->dtype, t->numel);
        memcpy(dst, p->converted, dst_bytes);
    }
    return 0;
nomem:
    err_set(err, ERR_NOMEM, "cache %s: out of memory converting %s", c->dir, p->what);
    return CACHE_TXN_FAILED;
}

/* Reserves one value in db under key and fills it with the tensors. */
static int put_value(cache_t *c, put_ctx_t *p, MDB_txn *txn, cache_db_t db, const char *key, int n,
                     const char *const *names, const tensor_t *const *tensors, err_t *err) {
    cache_tensor_spec_t specs[CACHE_MAX_TENSORS];
    uint64_t offsets[CACHE_MAX_TENSORS], value_bytes;
    for (int i = 0; i < n; i++) {
        specs[i].name = names[i];
        specs[i].dtype = c->dtype;
        specs[i].ndim = tensors[i]->ndim;
        specs[i].shape = tensors[i]->shape;
    }
    if (cache_value_layout(specs, n, offsets, &value_bytes, err) != ERR_OK) {
        err_prefix(err, "cache %s: %s: ", c->dir, key);
        return CACHE_TXN_FAILED;
    }
    MDB_val k = {strlen(key), (void *)key}, v = {(size_t)value_bytes, NULL};
    int rc = mdb_put(txn, c->dbi[db], &k, &v, MDB_RESERVE);
    if (rc) return rc;
    /* fill before the next write: LMDB may move reserved space on later puts */
    cache_value_write_header(v.mv_data, specs, n, offsets, value_bytes);
    for (int i = 0; i < n; i++) {
        rc = store_tensor(c, p, (char *)v.mv_data + offsets[i], c->dtype, tensors[i], err);
        if (rc) return rc;
    }
    cache_value_seal(v.mv_data, value_bytes);
    return 0;
}

/* Deletes the frames and audio of an earlier copy of the video. */
static int delete_old_copy(cache_t *c, put_ctx_t *p, MDB_txn *txn) {
    char prefix[CACHE_MAX_KEY + 2];
    int plen = snprintf(prefix, sizeof prefix, "%s/", p->video_key);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, c->dbi[CACHE_DB_VISUAL], &cur);
    if (rc) return rc;
    MDB_val k = {(size_t)plen, prefix}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= (size_t)plen && memcmp(k.mv_data, prefix, (size_t)plen) == 0) {
        rc = mdb_cursor_del(cur, 0);
        /* seek again rather than trust the cursor's position after a delete */
        k.mv_size = (size_t)plen;
        k.mv_data = prefix;
        if (rc == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    MDB_val ak = {strlen(p->video_key), p->video_key};
    rc = mdb_del(txn, c->dbi[CACHE_DB_AUDIO], &ak, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_video_txn(cache_t *c, MDB_txn *txn, void *ctx, err_t *err) {
    put_ctx_t *p = ctx;
    const cache_video_t *vid = p->video;
    MDB_val vk = {strlen(p->video_key), p->video_key}, vv;
    int rc = mdb_get(txn, c->dbi[CACHE_DB_VIDEOS], &vk, &vv);
    if (rc == 0) rc = delete_old_copy(c, p, txn);
    else if (rc == MDB_NOTFOUND) rc = 0;
    if (rc) return rc;
    for (int f = 0; f < vid->n_frames; f++) {
        char key[CACHE_MAX_KEY + 1];
        snprintf(key, sizeof key, "%s/%d", p->video_key, f);
        rc = put_value(c, p, txn, CACHE_DB_VISUAL, key, vid->n_levels, vid->level_names,
                       vid->levels + (size_t)f * vid->n_levels, err);
        if (rc) return rc;
    }
    if (vid->audio) {
        const char *name = CACHE_AUDIO_TENSOR;
        rc = put_value(c, p, txn, CACHE_DB_AUDIO, p->video_key, 1, &name, &vid->audio, err);
        if (rc) return rc;
    }
    char record[128];
    cache_video_info_t info = {vid->n_frames, vid->audio != NULL};
    MDB_val rv = {(size_t)cache_video_record(record, sizeof record, &info), record};
    return mdb_put(txn, c->dbi[CACHE_DB_VIDEOS], &vk, &rv, 0);
}

static int is_float(dtype_t dt) { return dt == DTYPE_F32 || dt == DTYPE_F16 || dt == DTYPE_BF16; }

/* Everything that can be checked before the transaction is checked here, so
 * that bad input is ERR_ARG and the transaction only meets LMDB's failures. */
static err_code_t check_video(cache_t *c, put_ctx_t *p, uint64_t *bytes, err_t *err) {
    const cache_video_t *v = p->video;
    if (v->n_frames < 1) return err_set(err, ERR_ARG, "cache %s: %s: %d frames", c->dir, p->what, v->n_frames);
    if (v->n_levels < 1 || v->n_levels > CACHE_MAX_TENSORS)
        return err_set(err, ERR_ARG, "cache %s: %s: %d levels per frame (1 to %d)", c->dir, p->what, v->n_levels,
                       CACHE_MAX_TENSORS);
    if (!v->levels || !v->level_names)
        return err_set(err, ERR_ARG, "cache %s: %s: no level tensors or names", c->dir, p->what);
    *bytes = 0;
    for (int f = 0; f < v->n_frames; f++) {
        cache_tensor_spec_t specs[CACHE_MAX_TENSORS];
        uint64_t offsets[CACHE_MAX_TENSORS], value_bytes;
        for (int l = 0; l < v->n_levels; l++) {
            const tensor_t *t = v->levels[(size_t)f * v->n_levels + l];
            const char *name = v->level_names[l] ? v->level_names[l] : "(null)";
            if (!t) return err_set(err, ERR_ARG, "cache %s: %s: frame %d level %s is NULL", c->dir, p->what, f, name);
            if (!is_float(t->dtype))
                return err_set(err, ERR_ARG, "cache %s: %s: frame %d level %s is %s, not a float tensor", c->dir,
                               p->what, f, name, dtype_name(t->dtype));
            specs[l] = (cache_tensor_spec_t){v->level_names[l], c->dtype, t->ndim, t->shape};
        }
        if (cache_value_layout(specs, v->n_levels, offsets, &value_bytes, err) != ERR_OK)
            return err_prefix(err, "cache %s: %s frame %d: ", c->dir, p->what, f);
        *bytes += value_bytes;
    }
    if (v->audio) {
        if (!is_float(v->audio->dtype))
            return err_set(err, ERR_ARG, "cache %s: %s: audio is %s, not a float tensor", c->dir, p->what,
                           dtype_name(v->audio->dtype));
        *bytes += CACHE_VALUE_HEADER_BYTES + CACHE_VALUE_ENTRY_BYTES + CACHE_VALUE_ALIGN +
                  (uint64_t)v->audio->numel * dtype_size(c->dtype);
    }
    return ERR_OK;
}

err_code_t cache_put_video(cache_t *c, const cache_video_t *video, err_t *err) {
    put_ctx_t p;
    memset(&p, 0, sizeof p);
    p.video = video;
    err_code_t ec = cache_video_key(video->subset, video->uid, p.video_key, err);
    if (ec != ERR_OK) return err_prefix(err, "cache %s: ", c->dir);
    snprintf(p.what, sizeof p.what, "video %s", p.video_key);
    if (c->mode != CACHE_WRITE)
        return err_set(err, ERR_ARG, "cache %s is open for reading; cannot write %s", c->dir, p.what);
    uint64_t bytes = 0;
    ec = check_video(c, &p, &bytes, err);
    if (ec == ERR_OK) ec = cache_write_txn(c, p.what, bytes, put_video_txn, &p, err);
    free(p.host_copy);
    free(p.converted);
    return ec;
}

err_code_t cache_has_video(cache_t *c, const char *subset, const char *uid, int *present, err_t *err) {
    *present = 0;
    char key[CACHE_MAX_KEY + 1];
    err_code_t ec = cache_video_key(subset, uid, key, err);
    if (ec != ERR_OK) return err_prefix(err, "cache %s: ", c->dir);
    MDB_txn *txn;
    if ((ec = cache_read_txn_begin(c, &txn, err)) != ERR_OK) return ec;
    MDB_val k = {strlen(key), key}, v;
    int rc = mdb_get(txn, c->dbi[CACHE_DB_VIDEOS], &k, &v);
    cache_read_txn_end(c, txn);
    if (rc == 0) *present = 1;
    else if (rc != MDB_NOTFOUND) return cache_lmdb_error(err, c, rc, key);
    return ERR_OK;
}
