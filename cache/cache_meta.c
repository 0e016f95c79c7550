/* cache_meta.c - JSON metadata records and the comparison that names the
 * first field that differs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

/* ---- comparing JSON ---- */

static void value_text(const json_t *v, char *buf, size_t size) {
    if (!v) {
        snprintf(buf, size, "no such field");
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (!s) {
        snprintf(buf, size, "?");
        return;
    }
    if (strlen(s) > 100) snprintf(buf, size, "%.100s...", s);
    else snprintf(buf, size, "%s", s);
    free(s);
}

static void join_path(char *out, size_t size, const char *path, const char *seg) {
    if (*path) snprintf(out, size, "%s.%s", path, seg);
    else snprintf(out, size, "%s", seg);
}

typedef struct {
    const char *cached_label, *expected_label;
    char *msg;
    size_t size;
} diff_out_t;

static int report(diff_out_t *o, const char *path, const json_t *a, const json_t *b) {
    char ta[128], tb[128];
    value_text(a, ta, sizeof ta);
    value_text(b, tb, sizeof tb);
    snprintf(o->msg, o->size, "field %s differs: %s %s, %s %s", *path ? path : "(the whole record)", o->cached_label,
             ta, o->expected_label, tb);
    return 1;
}

static int compare_strings(const void *x, const void *y) {
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Sorted keys of an object (borrowed strings), or NULL when it has none. */
static const char **sorted_keys(const json_t *obj, size_t *n) {
    *n = json_object_size(obj);
    if (*n == 0) return NULL;
    const char **keys = malloc(*n * sizeof *keys);
    if (!keys) return NULL;
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) keys[i++] = k;
    qsort(keys, *n, sizeof *keys, compare_strings);
    return keys;
}

static int diff_at(const json_t *a, const json_t *b, const char *path, diff_out_t *o) {
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b) ? 0 : report(o, path, a, b);
        return json_number_value(a) == json_number_value(b) ? 0 : report(o, path, a, b);
    }
    if (json_typeof(a) != json_typeof(b)) return report(o, path, a, b);
    char sub[1024];
    if (json_is_object(a)) {
        size_t na, nb;
        const char **ka = sorted_keys(a, &na), **kb = sorted_keys(b, &nb);
        int found = 0;
        /* walk the two sorted key lists together so the first difference in
         * key order is the one reported */
        size_t i = 0, j = 0;
        while (!found && (i < na || j < nb)) {
            int cmp = i == na ? 1 : j == nb ? -1 : strcmp(ka[i], kb[j]);
            const char *key = cmp <= 0 ? ka[i] : kb[j];
            join_path(sub, sizeof sub, path, key);
            if (cmp < 0) found = report(o, sub, json_object_get(a, key), NULL);
            else if (cmp > 0) found = report(o, sub, NULL, json_object_get(b, key));
            else found = diff_at(json_object_get(a, key), json_object_get(b, key), sub, o);
            if (cmp <= 0) i++;
            if (cmp >= 0) j++;
        }
        free(ka);
        free(kb);
        return found;
    }
    if (json_is_array(a)) {
        size_t na = json_array_size(a), nb = json_array_size(b);
        for (size_t i = 0; i < na && i < nb; i++) {
            char idx[32];
            snprintf(idx, sizeof idx, "%zu", i);
            join_path(sub, sizeof sub, path, idx);
            if (diff_at(json_array_get(a, i), json_array_get(b, i), sub, o)) return 1;
        }
        return na == nb ? 0 : report(o, path, a, b);
    }
    return json_equal((json_t *)a, (json_t *)b) ? 0 : report(o, path, a, b);
}

int cache_json_diff(const json_t *cached, const json_t *expected, const char *cached_label, const char *expected_label,
                    char *msg, size_t size) {
    diff_out_t o = {cached_label, expected_label, msg, size};
    msg[0] = '\0';
    return diff_at(cached, expected, "", &o);
}

/* ---- records ---- */

typedef struct {
    const char *key;
    const char *text;
} meta_put_t;

static int meta_put_txn(cache_t *c, MDB_txn *txn, void *ctx, err_t *err) {
    (void)err;
    meta_put_t *p = ctx;
    MDB_val k = {strlen(p->key), (void *)p->key}, v = {strlen(p->text), (void *)p->text};
    return mdb_put(txn, c->dbi[CACHE_DB_META], &k, &v, 0);
}

