/* cache_merge.c - joining shard caches: metadata must agree, values are
 * copied byte for byte (checksums checked on the way), one video per
 * transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

static err_code_t count_videos(cache_t *c, int64_t *n, err_t *err) {
    cache_stat_t st;
    err_code_t ec = cache_stat(c, &st, err);
    *n = st.entries[CACHE_DB_VIDEOS];
    return ec;
}

err_code_t cache_merge_check(cache_t *a, cache_t *b, err_t *err) {
    if (a->dtype != b->dtype)
        return err_set(err, ERR_MISMATCH, "caches %s and %s cannot be merged: %s stores %s, %s stores %s", a->dir,
                       b->dir, a->dir, dtype_name(a->dtype), b->dir, dtype_name(b->dtype));
    char *ta = NULL, *tb = NULL;
    err_code_t ea = cache_meta_get(a, CACHE_META_PRODUCER, &ta, err);
    if (ea != ERR_OK && ea != ERR_NOTFOUND) return ea;
    err_code_t eb = cache_meta_get(b, CACHE_META_PRODUCER, &tb, err);
    if (eb != ERR_OK && eb != ERR_NOTFOUND) {
        free(ta);
        return eb;
    }
    err_code_t ec = ERR_OK;
    if (ta && tb) {
        json_t *ja = json_loads(ta, JSON_DECODE_ANY, NULL), *jb = json_loads(tb, JSON_DECODE_ANY, NULL);
        char la[300], lb[300], diff[700];
        snprintf(la, sizeof la, "%s has", a->dir);
        snprintf(lb, sizeof lb, "%s has", b->dir);
        if (!ja || !jb)
            ec = err_set(err, ERR_FORMAT, "cache %s: its producer record is not JSON", ja ? b->dir : a->dir);
        else if (cache_json_diff(ja, jb, la, lb, diff, sizeof diff))
            ec = err_set(err, ERR_MISMATCH, "caches %s and %s were made differently and cannot be merged: %s", a->dir,
                         b->dir, diff);
        json_decref(ja);
        json_decref(jb);
    } else if (ta || tb) {
        /* a cache without a producer record may only be an empty one */
        cache_t *lacking = ta ? b : a, *having = ta ? a : b;
        int64_t n = 0;
        ec = count_videos(lacking, &n, err);
        if (ec == ERR_OK && n > 0)
            ec = err_set(err, ERR_MISMATCH,
                         "caches %s and %s cannot be merged: %s holds %lld videos but no producer record, %s has one",
                         a->dir, b->dir, lacking->dir, (long long)n, having->dir);
    }
    free(ta);
    free(tb);
    return ec;
}

typedef struct {
    cache_t *out, *in;
    cache_reader_t *r; /* on in */
    const char *video_key;
    cache_video_info_t info;
    const void *record;
    size_t record_size;
    int was_present;
    uint64_t bytes;
} copy_ctx_t;

/* The value of key in in's snapshot, checksum verified. */
static int in_value(copy_ctx_t *p, cache_db_t db, const char *key, MDB_val *v, err_t *err) {
    MDB_val k = {strlen(key), (void *)key};
    int rc = mdb_get(p->r->txn, p->in->dbi[db], &k, v);
    if (rc == MDB_NOTFOUND) {
        err_set(err, ERR_FORMAT, "cache %s: video %s lacks %s %s (run verify on it)", p->in->dir, p->video_key,
                cache_db_name(db), key);
        return CACHE_TXN_FAILED;
    }
    if (rc) {
        cache_lmdb_error(err, p->in, rc, key);
        return CACHE_TXN_FAILED;
    }
    cache_entry_t e;
    if (cache_value_parse(v->mv_data, v->mv_size, 1, &e, err) != ERR_OK) {
        err_prefix(err, "cache %s: %s \"%s\": ", p->in->dir, cache_db_name(db), key);
        return CACHE_TXN_FAILED;
    }
    return 0;
}

/* Puts (or, when the video is already in out, compares) one value. */
static int copy_value(copy_ctx_t *p, MDB_txn *txn, cache_db_t db, const char *key, err_t *err) {
    MDB_val v;
    int rc = in_value(p, db, key, &v, err);
    if (rc) return rc;
    MDB_val k = {strlen(key), (void *)key};
    if (p->was_present) {
        MDB_val have;
        rc = mdb_get(txn, p->out->dbi[db], &k, &have);
        if (rc == 0 && have.mv_size == v.mv_size && memcmp(have.mv_data, v.mv_data, v.mv_size) == 0) return 0;
        err_set(err, ERR_MISMATCH, "video %s is in both %s and %s with different %s %s", p->video_key, p->in->dir,
                p->out->dir, cache_db_name(db), key);
        return CACHE_TXN_FAILED;
    }
    p->bytes += v.mv_size;
    return mdb_put(txn, p->out->dbi[db], &k, &v, 0);
}

