/* weights.h - a model's named parameters, loaded from a .safetensors file.
 *
 * Two pieces, used together by every model module (Swin, pixel decoder,
 * transformer decoder, VGGish):
 *
 * param_list_t: the parameters of a model, each a tensor in a parameter arena
 *   (never reset while the model lives) under a name. The names and tensors are
 *   parallel arrays so they go to adamw_add_params() as they are, and an
 *   optimizer selects parameters by name as the official set_params does.
 *
 * weights_t: an open weights file with the naming prefix resolved. Users bring
 *   the same network under different prefixes (an AAVS checkpoint stores the
 *   backbone under "model.model.pixel_level_module.encoder.", a HuggingFace
 *   Mask2Former under "model.pixel_level_module.encoder.", a bare Swin under "");
 *   weights_select_prefix() picks the one the file uses, and weights_load()
 *   then takes names relative to it. Every tensor is loaded as F32 with its
 *   shape checked; a problem is an error naming the tensor as the file spells
 *   it, with the expected and the found shape or dtype:
 *     ERR_NOTFOUND  the tensor is absent
 *     ERR_MISMATCH  its shape differs, or its dtype is not a float type
 *                   (F32, F16 and BF16 are accepted and converted to F32)
 *   so a wrong file is never silently loaded as random or partial weights.
 *   weights_check_all_used() finds the opposite mistake: tensors under the
 *   prefix the model never asked for (a config with fewer layers than the
 *   checkpoint).
 *
 * Typical use:
 *   param_list_t params; param_list_init(&params, param_arena);
 *   weights_t w;  weights_open(path, &w, &err);
 *   weights_select_prefix(&w, prefixes, n, "embeddings.norm.weight", &err);
 *   weights_load(&w, "embeddings.norm.weight", 1, shape, &params, "backbone.", &t, &err);
 *   ...
 *   weights_check_all_used(&w, NULL, 0, &err);
 *   weights_close(&w);      (the tensors stay in the arena) */
#ifndef STEPSTONE_WEIGHTS_H
#define STEPSTONE_WEIGHTS_H

#include "error.h"
#include "safetensors.h"
#include "tensor.h"

/* ---- the parameters of a model ---- */
typedef struct {
    arena_t *arena;     /* where the tensors live; not owned, never reset */
    tensor_t **tensors; /* tensors[i] is named names[i]; the arrays are owned */
    const char **names; /* the strings live in the arena's host memory, with the tensors */
    int count, capacity;
} param_list_t;

void param_list_init(param_list_t *pl, arena_t *arena);
/* Frees the arrays; the tensors and their names belong to the arena. */
void param_list_free(param_list_t *pl);
/* Registers t under name (copied into the arena); t->name points at the copy. ERR_ARG when
 * the name is already taken, ERR_NOMEM when memory is short. */
err_code_t param_list_add(param_list_t *pl, const char *name, tensor_t *t, err_t *err);
/* A new zeroed F32 tensor in pl's arena, registered under name. */
err_code_t param_list_add_zeros(param_list_t *pl, const char *name, int ndim, const int64_t *shape, tensor_t **out,
                                err_t *err);
/* The tensor named name, or NULL. */
tensor_t *param_list_find(const param_list_t *pl, const char *name);

/* ---- an open weights file ---- */
typedef struct {
    safetensors_t st;
    char *prefix;        /* the resolved naming prefix (owned; "" until selected) */
    unsigned char *used; /* used[i]: entry i of st was loaded */
} weights_t;

/* Maps and validates path (safetensors_open). On error nothing needs closing. */
err_code_t weights_open(const char *path, weights_t *w, err_t *err);
void weights_close(weights_t *w);

/* Picks the first candidate prefix for which prefix + probe names a tensor of
 * the file, and makes it the prefix of later calls. ERR_NOTFOUND, listing every
 * candidate tried, when none fits. */
err_code_t weights_select_prefix(weights_t *w, const char *const *candidates, int n_candidates, const char *probe,
                                 err_t *err);
/* Nonzero when prefix + name is a tensor of the file. */
int weights_has(const weights_t *w, const char *name);

/* Loads prefix + name as a new F32 tensor of pl's arena whose shape must be
 * shape[0..ndim), and registers it in pl as param_prefix + name (param_prefix
 * may be NULL for none). Errors as described above, naming the file's tensor. */
err_code_t weights_load(weights_t *w, const char *name, int ndim, const int64_t *shape, param_list_t *pl,
                        const char *param_prefix, tensor_t **out, err_t *err);
/* Loads prefix + name as a non-trainable buffer (any dtype, kept as the file
 * stores it) into arena a, shape checked; not registered as a parameter. */
err_code_t weights_load_buffer(weights_t *w, const char *name, int ndim, const int64_t *shape, arena_t *a,
                               tensor_t **out, err_t *err);

/* ERR_MISMATCH naming the first tensor under the prefix that was not loaded,
 * and how many there are, unless its name ends with one of ignore_suffixes
 * (buffers a module recomputes, such as Swin's "relative_position_index"). */
err_code_t weights_check_all_used(const weights_t *w, const char *const *ignore_suffixes, int n_ignore, err_t *err);

#endif
