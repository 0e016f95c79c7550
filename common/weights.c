#include "weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- param_list ---- */

void param_list_init(param_list_t *pl, arena_t *arena) {
    memset(pl, 0, sizeof *pl);
    pl->arena = arena;
}

void param_list_free(param_list_t *pl) {
    if (!pl) return;
    free((void *)pl->names);
    free(pl->tensors);
    memset(pl, 0, sizeof *pl);
}

tensor_t *param_list_find(const param_list_t *pl, const char *name) {
    for (int i = 0; i < pl->count; i++)
        if (strcmp(pl->names[i], name) == 0) return pl->tensors[i];
    return NULL;
}

err_code_t param_list_add(param_list_t *pl, const char *name, tensor_t *t, err_t *err) {
    if (param_list_find(pl, name)) return err_set(err, ERR_ARG, "parameter '%s' registered twice", name);
    if (pl->count == pl->capacity) {
        int cap = pl->capacity ? 2 * pl->capacity : 64;
        tensor_t **tensors = realloc(pl->tensors, (size_t)cap * sizeof *tensors);
        if (!tensors) return err_set(err, ERR_NOMEM, "parameter '%s': out of memory", name);
        pl->tensors = tensors;
        const char **names = realloc(pl->names, (size_t)cap * sizeof *names);
        if (!names) return err_set(err, ERR_NOMEM, "parameter '%s': out of memory", name);
        pl->names = names;
        pl->capacity = cap;
    }
    /* the name lives in the arena with the tensor, so t->name stays valid as long as t */
    size_t len = strlen(name) + 1;
    char *copy = arena_alloc_host(pl->arena, len);
    memcpy(copy, name, len);
    pl->names[pl->count] = copy;
    pl->tensors[pl->count] = t;
    pl->count++;
    t->name = copy;
    return ERR_OK;
}

err_code_t param_list_add_zeros(param_list_t *pl, const char *name, int ndim, const int64_t *shape, tensor_t **out,
                                err_t *err) {
    tensor_t *t = tensor_zeros(pl->arena, DTYPE_F32, ndim, shape);
    err_code_t rc = param_list_add(pl, name, t, err);
    if (rc == ERR_OK && out) *out = t;
    return rc;
}

/* ---- weights file ---- */

err_code_t weights_open(const char *path, weights_t *w, err_t *err) {
    memset(w, 0, sizeof *w);
    err_code_t rc = safetensors_open(path, &w->st, err);
    if (rc != ERR_OK) return rc;
    w->prefix = strdup("");
    w->used = calloc((size_t)(w->st.n_entries ? w->st.n_entries : 1), 1);
    if (!w->prefix || !w->used) {
        weights_close(w);
        return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    }
    return ERR_OK;
}

void weights_close(weights_t *w) {
    if (!w) return;
    safetensors_close(&w->st);
    free(w->prefix);
    free(w->used);
    memset(w, 0, sizeof *w);
}

/* prefix + name into buf; ERR_ARG when it does not fit */
static err_code_t full_name(const weights_t *w, const char *name, char *buf, size_t size, err_t *err) {
    int n = snprintf(buf, size, "%s%s", w->prefix, name);
    if (n < 0 || (size_t)n >= size)
        return err_set(err, ERR_ARG, "%s: tensor name '%s%s' too long", w->st.path, w->prefix, name);
    return ERR_OK;
}

int weights_has(const weights_t *w, const char *name) {
    char full[1024];
    if (full_name(w, name, full, sizeof full, NULL) != ERR_OK) return 0;
    return safetensors_find(&w->st, full) != NULL;
}

err_code_t weights_select_prefix(weights_t *w, const char *const *candidates, int n_candidates, const char *probe,
                                 err_t *err) {
    char tried[768] = "";
    size_t len = 0;
    for (int i = 0; i < n_candidates; i++) {
        char full[1024];
        snprintf(full, sizeof full, "%s%s", candidates[i], probe);
        if (safetensors_find(&w->st, full)) {
            char *copy = strdup(candidates[i]);
            if (!copy) return err_set(err, ERR_NOMEM, "%s: out of memory", w->st.path);
            free(w->prefix);
            w->prefix = copy;
            return ERR_OK;
        }
        int n = snprintf(tried + len, sizeof tried - len, "%s'%s'", i ? ", " : "", full);
        if (n > 0 && (size_t)n < sizeof tried - len) len += (size_t)n;
    }
    return err_set(err, ERR_NOTFOUND, "%s: none of the expected tensors is in the file (looked for %s)", w->st.path,
                   tried);
}

