/* adamw.c - torch.optim.AdamW over named parameters (see adamw.h). */
#include "adamw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

typedef struct {
    tensor_t *p;
    char *name;     /* owned */
    char *m_name;   /* owned: "adamw.m.<name>" */
    char *v_name;   /* owned: "adamw.v.<name>" */
    tensor_t *m, *v;
    int64_t step;   /* torch's state["step"] */
    int group;
    int has_grad;   /* reached by a backward since the last zero_grad */
} adamw_param_t;

/* a parameter's address and index, sorted by address for adamw_note_backward */
typedef struct {
    const tensor_t *p;
    int index;
} param_key_t;

struct adamw {
    arena_t *arena;
    adamw_config_t cfg;
    adamw_param_t *params;
    int n, cap;
    double *group_lr;
    int n_groups;
    param_key_t *keys; /* n entries, sorted; rebuilt when stale */
    int keys_stale;
    int64_t steps_taken;
};

adamw_config_t adamw_config_default(void) {
    adamw_config_t c = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-2f};
    return c;
}

adamw_t *adamw_create(arena_t *state_arena, const adamw_config_t *cfg) {
    if (!state_arena) fatal("adamw_create: no state arena");
    adamw_t *opt = calloc(1, sizeof *opt);
    if (!opt) fatal("adamw_create: out of memory");
    opt->arena = state_arena;
    opt->cfg = cfg ? *cfg : adamw_config_default();
    return opt;
}

void adamw_destroy(adamw_t *opt) {
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) {
        free(opt->params[i].name);
        free(opt->params[i].m_name);
        free(opt->params[i].v_name);
    }
    free(opt->params);
    free(opt->group_lr);
    free(opt->keys);
    free(opt);
}

int adamw_name_selected(const char *name, const char *const *patterns, int n_patterns) {
    if (!patterns) return 1;
    for (int k = 0; k < n_patterns; k++)
        if (patterns[k] && strstr(name, patterns[k])) return 1;
    return 0;
}

static int find_param(const adamw_t *opt, const tensor_t *p) {
    for (int i = 0; i < opt->n; i++)
        if (opt->params[i].p == p) return i;
    return -1;
}

static char *concat(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s) fatal("adamw: out of memory");
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static int add_group(adamw_t *opt, tensor_t **params, const char **names, int n, const char *const *patterns,
                     int n_patterns, double lr) {
    int group = opt->n_groups;
    double *glr = realloc(opt->group_lr, (size_t)(group + 1) * sizeof *glr);
    if (!glr) fatal("adamw: out of memory");
    opt->group_lr = glr;
    opt->group_lr[group] = lr;
    opt->n_groups = group + 1;
    int added = 0;
    for (int i = 0; i < n; i++) {
        tensor_t *p = params[i];
        const char *name = names ? names[i] : p->name;
        if (!name) fatal("adamw_add_params: parameter %d has no name", i);
        if (find_param(opt, p) >= 0) continue; /* already in an earlier group */
        if (!adamw_name_selected(name, patterns, n_patterns)) {
            p->requires_grad = 0;
            continue;
        }
        if (p->dtype != DTYPE_F32) fatal("adamw_add_params: %s is %s, F32 needed", name, dtype_name(p->dtype));
        if (p->device != opt->arena->device)
            fatal("adamw_add_params: %s is on %s, the state arena on %s", name, device_name(p->device),
                  device_name(opt->arena->device));
        if (opt->n == opt->cap) {
            int cap = opt->cap ? 2 * opt->cap : 64;
            adamw_param_t *ps = realloc(opt->params, (size_t)cap * sizeof *ps);
            if (!ps) fatal("adamw: out of memory for %d parameters", cap);
            opt->params = ps;
            opt->cap = cap;
        }
        adamw_param_t *e = &opt->params[opt->n++];
        memset(e, 0, sizeof *e);
        e->p = p;
        e->name = concat("", name);
        e->m_name = concat("adamw.m.", name);
        e->v_name = concat("adamw.v.", name);
        e->group = group;
        /* torch creates the moments as zeros at a parameter's first step; zeros now is the same */
        e->m = tensor_zeros(opt->arena, DTYPE_F32, p->ndim, p->shape);
        e->v = tensor_zeros(opt->arena, DTYPE_F32, p->ndim, p->shape);
        e->m->name = e->m_name;
        e->v->name = e->v_name;
        p->requires_grad = 1;
        /* a fresh buffer even if p has one: an old one may live in a step arena */
        p->grad = NULL;
        tensor_alloc_grad(opt->arena, p);
        added++;
    }
    opt->keys_stale = 1;
    return added;
}

int adamw_add_params(adamw_t *opt, tensor_t **params, const char **names, int n, const char *const *patterns,
                     int n_patterns) {
    return add_group(opt, params, names, n, patterns, n_patterns, opt->cfg.lr);
}

int adamw_add_params_lr(adamw_t *opt, tensor_t **params, const char **names, int n, const char *const *patterns,
                        int n_patterns, double lr) {
    return add_group(opt, params, names, n, patterns, n_patterns, lr);
}

void adamw_zero_grad(adamw_t *opt) {
    for (int i = 0; i < opt->n; i++) {
        tensor_zero_grad(opt->params[i].p);
        opt->params[i].has_grad = 0;
    }
}

