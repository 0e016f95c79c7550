/* test_aavs.c - the whole AAVS head (pixel decoder + transformer decoder +
 * audio_proj + loss + post-processing) against the official code, both
 * variants (../shared/golden), from the backbone features the cache holds:
 *   aavs/golden-<case>/forward     every pixel decoder and decoder output and
 *                                  debug tensor (rel <= 1e-4, masks exact);
 *   aavs/golden-<case>/loss        matching indices exact, every loss term and
 *                                  the total (rel <= 1e-5), the official points;
 *   aavs/golden-<case>/grad        d total / d param of every phase-1 parameter
 *                                  (rel <= 1e-3), and no other parameter;
 *   aavs/golden-<case>/postprocess postprocess.logits and the semantic map
 *                                  (and avs's binary mask);
 *   aavs/golden-<case>/phase1_patterns  the phase-1 patterns equal the
 *                                  harness's reading of train.py;
 *   aavs/grad/<variant>            finite differences of the total loss through
 *                                  the whole head (every parameter, one random
 *                                  direction each) on a tiny random config.
 * On CUDA too when a GPU is present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aavs.h"
#include "aavs_postprocess.h"
#include "adamw.h"
#include "check.h"
#include "ops.h"
#include "rng.h"

#define PARITY_TOL 1e-4 /* activations and logits */
#define LOSS_TOL 1e-5   /* loss terms */
#define GRAD_TOL 1e-3   /* gradients */

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Relative error of got (F32) against expected `name`, or the number of
 * differing elements for other dtypes (*exact set); INFINITY when missing or
 * of another shape. */
static double compare(const safetensors_t *expected, const char *name, const tensor_t *got, int *exact) {
    const st_entry_t *e = safetensors_find(expected, name);
    *exact = got->dtype != DTYPE_F32;
    if (!e || e->numel != got->numel || e->ndim != got->ndim || e->dtype != got->dtype) return INFINITY;
    for (int i = 0; i < e->ndim; i++)
        if (e->shape[i] != got->shape[i]) return INFINITY;
    size_t es = dtype_size(e->dtype), bytes = (size_t)e->numel * es;
    unsigned char *have = malloc(bytes ? bytes : 1);
    tensor_to_host(got, have);
    double r;
    if (!*exact) {
        float *want = malloc(bytes ? bytes : 1);
        memcpy(want, e->data, bytes);
        r = rel_error((const float *)have, want, e->numel);
        free(want);
    } else {
        int64_t differ = 0;
        for (int64_t i = 0; i < e->numel; i++)
            differ += memcmp(have + (size_t)i * es, (const unsigned char *)e->data + (size_t)i * es, es) != 0;
        r = (double)differ;
    }
    free(have);
    return r;
}

/* expected scalar `name` ([1] or 0-dim F32), or NAN */
static double expected_scalar(const safetensors_t *expected, const char *name) {
    const st_entry_t *e = safetensors_find(expected, name);
    if (!e || e->dtype != DTYPE_F32 || e->numel != 1) return NAN;
    float v;
    memcpy(&v, e->data, sizeof v);
    return v;
}

/* ---- debug tensors ---- */

typedef struct {
    const safetensors_t *expected;
    int compared, failed;
    double worst;
    char first_bad[512];
} debug_compare_t;

static void on_debug(void *user, const char *name, const tensor_t *t) {
    debug_compare_t *d = user;
    char full[256];
    snprintf(full, sizeof full, "debug.%s", name);
    if (!safetensors_find(d->expected, full)) return;
    int exact;
    double r = compare(d->expected, full, t, &exact);
    int ok = exact ? r == 0.0 : r <= PARITY_TOL;
    d->compared++;
    if (!exact && r > d->worst) d->worst = r;
    if (!ok) {
        d->failed++;
        if (!d->first_bad[0]) snprintf(d->first_bad, sizeof d->first_bad, "%s (%.3g)", full, r);
    }
}

/* ---- a golden case ---- */

typedef struct {
    arena_t *param_arena;
    param_list_t params;
    aavs_head_t *head;
    safetensors_t inputs, expected;
    config_t harness;
} golden_t;

static void golden_close(golden_t *g) {
    safetensors_close(&g->inputs);
    safetensors_close(&g->expected);
    config_free(&g->harness);
    aavs_head_free(g->head);
    param_list_free(&g->params);
    arena_destroy(g->param_arena);
}

