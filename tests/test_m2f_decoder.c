/* test_m2f_decoder.c - the transformer decoder with the AAVS additions:
 *   m2f_decoder/golden-<case>/...  parity of every output and debug tensor with
 *                                  the official code (../shared/golden, both
 *                                  variants), from the expected pixel decoder
 *                                  outputs; attention masks exactly equal; on
 *                                  CUDA too when a GPU is present;
 *   m2f_decoder/grad/<variant>     central differences through the whole decoder
 *                                  (every parameter and the inputs) on a tiny
 *                                  random config, and a check that the tolerance
 *                                  catches a gradient 10% off;
 *   m2f_decoder/cuda_vs_cpu        forward and gradients on both backends;
 *   m2f_decoder/config/...         configs that must be refused;
 *   m2f_decoder/load/...           official names, a plain HF checkpoint
 *                                  completed, tensors missing or unused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "m2f_decoder.h"
#include "ops.h"
#include "rng.h"

/* max |got - want| / max(1, max |want|), the golden README's activations tolerance */
#define PARITY_TOL 1e-4

static char tmp_dir[] = "/tmp/stepstone-test-m2f-decoder-XXXXXX";

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static float *to_host(const tensor_t *t) {
    float *h = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!h) abort();
    tensor_to_host(t, h);
    return h;
}

static int has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

/* ---- comparisons with the expected file ---- */

/* Relative error of got against expected tensor `name` (F32), or INFINITY when
 * it is missing or of another shape. For BOOL/I64 tensors: 0 when every element
 * is equal, else the number of differing elements. */
static double compare(const safetensors_t *expected, const char *name, const tensor_t *got, int *exact_kind) {
    const st_entry_t *e = safetensors_find(expected, name);
    *exact_kind = got->dtype != DTYPE_F32;
    if (!e || e->numel != got->numel || e->ndim != got->ndim || e->dtype != got->dtype) return INFINITY;
    for (int i = 0; i < e->ndim; i++)
        if (e->shape[i] != got->shape[i]) return INFINITY;
    size_t bytes = (size_t)e->numel * dtype_size(e->dtype);
    unsigned char *have = malloc(bytes ? bytes : 1);
    tensor_to_host(got, have);
    double r;
    if (got->dtype == DTYPE_F32) {
        float *want = malloc(bytes ? bytes : 1);
        memcpy(want, e->data, bytes);
        r = rel_error((const float *)have, want, e->numel);
        free(want);
    } else {
        size_t es = dtype_size(e->dtype);
        int64_t differ = 0;
        for (int64_t i = 0; i < e->numel; i++)
            differ += memcmp(have + (size_t)i * es, (const unsigned char *)e->data + (size_t)i * es, es) != 0;
        r = (double)differ;
    }
    free(have);
    return r;
}

typedef struct {
    const safetensors_t *expected;
    const char *label;
    int compared, failed;
    char first_bad[256];
} debug_compare_t;

static void on_debug(void *user, const char *name, const tensor_t *t) {
    debug_compare_t *d = user;
    char full[256], cname[512];
    snprintf(full, sizeof full, "debug.%s", name);
    if (!safetensors_find(d->expected, full)) return;
    int exact;
    double r = compare(d->expected, full, t, &exact);
    int ok = exact ? r == 0.0 : r <= PARITY_TOL;
    d->compared++;
    if (exact) printf("#   %-58s %s\n", full, r == 0.0 ? "equal" : isinf(r) ? "missing or other shape" : "DIFFERS");
    else printf("#   %-58s rel %.3g\n", full, r);
    if (!ok) {
        d->failed++;
        if (!d->first_bad[0]) snprintf(d->first_bad, sizeof d->first_bad, "%s", full);
        snprintf(cname, sizeof cname, "m2f_decoder/%s/%s", d->label, full);
        check(0, cname, "%s %.3g", exact ? "differing elements" : "rel error", r);
    }
}

/* ---- a golden case ---- */

typedef struct {
    arena_t *param_arena;
    param_list_t params;
    m2f_decoder_t *dec;
    safetensors_t inputs, expected;
} golden_t;

static void golden_close(golden_t *g) {
    safetensors_close(&g->inputs);
    safetensors_close(&g->expected);
    m2f_decoder_free(g->dec);
    param_list_free(&g->params);
    arena_destroy(g->param_arena);
}

static err_code_t read_variant(const char *dir, m2f_variant_t *v, err_t *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/harness.json", dir);
    config_t h;
    err_code_t rc = config_load(path, &h, err);
    const char *name = NULL;
    if (rc == ERR_OK) rc = config_get_string(&h, "variant", &name, err);
    if (rc == ERR_OK) {
        if (strcmp(name, "avs") == 0) *v = M2F_VARIANT_AVS;
        else if (strcmp(name, "avss") == 0) *v = M2F_VARIANT_AVSS;
        else rc = err_set(err, ERR_FORMAT, "%s: unknown variant '%s'", path, name);
    }
    config_free(&h);
    return rc;
}

