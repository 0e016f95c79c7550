#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENT 256 /* longest key segment; config keys are short names */

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}

static err_code_t wrap(config_t *cfg, json_t *root, const char *origin, err_t *err) {
    if (!json_is_object(root)) {
        err_code_t code = err_set(err, ERR_FORMAT, "%s: the top level is %s, expected an object", origin,
                                  type_name(root));
        json_decref(root);
        return code;
    }
    cfg->path = strdup(origin);
    if (!cfg->path) {
        json_decref(root);
        return err_set(err, ERR_NOMEM, "%s: out of memory", origin);
    }
    cfg->root = root;
    return ERR_OK;
}

err_code_t config_load(const char *path, config_t *cfg, err_t *err) {
    memset(cfg, 0, sizeof *cfg);
    /* Open it ourselves so a missing file is ERR_IO with errno's words,
     * apart from the syntax errors jansson reports. */
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    json_error_t jerr;
    /* A key given twice is a mistake in a config, not a choice to make silently. */
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    int read_failed = ferror(f);
    int read_errno = errno;
    fclose(f);
    if (!root) {
        if (read_failed) return err_set(err, ERR_IO, "%s: read failed: %s", path, strerror(read_errno));
        return err_set(err, ERR_FORMAT, "%s:%d:%d: JSON syntax error: %s", path, jerr.line, jerr.column,
                       jerr.text);
    }
    return wrap(cfg, root, path, err);
}

err_code_t config_from_json(config_t *cfg, json_t *root, const char *origin, err_t *err) {
    memset(cfg, 0, sizeof *cfg);
    return wrap(cfg, json_incref(root), origin ? origin : "(config)", err);
}

void config_free(config_t *cfg) {
    if (!cfg) return;
    json_decref(cfg->root);
    free(cfg->path);
    cfg->root = NULL;
    cfg->path = NULL;
}

static int all_digits(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* Follows the dotted key. Returns ERR_OK with *node NULL when a segment is
 * absent; ERR_MISMATCH when the path goes through a scalar; ERR_ARG for a
 * malformed key. Messages only when err is given. */
static err_code_t resolve(const config_t *cfg, const char *key, json_t **node, err_t *err) {
    *node = NULL;
    if (!key || !*key) return err_set(err, ERR_ARG, "%s: empty config key", cfg->path);
    json_t *cur = cfg->root;
    const char *seg = key;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (len == 0 || len >= MAX_SEGMENT)
            return err_set(err, ERR_ARG, "%s: malformed config key \"%s\"", cfg->path, key);
        char name[MAX_SEGMENT];
        memcpy(name, seg, len);
        name[len] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, name);
        } else if (json_is_array(cur) && all_digits(name, len)) {
            errno = 0;
            unsigned long long index = strtoull(name, NULL, 10);
            cur = errno == 0 && index < json_array_size(cur) ? json_array_get(cur, (size_t)index) : NULL;
        } else {
            int parent_len = (int)(seg - key) - 1;
            return err_set(err, ERR_MISMATCH, "%s: key \"%s\": \"%.*s\" is %s, not an object%s", cfg->path, key,
                           parent_len, key, type_name(cur), json_is_array(cur) ? " (use a numeric index)" : "");
        }
        if (!cur || !dot) break;
        seg = dot + 1;
    }
    *node = cur;
    return ERR_OK;
}

json_t *config_lookup(const config_t *cfg, const char *key) {
    json_t *node;
    if (resolve(cfg, key, &node, NULL) != ERR_OK) return NULL;
    return node;
}

int config_has(const config_t *cfg, const char *key) {
    json_t *node = config_lookup(cfg, key);
    return node && !json_is_null(node);
}

/* The value at key, or NULL (with ERR_OK) when absent or null. */
static err_code_t find(const config_t *cfg, const char *key, json_t **node, err_t *err) {
    err_code_t code = resolve(cfg, key, node, err);
    if (code == ERR_OK && *node && json_is_null(*node)) *node = NULL;
    return code;
}

static err_code_t missing(const config_t *cfg, const char *key, const char *expected, err_t *err) {
    json_t *node = config_lookup(cfg, key);
    if (node) return err_set(err, ERR_NOTFOUND, "%s: key \"%s\" is null, expected %s", cfg->path, key, expected);
    return err_set(err, ERR_NOTFOUND, "%s: missing key \"%s\" (expected %s)", cfg->path, key, expected);
}