static err_code_t golden_open(device_t device, const char *dir, golden_t *g, err_t *err) {
    memset(g, 0, sizeof *g);
    g->param_arena = arena_create(device, 1 << 20);
    param_list_init(&g->params, g->param_arena);
    char path[1024];
    snprintf(path, sizeof path, "%s/harness.json", dir);
    err_code_t rc = config_load(path, &g->harness, err);
    const char *vname = "";
    if (rc == ERR_OK) rc = config_get_string(&g->harness, "variant", &vname, err);
    m2f_variant_t variant = strcmp(vname, "avss") == 0 ? M2F_VARIANT_AVSS : M2F_VARIANT_AVS;
    config_t cfg;
    aavs_head_config_t hc;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (rc == ERR_OK && (rc = config_load(path, &cfg, err)) == ERR_OK) {
        rc = aavs_head_config_from_json(&cfg, variant, &hc, err);
        config_free(&cfg);
    }
    weights_t w;
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if (rc == ERR_OK && (rc = weights_open(path, &w, err)) == ERR_OK) {
        rc = aavs_head_load(&hc, &w, &g->params, 1, &g->head, err);
        weights_close(&w);
    }
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (rc == ERR_OK) rc = safetensors_open(path, &g->inputs, err);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (rc == ERR_OK) rc = safetensors_open(path, &g->expected, err);
    return rc;
}

static tensor_t *load(ctx_t *ctx, const safetensors_t *st, const char *name, dtype_t dtype) {
    tensor_t *t;
    err_t err;
    if (safetensors_load(st, name, ctx->arena, dtype, 0, NULL, &t, &err) != ERR_OK) fatal("%s", err.msg);
    return t;
}

/* The phase-1 patterns equal what the harness read from train.py. */
static void check_presets(const golden_t *g, const char *label) {
    int n;
    const char *const *pat = aavs_trainable_patterns(g->head->cfg.variant, AAVS_TRAIN_PHASE1, &n);
    json_t *list = config_lookup(&g->harness, "trainable_patterns_train_py");
    int same = list && json_is_array(list) && (int)json_array_size(list) == n;
    for (int i = 0; same && i < n; i++) same = strcmp(json_string_value(json_array_get(list, i)), pat[i]) == 0;
    char name[512];
    snprintf(name, sizeof name, "aavs/%s/phase1_patterns", label);
    check(same, name, "the preset differs from harness.json's trainable_patterns_train_py");
}

/* Makes the phase-1 parameters trainable, as an optimizer would. Returns how many. */
static int set_trainable(golden_t *g) {
    int n, count = 0;
    const char *const *pat = aavs_trainable_patterns(g->head->cfg.variant, AAVS_TRAIN_PHASE1, &n);
    for (int i = 0; i < g->params.count; i++) {
        tensor_t *t = g->params.tensors[i];
        t->requires_grad = adamw_name_selected(g->params.names[i], pat, n);
        if (t->requires_grad) {
            tensor_alloc_grad(g->param_arena, t);
            tensor_zero_grad(t);
            count++;
        }
    }
    return count;
}

/* Compares one output; keeps the worst error and the first failure. */
static void check_tensor(const golden_t *g, const char *name, const tensor_t *got, double tol, double *worst,
                         int *failed, char *first_bad) {
    int exact;
    double r = compare(&g->expected, name, got, &exact);
    int ok = exact ? r == 0.0 : r <= tol;
    if (!exact && r > *worst) *worst = r;
    if (!ok) {
        (*failed)++;
        if (!first_bad[0]) snprintf(first_bad, 512, "%s (%.3g)", name, r);
    }
}