static err_code_t golden_open(device_t device, const char *dir, golden_t *g, err_t *err) {
    memset(g, 0, sizeof *g);
    g->param_arena = arena_create(device, 1 << 20);
    param_list_init(&g->params, g->param_arena);
    char path[1024];
    m2f_variant_t variant = M2F_VARIANT_AVS;
    config_t cfg;
    m2f_decoder_config_t dc;
    err_code_t rc = read_variant(dir, &variant, err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (rc == ERR_OK && (rc = config_load(path, &cfg, err)) == ERR_OK) {
        rc = m2f_decoder_config_from_json(&cfg, variant, &dc, err);
        config_free(&cfg);
    }
    weights_t w;
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if (rc == ERR_OK && (rc = weights_open(path, &w, err)) == ERR_OK) {
        rc = m2f_decoder_load(&dc, &w, &g->params, 1, &g->dec, err);
        weights_close(&w);
    }
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (rc == ERR_OK) rc = safetensors_open(path, &g->inputs, err);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (rc == ERR_OK) rc = safetensors_open(path, &g->expected, err);
    return rc;
}

static tensor_t *load_input(ctx_t *ctx, const safetensors_t *st, const char *name) {
    tensor_t *t;
    err_t err;
    if (safetensors_load(st, name, ctx->arena, DTYPE_F32, 0, NULL, &t, &err) != ERR_OK) fatal("%s", err.msg);
    return t;
}

/* Runs the decoder on the golden inputs; out gets the outputs. */
static void golden_forward(ctx_t *ctx, const golden_t *g, m2f_decoder_output_t *out, m2f_debug_fn_t debug,
                           void *user) {
    tensor_t *features[M2F_LEVELS];
    for (int i = 0; i < M2F_LEVELS; i++) {
        char name[96];
        snprintf(name, sizeof name, "pixel_decoder.multi_scale_features.%d", i);
        features[i] = load_input(ctx, &g->expected, name);
    }
    tensor_t *mask_features = load_input(ctx, &g->expected, "pixel_decoder.mask_features");
    tensor_t *audio = load_input(ctx, &g->inputs, "audio_embeddings");
    tensor_t *boost = g->dec->cfg.variant == M2F_VARIANT_AVSS ? load_input(ctx, &g->inputs, "audio_boost_mask") : NULL;
    m2f_decoder_forward(ctx, g->dec, features, mask_features, audio, boost, out, debug, user);
}

static void check_output(const golden_t *g, const char *label, const char *name, const tensor_t *got) {
    char cname[512];
    int exact;
    double r = compare(&g->expected, name, got, &exact);
    snprintf(cname, sizeof cname, "m2f_decoder/%s/%s", label, name);
    printf("#   %-58s rel %.3g\n", name, r);
    check(r <= PARITY_TOL, cname, "rel error %.3g > %g", r, PARITY_TOL);
}

static void check_golden_case(ctx_t *ctx, const char *dir, const char *label) {
    golden_t g;
    err_t err = {0};
    char name[512];
    err_code_t rc = golden_open(ctx->device, dir, &g, &err);
    snprintf(name, sizeof name, "m2f_decoder/%s/load", label);
    if (check(rc == ERR_OK, name, "%s", err.msg)) {
        debug_compare_t dbg = {.expected = &g.expected, .label = label};
        m2f_decoder_output_t out;
        int old = ctx_set_grad(ctx, 0);
        golden_forward(ctx, &g, &out, on_debug, &dbg);
        ctx_set_grad(ctx, old);
        int n = out.n_predictions;
        check_output(&g, label, "class_queries_logits", out.class_logits[n - 1]);
        check_output(&g, label, "masks_queries_logits", out.mask_logits[n - 1]);
        for (int i = 0; i + 1 < n; i++) {
            char key[96];
            snprintf(key, sizeof key, "aux.%d.class_queries_logits", i);
            check_output(&g, label, key, out.class_logits[i]);
            snprintf(key, sizeof key, "aux.%d.masks_queries_logits", i);
            check_output(&g, label, key, out.mask_logits[i]);
        }
        /* every debug tensor the golden file has for the decoder was compared:
         * 2 audio, 1 mask features, 2 queries, 6 levels, 3 per layer, n intermediate, 1 last state */
        int want = 2 + 1 + 2 + 2 * M2F_LEVELS + 3 * (n - 1) + n + 1;
        snprintf(name, sizeof name, "m2f_decoder/%s/debug_tensors", label);
        check(dbg.compared == want && dbg.failed == 0, name, "%d of %d compared, %d off (first: %s)", dbg.compared,
              want, dbg.failed, dbg.first_bad[0] ? dbg.first_bad : "none");
    }
    ctx_reset(ctx);
    golden_close(&g);
}

static void test_golden(ctx_t *ctx, const char *suffix) {
    const char *shared = shared_dir();
    static const char *const cases[] = {"avs-tiny", "avss-tiny"};
    for (int i = 0; i < 2; i++) {
        char dir[512], label[256];
        snprintf(label, sizeof label, "golden-%s%s", cases[i], suffix);
        if (shared) snprintf(dir, sizeof dir, "%s/golden/%s", shared, cases[i]);
        if (!shared || !exists(dir)) {
            char n[300];
            snprintf(n, sizeof n, "m2f_decoder/%s", label);
            check_skip(n, "no shared data (golden/%s; set STEPSTONE_SHARED)", cases[i]);
            continue;
        }
        check_golden_case(ctx, dir, label);
    }
}

/* ---- gradients by central differences on a tiny random config ---- */

typedef struct {
    ctx_t *ctx;
    const m2f_decoder_t *dec;
    int64_t f;
    int64_t level_h[M2F_LEVELS], level_w[M2F_LEVELS], hm, wm, hb, wb;
    float *features[M2F_LEVELS], *mask_features, *audio, *boost; /* host inputs */
    float *r;                /* host weights of the objective, over every output in order */
    int64_t r_len;
    uint64_t mask_hash;      /* of the attention masks of the last run */
} grad_case_t;

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void hash_masks(void *user, const char *name, const tensor_t *t) {
    grad_case_t *gc = user;
    if (!strstr(name, "attn_mask")) return;
    unsigned char *bytes = malloc((size_t)t->numel);
    tensor_to_host(t, bytes);
    gc->mask_hash = fnv1a(gc->mask_hash, bytes, (size_t)t->numel);
    free(bytes);
}

/* The input tensors of the case on ctx's device, wanting gradients when asked. */
static void make_inputs(const grad_case_t *gc, int want_grad, tensor_t **features, tensor_t **mask_features,
                        tensor_t **audio, tensor_t **boost) {
    const m2f_decoder_config_t *c = &gc->dec->cfg;
    arena_t *a = gc->ctx->arena;
    for (int i = 0; i < M2F_LEVELS; i++) {
        features[i] = tensor_from_host(a, DTYPE_F32, 4,
                                       (int64_t[]){gc->f, c->hidden_dim, gc->level_h[i], gc->level_w[i]},
                                       gc->features[i]);
        features[i]->requires_grad = want_grad;
    }
    *mask_features =
        tensor_from_host(a, DTYPE_F32, 4, (int64_t[]){gc->f, c->mask_feature_size, gc->hm, gc->wm}, gc->mask_features);
    (*mask_features)->requires_grad = want_grad;
    *audio = tensor_from_host(a, DTYPE_F32, 2, (int64_t[]){gc->f, c->audio_dim}, gc->audio);
    (*audio)->requires_grad = want_grad;
    *boost = c->variant == M2F_VARIANT_AVSS
                 ? tensor_from_host(a, DTYPE_F32, 3, (int64_t[]){gc->f, gc->hb, gc->wb}, gc->boost)
                 : NULL;
}

/* Every output in a fixed order: the class and mask logits of each prediction. */
static int outputs(const m2f_decoder_output_t *o, tensor_t **list) {
    int n = 0;
    for (int i = 0; i < o->n_predictions; i++) {
        list[n++] = o->class_logits[i];
        list[n++] = o->mask_logits[i];
    }
    return n;
}

/* sum(out * r) over every output, in double; with grads, backward from it
 * (the inputs' gradients are written to in_grads[0..4] when non-NULL). */
static double objective(grad_case_t *gc, int with_grad, float **in_grads) {
    ctx_t *ctx = gc->ctx;
    int old = ctx_set_grad(ctx, with_grad);
    tensor_t *features[M2F_LEVELS], *mask_features, *audio, *boost;
    make_inputs(gc, with_grad, features, &mask_features, &audio, &boost);
    m2f_decoder_output_t o;
    gc->mask_hash = 1469598103934665603ull;
    m2f_decoder_forward(ctx, gc->dec, features, mask_features, audio, boost, &o, hash_masks, gc);
    tensor_t *list[128];
    int n = outputs(&o, list);
    double s = 0.0;
    int64_t at = 0;
    for (int k = 0; k < n; k++) {
        float *h = to_host(list[k]);
        for (int64_t i = 0; i < list[k]->numel; i++) s += (double)h[i] * (double)gc->r[at + i];
        free(h);
        at += list[k]->numel;
    }
    if (at != gc->r_len) fatal("objective: %lld outputs, %lld weights", (long long)at, (long long)gc->r_len);
    if (with_grad) {
        /* one scalar: sum_k sum(out_k * r_k) on the tape */
        tensor_t *total = NULL;
        at = 0;
        for (int k = 0; k < n; k++) {
            tensor_t *rk = tensor_from_host(ctx->arena, DTYPE_F32, list[k]->ndim, list[k]->shape, gc->r + at);
            tensor_t *term = op_sum_all(ctx, op_mul(ctx, list[k], rk));
            total = total ? op_add(ctx, total, term) : term;
            at += list[k]->numel;
        }
        ctx_backward(ctx, total, NULL);
        tensor_t *ins[5] = {features[0], features[1], features[2], mask_features, audio};
        for (int i = 0; i < 5 && in_grads; i++) {
            float *g = ins[i]->grad;
            tensor_t tmp = *ins[i];
            tmp.data = g;
            if (g) tensor_to_host(&tmp, in_grads[i]);
            else memset(in_grads[i], 0, (size_t)ins[i]->numel * sizeof(float));
        }
    }
    ctx_set_grad(ctx, old);
    ctx_reset(ctx);
    return s;
}

typedef struct {
    int points, skipped_flips, checked;
    double worst;
} fd_stats_t;

/* Central differences of the objective at a few elements of data[0..n) (host
 * memory the forward reads: the CPU parameters or the host inputs) against
 * grad. A perturbation that changes an attention mask (a step function of the
 * mask logits) measures the step, not the gradient: such elements are skipped
 * and counted. */
static int fd_check(grad_case_t *gc, float *data, const float *grad, int64_t n, const char *what, fd_stats_t *st,
                    char *msg, size_t msg_size) {
    /* float32 forward: the objective carries ~1e-6 relative rounding noise, so
     * a step of 1e-2 and an absolute floor keep noise / (2 step) well inside */
    const double rtol = 2e-2, atol = 3e-3, eps = 1e-2;
    int64_t step = n > st->points ? n / st->points : 1;
    objective(gc, 0, NULL);
    uint64_t base_hash = gc->mask_hash;
    for (int64_t i = n > st->points ? step / 2 : 0; i < n; i += step) {
        float keep = data[i];
        float h = (float)(eps * fmax(1.0, fabs(keep)));
        data[i] = keep + h;
        double up = objective(gc, 0, NULL);
        uint64_t up_hash = gc->mask_hash;
        data[i] = keep - h;
        double down = objective(gc, 0, NULL);
        uint64_t down_hash = gc->mask_hash;
        data[i] = keep;
        if (up_hash != base_hash || down_hash != base_hash) {
            st->skipped_flips++;
            continue;
        }
        st->checked++;
        double num = (up - down) / (2.0 * (double)h), ana = grad[i];
        double err = fabs(num - ana) / (fmax(fabs(num), fabs(ana)) + atol / rtol);
        if (err > st->worst) st->worst = err;
        if (!(fabs(num - ana) <= rtol * fmax(fabs(num), fabs(ana)) + atol)) {
            snprintf(msg, msg_size, "%s element %lld: analytic %.6g, numeric %.6g", what, (long long)i, ana, num);
            return 0;
        }
    }
    return 1;
}

static m2f_decoder_config_t tiny_config(m2f_variant_t variant) {
    /* 4 layers: the levels wrap around (layer 3 attends to level 0 again);
     * mask features of another width than the queries */
    m2f_decoder_config_t c = {.variant = variant, .hidden_dim = 8, .mask_feature_size = 6, .num_queries = 3,
                              .num_layers = 4, .num_heads = 2, .dim_feedforward = 16, .activation = M2F_ACT_RELU,
                              .num_labels = 2, .audio_dim = 5, .audio_hidden = 7, .init_std = 0.02f,
                              .init_xavier_std = 1.0f};
    return c;
}

/* Keeps the ReLU inputs far from 0 (biases +-3, smaller weights): a finite
 * difference across a kink measures nothing (ReLU itself is checked in
 * test_ops); layer norms near 1 so the layers are well conditioned. */
static void condition_for_fd(param_list_t *params) {
    for (int i = 0; i < params->count; i++) {
        float *d = tensor_f32(params->tensors[i]);
        const char *pn = params->names[i];
        int relu_in = strstr(pn, "avs_adapt.0.") || strstr(pn, ".fc1.") || strstr(pn, "mask_embedder.0.0.") ||
                      strstr(pn, "mask_embedder.1.0.") || strstr(pn, "audio_proj.0.");
        int norm_w = strstr(pn, "norm") && strstr(pn, "weight");
        for (int64_t k = 0; k < params->tensors[i]->numel; k++) {
            if (norm_w) d[k] += 1.0f;
            if (relu_in && strstr(pn, "bias")) d[k] = k % 2 ? -3.0f : 3.0f;
            if (relu_in && strstr(pn, "weight")) d[k] *= 0.3f;
        }
    }
}

static void fill_normal(rng_t *rng, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)rng_normal(rng) * scale;
}