/* Finds prefix + name; marks it used. */
static err_code_t find_entry(weights_t *w, const char *name, const st_entry_t **out, err_t *err) {
    char full[1024];
    err_code_t rc = full_name(w, name, full, sizeof full, err);
    if (rc != ERR_OK) return rc;
    const st_entry_t *e = safetensors_find(&w->st, full);
    if (!e) return err_set(err, ERR_NOTFOUND, "%s: tensor '%s' is missing", w->st.path, full);
    w->used[e - w->st.entries] = 1;
    *out = e;
    return ERR_OK;
}

static int same_shape(const st_entry_t *e, int ndim, const int64_t *shape) {
    if (e->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (e->shape[i] != shape[i]) return 0;
    return 1;
}

static err_code_t shape_error(const weights_t *w, const st_entry_t *e, int ndim, const int64_t *shape, err_t *err) {
    char want[128], got[128];
    return err_set(err, ERR_MISMATCH, "%s: tensor '%s': expected shape %s, found %s", w->st.path, e->name,
                   shape_str(ndim, shape, want, sizeof want), shape_str(e->ndim, e->shape, got, sizeof got));
}

err_code_t weights_load(weights_t *w, const char *name, int ndim, const int64_t *shape, param_list_t *pl,
                        const char *param_prefix, tensor_t **out, err_t *err) {
    *out = NULL;
    const st_entry_t *e;
    err_code_t rc = find_entry(w, name, &e, err);
    if (rc != ERR_OK) return rc;
    if (!same_shape(e, ndim, shape)) return shape_error(w, e, ndim, shape, err);
    if (e->dtype != DTYPE_F32 && e->dtype != DTYPE_F16 && e->dtype != DTYPE_BF16) {
        char got[128];
        return err_set(err, ERR_MISMATCH,
                       "%s: tensor '%s': dtype %s (shape %s), expected a float dtype (F32, F16 or BF16)", w->st.path,
                       e->name, dtype_name(e->dtype), shape_str(e->ndim, e->shape, got, sizeof got));
    }
    tensor_t *t;
    rc = safetensors_load(&w->st, e->name, pl->arena, DTYPE_F32, ndim, shape, &t, err);
    if (rc != ERR_OK) return rc;
    char reg[1024];
    int n = snprintf(reg, sizeof reg, "%s%s", param_prefix ? param_prefix : "", name);
    if (n < 0 || (size_t)n >= sizeof reg) return err_set(err, ERR_ARG, "parameter name '%s' too long", name);
    rc = param_list_add(pl, reg, t, err);
    if (rc != ERR_OK) return rc;
    *out = t;
    return ERR_OK;
}

err_code_t weights_load_buffer(weights_t *w, const char *name, int ndim, const int64_t *shape, arena_t *a,
                               tensor_t **out, err_t *err) {
    *out = NULL;
    const st_entry_t *e;
    err_code_t rc = find_entry(w, name, &e, err);
    if (rc != ERR_OK) return rc;
    if (!same_shape(e, ndim, shape)) return shape_error(w, e, ndim, shape, err);
    rc = safetensors_load(&w->st, e->name, a, e->dtype, ndim, shape, out, err);
    /* the entry's name lives in the mapping, which may close before the tensor goes */
    if (rc == ERR_OK) (*out)->name = NULL;
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

err_code_t weights_check_all_used(const weights_t *w, const char *const *ignore_suffixes, int n_ignore, err_t *err) {
    size_t plen = strlen(w->prefix);
    int unused = 0;
    const char *first = NULL;
    for (int i = 0; i < w->st.n_entries; i++) {
        const char *name = w->st.entries[i].name;
        if (w->used[i] || strncmp(name, w->prefix, plen) != 0) continue;
        int ignored = 0;
        for (int k = 0; k < n_ignore && !ignored; k++) ignored = ends_with(name, ignore_suffixes[k]);
        if (ignored) continue;
        if (!first) first = name;
        unused++;
    }
    if (!unused) return ERR_OK;
    return err_set(err, ERR_MISMATCH,
                   "%s: %d tensor(s) under '%s' are not used by the model as configured, e.g. '%s' "
                   "(does the config match the checkpoint?)",
                   w->st.path, unused, w->prefix, first);
}
