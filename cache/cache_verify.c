/* cache_verify.c - checking every value and the index records against each
 * other, in one read snapshot. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

typedef struct {
    cache_reader_t *r;
    cache_bad_fn on_bad;
    void *ctx;
    cache_verify_report_t *report;
} verify_ctx_t;

static void bad(verify_ctx_t *v, cache_db_t db, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad(verify_ctx_t *v, cache_db_t db, const char *key, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->report->bad++;
    if (v->on_bad) v->on_bad(v->ctx, db, key, msg);
}

/* The index record of video_key in this snapshot: 0 found, 1 absent, -1 bad. */
static int lookup_video(verify_ctx_t *v, const char *video_key, size_t n, cache_video_info_t *info) {
    cache_t *c = v->r->cache;
    MDB_val k = {n, (void *)video_key}, val;
    if (mdb_get(v->r->txn, c->dbi[CACHE_DB_VIDEOS], &k, &val) != 0) return 1;
    return cache_video_record_parse(val.mv_data, val.mv_size, info) == 0 ? 0 : -1;
}

static int has_key(verify_ctx_t *v, cache_db_t db, const char *key) {
    MDB_val k = {strlen(key), (void *)key}, val;
    return mdb_get(v->r->txn, v->r->cache->dbi[db], &k, &val) == 0;
}

static int visit_tensors(void *ctx, cache_db_t db, const char *key, const void *value, size_t size) {
    verify_ctx_t *v = ctx;
    v->report->checked++;
    v->report->bytes += size;
    cache_entry_t e;
    err_t err;
    if (cache_value_parse(value, size, 1, &e, &err) != ERR_OK) bad(v, db, key, "%s", err.msg);
    /* every frame and audio value belongs to a video's index record */
    size_t video_len = strlen(key);
    long frame = -1;
    if (db == CACHE_DB_VISUAL) {
        const char *slash = strrchr(key, '/');
        char *end;
        frame = slash ? strtol(slash + 1, &end, 10) : -1;
        if (!slash || slash[1] == '\0' || *end != '\0' || frame < 0) {
            bad(v, db, key, "the key is not <subset>/<uid>/<frame>");
            return 0;
        }
        video_len = (size_t)(slash - key);
    }
    cache_video_info_t info;
    int found = lookup_video(v, key, video_len, &info);
    if (found == 1) bad(v, db, key, "no index record for video %.*s (a frame or audio without its video)", (int)video_len, key);
    else if (found == 0 && db == CACHE_DB_VISUAL && frame >= info.n_frames)
        bad(v, db, key, "frame %ld is past the %d frames its index record lists", frame, info.n_frames);
    else if (found == 0 && db == CACHE_DB_AUDIO && !info.has_audio)
        bad(v, db, key, "audio for a video whose index record says it has none");
    return 0;
}

static int visit_videos(void *ctx, cache_db_t db, const char *key, const void *value, size_t size) {
    verify_ctx_t *v = ctx;
    v->report->checked++;
    cache_video_info_t info;
    if (cache_video_record_parse(value, size, &info) != 0) {
        bad(v, db, key, "bad index record \"%.*s\"", (int)(size < 80 ? size : 80), (const char *)value);
        return 0;
    }
    char fkey[CACHE_MAX_KEY + 16];
    for (int f = 0; f < info.n_frames; f++) {
        snprintf(fkey, sizeof fkey, "%s/%d", key, f);
        if (!has_key(v, CACHE_DB_VISUAL, fkey)) {
            bad(v, db, key, "frame %d of %d is missing (visual %s)", f, info.n_frames, fkey);
            break;
        }
    }
    if (info.has_audio && !has_key(v, CACHE_DB_AUDIO, key)) bad(v, db, key, "its audio is missing");
    return 0;
}

static int visit_meta(void *ctx, cache_db_t db, const char *key, const void *value, size_t size) {
    verify_ctx_t *v = ctx;
    v->report->checked++;
    json_error_t jerr;
    json_t *root = json_loadb(value, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) bad(v, db, key, "not JSON: %s", jerr.text);
    json_decref(root);
    return 0;
}

err_code_t cache_verify(cache_t *c, cache_bad_fn on_bad, void *ctx, cache_verify_report_t *report, err_t *err) {
    memset(report, 0, sizeof *report);
    cache_reader_t *r;
    err_code_t ec = cache_reader_begin(c, &r, err);
    if (ec != ERR_OK) return ec;
    verify_ctx_t v = {r, on_bad, ctx, report};
    ec = cache_foreach(r, CACHE_DB_VISUAL, NULL, visit_tensors, &v, err);
    if (ec == ERR_OK) ec = cache_foreach(r, CACHE_DB_AUDIO, NULL, visit_tensors, &v, err);
    if (ec == ERR_OK) ec = cache_foreach(r, CACHE_DB_VIDEOS, NULL, visit_videos, &v, err);
    if (ec == ERR_OK) ec = cache_foreach(r, CACHE_DB_META, NULL, visit_meta, &v, err);
    cache_reader_end(r);
    return ec;
}