static void grad_case_init(grad_case_t *gc, ctx_t *ctx, const m2f_decoder_t *dec, uint64_t seed) {
    const m2f_decoder_config_t *c = &dec->cfg;
    memset(gc, 0, sizeof *gc);
    gc->ctx = ctx;
    gc->dec = dec;
    gc->f = 2;
    /* non-square levels, coarsest first; the boost mask at a size of its own */
    const int64_t lh[M2F_LEVELS] = {2, 3, 4}, lw[M2F_LEVELS] = {3, 4, 5};
    gc->hm = 5;
    gc->wm = 7;
    gc->hb = 6;
    gc->wb = 9;
    rng_t rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < M2F_LEVELS; i++) {
        gc->level_h[i] = lh[i];
        gc->level_w[i] = lw[i];
        int64_t n = gc->f * c->hidden_dim * lh[i] * lw[i];
        gc->features[i] = malloc((size_t)n * sizeof(float));
        fill_normal(&rng, gc->features[i], n, 1.0f);
    }
    int64_t nm = gc->f * c->mask_feature_size * gc->hm * gc->wm, na = gc->f * c->audio_dim,
            nb = gc->f * gc->hb * gc->wb;
    gc->mask_features = malloc((size_t)nm * sizeof(float));
    fill_normal(&rng, gc->mask_features, nm, 1.0f);
    gc->audio = malloc((size_t)na * sizeof(float));
    fill_normal(&rng, gc->audio, na, 1.0f);
    gc->boost = malloc((size_t)nb * sizeof(float));
    for (int64_t i = 0; i < nb; i++) gc->boost[i] = rng_float(&rng);
    /* the objective's weights over every output: (L + 1 + H W) F Q per prediction */
    gc->r_len = (int64_t)(c->num_layers + 1) * gc->f * c->num_queries * (c->num_labels + 1 + gc->hm * gc->wm);
    gc->r = malloc((size_t)gc->r_len * sizeof(float));
    fill_normal(&rng, gc->r, gc->r_len, 1.0f);
}