static int key_cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const param_key_t *)a)->p, y = (uintptr_t)((const param_key_t *)b)->p;
    return x < y ? -1 : x > y;
}

void adamw_note_backward(adamw_t *opt, const ctx_t *ctx) {
    if (opt->keys_stale) {
        param_key_t *keys = realloc(opt->keys, (size_t)(opt->n ? opt->n : 1) * sizeof *keys);
        if (!keys) fatal("adamw: out of memory");
        for (int i = 0; i < opt->n; i++) {
            keys[i].p = opt->params[i].p;
            keys[i].index = i;
        }
        qsort(keys, (size_t)opt->n, sizeof *keys, key_cmp);
        opt->keys = keys;
        opt->keys_stale = 0;
    }
    /* ctx_backward runs a node's backward exactly when its output has a
     * gradient; that backward accumulates into each input that requires grad. */
    for (int k = 0; k < ctx->n_nodes; k++) {
        const tape_node_t *node = &ctx->nodes[k];
        if (!node->out->grad) continue;
        for (int j = 0; j < node->nin; j++) {
            const tensor_t *in = node->in[j];
            if (!in || !in->requires_grad) continue;
            param_key_t key = {in, 0};
            const param_key_t *hit = bsearch(&key, opt->keys, (size_t)opt->n, sizeof key, key_cmp);
            if (hit) opt->params[hit->index].has_grad = 1;
        }
    }
}

void adamw_mark_grad(adamw_t *opt, int i) {
    if (i < 0 || i >= opt->n) fatal("adamw_mark_grad: parameter %d of %d", i, opt->n);
    opt->params[i].has_grad = 1;
}

int adamw_step(adamw_t *opt) {
    const backend_t *be = opt->arena->backend;
    const adamw_config_t *c = &opt->cfg;
    int stepped = 0;
    for (int i = 0; i < opt->n; i++) {
        adamw_param_t *e = &opt->params[i];
        if (!e->has_grad) continue; /* torch: `if p.grad is None: continue` */
        e->step++;
        /* Python forms the bias corrections and the scalars in double */
        double bc1 = 1.0 - pow((double)c->beta1, (double)e->step);
        double bc2 = 1.0 - pow((double)c->beta2, (double)e->step);
        double lr = opt->group_lr[e->group];
        adamw_scalars_t s = {
            .decay = (float)(1.0 - lr * c->weight_decay),
            .one_minus_beta1 = (float)(1.0 - c->beta1),
            .beta2 = (float)c->beta2,
            .one_minus_beta2 = (float)(1.0 - c->beta2),
            .step_size = (float)(lr / bc1),
            .bc2_sqrt = (float)sqrt(bc2),
            .eps = (float)c->eps,
        };
        be->adamw_step(tensor_f32(e->p), e->p->grad, tensor_f32(e->m), tensor_f32(e->v), e->p->numel, &s);
        stepped++;
    }
    opt->steps_taken++;
    if (stepped == 0 && opt->n > 0)
        log_msg(LOG_LEVEL_WARN, "adamw_step: none of %d parameters has a gradient "
                "(adamw_note_backward after ctx_backward marks them)", opt->n);
    return stepped;
}

void adamw_set_lr(adamw_t *opt, double lr) {
    opt->cfg.lr = lr;
    for (int g = 0; g < opt->n_groups; g++) opt->group_lr[g] = lr;
}

void adamw_set_group_lr(adamw_t *opt, int group, double lr) {
    if (group < 0 || group >= opt->n_groups) fatal("adamw_set_group_lr: group %d of %d", group, opt->n_groups);
    opt->group_lr[group] = lr;
}

double adamw_group_lr(const adamw_t *opt, int group) {
    if (group < 0 || group >= opt->n_groups) fatal("adamw_group_lr: group %d of %d", group, opt->n_groups);
    return opt->group_lr[group];
}

int adamw_n_groups(const adamw_t *opt) { return opt->n_groups; }
int adamw_n_params(const adamw_t *opt) { return opt->n; }
int64_t adamw_steps_taken(const adamw_t *opt) { return opt->steps_taken; }

tensor_t *adamw_param(const adamw_t *opt, int i, const char **name) {
    if (i < 0 || i >= opt->n) return NULL;
    if (name) *name = opt->params[i].name;
    return opt->params[i].p;
}

int adamw_find(const adamw_t *opt, const char *name) {
    for (int i = 0; i < opt->n; i++)
        if (strcmp(opt->params[i].name, name) == 0) return i;
    return -1;
}

void adamw_state(const adamw_t *opt, int i, tensor_t **m, tensor_t **v, int64_t *step) {
    if (i < 0 || i >= opt->n) fatal("adamw_state: parameter %d of %d", i, opt->n);
    if (m) *m = opt->params[i].m;
    if (v) *v = opt->params[i].v;
    if (step) *step = opt->params[i].step;
}

void adamw_set_step(adamw_t *opt, int i, int64_t step) {
    if (i < 0 || i >= opt->n) fatal("adamw_set_step: parameter %d of %d", i, opt->n);
    opt->params[i].step = step;
}

int adamw_param_group(const adamw_t *opt, int i) {
    if (i < 0 || i >= opt->n) fatal("adamw_param_group: parameter %d of %d", i, opt->n);
    return opt->params[i].group;
}
