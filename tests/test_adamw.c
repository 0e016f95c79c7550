/* test_adamw.c - common/adamw.c against torch.optim.AdamW.
 *
 *   adamw/<cfg>/<device>/step<s>   parameters after each step within 1e-6 of
 *                                  torch's, relative to max(1, |p|) per element
 *   adamw/<cfg>/<device>/state     moments (relative to their max) and step counts
 *   adamw/select/...               name-pattern selection (the official
 *                                  set_params patterns) and parameter groups
 * The gradients reach the parameters through the tape, as in training: the
 * loss is sum(p * g) over the parameters that have a gradient that step, so
 * d loss / d p = g exactly; parameters without one are used in a branch that
 * does not reach the loss, and adamw_note_backward must leave them unmarked.
 * Reference: tests/reference/adamw_ref.py -> adamw_ref.safetensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adamw.h"
#include "check.h"
#include "error.h"
#include "ops.h"
#include "safetensors.h"

#define REF_PATH "tests/reference/adamw_ref.safetensors"
#define MAX_PARAMS 8

static tensor_t *load(const safetensors_t *st, arena_t *a, const char *name, dtype_t want) {
    tensor_t *t = NULL;
    err_t err;
    if (safetensors_load(st, name, a, want, 0, NULL, &t, &err) != ERR_OK) fatal("%s", err.msg);
    return t;
}

static float *host_copy(const tensor_t *t) {
    float *h = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    tensor_to_host(t, h);
    return h;
}

/* max over elements of |got - want| / max(1, |want|) */
static double param_error(const float *got, const float *want, int64_t n) {
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]) / fmax(1.0, fabs((double)want[i]));
        if (!(d <= e)) e = d; /* NaN sticks */
    }
    return e;
}

/* max |got - want| / max |want| (moments are far below 1) */
static double scaled_error(const float *got, const float *want, int64_t n) {
    double d = 0.0, m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double x = fabs((double)got[i] - (double)want[i]);
        if (!(x <= d)) d = x;
        if (fabs((double)want[i]) > m) m = fabs((double)want[i]);
    }
    return m > 0.0 ? d / m : d;
}