static void grad_case_free(grad_case_t *gc) {
    for (int i = 0; i < M2F_LEVELS; i++) free(gc->features[i]);
    free(gc->mask_features);
    free(gc->audio);
    free(gc->boost);
    free(gc->r);
}

static void test_gradients(m2f_variant_t variant) {
    const char *vname = variant == M2F_VARIANT_AVSS ? "avss" : "avs";
    m2f_decoder_config_t c = tiny_config(variant);
    arena_t *pa = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    param_list_init(&params, pa);
    m2f_decoder_t *dec = m2f_decoder_random(&c, &params, 11, 0.5f);
    condition_for_fd(&params);
    ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
    grad_case_t gc;
    grad_case_init(&gc, ctx, dec, 5);
    char name[256], msg[512] = "";

    /* recording the tape must not change the forward */
    double plain = objective(&gc, 0, NULL);
    for (int k = 0; k < params.count; k++) {
        tensor_alloc_grad(pa, params.tensors[k]);
        params.tensors[k]->requires_grad = 1;
        tensor_zero_grad(params.tensors[k]);
    }
    int64_t in_n[5];
    for (int i = 0; i < M2F_LEVELS; i++) in_n[i] = gc.f * c.hidden_dim * gc.level_h[i] * gc.level_w[i];
    in_n[3] = gc.f * c.mask_feature_size * gc.hm * gc.wm;
    in_n[4] = gc.f * c.audio_dim;
    float *in_grads[5];
    for (int i = 0; i < 5; i++) in_grads[i] = malloc((size_t)in_n[i] * sizeof(float));
    double taped = objective(&gc, 1, in_grads);
    snprintf(name, sizeof name, "m2f_decoder/grad/%s/forward_same_with_tape", vname);
    check(fabs(taped - plain) <= 1e-6 * fmax(1.0, fabs(plain)), name, "%.9g vs %.9g", taped, plain);

    float **grads = malloc((size_t)params.count * sizeof *grads);
    for (int k = 0; k < params.count; k++) {
        grads[k] = malloc((size_t)params.tensors[k]->numel * sizeof(float));
        memcpy(grads[k], params.tensors[k]->grad, (size_t)params.tensors[k]->numel * sizeof(float));
        params.tensors[k]->requires_grad = 0; /* the objective runs without a tape */
    }
    /* avs never uses self_attn.out_proj (the avs copy comments it out): no gradient */
    double unused = 0.0;
    for (int k = 0; k < params.count; k++)
        if (strstr(params.names[k], "self_attn.out_proj"))
            for (int64_t i = 0; i < params.tensors[k]->numel; i++) unused += fabs(grads[k][i]);
    snprintf(name, sizeof name, "m2f_decoder/grad/%s/out_proj_%s", vname,
             variant == M2F_VARIANT_AVS ? "unused" : "used");
    check(variant == M2F_VARIANT_AVS ? unused == 0.0 : unused > 0.0, name, "sum |grad| of self_attn.out_proj %.3g",
          unused);

    fd_stats_t st = {.points = 5};
    const char *in_names[5] = {"multi_scale_features.0", "multi_scale_features.1", "multi_scale_features.2",
                               "mask_features", "audio_embeddings"};
    int ok = 1;
    for (int i = 0; i < 5 && ok; i++) {
        float *data = i < M2F_LEVELS ? gc.features[i] : i == 3 ? gc.mask_features : gc.audio;
        ok = fd_check(&gc, data, in_grads[i], in_n[i], in_names[i], &st, msg, sizeof msg);
    }
    int checked_params = 0;
    for (int k = 0; k < params.count && ok; k++) {
        if (variant == M2F_VARIANT_AVS && strstr(params.names[k], "self_attn.out_proj")) continue;
        ok = fd_check(&gc, tensor_f32(params.tensors[k]), grads[k], params.tensors[k]->numel, params.names[k], &st,
                      msg, sizeof msg);
        checked_params++;
    }
    snprintf(name, sizeof name, "m2f_decoder/grad/%s/fd", vname);
    printf("#   %s: %d parameters + 5 inputs, %d elements checked, %d skipped (an attention mask flipped), "
           "worst relative error %.3g\n",
           name, checked_params, st.checked, st.skipped_flips, st.worst);
    check(ok && st.skipped_flips * 10 <= st.checked, name, "%s (%d checked, %d skipped)", msg, st.checked,
          st.skipped_flips);

    /* the tolerance catches a gradient 10% off: the prompt embeddings (avss) or
     * queries_embedder (avs) with their analytic gradient scaled */
    const char *probe = variant == M2F_VARIANT_AVSS ? "uncertain_embed" : "queries_embedder";
    for (int k = 0; k < params.count; k++) {
        if (!strstr(params.names[k], probe)) continue;
        int64_t n = params.tensors[k]->numel;
        float *off = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) off[i] = grads[k][i] * 1.1f;
        fd_stats_t st2 = {.points = 8};
        int caught = !fd_check(&gc, tensor_f32(params.tensors[k]), off, n, params.names[k], &st2, msg, sizeof msg);
        snprintf(name, sizeof name, "m2f_decoder/grad/%s/tolerance_catches_10pct", vname);
        check(caught, name, "a gradient of %s 10%% off passed", params.names[k]);
        free(off);
        break;
    }

    for (int k = 0; k < params.count; k++) free(grads[k]);
    free(grads);
    for (int i = 0; i < 5; i++) free(in_grads[i]);
    grad_case_free(&gc);
    ctx_destroy(ctx);
    m2f_decoder_free(dec);
    param_list_free(&params);
    arena_destroy(pa);
}