static err_code_t wrong_type(const config_t *cfg, const char *key, const json_t *v, const char *expected,
                             err_t *err) {
    return err_set(err, ERR_MISMATCH, "%s: key \"%s\" is %s, expected %s", cfg->path, key, type_name(v),
                   expected);
}

/* --- int --- */

static err_code_t as_int(const config_t *cfg, const char *key, const json_t *v, int *out, err_t *err) {
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < INT_MIN || i > INT_MAX)
            return err_set(err, ERR_MISMATCH, "%s: key \"%s\" is %lld, out of int range", cfg->path, key,
                           (long long)i);
        *out = (int)i;
        return ERR_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < (double)INT_MIN || d > (double)INT_MAX)
            return err_set(err, ERR_MISMATCH, "%s: key \"%s\" is %g, expected an integer", cfg->path, key, d);
        *out = (int)d;
        return ERR_OK;
    }
    return wrong_type(cfg, key, v, "an integer", err);
}

err_code_t config_get_int(const config_t *cfg, const char *key, int *out, err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) return missing(cfg, key, "an integer", err);
    return as_int(cfg, key, v, out, err);
}

err_code_t config_get_int_or(const config_t *cfg, const char *key, int fallback, int *out, err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) {
        *out = fallback;
        return ERR_OK;
    }
    return as_int(cfg, key, v, out, err);
}

/* --- double --- */

static err_code_t as_double(const config_t *cfg, const char *key, const json_t *v, double *out, err_t *err) {
    if (!json_is_number(v)) return wrong_type(cfg, key, v, "a number", err);
    *out = json_number_value(v);
    return ERR_OK;
}

err_code_t config_get_double(const config_t *cfg, const char *key, double *out, err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) return missing(cfg, key, "a number", err);
    return as_double(cfg, key, v, out, err);
}

err_code_t config_get_double_or(const config_t *cfg, const char *key, double fallback, double *out,
                                err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) {
        *out = fallback;
        return ERR_OK;
    }
    return as_double(cfg, key, v, out, err);
}

/* --- bool --- */

static err_code_t as_bool(const config_t *cfg, const char *key, const json_t *v, bool *out, err_t *err) {
    if (!json_is_boolean(v)) return wrong_type(cfg, key, v, "true or false", err);
    *out = json_is_true(v);
    return ERR_OK;
}

err_code_t config_get_bool(const config_t *cfg, const char *key, bool *out, err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) return missing(cfg, key, "true or false", err);
    return as_bool(cfg, key, v, out, err);
}

err_code_t config_get_bool_or(const config_t *cfg, const char *key, bool fallback, bool *out, err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) {
        *out = fallback;
        return ERR_OK;
    }
    return as_bool(cfg, key, v, out, err);
}

/* --- string --- */

static err_code_t as_string(const config_t *cfg, const char *key, const json_t *v, const char **out,
                            err_t *err) {
    if (!json_is_string(v)) return wrong_type(cfg, key, v, "a string", err);
    *out = json_string_value(v);
    return ERR_OK;
}

err_code_t config_get_string(const config_t *cfg, const char *key, const char **out, err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) return missing(cfg, key, "a string", err);
    return as_string(cfg, key, v, out, err);
}

err_code_t config_get_string_or(const config_t *cfg, const char *key, const char *fallback,
                                const char **out, err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) {
        *out = fallback;
        return ERR_OK;
    }
    return as_string(cfg, key, v, out, err);
}

/* --- int array --- */

err_code_t config_get_int_array(const config_t *cfg, const char *key, int *out, int capacity, int *count,
                                err_t *err) {
    json_t *v;
    err_code_t code = find(cfg, key, &v, err);
    if (code != ERR_OK) return code;
    if (!v) return missing(cfg, key, "an array of integers", err);
    if (!json_is_array(v)) return wrong_type(cfg, key, v, "an array of integers", err);
    size_t n = json_array_size(v);
    if (capacity < 0 || n > (size_t)capacity)
        return err_set(err, ERR_MISMATCH, "%s: key \"%s\" has %zu elements, at most %d expected", cfg->path,
                       key, n, capacity);
    /* Check every element before writing any, so *out is untouched on error. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            char element_key[512];
            snprintf(element_key, sizeof element_key, "%s.%zu", key, i);
            int value = 0;
            code = as_int(cfg, element_key, json_array_get(v, i), &value, err);
            if (code != ERR_OK) return code;
            if (pass == 1) out[i] = value;
        }
    }
    *count = (int)n;
    return ERR_OK;
}