static void check_case(ctx_t *ctx, const char *dir, const char *label) {
    golden_t g;
    err_t err = {0};
    char name[512];
    err_code_t rc = golden_open(ctx->device, dir, &g, &err);
    snprintf(name, sizeof name, "aavs/%s/load", label);
    if (!check(rc == ERR_OK, name, "%s", err.msg)) {
        golden_close(&g);
        return;
    }
    check_presets(&g, label);
    int n_trainable = set_trainable(&g);
    const aavs_head_config_t *hc = &g.head->cfg;

    /* inputs: the backbone features the cache stores, audio, the stage-1 mask */
    int nf = hc->pixel_decoder.n_features;
    tensor_t *features[PIXEL_DECODER_MAX_FEATURES];
    for (int k = 0; k < nf; k++) {
        snprintf(name, sizeof name, "backbone.feature_map.stage%d", k + 1);
        features[k] = load(ctx, &g.expected, name, DTYPE_F32);
    }
    tensor_t *audio = load(ctx, &g.inputs, "audio_embeddings", DTYPE_F32);
    tensor_t *boost = hc->variant == M2F_VARIANT_AVSS ? load(ctx, &g.inputs, "audio_boost_mask", DTYPE_F32) : NULL;

    /* forward, on the tape */
    int old = ctx_set_grad(ctx, 1);
    debug_compare_t dbg = {.expected = &g.expected};
    aavs_head_output_t out;
    aavs_head_forward(ctx, g.head, features, audio, boost, &out, on_debug, &dbg);
    double worst = dbg.worst;
    int failed = 0;
    char first_bad[512] = "";
    const m2f_decoder_output_t *d = &out.decoder;
    int np = d->n_predictions;
    for (int i = 0; i < M2F_LEVELS; i++) {
        snprintf(name, sizeof name, "pixel_decoder.multi_scale_features.%d", i);
        check_tensor(&g, name, out.pixel_decoder.multi_scale_features[i], PARITY_TOL, &worst,
                     &failed, first_bad);
    }
    check_tensor(&g, "pixel_decoder.mask_features", out.pixel_decoder.mask_features, PARITY_TOL,
                 &worst, &failed, first_bad);
    check_tensor(&g, "class_queries_logits", d->class_logits[np - 1], PARITY_TOL, &worst, &failed,
                 first_bad);
    check_tensor(&g, "masks_queries_logits", d->mask_logits[np - 1], PARITY_TOL, &worst, &failed,
                 first_bad);
    for (int i = 0; i + 1 < np; i++) {
        snprintf(name, sizeof name, "aux.%d.class_queries_logits", i);
        check_tensor(&g, name, d->class_logits[i], PARITY_TOL, &worst, &failed, first_bad);
        snprintf(name, sizeof name, "aux.%d.masks_queries_logits", i);
        check_tensor(&g, name, d->mask_logits[i], PARITY_TOL, &worst, &failed, first_bad);
    }
    printf("#   aavs/%s/forward: %d debug tensors + %d outputs, worst rel %.3g\n", label, dbg.compared,
           4 + 2 * np, worst);
    snprintf(name, sizeof name, "aavs/%s/forward", label);
    check(dbg.compared > 30 && dbg.failed == 0 && failed == 0, name,
          "%d debug compared, first off: %s; outputs first off: %s", dbg.compared,
          dbg.first_bad[0] ? dbg.first_bad : "none", first_bad[0] ? first_bad : "none");

    /* the loss with the official point draws and targets */
    int frames = (int)features[0]->shape[0];
    tensor_t **masks = malloc((size_t)frames * sizeof *masks), **classes = malloc((size_t)frames * sizeof *classes);
    for (int f = 0; f < frames; f++) {
        snprintf(name, sizeof name, "mask_labels.%d", f);
        masks[f] = load(ctx, &g.inputs, name, DTYPE_F32);
        snprintf(name, sizeof name, "class_labels.%d", f);
        classes[f] = load(ctx, &g.inputs, name, DTYPE_I64);
    }
    m2f_targets_t targets = {.n_frames = frames, .mask_labels = masks, .class_labels = classes};
    m2f_point_source_t points = {.kind = M2F_POINTS_FIXED, .fixed = &g.inputs};
    m2f_loss_report_t report = {0};
    tensor_t *total = NULL;
    rc = aavs_head_loss(ctx, g.head, &out, &targets, &points, NULL, &total, &report, &err);
    snprintf(name, sizeof name, "aavs/%s/loss_runs", label);
    if (check(rc == ERR_OK, name, "%s", err.msg)) {
        snprintf(name, sizeof name, "aavs/%s/loss", label);
        double lw = 0.0;
        int lfail = 0, idx_fail = 0;
        char lbad[512] = "";
        for (int t = 0; t < report.n_terms; t++) {
            const m2f_loss_term_t *term = &report.terms[t];
            char key[128];
            snprintf(key, sizeof key, "loss_unweighted.%s", term->name);
            double want = expected_scalar(&g.expected, key);
            double r = fabs(term->unweighted - want) / fmax(1.0, fabs(want));
            snprintf(key, sizeof key, "loss_terms.%s", term->name);
            double want_w = expected_scalar(&g.expected, key);
            double rw = fabs(term->weighted - want_w) / fmax(1.0, fabs(want_w));
            double worst_t = fmax(isnan(r) ? INFINITY : r, isnan(rw) ? INFINITY : rw);
            if (worst_t > lw) lw = worst_t;
            if (!(worst_t <= LOSS_TOL) && !lbad[0]) snprintf(lbad, sizeof lbad, "%s (%.3g)", term->name, worst_t);
            lfail += !(worst_t <= LOSS_TOL);
        }
        double want_total = expected_scalar(&g.expected, "loss.total");
        double rt = fabs(report.total - want_total) / fmax(1.0, fabs(want_total));
        for (int gi = 0; gi < report.n_groups; gi++) {
            const m2f_loss_group_t *grp = &report.groups[gi];
            for (int f = 0; f < frames; f++) {
                int64_t a = grp->matching.offset[f], b = grp->matching.offset[f + 1];
                const char *kinds[2] = {"pred", "tgt"};
                const int64_t *got[2] = {grp->matching.pred_idx + a, grp->matching.tgt_idx + a};
                for (int k = 0; k < 2; k++) {
                    char key[128];
                    snprintf(key, sizeof key, "loss.%s.match_%s_idx.%d", grp->name, kinds[k], f);
                    const st_entry_t *e = safetensors_find(&g.expected, key);
                    int same = e && e->dtype == DTYPE_I64 && e->numel == b - a &&
                               memcmp(e->data, got[k], (size_t)(b - a) * sizeof(int64_t)) == 0;
                    idx_fail += !same;
                }
            }
        }
        printf("#   aavs/%s/loss: %d terms, worst rel %.3g, total %.7g (rel %.3g), %d groups matched, %d index "
               "lists off\n",
               label, report.n_terms, lw, report.total, rt, report.n_groups, idx_fail);
        check(lfail == 0 && rt <= LOSS_TOL && idx_fail == 0 && report.n_terms == 3 * np, name,
              "first term off: %s; total rel %.3g; %d index lists off", lbad[0] ? lbad : "none", rt, idx_fail);

        /* backward: every phase-1 parameter's gradient, and no other */
        ctx_backward(ctx, total, NULL);
        double gw = 0.0;
        int gfail = 0, with_grad = 0;
        char gbad[1024] = "";
        for (int i = 0; i < g.params.count; i++) {
            tensor_t *t = g.params.tensors[i];
            char key[600];
            snprintf(key, sizeof key, "grad.%s", g.params.names[i]);
            int expected_grad = safetensors_find(&g.expected, key) != NULL;
            if (!t->requires_grad) {
                if (expected_grad && !gbad[0]) snprintf(gbad, sizeof gbad, "%s not trainable", g.params.names[i]);
                gfail += expected_grad;
                continue;
            }
            with_grad++;
            tensor_t view = *t;
            view.data = t->grad;
            int exact;
            double r = compare(&g.expected, key, &view, &exact);
            if (r > gw) gw = r;
            if (!(r <= GRAD_TOL)) {
                gfail++;
                if (!gbad[0]) snprintf(gbad, sizeof gbad, "%s (%.3g)", key, r);
            }
        }
        printf("#   aavs/%s/grad: %d trainable parameters, worst rel %.3g\n", label, with_grad, gw);
        snprintf(name, sizeof name, "aavs/%s/grad", label);
        check(gfail == 0 && with_grad == n_trainable && with_grad > 0, name, "first off: %s", gbad[0] ? gbad : "none");
    }
    m2f_loss_report_free(&report);
    free(masks);
    free(classes);
    ctx_set_grad(ctx, old);

    /* post-processing of the last prediction */
    tensor_t *ts = load(ctx, &g.inputs, "target_size", DTYPE_I64);
    int64_t size[2];
    tensor_to_host(ts, size);
    tensor_t *logits = aavs_postprocess_logits(ctx, d->class_logits[np - 1], d->mask_logits[np - 1],
                                               hc->decoder.num_labels, size[0], size[1]);
    tensor_t *map = aavs_argmax_classes(ctx, logits);
    int exact;
    double rl = compare(&g.expected, "postprocess.logits", logits, &exact);
    double rm = compare(&g.expected, "postprocess.semantic_map", map, &exact);
    double rb = 0.0;
    if (hc->variant == M2F_VARIANT_AVS) /* two labels: the binary mask is the semantic map */
        rb = compare(&g.expected, "postprocess.semantic_map",
                     aavs_binary_mask(ctx, d->class_logits[np - 1], d->mask_logits[np - 1], size[0], size[1]), &exact);
    printf("#   aavs/%s/postprocess: logits rel %.3g, semantic map %.0f pixels off%s\n", label, rl, rm,
           hc->variant == M2F_VARIANT_AVS ? (rb == 0.0 ? ", binary mask equal" : ", binary mask OFF") : "");
    snprintf(name, sizeof name, "aavs/%s/postprocess", label);
    check(rl <= PARITY_TOL && rm == 0.0 && rb == 0.0, name, "logits rel %.3g, map %.0f off, binary %.0f off", rl, rm,
          rb);
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
            snprintf(n, sizeof n, "aavs/%s", label);
            check_skip(n, "no shared data (golden/%s; set STEPSTONE_SHARED)", cases[i]);
            continue;
        }
        check_case(ctx, dir, label);
    }
}