/* ---- CUDA against the CPU ---- */

typedef struct {
    double forward, grads;
} device_diff_t;

/* Runs the tiny avss case with gradients on ctx; fills host copies of every
 * output and every parameter gradient (concatenated) */
static float *run_on(ctx_t *ctx, uint64_t seed, int64_t *n_out, float **grads_out, int64_t *n_grads) {
    m2f_decoder_config_t c = tiny_config(M2F_VARIANT_AVSS);
    arena_t *pa = arena_create(ctx->device, 1 << 20);
    param_list_t params;
    param_list_init(&params, pa);
    m2f_decoder_t *dec = m2f_decoder_random(&c, &params, seed, 0.5f);
    int64_t ng = 0;
    for (int k = 0; k < params.count; k++) {
        tensor_alloc_grad(pa, params.tensors[k]);
        params.tensors[k]->requires_grad = 1;
        ng += params.tensors[k]->numel;
    }
    grad_case_t gc;
    grad_case_init(&gc, ctx, dec, 5);
    int old = ctx_set_grad(ctx, 1);
    tensor_t *features[M2F_LEVELS], *mask_features, *audio, *boost;
    make_inputs(&gc, 1, features, &mask_features, &audio, &boost);
    m2f_decoder_output_t o;
    m2f_decoder_forward(ctx, dec, features, mask_features, audio, boost, &o, NULL, NULL);
    tensor_t *list[128];
    int n = outputs(&o, list);
    float *all = malloc((size_t)gc.r_len * sizeof(float));
    tensor_t *total = NULL;
    int64_t at = 0;
    for (int k = 0; k < n; k++) {
        tensor_to_host(list[k], all + at);
        tensor_t *rk = tensor_from_host(ctx->arena, DTYPE_F32, list[k]->ndim, list[k]->shape, gc.r + at);
        tensor_t *term = op_sum_all(ctx, op_mul(ctx, list[k], rk));
        total = total ? op_add(ctx, total, term) : term;
        at += list[k]->numel;
    }
    ctx_backward(ctx, total, NULL);
    float *g = malloc((size_t)ng * sizeof(float));
    int64_t gat = 0;
    for (int k = 0; k < params.count; k++) {
        tensor_t tmp = *params.tensors[k];
        tmp.data = params.tensors[k]->grad;
        tensor_to_host(&tmp, g + gat);
        gat += tmp.numel;
    }
    ctx_set_grad(ctx, old);
    ctx_reset(ctx);
    *n_out = at;
    *grads_out = g;
    *n_grads = ng;
    grad_case_free(&gc);
    m2f_decoder_free(dec);
    param_list_free(&params);
    arena_destroy(pa);
    return all;
}