/* One reference config on one device. */
static void run_config(const safetensors_t *st, const char *cfg, device_t device) {
    const char *dev = device_name(device);
    char key[256], name[256];
    arena_t *meta = arena_create(DEVICE_CPU, 1 << 16); /* the config's tables, kept */
    arena_t *host = arena_create(DEVICE_CPU, 1 << 20); /* per-step reference tensors, reset */
    arena_t *state = arena_create(device, 1 << 20);
    ctx_t *ctx = ctx_create(device, 1 << 20);

    snprintf(key, sizeof key, "%s.hyper", cfg);
    char key_hyper[256];
    snprintf(key_hyper, sizeof key_hyper, "%s", key);
    const float *hyper = tensor_f32(load(st, meta, key, DTYPE_F32));
    snprintf(key, sizeof key, "%s.group", cfg);
    tensor_t *group_t = load(st, meta, key, DTYPE_I64);
    snprintf(key, sizeof key, "%s.group_lr", cfg);
    tensor_t *group_lr_t = load(st, meta, key, DTYPE_F32);
    snprintf(key, sizeof key, "%s.has_grad", cfg);
    tensor_t *has_grad_t = load(st, meta, key, DTYPE_I64);
    const int64_t *group = group_t->data, *has_grad = has_grad_t->data;
    const float *group_lr = tensor_f32(group_lr_t);
    int n = (int)group_t->numel, steps = (int)group_lr_t->shape[0], n_groups = (int)group_lr_t->shape[1];
    if (n > MAX_PARAMS) fatal("%s: %d parameters", cfg, n);

    /* the metadata holds the hyperparameters as Python wrote them (double) */
    double h[5] = {hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]};
    const char *full = safetensors_meta(st, key_hyper);
    if (!full || sscanf(full, "%lf,%lf,%lf,%lf,%lf", &h[0], &h[1], &h[2], &h[3], &h[4]) != 5)
        fatal("%s: metadata %s missing or malformed", cfg, key_hyper);
    adamw_config_t c = {.lr = h[0], .beta1 = h[1], .beta2 = h[2], .eps = h[3], .weight_decay = h[4]};
    adamw_t *opt = adamw_create(state, &c);
    tensor_t *params[MAX_PARAMS];
    char names[MAX_PARAMS][64];
    const char *name_ptrs[MAX_PARAMS];
    for (int k = 0; k < n; k++) {
        snprintf(key, sizeof key, "%s.p%d.init", cfg, k);
        params[k] = tensor_copy_to(state, load(st, host, key, DTYPE_F32));
        snprintf(names[k], sizeof names[k], "model.%s.param_%d.weight", cfg, k);
        name_ptrs[k] = names[k];
    }
    /* one adamw_add_params_lr call per group, selecting its members by name */
    int ok = 1;
    for (int g = 0; g < n_groups; g++) {
        const char *patterns[MAX_PARAMS];
        char pat[MAX_PARAMS][32];
        int np = 0;
        for (int k = 0; k < n; k++) {
            if (group[k] != g) continue;
            snprintf(pat[np], sizeof pat[np], ".param_%d.", k);
            patterns[np] = pat[np];
            np++;
        }
        int added = adamw_add_params_lr(opt, params, name_ptrs, n, patterns, np, group_lr[g]);
        ok = ok && added == np;
    }
    for (int k = 0; k < n; k++) ok = ok && params[k]->requires_grad == 1 && adamw_param_group(opt, adamw_find(opt, names[k])) == group[k];
    snprintf(name, sizeof name, "adamw/%s/%s/groups", cfg, dev);
    check(ok && adamw_n_groups(opt) == n_groups, name, "groups or selection differ from the reference's");

    for (int s = 0; s < steps; s++) {
        for (int g = 0; g < n_groups; g++) adamw_set_group_lr(opt, g, group_lr[s * n_groups + g]);
        adamw_zero_grad(opt);
        /* the last step accumulates its gradients over two backward passes with
         * a ctx_reset between them (0.5 g each: exact in f32) */
        int passes = s == steps - 1 ? 2 : 1;
        int want_stepped = 0;
        for (int k = 0; k < n; k++) want_stepped += has_grad[s * n + k] != 0;
        for (int pass = 0; pass < passes; pass++) {
            tensor_t *loss = NULL;
            for (int k = 0; k < n; k++) {
                snprintf(key, sizeof key, "%s.p%d.grad%d", cfg, k, s + 1);
                tensor_t *g = tensor_copy_to(ctx->arena, load(st, host, key, DTYPE_F32));
                tensor_t *term = op_sum_all(ctx, op_mul(ctx, params[k], g));
                if (passes == 2) term = op_scale(ctx, term, 0.5f);
                if (!has_grad[s * n + k]) continue; /* computed, but off the loss's path */
                loss = loss ? op_add(ctx, loss, term) : term;
            }
            if (loss) {
                ctx_backward(ctx, loss, NULL);
                adamw_note_backward(opt, ctx);
            }
            ctx_reset(ctx);
            arena_reset(host);
        }
        int stepped = adamw_step(opt);
        double worst = 0.0;
        for (int k = 0; k < n; k++) {
            snprintf(key, sizeof key, "%s.p%d.step%d", cfg, k, s + 1);
            tensor_t *want = load(st, host, key, DTYPE_F32);
            float *got = host_copy(params[k]);
            double e = param_error(got, tensor_f32(want), want->numel);
            if (!(e <= worst)) worst = e;
            free(got);
        }
        snprintf(name, sizeof name, "adamw/%s/%s/step%d", cfg, dev, s + 1);
        check(stepped == want_stepped && worst <= 1e-6, name, "%d parameters stepped (torch %d), max error %.3g",
              stepped, want_stepped, worst);
    }

    /* moments and step counts, as a checkpoint would save them */
    ok = 1;
    char msg[512] = "";
    for (int k = 0; k < n && ok; k++) {
        tensor_t *m, *v;
        int64_t step;
        adamw_state(opt, adamw_find(opt, names[k]), &m, &v, &step);
        snprintf(key, sizeof key, "%s.p%d.state_step", cfg, k);
        int64_t want_step = *(const int64_t *)load(st, host, key, DTYPE_I64)->data;
        snprintf(key, sizeof key, "%s.p%d.exp_avg", cfg, k);
        tensor_t *wm = load(st, host, key, DTYPE_F32);
        snprintf(key, sizeof key, "%s.p%d.exp_avg_sq", cfg, k);
        tensor_t *wv = load(st, host, key, DTYPE_F32);
        float *hm = host_copy(m), *hv = host_copy(v);
        double em = scaled_error(hm, tensor_f32(wm), wm->numel), ev = scaled_error(hv, tensor_f32(wv), wv->numel);
        char want_m[128];
        snprintf(want_m, sizeof want_m, "adamw.m.%s", names[k]);
        /* the scalars are formed in double as torch forms them, so the
         * moments agree to rounding */
        if (step != want_step || !(em <= 1e-6) || !(ev <= 1e-6) || !m->name || strcmp(m->name, want_m) != 0) {
            ok = 0;
            snprintf(msg, sizeof msg, "parameter %d: step %lld (torch %lld), exp_avg error %.3g, exp_avg_sq error %.3g, m named %s",
                     k, (long long)step, (long long)want_step, em, ev, m->name ? m->name : "(none)");
        }
        free(hm);
        free(hv);
    }
    snprintf(name, sizeof name, "adamw/%s/%s/state", cfg, dev);
    check(ok && adamw_steps_taken(opt) == steps, name, "%s", msg);

    adamw_destroy(opt);
    ctx_destroy(ctx);
    arena_destroy(state);
    arena_destroy(host);
    arena_destroy(meta);
}