/* ---- the whole head by finite differences ---- */

/* A tiny head: Swin-like feature maps of 8, 16, 32, 64 channels at non-square
 * sizes, 32 channels (GroupNorm(32) needs a multiple of 32), 4 queries, 3 labels,
 * 3 decoder layers (the levels wrap around), 32 loss points, all of them
 * uniform: importance sampling picks the points of least |logit|, a choice that
 * the smallest perturbation reorders (it is checked in test_m2f_loss). */
static const char *const tiny_head_json =
    "{\"backbone_config\": {\"model_type\": \"swin\", \"embed_dim\": 8, \"depths\": [1, 1, 1, 1],"
    " \"num_heads\": [1, 1, 1, 1], \"window_size\": 2, \"out_features\": [\"stage1\", \"stage2\", \"stage3\", "
    "\"stage4\"]},"
    " \"feature_size\": 32, \"hidden_dim\": 32, \"mask_feature_size\": 32, \"encoder_layers\": 1,"
    " \"encoder_feedforward_dim\": 16, \"decoder_layers\": 4, \"num_attention_heads\": 4, \"dim_feedforward\": 16,"
    " \"num_queries\": 4, \"id2label\": {\"0\": \"background\", \"1\": \"a\", \"2\": \"b\"}, \"train_num_points\": 32,"
    " \"importance_sample_ratio\": 0.0}";