/* code: ERR_ARG for JSON from the caller, ERR_FORMAT for JSON from the cache */
static err_code_t parse_json(const cache_t *c, const char *what, const char *text, size_t n, err_code_t code,
                             json_t **out, err_t *err) {
    json_error_t jerr;
    *out = json_loadb(text, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!*out)
        return err_set(err, code, "cache %s: %s is not JSON: %s (line %d, column %d)", c->dir, what, jerr.text,
                       jerr.line, jerr.column);
    return ERR_OK;
}

err_code_t cache_meta_put(cache_t *c, const char *key, const char *json_text, err_t *err) {
    if (!key || !*key || strlen(key) > CACHE_MAX_KEY)
        return err_set(err, ERR_ARG, "cache %s: bad meta key \"%s\"", c->dir, key ? key : "(null)");
    if (strcmp(key, CACHE_META_FORMAT) == 0)
        return err_set(err, ERR_ARG, "cache %s: the meta record \"%s\" belongs to the cache library", c->dir, key);
    json_t *root;
    err_code_t ec = parse_json(c, key, json_text, strlen(json_text), ERR_ARG, &root, err);
    if (ec != ERR_OK) return ec;
    /* compact with sorted keys: equal records are equal bytes, and mdb_dump shows one line */
    char *canon = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(root);
    if (!canon) return err_set(err, ERR_NOMEM, "cache %s: out of memory", c->dir);
    char what[CACHE_MAX_KEY + 32];
    snprintf(what, sizeof what, "meta record \"%s\"", key);
    meta_put_t p = {key, canon};
    ec = cache_write_txn(c, what, strlen(canon), meta_put_txn, &p, err);
    free(canon);
    return ec;
}

err_code_t cache_meta_get(cache_t *c, const char *key, char **json_text, err_t *err) {
    *json_text = NULL;
    MDB_txn *txn;
    err_code_t ec = cache_read_txn_begin(c, &txn, err);
    if (ec != ERR_OK) return ec;
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, c->dbi[CACHE_DB_META], &k, &v);
    if (rc == 0) {
        char *s = malloc(v.mv_size + 1);
        if (s) {
            memcpy(s, v.mv_data, v.mv_size);
            s[v.mv_size] = '\0';
            *json_text = s;
        } else {
            ec = err_set(err, ERR_NOMEM, "cache %s: out of memory", c->dir);
        }
    } else if (rc == MDB_NOTFOUND) {
        ec = err_set(err, ERR_NOTFOUND, "cache %s has no meta record \"%s\"", c->dir, key);
    } else {
        ec = cache_lmdb_error(err, c, rc, key);
    }
    cache_read_txn_end(c, txn);
    return ec;
}

err_code_t cache_check_meta(cache_t *c, const char *expected_json, err_t *err) {
    json_t *expected, *cached;
    err_code_t ec = parse_json(c, "the expected metadata", expected_json, strlen(expected_json), ERR_ARG, &expected, err);
    if (ec != ERR_OK) return ec;
    char *text;
    ec = cache_meta_get(c, CACHE_META_PRODUCER, &text, err);
    if (ec == ERR_NOTFOUND) {
        json_decref(expected);
        return err_set(err, ERR_NOTFOUND,
                       "cache %s has no \"producer\" record, so what made it is unknown (an interrupted first run?)",
                       c->dir);
    }
    if (ec != ERR_OK) {
        json_decref(expected);
        return ec;
    }
    ec = parse_json(c, "its producer record", text, strlen(text), ERR_FORMAT, &cached, err);
    free(text);
    if (ec == ERR_OK) {
        char diff[700];
        if (cache_json_diff(cached, expected, "the cache has", "asked for", diff, sizeof diff))
            ec = err_set(err, ERR_MISMATCH, "cache %s was made by something else: %s", c->dir, diff);
        json_decref(cached);
    }
    json_decref(expected);
    return ec;
}

err_code_t cache_meta_ensure(cache_t *c, const char *expected_json, err_t *err) {
    char *text;
    err_code_t ec = cache_meta_get(c, CACHE_META_PRODUCER, &text, err);
    free(text);
    if (ec == ERR_NOTFOUND) return cache_meta_put(c, CACHE_META_PRODUCER, expected_json, err);
    if (ec != ERR_OK) return ec;
    return cache_check_meta(c, expected_json, err);
}