/* ---- name-pattern selection ---- */

static const char *const phase1_patterns[] = {"queries_embedder", "queries_features", "avs_adapt", "class_predictor",
                                              "audio_proj", "audio_embed", "silence_embed", "uncertain_embed"};
#define N_PHASE1 ((int)(sizeof phase1_patterns / sizeof phase1_patterns[0]))

typedef struct {
    const char *name;
    int phase1; /* selected by the phase-1 patterns */
} named_t;

static const named_t sample_names[] = {
    {"model.model.transformer_module.queries_embedder.weight", 1},
    {"model.model.transformer_module.queries_features.weight", 1},
    {"model.model.pixel_level_module.encoder.embeddings.patch_embeddings.projection.weight", 0},
    {"model.model.pixel_level_module.encoder.encoder.layers.2.blocks.3.swin_adapt.down.weight", 0},
    {"model.model.pixel_level_module.decoder.avs_adapt.0.fc1.bias", 1},
    {"model.class_predictor.weight", 1},
    {"model.class_predictor.bias", 1},
    {"audio_proj.0.weight", 1},
    {"model.audio_embed", 1},
    {"model.silence_embed", 1},
    {"model.uncertain_embed.weight", 1},
    {"model.model.transformer_module.decoder.layers.0.self_attn.k_proj.weight", 0},
    {"model.model.transformer_module.decoder.mask_predictor.mask_embedder.0.0.weight", 0},
    {"model.model.pixel_level_module.decoder.mask_projection.weight", 0},
    {"model.model.transformer_module.level_embed.weight", 0},
    /* matches two patterns: selected once */
    {"model.audio_proj.avs_adapt.weight", 1},
};
#define N_SAMPLE ((int)(sizeof sample_names / sizeof sample_names[0]))