static const int64_t tiny_sizes[4][2] = {{12, 16}, {6, 8}, {3, 4}, {2, 2}};
#define TINY_FRAMES 2
#define TINY_H 48
#define TINY_W 64

typedef struct {
    ctx_t *ctx;
    const aavs_head_t *head;
    float *features[4], *audio, *boost; /* host inputs */
    float *masks[TINY_FRAMES];          /* host targets [n_f, H, W] */
    int64_t *classes[TINY_FRAMES];
    int64_t n_targets[TINY_FRAMES];
    uint64_t point_seed;
    uint64_t hash;                      /* of the last run's discrete choices */
} head_case_t;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void hash_attn_masks(void *user, const char *name, const tensor_t *t) {
    head_case_t *hc = user;
    if (!strstr(name, "attn_mask")) return;
    unsigned char *b = malloc((size_t)t->numel);
    tensor_to_host(t, b);
    hc->hash = fnv1a(hc->hash, b, (size_t)t->numel);
    free(b);
}

static int64_t channels(int k) { return 8 << k; }

/* The total loss; with grad, backward into the parameters' .grad. hc->hash
 * gets the run's attention masks, matchings and loss points: a perturbation
 * that changes any of them measures a step, not a slope. */
static double head_objective(head_case_t *hc, int with_grad) {
    ctx_t *ctx = hc->ctx;
    int old = ctx_set_grad(ctx, with_grad);
    tensor_t *features[4];
    for (int k = 0; k < 4; k++)
        features[k] = tensor_from_host(ctx->arena, DTYPE_F32, 4,
                                       (int64_t[]){TINY_FRAMES, channels(k), tiny_sizes[k][0], tiny_sizes[k][1]},
                                       hc->features[k]);
    tensor_t *audio = tensor_from_host(ctx->arena, DTYPE_F32, 2, (int64_t[]){TINY_FRAMES, 128}, hc->audio);
    tensor_t *boost = hc->head->cfg.variant == M2F_VARIANT_AVSS
                          ? tensor_from_host(ctx->arena, DTYPE_F32, 3, (int64_t[]){TINY_FRAMES, 10, 14}, hc->boost)
                          : NULL;
    hc->hash = 1469598103934665603ull;
    aavs_head_output_t out;
    aavs_head_forward(ctx, hc->head, features, audio, boost, &out, hash_attn_masks, hc);
    tensor_t *masks[TINY_FRAMES], *classes[TINY_FRAMES];
    for (int f = 0; f < TINY_FRAMES; f++) {
        masks[f] =
            tensor_from_host(ctx->arena, DTYPE_F32, 3, (int64_t[]){hc->n_targets[f], TINY_H, TINY_W}, hc->masks[f]);
        classes[f] = tensor_from_host(ctx->arena, DTYPE_I64, 1, (int64_t[]){hc->n_targets[f]}, hc->classes[f]);
    }
    m2f_targets_t targets = {.n_frames = TINY_FRAMES, .mask_labels = masks, .class_labels = classes};
    rng_t rng; /* the same draws every run */
    rng_seed(&rng, hc->point_seed);
    m2f_point_source_t points = {.kind = M2F_POINTS_RANDOM, .rng = &rng};
    m2f_loss_report_t report = {0};
    tensor_t *total;
    err_t err;
    if (aavs_head_loss(ctx, hc->head, &out, &targets, &points, NULL, &total, &report, &err) != ERR_OK)
        fatal("head_objective: %s", err.msg);
    for (int g = 0; g < report.n_groups; g++) {
        const m2f_loss_group_t *grp = &report.groups[g];
        int64_t pairs = grp->matching.offset[grp->matching.n_frames];
        hc->hash = fnv1a(hc->hash, grp->matching.pred_idx, (size_t)pairs * sizeof(int64_t));
        hc->hash = fnv1a(hc->hash, grp->matching.tgt_idx, (size_t)pairs * sizeof(int64_t));
        hc->hash = fnv1a(hc->hash, grp->point_coords, (size_t)(pairs * grp->n_points * 2) * sizeof(float));
    }
    float value;
    tensor_to_host(total, &value);
    if (with_grad) ctx_backward(ctx, total, NULL);
    m2f_loss_report_free(&report);
    ctx_set_grad(ctx, old);
    ctx_reset(ctx);
    return value;
}

