/* config.h - typed access to JSON configs (HuggingFace config.json, the
 * pipeline task configs) through jansson.
 *
 * Keys are dotted paths from the top-level object: "backbone_config.embed_dim";
 * a segment of digits indexes an array ("backbone_config.depths.0"). Keys that
 * themselves contain a dot cannot be named this way; use config_lookup on the
 * parent and jansson directly.
 *
 * Each getter has a required form (config_get_int) and a form with a fallback
 * (config_get_int_or). JSON null counts as absent, as HuggingFace writes null
 * for "unset". Errors name the file and the key:
 *   ERR_NOTFOUND  a required key is absent or null
 *   ERR_MISMATCH  the value has the wrong type or range, or a path segment
 *                 goes through a value that is not an object or array
 *                 (the _or forms report these too: a wrong value is never
 *                 silently replaced by the fallback)
 *   ERR_ARG       the key itself is malformed ("", "a..b")
 * On error *out is left unchanged. */
#ifndef STEPSTONE_CONFIG_H
#define STEPSTONE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

typedef struct {
    json_t *root; /* the document, always an object; owned (one reference) */
    char *path;   /* the file it came from, for messages; owned */
} config_t;

/* Parses the file at path. ERR_IO when it cannot be opened or read;
 * ERR_FORMAT for a syntax error ("cfg.json:12:5: ..." with jansson's text),
 * a duplicate key, or a top level that is not an object. On error *cfg is
 * zeroed, so config_free(cfg) is always safe. */
err_code_t config_load(const char *path, config_t *cfg, err_t *err);

/* Wraps a JSON object already in memory (a manifest's resolved config); takes
 * its own reference to root. origin names it in messages. ERR_FORMAT when
 * root is not an object. */
err_code_t config_from_json(config_t *cfg, json_t *root, const char *origin, err_t *err);

void config_free(config_t *cfg);

/* The value at key (borrowed, valid while cfg lives), or NULL when absent or
 * when the path cannot be followed. JSON null is returned as the null value. */
json_t *config_lookup(const config_t *cfg, const char *key);
/* Nonzero when key is present and not null. */
int config_has(const config_t *cfg, const char *key);

/* An integer in int range; a real with an integral value (16.0) is accepted. */
err_code_t config_get_int(const config_t *cfg, const char *key, int *out, err_t *err);
err_code_t config_get_int_or(const config_t *cfg, const char *key, int fallback, int *out, err_t *err);

/* Any JSON number. */
err_code_t config_get_double(const config_t *cfg, const char *key, double *out, err_t *err);
err_code_t config_get_double_or(const config_t *cfg, const char *key, double fallback, double *out,
                                err_t *err);

/* true or false only (not 0/1, not "true"). */
err_code_t config_get_bool(const config_t *cfg, const char *key, bool *out, err_t *err);
err_code_t config_get_bool_or(const config_t *cfg, const char *key, bool fallback, bool *out, err_t *err);

/* *out is borrowed from cfg (valid until config_free), or is the fallback. */
err_code_t config_get_string(const config_t *cfg, const char *key, const char **out, err_t *err);
err_code_t config_get_string_or(const config_t *cfg, const char *key, const char *fallback,
                                const char **out, err_t *err);

/* An array of integers (as config_get_int) into out[0..capacity); *count gets
 * the length. ERR_MISMATCH when longer than capacity or an element is not an
 * integer. Required: an absent key is ERR_NOTFOUND. */
err_code_t config_get_int_array(const config_t *cfg, const char *key, int *out, int capacity, int *count,
                                err_t *err);

#endif