static void test_selection(void) {
    arena_t *state = arena_create(DEVICE_CPU, 1 << 16);
    tensor_t *params[N_SAMPLE];
    const char *names[N_SAMPLE];
    int want = 0;
    for (int i = 0; i < N_SAMPLE; i++) {
        int64_t shape[1] = {3};
        params[i] = tensor_zeros(state, DTYPE_F32, 1, shape);
        params[i]->requires_grad = 1; /* set_params freezes everything it does not pick */
        names[i] = sample_names[i].name;
        want += sample_names[i].phase1;
    }

    /* phase 1: the official pattern list, one group */
    adamw_config_t cfg = adamw_config_default();
    adamw_t *opt = adamw_create(state, &cfg);
    int got = adamw_add_params(opt, params, names, N_SAMPLE, phase1_patterns, N_PHASE1);
    int ok = got == want && adamw_n_params(opt) == want;
    char msg[512] = "";
    for (int i = 0; i < N_SAMPLE; i++) {
        int sel = adamw_find(opt, names[i]) >= 0;
        if (sel != sample_names[i].phase1 || params[i]->requires_grad != sample_names[i].phase1 ||
            adamw_name_selected(names[i], phase1_patterns, N_PHASE1) != sample_names[i].phase1 ||
            (sel && !params[i]->grad)) {
            ok = 0;
            snprintf(msg, sizeof msg, "%s: selected %d, requires_grad %d, want %d", names[i], sel,
                     params[i]->requires_grad, sample_names[i].phase1);
        }
    }
    if (ok && got != want) snprintf(msg, sizeof msg, "%d selected, want %d", got, want);
    check(ok, "adamw/select/phase1", "%s", msg);
    adamw_destroy(opt);

    /* phase 2: the adapters at their own lr in group 0, then the phase-1 list in
     * group 1; the second call must neither re-add nor freeze group 0's members */
    for (int i = 0; i < N_SAMPLE; i++) params[i]->requires_grad = 1;
    opt = adamw_create(state, &cfg);
    const char *adapters[] = {"swin_adapt"};
    int g0 = adamw_add_params_lr(opt, params, names, N_SAMPLE, adapters, 1, 1e-4f);
    int g1 = adamw_add_params_lr(opt, params, names, N_SAMPLE, phase1_patterns, N_PHASE1, 1e-3f);
    ok = g0 == 1 && g1 == want && adamw_n_groups(opt) == 2 && adamw_group_lr(opt, 0) == 1e-4f &&
         adamw_group_lr(opt, 1) == 1e-3f;
    for (int i = 0; i < N_SAMPLE; i++) {
        int adapter = strstr(names[i], "swin_adapt") != NULL;
        int idx = adamw_find(opt, names[i]);
        int want_sel = adapter || sample_names[i].phase1;
        if ((idx >= 0) != want_sel || params[i]->requires_grad != want_sel ||
            (idx >= 0 && adamw_param_group(opt, idx) != (adapter ? 0 : 1)))
            ok = 0;
    }
    adamw_set_lr(opt, 5e-5f);
    ok = ok && adamw_group_lr(opt, 0) == 5e-5f && adamw_group_lr(opt, 1) == 5e-5f;
    check(ok, "adamw/select/phase2_groups", "group 0 added %d (want 1), group 1 added %d (want %d)", g0, g1, want);

    /* patterns == NULL selects everything not yet held */
    adamw_t *all = adamw_create(state, &cfg);
    got = adamw_add_params(all, params, names, N_SAMPLE, NULL, 0);
    check(got == N_SAMPLE, "adamw/select/all", "%d selected, want %d", got, N_SAMPLE);
    adamw_destroy(all);
    adamw_destroy(opt);
    arena_destroy(state);
}

int main(void) {
    safetensors_t st;
    err_t err;
    test_selection();
    if (safetensors_open(REF_PATH, &st, &err) != ERR_OK) {
        check(0, "adamw/reference", "%s (run from the repository root)", err.msg);
        return check_finish("test_adamw");
    }
    const char *cfgs[] = {"A", "B"};
    for (int i = 0; i < 2; i++) {
        run_config(&st, cfgs[i], DEVICE_CPU);
        if (backend_get(DEVICE_CUDA))
            run_config(&st, cfgs[i], DEVICE_CUDA);
        else
            check_skip("adamw/cuda", "config %s not run on CUDA: %s", cfgs[i],
                       backend_cuda_built() ? "no GPU on this machine" : "built with CUDA=0");
    }
    safetensors_close(&st);
    return check_finish("test_adamw");
}