static void fill(rng_t *rng, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)rng_normal(rng);
}

static void head_case_init(head_case_t *hc, ctx_t *ctx, const aavs_head_t *head) {
    memset(hc, 0, sizeof *hc);
    hc->ctx = ctx;
    hc->head = head;
    hc->point_seed = 77;
    rng_t rng;
    rng_seed(&rng, 3);
    for (int k = 0; k < 4; k++) {
        int64_t n = TINY_FRAMES * channels(k) * tiny_sizes[k][0] * tiny_sizes[k][1];
        hc->features[k] = malloc((size_t)n * sizeof(float));
        fill(&rng, hc->features[k], n);
    }
    hc->audio = malloc(TINY_FRAMES * 128 * sizeof(float));
    fill(&rng, hc->audio, TINY_FRAMES * 128);
    hc->boost = malloc(TINY_FRAMES * 10 * 14 * sizeof(float));
    for (int i = 0; i < TINY_FRAMES * 10 * 14; i++) hc->boost[i] = rng_float(&rng);
    /* frame 0: background and class 1 (a disc); frame 1: class 2 alone over a rectangle */
    hc->n_targets[0] = 2;
    hc->n_targets[1] = 1;
    for (int f = 0; f < TINY_FRAMES; f++) {
        hc->masks[f] = calloc((size_t)(hc->n_targets[f] * TINY_H * TINY_W), sizeof(float));
        hc->classes[f] = malloc((size_t)hc->n_targets[f] * sizeof(int64_t));
    }
    hc->classes[0][0] = 0;
    hc->classes[0][1] = 1;
    hc->classes[1][0] = 2;
    for (int y = 0; y < TINY_H; y++)
        for (int x = 0; x < TINY_W; x++) {
            int disc = (y - 20) * (y - 20) + (x - 30) * (x - 30) < 150;
            hc->masks[0][y * TINY_W + x] = (float)!disc;
            hc->masks[0][TINY_H * TINY_W + y * TINY_W + x] = (float)disc;
            hc->masks[1][y * TINY_W + x] = (float)(y > 10 && y < 40 && x > 5 && x < 50);
        }
}

static void head_case_free(head_case_t *hc) {
    for (int k = 0; k < 4; k++) free(hc->features[k]);
    free(hc->audio);
    free(hc->boost);
    for (int f = 0; f < TINY_FRAMES; f++) {
        free(hc->masks[f]);
        free(hc->classes[f]);
    }
}