static int copy_video_txn(cache_t *out, MDB_txn *txn, void *ctx, err_t *err) {
    copy_ctx_t *p = ctx;
    p->bytes = 0;
    MDB_val k = {strlen(p->video_key), (void *)p->video_key}, have;
    int rc = mdb_get(txn, out->dbi[CACHE_DB_VIDEOS], &k, &have);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    p->was_present = rc == 0;
    if (p->was_present && (have.mv_size != p->record_size || memcmp(have.mv_data, p->record, p->record_size) != 0)) {
        err_set(err, ERR_MISMATCH, "video %s is in both %s and %s with different index records", p->video_key,
                p->in->dir, out->dir);
        return CACHE_TXN_FAILED;
    }
    char key[CACHE_MAX_KEY + 16];
    for (int f = 0; f < p->info.n_frames; f++) {
        snprintf(key, sizeof key, "%s/%d", p->video_key, f);
        if ((rc = copy_value(p, txn, CACHE_DB_VISUAL, key, err)) != 0) return rc;
    }
    if (p->info.has_audio && (rc = copy_value(p, txn, CACHE_DB_AUDIO, p->video_key, err)) != 0) return rc;
    if (p->was_present) return 0;
    MDB_val rv = {p->record_size, (void *)p->record};
    return mdb_put(txn, out->dbi[CACHE_DB_VIDEOS], &k, &rv, 0);
}

typedef struct {
    copy_ctx_t copy;
    cache_merge_report_t *report;
    err_t *err;
    err_code_t ec;
} merge_ctx_t;

static int visit_video(void *ctx, cache_db_t db, const char *key, const void *value, size_t size) {
    (void)db;
    merge_ctx_t *m = ctx;
    copy_ctx_t *p = &m->copy;
    p->video_key = key;
    p->record = value;
    p->record_size = size;
    if (cache_video_record_parse(value, size, &p->info) != 0) {
        m->ec = err_set(m->err, ERR_FORMAT, "cache %s: video %s: bad index record", p->in->dir, key);
        return 1;
    }
    /* the size of a frame value, roughly, times the frames: enough for the growth step */
    char what[CACHE_MAX_KEY + 16];
    snprintf(what, sizeof what, "video %s", key);
    MDB_val k0, v0;
    char fkey[CACHE_MAX_KEY + 16];
    snprintf(fkey, sizeof fkey, "%s/0", key);
    k0.mv_size = strlen(fkey);
    k0.mv_data = fkey;
    uint64_t hint = mdb_get(p->r->txn, p->in->dbi[CACHE_DB_VISUAL], &k0, &v0) == 0 ? v0.mv_size * (uint64_t)p->info.n_frames : 0;
    m->ec = cache_write_txn(p->out, what, hint, copy_video_txn, p, m->err);
    if (m->ec != ERR_OK) return 1;
    if (p->was_present) {
        m->report->videos_present++;
    } else {
        m->report->videos_copied++;
        m->report->bytes_copied += p->bytes;
    }
    return 0;
}

err_code_t cache_merge(cache_t *out, cache_t *in, cache_merge_report_t *report, err_t *err) {
    memset(report, 0, sizeof *report);
    err_t local;
    if (!err) err = &local;
    if (out->mode != CACHE_WRITE)
        return err_set(err, ERR_ARG, "cache %s is open for reading; cannot merge into it", out->dir);
    err_code_t ec = cache_merge_check(out, in, err);
    if (ec != ERR_OK) return ec;
    char *producer = NULL, *mine = NULL;
    ec = cache_meta_get(in, CACHE_META_PRODUCER, &producer, err);
    if (ec == ERR_OK && cache_meta_get(out, CACHE_META_PRODUCER, &mine, NULL) == ERR_NOTFOUND)
        ec = cache_meta_put(out, CACHE_META_PRODUCER, producer, err);
    else if (ec == ERR_NOTFOUND)
        ec = ERR_OK;
    free(producer);
    free(mine);
    if (ec != ERR_OK) return ec;
    merge_ctx_t m;
    memset(&m, 0, sizeof m);
    m.copy.out = out;
    m.copy.in = in;
    m.report = report;
    m.err = err;
    ec = cache_reader_begin(in, &m.copy.r, err);
    if (ec != ERR_OK) return ec;
    ec = cache_foreach(m.copy.r, CACHE_DB_VIDEOS, NULL, visit_video, &m, err);
    cache_reader_end(m.copy.r);
    return ec != ERR_OK ? ec : m.ec;
}