static void test_cuda_vs_cpu(ctx_t *cpu, ctx_t *gpu) {
    int64_t n1, n2, g1, g2;
    float *gr1, *gr2;
    float *o1 = run_on(cpu, 21, &n1, &gr1, &g1);
    float *o2 = run_on(gpu, 21, &n2, &gr2, &g2);
    double fo = n1 == n2 ? rel_error(o2, o1, n1) : INFINITY;
    double fg = g1 == g2 ? rel_error(gr2, gr1, g1) : INFINITY;
    printf("#   m2f_decoder/cuda_vs_cpu: outputs rel %.3g, parameter gradients rel %.3g\n", fo, fg);
    check(fo <= PARITY_TOL, "m2f_decoder/cuda_vs_cpu/forward", "rel %.3g", fo);
    check(fg <= 1e-3, "m2f_decoder/cuda_vs_cpu/grads", "rel %.3g", fg);
    free(o1);
    free(o2);
    free(gr1);
    free(gr2);
}

/* ---- configs that must be refused ---- */

static err_code_t config_from_text(const char *text, m2f_decoder_config_t *dc, err_t *err) {
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root) return err_set(err, ERR_FORMAT, "test JSON: %s", jerr.text);
    config_t cfg;
    err_code_t rc = config_from_json(&cfg, root, "test-config", err);
    json_decref(root);
    if (rc == ERR_OK) rc = m2f_decoder_config_from_json(&cfg, M2F_VARIANT_AVSS, dc, err);
    config_free(&cfg);
    return rc;
}

static void test_configs(void) {
    m2f_decoder_config_t dc;
    err_t err = {0};
    err_code_t rc = config_from_text("{\"feature_size\": 128, \"hidden_dim\": 256}", &dc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "feature_size") && has(err.msg, "plain Python list"),
          "m2f_decoder/config/feature_size_differs", "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   %s\n", err.msg);
    rc = config_from_text("{\"enforce_input_projection\": true}", &dc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "enforce_input_projection"), "m2f_decoder/config/enforced_projection",
          "rc %s: %s", err_code_name(rc), err.msg);
    rc = config_from_text("{\"pre_norm\": true}", &dc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "pre_norm"), "m2f_decoder/config/pre_norm", "rc %s: %s",
          err_code_name(rc), err.msg);
    rc = config_from_text("{\"dropout\": 0.1}", &dc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "dropout"), "m2f_decoder/config/dropout", "rc %s: %s", err_code_name(rc),
          err.msg);
    rc = config_from_text("{\"num_attention_heads\": 7}", &dc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "num_attention_heads"), "m2f_decoder/config/heads", "rc %s: %s",
          err_code_name(rc), err.msg);
    rc = config_from_text("{\"activation_function\": \"silu\"}", &dc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "activation_function"), "m2f_decoder/config/activation", "rc %s: %s",
          err_code_name(rc), err.msg);
    /* Mask2FormerConfig's defaults: 10 decoder layers of which 9 run, 2 labels without id2label */
    rc = config_from_text("{\"id2label\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}}", &dc, &err);
    check(rc == ERR_OK && dc.hidden_dim == 256 && dc.num_layers == 9 && dc.num_queries == 100 && dc.num_heads == 8 &&
              dc.dim_feedforward == 2048 && dc.num_labels == 3 && dc.mask_feature_size == 256,
          "m2f_decoder/config/defaults", "rc %s: %s (layers %d, labels %d)", err_code_name(rc), err.msg,
          dc.num_layers, dc.num_labels);
}