/* Norm weights near 1 and every ReLU kept away from its kink (a difference
 * across a kink measures nothing; ReLU itself is checked in test_ops): the
 * layers before a ReLU get small weights and biases of +-3. */
static void condition_head(param_list_t *params) {
    for (int i = 0; i < params->count; i++) {
        float *d = tensor_f32(params->tensors[i]);
        const char *n = params->names[i];
        int relu_in = strstr(n, "avs_adapt.0.") || strstr(n, "fc1.") || strstr(n, "audio_proj.0.") ||
                      strstr(n, "mask_embedder.0.0.") || strstr(n, "mask_embedder.1.0.");
        int norm_w = params->tensors[i]->ndim == 1 && strstr(n, "weight") &&
                     (strstr(n, "norm") || strstr(n, ".1.weight"));
        for (int64_t k = 0; k < params->tensors[i]->numel; k++) {
            if (norm_w) d[k] += 1.0f;
            if (relu_in && strstr(n, "weight")) d[k] *= 0.3f;
            if (relu_in && strstr(n, "bias")) d[k] = k % 2 ? -3.0f : 3.0f;
            if (strstr(n, "layer_1.1.bias")) d[k] = k % 4 ? 4.0f : -4.0f; /* GroupNorm before the FPN's ReLU */
            /* the second MLP layer takes the first's ReLU outputs (about 3): smaller still */
            if (strstr(n, "mask_embedder.1.0.weight")) d[k] *= 0.3f;
            /* mask logits of a few units, not hundreds: a loss far from saturation */
            if (strstr(n, "mask_embedder.2.0.")) d[k] *= 0.1f;
        }
    }
}

/* Parameters that move the deformable attention's sampling locations: bilinear
 * sampling is piecewise linear in the location, and the random directions
 * cross pixel boundaries of some of the many samples, so a difference along
 * them is off by more than any useful tolerance. They are the pixel decoder's
 * own gradient check (test_pixel_decoder, per direction with its tolerance);
 * their backward here is checked by the golden gradients. */
static int moves_sampling_points(const char *name) {
    return strstr(name, "sampling_offsets") || strstr(name, "pixel_level_module.decoder.input_projections") ||
           strstr(name, "pixel_level_module.decoder.level_embed");
}

/* The check on ctx (CPU) for one variant. expect_broken: ctx's backend has a
 * kernel broken on purpose, and the check must fail. */
static void head_gradient_check(ctx_t *ctx, m2f_variant_t variant, int expect_broken) {
    const char *vname = variant == M2F_VARIANT_AVSS ? "avss" : "avs";
    char name[256], msg[512] = "";
    json_error_t jerr;
    json_t *root = json_loads(tiny_head_json, 0, &jerr);
    config_t cfg;
    aavs_head_config_t hcfg;
    err_t err = {0};
    err_code_t rc = config_from_json(&cfg, root, "tiny-head", &err);
    json_decref(root);
    if (rc == ERR_OK) rc = aavs_head_config_from_json(&cfg, variant, &hcfg, &err);
    config_free(&cfg);
    snprintf(name, sizeof name, "aavs/grad/%s/config", vname);
    if (!check(rc == ERR_OK, name, "%s", err.msg)) return;
    arena_t *pa = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    param_list_init(&params, pa);
    aavs_head_t *head = aavs_head_random(&hcfg, &params, 5, 0.1f);
    condition_head(&params);
    for (int i = 0; i < params.count; i++) {
        tensor_alloc_grad(pa, params.tensors[i]);
        params.tensors[i]->requires_grad = 1;
        tensor_zero_grad(params.tensors[i]);
    }
    head_case_t hc;
    head_case_init(&hc, ctx, head);
    head_objective(&hc, 1);
    uint64_t base_hash = hc.hash;
    float **grads = malloc((size_t)params.count * sizeof *grads);
    for (int i = 0; i < params.count; i++) {
        grads[i] = malloc((size_t)params.tensors[i]->numel * sizeof(float));
        memcpy(grads[i], params.tensors[i]->grad, (size_t)params.tensors[i]->numel * sizeof(float));
        params.tensors[i]->requires_grad = 0;
    }
    /* One random direction per parameter tensor: <grad, v> against the central
     * difference along v (a direction moves every element, so the difference
     * stands above the float32 noise while any wrong element still shows). The
     * loss is one float32 of a few tens: its rounding divided by the 2 h of the
     * difference is the atol; the step is as small as that allows, since the
     * loss bends within larger ones. */
    const double rtol = 3e-2, atol = 2e-3, eps = 3e-3;
    int checked = 0, skipped = 0, excluded = 0, ok = 1;
    double worst = 0.0;
    rng_t rng;
    rng_seed(&rng, 9);
    for (int i = 0; i < params.count && ok; i++) {
        tensor_t *t = params.tensors[i];
        if (moves_sampling_points(params.names[i])) {
            excluded++;
            continue;
        }
        int64_t n = t->numel;
        float *data = tensor_f32(t), *keep = malloc((size_t)n * sizeof(float)), *v = malloc((size_t)n * sizeof(float));
        memcpy(keep, data, (size_t)n * sizeof(float));
        double rms = 0.0, ana = 0.0;
        for (int64_t k = 0; k < n; k++) {
            rms += (double)keep[k] * keep[k];
            v[k] = (float)rng_normal(&rng);
            ana += (double)grads[i][k] * v[k];
        }
        double h = eps * fmax(1.0, sqrt(rms / (double)n));
        for (int64_t k = 0; k < n; k++) data[k] = (float)(keep[k] + h * v[k]);
        double up = head_objective(&hc, 0);
        uint64_t up_hash = hc.hash;
        for (int64_t k = 0; k < n; k++) data[k] = (float)(keep[k] - h * v[k]);
        double down = head_objective(&hc, 0);
        uint64_t down_hash = hc.hash;
        memcpy(data, keep, (size_t)n * sizeof(float));
        free(keep);
        free(v);
        if (up_hash != base_hash || down_hash != base_hash) {
            skipped++;
            continue;
        }
        checked++;
        double num = (up - down) / (2.0 * h);
        double ratio = fabs(num - ana) / (rtol * fmax(fabs(num), fabs(ana)) + atol);
        if (ratio > worst) worst = ratio;
        if (!(ratio <= 1.0)) {
            snprintf(msg, sizeof msg, "%s: analytic %.6g, numeric %.6g", params.names[i], ana, num);
            ok = 0;
        }
    }
    if (expect_broken) {
        snprintf(name, sizeof name, "aavs/grad/%s/broken_backward_caught", vname);
        printf("#   %s: %s\n", name, msg[0] ? msg : "not caught");
        check(!ok, name, "a backward without cosine similarity's gradient passed the check");
    } else {
        snprintf(name, sizeof name, "aavs/grad/%s/fd", vname);
        printf("#   %s: %d parameters checked along a random direction, %d skipped (a discrete choice changed), "
               "%d left to test_pixel_decoder (they move sampling points), worst error / tolerance %.3g\n",
               name, checked, skipped, excluded, worst);
        check(ok && skipped * 10 <= checked, name, "%s (%d checked, %d skipped)", msg, checked, skipped);
    }
    for (int i = 0; i < params.count; i++) free(grads[i]);
    free(grads);
    head_case_free(&hc);
    aavs_head_free(head);
    param_list_free(&params);
    arena_destroy(pa);
}

/* cosine similarity's backward dropped: the gradient of the audio-prompted
 * queries would reach neither queries_embedder nor audio_proj that way */
static void cosine_backward_dropped(float *da, float *db, const float *dout, const float *a, const float *b,
                                    const bcast_t *bc, int64_t d, float eps) {
    (void)da, (void)db, (void)dout, (void)a, (void)b, (void)bc, (void)d, (void)eps;
}

static void test_head_gradients(void) {
    ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
    head_gradient_check(ctx, M2F_VARIANT_AVS, 0);
    head_gradient_check(ctx, M2F_VARIANT_AVSS, 0);
    /* the same check must catch a broken backward */
    backend_t broken = *ctx->be;
    broken.cosine_backward = cosine_backward_dropped;
    const backend_t *real = ctx->be;
    ctx->be = &broken;
    head_gradient_check(ctx, M2F_VARIANT_AVSS, 1);
    ctx->be = real;
    ctx_destroy(ctx);
}

int main(void) {
    ctx_t *cpu = ctx_create(DEVICE_CPU, 4 << 20);
    test_golden(cpu, "");
    ctx_destroy(cpu);
    ctx_t *gpu = ctx_create(DEVICE_CUDA, 4 << 20);
    if (gpu) {
        test_golden(gpu, "/cuda");
        ctx_destroy(gpu);
    } else {
        check_skip("aavs/golden/cuda", "not run on CUDA: %s",
                   backend_cuda_built() ? "no GPU on this machine" : "built with CUDA=0");
    }
    test_head_gradients();
    return check_finish("test_aavs");
}