/* ---- loading ---- */

typedef enum { EDIT_NONE, EDIT_DROP, EDIT_ADD, EDIT_HF } edit_t;

/* Copies src to dst with one change: drop `target`, add `target` ([3] F32), or
 * make a plain HF checkpoint (EDIT_HF: the AdaptiveAVS wrapper's "model." and
 * audio_proj gone, no avs_adapt or prompt embeddings, a class predictor of 151
 * labels). */
static int write_edited(const char *src, const char *dst, edit_t edit, const char *target) {
    safetensors_t st;
    err_t err;
    if (safetensors_open(src, &st, &err) != ERR_OK) {
        printf("# %s\n", err.msg);
        return 0;
    }
    st_writer_t *wr = safetensors_writer_new();
    int ok = 1;
    for (int i = 0; i < st.n_entries && ok; i++) {
        const st_entry_t *e = &st.entries[i];
        const char *name = e->name;
        if (edit == EDIT_DROP && strcmp(name, target) == 0) continue;
        if (edit == EDIT_HF) {
            if (strstr(name, "avs_adapt") || strstr(name, "_embed.weight") || strncmp(name, "audio_proj.", 11) == 0)
                if (!strstr(name, "level_embed")) continue;
            if (strstr(name, "class_predictor")) {
                /* ADE20k's 150 labels + no-object */
                int64_t shape[2] = {151, e->ndim == 2 ? e->shape[1] : 0};
                size_t n = (size_t)(151 * (e->ndim == 2 ? e->shape[1] : 1));
                float *zeros = calloc(n, sizeof(float));
                ok = safetensors_writer_add(wr, name + 6, DTYPE_F32, e->ndim, shape, zeros, &err) == ERR_OK;
                free(zeros);
                continue;
            }
            if (strncmp(name, "model.", 6) == 0) name += 6; /* drop the AdaptiveAVS wrapper */
        }
        size_t bytes = (size_t)e->numel * dtype_size(e->dtype);
        void *copy = malloc(bytes ? bytes : 1);
        memcpy(copy, e->data, bytes);
        ok = safetensors_writer_add(wr, name, e->dtype, e->ndim, e->shape, copy, &err) == ERR_OK;
        free(copy);
    }
    if (ok && edit == EDIT_ADD) {
        float three[3] = {1, 2, 3};
        ok = safetensors_writer_add(wr, target, DTYPE_F32, 1, (int64_t[]){3}, three, &err) == ERR_OK;
    }
    if (ok) ok = safetensors_writer_save(wr, dst, &err) == ERR_OK;
    safetensors_writer_free(wr);
    safetensors_close(&st);
    return ok;
}

/* Loads golden case `name` from an edited weights file as variant v. */
static err_code_t load_edited(const char *case_dir, m2f_variant_t v, edit_t edit, const char *target,
                              param_list_t *params, m2f_decoder_t **dec, err_t *err) {
    char src[1024], dst[512], cpath[1024];
    snprintf(src, sizeof src, "%s/weights.safetensors", case_dir);
    snprintf(dst, sizeof dst, "%s/edited.safetensors", tmp_dir);
    snprintf(cpath, sizeof cpath, "%s/config.json", case_dir);
    if (!write_edited(src, dst, edit, target)) return err_set(err, ERR_IO, "could not write the edited file");
    config_t cfg;
    m2f_decoder_config_t dc;
    err_code_t rc = config_load(cpath, &cfg, err);
    if (rc != ERR_OK) return rc;
    rc = m2f_decoder_config_from_json(&cfg, v, &dc, err);
    config_free(&cfg);
    if (rc != ERR_OK) return rc;
    weights_t w;
    *dec = NULL;
    rc = weights_open(dst, &w, err);
    if (rc == ERR_OK) {
        rc = m2f_decoder_load(&dc, &w, params, 3, dec, err);
        weights_close(&w);
    }
    return rc;
}

static void test_loading(void) {
    const char *shared = shared_dir();
    char avss[512], avs[512];
    if (shared) {
        snprintf(avss, sizeof avss, "%s/golden/avss-tiny", shared);
        snprintf(avs, sizeof avs, "%s/golden/avs-tiny", shared);
    }
    if (!shared || !exists(avss) || !exists(avs)) {
        check_skip("m2f_decoder/load", "no shared data (golden/avss-tiny; set STEPSTONE_SHARED)");
        return;
    }
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    err_t err = {0};
    m2f_decoder_t *dec;
    const char *p = "model.model.transformer_module.";
    char t[512];

    /* the official names, and the number of parameters: 3 layers x 26, queries 2,
     * level 1, prompts 3, norm 2, mask MLP 6, class 2, audio_proj 4 */
    param_list_init(&params, a);
    err_code_t rc = load_edited(avss, M2F_VARIANT_AVSS, EDIT_NONE, "", &params, &dec, &err);
    if (check(rc == ERR_OK, "m2f_decoder/load/aavs_file", "%s", err.msg)) {
        int want = 3 * 26 + 2 + 1 + 3 + 2 + 6 + 2 + 4;
        int named =
            param_list_find(&params, "model.model.transformer_module.decoder.layers.2.self_attn.avs_adapt.2.bias") &&
            param_list_find(&params, "model.class_predictor.weight") &&
            param_list_find(&params, "audio_proj.2.weight") &&
            param_list_find(&params, "model.model.transformer_module.uncertain_embed.weight");
        check(named && params.count == want && !dec->aavs_parts_initialized, "m2f_decoder/load/names",
              "%d parameters (want %d), names found %d", params.count, want, named);
    }
    m2f_decoder_free(dec);
    param_list_free(&params);

    snprintf(t, sizeof t, "%sdecoder.layers.1.cross_attn.in_proj_bias", p);
    param_list_init(&params, a);
    rc = load_edited(avss, M2F_VARIANT_AVSS, EDIT_DROP, t, &params, &dec, &err);
    check(rc == ERR_NOTFOUND && has(err.msg, t) && !dec, "m2f_decoder/load/missing_tensor", "rc %s: %s",
          err_code_name(rc), err.msg);
    m2f_decoder_free(dec);
    param_list_free(&params);

    snprintf(t, sizeof t, "%sdecoder.layers.3.fc1.weight", p);
    param_list_init(&params, a);
    rc = load_edited(avss, M2F_VARIANT_AVSS, EDIT_ADD, t, &params, &dec, &err);
    check(rc == ERR_MISMATCH && has(err.msg, t) && !dec, "m2f_decoder/load/unused_layer", "rc %s: %s",
          err_code_name(rc), err.msg);
    printf("#   %s\n", err.msg);
    m2f_decoder_free(dec);
    param_list_free(&params);

    /* the avss checkpoint read as avs: its prompt embeddings are not used */
    param_list_init(&params, a);
    rc = load_edited(avss, M2F_VARIANT_AVS, EDIT_NONE, "", &params, &dec, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "_embed.weight") && !dec, "m2f_decoder/load/avss_file_as_avs",
          "rc %s: %s", err_code_name(rc), err.msg);
    m2f_decoder_free(dec);
    param_list_free(&params);

    /* an AAVS checkpoint must have every part */
    param_list_init(&params, a);
    rc = load_edited(avs, M2F_VARIANT_AVS, EDIT_DROP, "audio_proj.2.bias", &params, &dec, &err);
    check(rc == ERR_NOTFOUND && has(err.msg, "audio_proj.2.bias") && !dec, "m2f_decoder/load/missing_audio_proj",
          "rc %s: %s", err_code_name(rc), err.msg);
    m2f_decoder_free(dec);
    param_list_free(&params);

    /* a plain HF checkpoint is completed as the official training completes it */
    param_list_init(&params, a);
    rc = load_edited(avss, M2F_VARIANT_AVSS, EDIT_HF, "", &params, &dec, &err);
    if (check(rc == ERR_OK, "m2f_decoder/load/hf_file", "%s", err.msg)) {
        tensor_t *bias =
            param_list_find(&params, "model.model.transformer_module.decoder.layers.0.self_attn.avs_adapt.0.bias");
        tensor_t *cls = param_list_find(&params, "model.class_predictor.weight");
        tensor_t *aud = param_list_find(&params, "audio_proj.0.weight");
        float *bh = bias ? to_host(bias) : NULL, *ah = aud ? to_host(aud) : NULL;
        int zero_bias = bh != NULL, bounded = ah != NULL;
        for (int64_t i = 0; bh && i < bias->numel; i++) zero_bias &= bh[i] == 0.0f;
        for (int64_t i = 0; ah && i < aud->numel; i++) bounded &= fabsf(ah[i]) <= 1.0f / sqrtf(128.0f);
        check(dec->aavs_parts_initialized && dec->class_predictor_initialized && zero_bias && bounded && cls &&
                  cls->shape[0] == 6,
              "m2f_decoder/load/hf_completed", "initialized %d, class %d, zero adapter bias %d, audio bound %d",
              dec->aavs_parts_initialized, dec->class_predictor_initialized, zero_bias, bounded);
        free(bh);
        free(ah);
    }
    m2f_decoder_free(dec);
    param_list_free(&params);
    arena_destroy(a);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror(tmp_dir);
        return 2;
    }
    ctx_t *cpu = ctx_create(DEVICE_CPU, 4 << 20);
    test_golden(cpu, "");
    ctx_t *gpu = ctx_create(DEVICE_CUDA, 4 << 20);
    if (gpu) {
        test_golden(gpu, "/cuda");
        test_cuda_vs_cpu(cpu, gpu);
        ctx_destroy(gpu);
    } else {
        const char *why = backend_cuda_built() ? "no GPU on this machine" : "built with CUDA=0";
        check_skip("m2f_decoder/golden/cuda", "parity not run on CUDA: %s", why);
        check_skip("m2f_decoder/cuda_vs_cpu", "%s", why);
    }
    ctx_destroy(cpu);
    test_configs();
    test_loading();
    test_gradients(M2F_VARIANT_AVS);
    test_gradients(M2F_VARIANT_AVSS);
    char path[512];
    snprintf(path, sizeof path, "%s/edited.safetensors", tmp_dir);
    unlink(path);
    rmdir(tmp_dir);
    return check_finish("test_m2f_decoder");
}
