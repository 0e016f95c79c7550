/* test_m2f_loss.c - the Mask2Former loss (m2f_loss.h) and its parts:
 *   m2f_loss/golden/<case>/...   with the official logits of the golden cases
 *                                (../shared/golden, official AAVS code) as
 *                                inputs and the official point draws: matching
 *                                indices identical, point coordinates equal,
 *                                every term (unweighted and weighted) and the
 *                                total within 1e-5; on CUDA too when a GPU is
 *                                present (against the golden values and CPU);
 *   m2f_loss/hungarian/...       linear_sum_assignment against brute force on
 *                                many small matrices, square and rectangular
 *                                both ways, with and without ties, and against
 *                                scipy's very choice among tied optima
 *                                (tests/reference/hungarian_ref.py);
 *   m2f_loss/points/...          the uncertainty choice of points;
 *   m2f_loss/matcher/...         the cost matrix against a recomputation in
 *                                double with the official formulas;
 *   m2f_loss/grad/...            d total / d logits by central differences on
 *                                a tiny random case (points from a reseeded
 *                                rng, matching and points checked unchanged);
 *   m2f_loss/avs_empty/...       avs/'s zero loss for an empty v1m batch;
 *   m2f_loss/errors/...          bad targets and bad fixed draws, named. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hungarian.h"
#include "m2f_loss.h"
#include "ops.h"
#include "point_sample.h"

/* the golden README's tolerance for loss terms: |got - want| / max(1, |want|) */
#define TERM_TOL 1e-5
/* scipy's answers on matrices full of ties (tests/reference/hungarian_ref.py) */
#define HUNGARIAN_REF "tests/reference/hungarian_ref.safetensors"

/* ---- golden parity ---- */

typedef struct {
    m2f_loss_config_t cfg;
    safetensors_t inputs, expected;
    int frames, n_aux;
} golden_case_t;

static int open_case(const char *dir, golden_case_t *gc, err_t *err) {
    char path[1100];
    config_t cfg;
    *gc = (golden_case_t){0};
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config_load(path, &cfg, err) != ERR_OK) return 0;
    err_code_t rc = m2f_loss_config_from_json(&cfg, &gc->cfg, err);
    config_free(&cfg);
    if (rc != ERR_OK) return 0;
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (safetensors_open(path, &gc->inputs, err) != ERR_OK) return 0;
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (safetensors_open(path, &gc->expected, err) != ERR_OK) {
        safetensors_close(&gc->inputs);
        return 0;
    }
    char name[64];
    for (;;) {
        snprintf(name, sizeof name, "mask_labels.%d", gc->frames);
        if (!safetensors_find(&gc->inputs, name)) break;
        gc->frames++;
    }
    for (;;) {
        snprintf(name, sizeof name, "aux.%d.class_queries_logits", gc->n_aux);
        if (!safetensors_find(&gc->expected, name)) break;
        gc->n_aux++;
    }
    return 1;
}

static void close_case(golden_case_t *gc) {
    safetensors_close(&gc->inputs);
    safetensors_close(&gc->expected);
}

/* A tensor of the golden files in ctx's arena, in its own dtype (fatal when
 * missing: open_case found the names). */
static tensor_t *load(ctx_t *ctx, const safetensors_t *st, const char *name) {
    const st_entry_t *e = safetensors_find(st, name);
    if (!e) fatal("test_m2f_loss: %s has no %s", st->path, name);
    tensor_t *t = NULL;
    err_t err = {0};
    if (safetensors_load(st, name, ctx->arena, e->dtype, 0, NULL, &t, &err) != ERR_OK) fatal("%s", err.msg);
    return t;
}

/* Everything a golden run needs, in ctx's arena. */
typedef struct {
    m2f_prediction_t *aux;
    m2f_predictions_t preds;
    tensor_t *masks[16], *classes[16];
    m2f_targets_t targets;
} golden_inputs_t;

static void load_inputs(ctx_t *ctx, const golden_case_t *gc, golden_inputs_t *in, int requires_grad) {
    char name[96];
    in->aux = calloc((size_t)gc->n_aux + 1, sizeof *in->aux);
    for (int i = 0; i < gc->n_aux; i++) {
        snprintf(name, sizeof name, "aux.%d.class_queries_logits", i);
        in->aux[i].class_logits = load(ctx, &gc->expected, name);
        snprintf(name, sizeof name, "aux.%d.masks_queries_logits", i);
        in->aux[i].mask_logits = load(ctx, &gc->expected, name);
    }
    in->preds = (m2f_predictions_t){.final = {load(ctx, &gc->expected, "class_queries_logits"),
                                              load(ctx, &gc->expected, "masks_queries_logits")},
                                    .aux = in->aux,
                                    .n_aux = gc->n_aux};
    in->preds.final.class_logits->requires_grad = requires_grad;
    in->preds.final.mask_logits->requires_grad = requires_grad;
    for (int i = 0; i < gc->n_aux; i++) {
        in->aux[i].class_logits->requires_grad = requires_grad;
        in->aux[i].mask_logits->requires_grad = requires_grad;
    }
    if (gc->frames > 16) fatal("test_m2f_loss: more than 16 frames");
    for (int f = 0; f < gc->frames; f++) {
        snprintf(name, sizeof name, "mask_labels.%d", f);
        in->masks[f] = load(ctx, &gc->inputs, name);
        snprintf(name, sizeof name, "class_labels.%d", f);
        in->classes[f] = load(ctx, &gc->inputs, name);
    }
    in->targets = (m2f_targets_t){.n_frames = gc->frames, .mask_labels = in->masks, .class_labels = in->classes};
}

static float expected_scalar(const safetensors_t *st, const char *name, int *found) {
    const st_entry_t *e = safetensors_find(st, name);
    *found = e && e->dtype == DTYPE_F32 && e->numel == 1;
    float v = 0.0f;
    if (*found) memcpy(&v, e->data, sizeof v);
    return v;
}

/* |got - want| / max(1, |want|) */
static double term_error(float got, float want) { return fabs((double)got - (double)want) / fmax(1.0, fabs(want)); }

/* Compares the report with the expected file: matching, points, terms, total. */
static void compare_report(const golden_case_t *gc, const m2f_loss_report_t *r, const char *label) {
    char name[160], key[96];
    int n_groups = 1 + gc->n_aux;
    snprintf(name, sizeof name, "%s/groups", label);
    check(r->n_groups == n_groups && r->n_terms == 3 * n_groups, name, "groups %d (want %d), terms %d",
          r->n_groups, n_groups, r->n_terms);
    if (r->n_groups != n_groups) return;
    int match_ok = 1, points_ok = 1;
    double worst_points = 0.0;
    char why[256] = "";
    for (int g = 0; g < n_groups; g++) {
        const m2f_loss_group_t *grp = &r->groups[g];
        for (int f = 0; f < gc->frames; f++) {
            const char *what[2] = {"pred", "tgt"};
            const int64_t *got[2] = {grp->matching.pred_idx + grp->matching.offset[f],
                                     grp->matching.tgt_idx + grp->matching.offset[f]};
            int64_t n = grp->matching.offset[f + 1] - grp->matching.offset[f];
            for (int k = 0; k < 2; k++) {
                snprintf(key, sizeof key, "loss.%s.match_%s_idx.%d", grp->name, what[k], f);
                const st_entry_t *e = safetensors_find(&gc->expected, key);
                int same = e && e->dtype == DTYPE_I64 && e->numel == n;
                for (int64_t i = 0; same && i < n; i++) {
                    int64_t v;
                    memcpy(&v, (const char *)e->data + i * 8, 8);
                    same = v == got[k][i];
                }
                if (!same && match_ok) {
                    match_ok = 0;
                    snprintf(why, sizeof why, "%s differs (or is missing)", key);
                }
            }
        }
        snprintf(key, sizeof key, "loss.%s.point_coords", grp->name);
        const st_entry_t *e = safetensors_find(&gc->expected, key);
        int64_t n = grp->matching.offset[gc->frames] * grp->n_points * 2;
        if (!e || e->dtype != DTYPE_F32 || e->numel != n) {
            points_ok = 0;
            continue;
        }
        float *want = malloc((size_t)n * sizeof(float));
        memcpy(want, e->data, (size_t)n * sizeof(float));
        double d = max_abs_diff(grp->point_coords, want, n);
        if (d > worst_points) worst_points = d;
        if (d != 0.0) points_ok = 0;
        free(want);
    }
    snprintf(name, sizeof name, "%s/matching", label);
    check(match_ok, name, "%s", why);
    snprintf(name, sizeof name, "%s/point_coords", label);
    check(points_ok, name, "max |diff| %.3g (want the very same points)", worst_points);

    double worst = 0.0, worst_pure = 0.0;
    char worst_name[96] = "";
    int terms_ok = 1, found;
    for (int t = 0; t < r->n_terms; t++) {
        const m2f_loss_term_t *term = &r->terms[t];
        const char *kind[2] = {"loss_unweighted", "loss_terms"};
        float got[2] = {term->unweighted, term->weighted};
        for (int k = 0; k < 2; k++) {
            snprintf(key, sizeof key, "%s.%s", kind[k], term->name);
            float want = expected_scalar(&gc->expected, key, &found);
            double e = found ? term_error(got[k], want) : INFINITY;
            double pure = found ? fabs((double)got[k] - want) / fabs(want) : INFINITY;
            printf("  %s %-28s got %.8g want %.8g rel %.2e\n", label, key, got[k], want, pure);
            if (pure > worst_pure) worst_pure = pure;
            if (e > worst) {
                worst = e;
                snprintf(worst_name, sizeof worst_name, "%s", key);
            }
            if (!(e <= TERM_TOL)) terms_ok = 0;
        }
    }
    snprintf(name, sizeof name, "%s/terms", label);
    check(terms_ok, name, "worst %s off by %.3g (want <= %g)", worst_name, worst, TERM_TOL);
    float want_total = expected_scalar(&gc->expected, "loss.total", &found);
    double e_total = found ? term_error(r->total, want_total) : INFINITY;
    printf("  %s loss.total got %.8g want %.8g rel %.2e; worst term rel %.2e (pure relative)\n", label, r->total,
           want_total, e_total, worst_pure);
    snprintf(name, sizeof name, "%s/total", label);
    check(e_total <= TERM_TOL, name, "total %.8g, expected %.8g (error %.3g)", r->total, want_total, e_total);
}

/* Runs one golden case on ctx with the fixed draws; fills *r and returns the
 * gradients of the final class and mask logits (malloc'd, host) when asked. */
static int run_golden(ctx_t *ctx, const golden_case_t *gc, const char *variant_name, m2f_loss_report_t *r,
                      float **grad_class, float **grad_mask, int64_t *n_class, int64_t *n_mask, const char *label) {
    golden_inputs_t in;
    load_inputs(ctx, gc, &in, 1);
    m2f_point_source_t src = {.kind = M2F_POINTS_FIXED, .fixed = &gc->inputs};
    m2f_loss_options_t opts = {.variant = strcmp(variant_name, "avs") == 0 ? M2F_VARIANT_AVS : M2F_VARIANT_AVSS};
    tensor_t *total = NULL;
    err_t err = {0};
    char name[160];
    snprintf(name, sizeof name, "%s/runs", label);
    int ok = check(m2f_loss(ctx, &gc->cfg, &in.preds, &in.targets, &src, &opts, &total, r, &err) == ERR_OK, name,
                   "%s", err.msg);
    if (ok) {
        ctx_backward(ctx, total, NULL);
        const tensor_t *cl = in.preds.final.class_logits, *ml = in.preds.final.mask_logits;
        *n_class = cl->numel;
        *n_mask = ml->numel;
        *grad_class = calloc((size_t)cl->numel, sizeof(float));
        *grad_mask = calloc((size_t)ml->numel, sizeof(float));
        if (cl->grad) ctx->be->copy_to_host(*grad_class, cl->grad, (size_t)cl->numel * sizeof(float));
        if (ml->grad) ctx->be->copy_to_host(*grad_mask, ml->grad, (size_t)ml->numel * sizeof(float));
    }
    free(in.aux);
    ctx_reset(ctx);
    return ok;
}

static void test_golden_case(const char *case_name, const char *variant) {
    const char *shared = shared_dir();
    char dir[1024], label[128];
    snprintf(label, sizeof label, "m2f_loss/golden/%s", case_name);
    if (!shared) {
        check_skip(label, "no shared test data (../shared or $STEPSTONE_SHARED)");
        return;
    }
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, case_name);
    golden_case_t gc;
    err_t err = {0};
    if (!open_case(dir, &gc, &err)) {
        check_skip(label, "cannot open the case: %s", err.msg);
        return;
    }
    ctx_t *cpu = ctx_create(DEVICE_CPU, 1 << 20);
    m2f_loss_report_t r_cpu = {0};
    float *gc_cpu = NULL, *gm_cpu = NULL;
    int64_t n_class = 0, n_mask = 0;
    char name[160];
    snprintf(name, sizeof name, "%s/cpu", label);
    if (run_golden(cpu, &gc, variant, &r_cpu, &gc_cpu, &gm_cpu, &n_class, &n_mask, name)) {
        compare_report(&gc, &r_cpu, name);
        /* the final logits' gradient must exist and be finite (its values are
         * checked by finite differences in m2f_loss/grad) */
        int finite = 1;
        double norm = 0.0;
        for (int64_t i = 0; i < n_class; i++) finite &= isfinite(gc_cpu[i]), norm += fabs(gc_cpu[i]);
        for (int64_t i = 0; i < n_mask; i++) finite &= isfinite(gm_cpu[i]), norm += fabs(gm_cpu[i]);
        snprintf(name, sizeof name, "%s/cpu/grad_finite", label);
        check(finite && norm > 0.0, name, "gradient of the final logits: finite %d, sum |g| %g", finite, norm);
    }
    ctx_destroy(cpu);

    ctx_t *gpu = ctx_create(DEVICE_CUDA, 1 << 20);
    snprintf(name, sizeof name, "%s/cuda", label);
    if (!gpu) {
        check_skip(name, "no CUDA device");
    } else {
        m2f_loss_report_t r_gpu = {0};
        float *gc_gpu = NULL, *gm_gpu = NULL;
        if (run_golden(gpu, &gc, variant, &r_gpu, &gc_gpu, &gm_gpu, &n_class, &n_mask, name)) {
            compare_report(&gc, &r_gpu, name);
            double e_class = gc_cpu ? rel_error(gc_gpu, gc_cpu, n_class) : INFINITY;
            double e_mask = gm_cpu ? rel_error(gm_gpu, gm_cpu, n_mask) : INFINITY;
            snprintf(name, sizeof name, "%s/cuda/grad_vs_cpu", label);
            check(e_class <= 1e-4 && e_mask <= 1e-4, name, "class grad off by %.3g, mask grad by %.3g", e_class,
                  e_mask);
        }
        m2f_loss_report_free(&r_gpu);
        free(gc_gpu);
        free(gm_gpu);
        ctx_destroy(gpu);
    }
    m2f_loss_report_free(&r_cpu);
    free(gc_cpu);
    free(gm_cpu);
    close_case(&gc);
}

static void test_golden_config(void) {
    const char *shared = shared_dir();
    if (!shared) {
        check_skip("m2f_loss/config", "no shared test data");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/avss-tiny/config.json", shared);
    config_t cfg;
    err_t err = {0};
    m2f_loss_config_t c;
    if (config_load(path, &cfg, &err) != ERR_OK) {
        check_skip("m2f_loss/config", "%s", err.msg);
        return;
    }
    err_code_t rc = m2f_loss_config_from_json(&cfg, &c, &err);
    config_free(&cfg);
    check(rc == ERR_OK && c.num_labels == 5 && c.class_weight == 2.0f && c.mask_weight == 5.0f &&
              c.dice_weight == 5.0f && c.no_object_weight == 0.1f && c.train_num_points == 128 &&
              c.oversample_ratio == 3.0 && c.importance_sample_ratio == 0.75,
          "m2f_loss/config", "rc %d (%s): labels %d, weights %g %g %g %g, points %d, ratios %g %g", rc, err.msg,
          c.num_labels, c.class_weight, c.mask_weight, c.dice_weight, c.no_object_weight, c.train_num_points,
          c.oversample_ratio, c.importance_sample_ratio);
}

/* ---- Hungarian against brute force ---- */

/* The smallest total over every injection of the smaller side into the
 * larger, by recursion over rows; best_cols gets the optimum's columns (per
 * row when rows <= cols). */
static void brute_force(const double *cost, int rows, int cols, int row, int *used, int *cols_now, double sum,
                        double *best, int *best_cols) {
    if (row == rows) {
        if (sum < *best) {
            *best = sum;
            memcpy(best_cols, cols_now, (size_t)rows * sizeof(int));
        }
        return;
    }
    for (int j = 0; j < cols; j++) {
        if (used[j]) continue;
        used[j] = 1;
        cols_now[row] = j;
        brute_force(cost, rows, cols, row + 1, used, cols_now, sum + cost[row * cols + j], best, best_cols);
        used[j] = 0;
    }
}

/* min total by brute force of a rows x cols matrix (any orientation); for
 * rows <= cols best_cols[row] is the optimum's column of each row */
static double brute_min(const double *cost, int rows, int cols, int *best_cols) {
    int used[8] = {0}, now[8];
    double best = INFINITY;
    if (rows <= cols) {
        brute_force(cost, rows, cols, 0, used, now, 0.0, &best, best_cols);
    } else {
        double t[64];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = cost[i * cols + j];
        brute_force(t, cols, rows, 0, used, now, 0.0, &best, best_cols);
    }
    return best;
}

static void test_hungarian(void) {
    rng_t rng;
    rng_seed(&rng, 11);
    int trials = 0, bad_cost = 0, bad_idx = 0, bad_form = 0, tie_bad = 0;
    char why[256] = "";
    for (int rows = 1; rows <= 6; rows++) {
        for (int cols = 1; cols <= 6; cols++) {
            for (int trial = 0; trial < 60; trial++) {
                /* half the trials with small integers: many ties */
                int ties = trial % 2;
                double cost[64];
                for (int k = 0; k < rows * cols; k++)
                    cost[k] = ties ? (double)rng_below(&rng, 4) : rng_double(&rng) * 10.0 - 5.0;
                int ri[8], ci[8], best_cols[8];
                int k = linear_sum_assignment(cost, rows, cols, ri, ci);
                double want = brute_min(cost, rows, cols, best_cols);
                int n = rows < cols ? rows : cols;
                trials++;
                /* the form scipy returns: n pairs, rows ascending, columns distinct */
                int form_ok = k == n, used_c[8] = {0};
                double got = 0.0;
                for (int i = 0; form_ok && i < n; i++) {
                    form_ok = ri[i] >= 0 && ri[i] < rows && ci[i] >= 0 && ci[i] < cols && !used_c[ci[i]] &&
                              (i == 0 || ri[i] > ri[i - 1]);
                    if (form_ok) used_c[ci[i]] = 1, got += cost[ri[i] * cols + ci[i]];
                }
                if (!form_ok) {
                    if (!bad_form) snprintf(why, sizeof why, "%dx%d: malformed result (k = %d)", rows, cols, k);
                    bad_form++;
                    continue;
                }
                if (fabs(got - want) > 1e-9) {
                    if (!bad_cost)
                        snprintf(why, sizeof why, "%dx%d trial %d: total %.12g, brute force %.12g", rows, cols, trial,
                                 got, want);
                    bad_cost++;
                    tie_bad += ties;
                    continue;
                }
                /* random real costs have one optimum: the very same pairs
                 * (brute force lists a column per row, or a row per column
                 * when it solved the transpose) */
                if (!ties) {
                    int same = 1;
                    for (int i = 0; i < n; i++)
                        same &= rows <= cols ? best_cols[ri[i]] == ci[i] : best_cols[ci[i]] == ri[i];
                    if (!same) {
                        if (!bad_idx) snprintf(why, sizeof why, "%dx%d trial %d: other pairs", rows, cols, trial);
                        bad_idx++;
                    }
                }
            }
        }
    }
    check(!bad_cost && !bad_idx && !bad_form, "m2f_loss/hungarian/brute_force",
          "%d of %d trials off in cost (%d with ties), %d in pairs, %d malformed: %s", bad_cost, trials, tie_bad,
          bad_idx, bad_form, why);

    /* a larger one than brute force reaches, against a hand-made optimum:
     * identity costs 0, everything else 1, shuffled rows */
    {
        enum { N = 40, C = 70 };
        static double cost[N * C];
        int perm[C], ri[N], ci[N];
        for (int j = 0; j < C; j++) perm[j] = j;
        rng_shuffle(&rng, perm, C, sizeof(int));
        for (int i = 0; i < N; i++)
            for (int j = 0; j < C; j++) cost[i * C + j] = perm[i] == j ? 0.0 : 1.0 + rng_double(&rng);
        int k = linear_sum_assignment(cost, N, C, ri, ci);
        int ok = k == N;
        for (int i = 0; ok && i < N; i++) ok = ri[i] == i && ci[i] == perm[i];
        check(ok, "m2f_loss/hungarian/planted_40x70", "k = %d, first pair (%d, %d), want (0, %d)", k, ri[0], ci[0],
              perm[0]);
    }
    {
        double cost[6] = {1, 2, NAN, 4, 5, 6}, inf_cost[2] = {INFINITY, 1};
        int ri[3], ci[3];
        int a = linear_sum_assignment(cost, 2, 3, ri, ci), b = linear_sum_assignment(inf_cost, 1, 2, ri, ci);
        int c = linear_sum_assignment(cost, 0, 3, ri, ci), d = linear_sum_assignment(cost, 3, 0, ri, ci);
        check(a == -1 && b == -1 && c == 0 && d == 0, "m2f_loss/hungarian/degenerate",
              "NaN gave %d, inf %d (want -1); empty gave %d, %d (want 0)", a, b, c, d);
    }
}

/* scipy's own pairs on integer costs with many equal optima: the tie rule */
static void test_hungarian_scipy(void) {
    safetensors_t ref;
    err_t err = {0};
    if (safetensors_open(HUNGARIAN_REF, &ref, &err) != ERR_OK) {
        check_skip("m2f_loss/hungarian/scipy", "%s", err.msg);
        return;
    }
    const char *count = safetensors_meta(&ref, "cases");
    int cases = count ? atoi(count) : 0, bad = 0;
    char why[256] = "", name[64];
    for (int c = 0; c < cases; c++) {
        snprintf(name, sizeof name, "case%d.cost", c);
        const st_entry_t *cost = safetensors_find(&ref, name);
        snprintf(name, sizeof name, "case%d.row", c);
        const st_entry_t *row = safetensors_find(&ref, name);
        snprintf(name, sizeof name, "case%d.col", c);
        const st_entry_t *col = safetensors_find(&ref, name);
        if (!cost || !row || !col || cost->ndim != 2) {
            bad++;
            snprintf(why, sizeof why, "case %d is incomplete", c);
            continue;
        }
        int rows = (int)cost->shape[0], cols = (int)cost->shape[1], n = (int)row->numel;
        double *cd = malloc((size_t)(rows * cols) * sizeof(double));
        int *ri = malloc((size_t)n * sizeof(int)), *ci = malloc((size_t)n * sizeof(int));
        for (int k = 0; k < rows * cols; k++) {
            float v;
            memcpy(&v, (const char *)cost->data + (size_t)k * 4, 4);
            cd[k] = v;
        }
        int k = linear_sum_assignment(cd, rows, cols, ri, ci);
        int same = k == n;
        for (int i = 0; same && i < n; i++) {
            int64_t r, q;
            memcpy(&r, (const char *)row->data + (size_t)i * 8, 8);
            memcpy(&q, (const char *)col->data + (size_t)i * 8, 8);
            same = r == ri[i] && q == ci[i];
        }
        if (!same && !bad) snprintf(why, sizeof why, "case %d (%dx%d): other pairs than scipy's", c, rows, cols);
        bad += !same;
        free(cd);
        free(ri);
        free(ci);
    }
    check(cases > 0 && bad == 0, "m2f_loss/hungarian/scipy", "%d of %d cases differ: %s", bad, cases, why);
    safetensors_close(&ref);
}

/* ---- importance sampling choice ---- */

static void test_point_select(void) {
    /* two masks, 6 oversampled points, k = 3, one random point each */
    float logits[12] = {3.0f, -0.5f, 0.25f, -0.25f, 9.0f, 0.5f, /* ties: |-0.25| = |0.25|, |-0.5| = |0.5| */
                        NAN,  1.0f,  -2.0f, 0.0f,   -1.0f, 4.0f};
    float coords[24], random[4] = {0.9f, 0.8f, 0.7f, 0.6f}, out[16];
    for (int i = 0; i < 24; i++) coords[i] = (float)i / 100.0f;
    point_select_uncertain(logits, coords, 2, 6, 3, random, 1, out);
    /* mask 0: |x| order 0.25 (index 2), 0.25 (3), 0.5 (1), 0.5 (5): indices 2, 3, 1 */
    /* mask 1: NaN first (index 0), then 0 (3), then 1 (1), 1 (4): indices 0, 3, 1 */
    int want_idx[2][3] = {{2, 3, 1}, {0, 3, 1}};
    int ok = 1;
    for (int r = 0; r < 2; r++) {
        for (int j = 0; j < 3; j++) {
            int src = want_idx[r][j];
            ok &= out[(r * 4 + j) * 2] == coords[(r * 6 + src) * 2] &&
                  out[(r * 4 + j) * 2 + 1] == coords[(r * 6 + src) * 2 + 1];
        }
        ok &= out[(r * 4 + 3) * 2] == random[r * 2] && out[(r * 4 + 3) * 2 + 1] == random[r * 2 + 1];
    }
    check(ok, "m2f_loss/points/uncertain_order", "wrong points or order");

    /* k = 0: only random points; k = m: all, sorted */
    float all[12];
    point_select_uncertain(logits, coords, 1, 6, 6, NULL, 0, all);
    int order[6] = {2, 3, 1, 5, 0, 4}, ok_all = 1;
    for (int j = 0; j < 6; j++) ok_all &= all[j * 2] == coords[order[j] * 2];
    float only_random[2];
    point_select_uncertain(logits, coords, 1, 6, 0, random, 1, only_random);
    check(ok_all && only_random[0] == random[0] && only_random[1] == random[1], "m2f_loss/points/k_edges",
          "k = m or k = 0 chose wrong points");
}

/* ---- a tiny random case ---- */

typedef struct {
    int frames, queries, labels, h, w, H, W, n_aux;
    int n_targets[4];
    float *logits[8];       /* per group: class, mask (host) */
    int64_t logit_numel[8];
    float *masks[4];        /* per frame [n_f, H, W] */
    int64_t *classes[4];
    m2f_loss_config_t cfg;
    uint64_t seed;
} tiny_case_t;

static void tiny_init(tiny_case_t *tc, uint64_t seed) {
    *tc = (tiny_case_t){.frames = 2, .queries = 4, .labels = 3, .h = 5, .w = 6, .H = 10, .W = 12, .n_aux = 1,
                        .n_targets = {2, 1}, .seed = seed};
    tc->cfg = (m2f_loss_config_t){.num_labels = 3, .class_weight = 2.0f, .mask_weight = 5.0f, .dice_weight = 5.0f,
                                  .no_object_weight = 0.1f, .train_num_points = 8, .oversample_ratio = 3.0,
                                  .importance_sample_ratio = 0.75};
    rng_t rng;
    rng_seed(&rng, seed);
    for (int g = 0; g <= tc->n_aux; g++) {
        tc->logit_numel[2 * g] = (int64_t)tc->frames * tc->queries * (tc->labels + 1);
        tc->logit_numel[2 * g + 1] = (int64_t)tc->frames * tc->queries * tc->h * tc->w;
        for (int k = 0; k < 2; k++) {
            int64_t n = tc->logit_numel[2 * g + k];
            tc->logits[2 * g + k] = malloc((size_t)n * sizeof(float));
            for (int64_t i = 0; i < n; i++) tc->logits[2 * g + k][i] = (float)(rng_normal(&rng) * 2.0);
        }
    }
    for (int f = 0; f < tc->frames; f++) {
        int n = tc->n_targets[f];
        tc->masks[f] = calloc((size_t)(n * tc->H * tc->W) + 1, sizeof(float));
        tc->classes[f] = calloc((size_t)n + 1, sizeof(int64_t));
        for (int j = 0; j < n; j++) {
            tc->classes[f][j] = (j + f) % tc->labels;
            /* a random rectangle per target */
            int y0 = (int)rng_below(&rng, (uint64_t)tc->H / 2), x0 = (int)rng_below(&rng, (uint64_t)tc->W / 2);
            int y1 = y0 + 2 + (int)rng_below(&rng, (uint64_t)tc->H / 2), x1 = x0 + 2 + (int)rng_below(&rng, (uint64_t)tc->W / 2);
            for (int y = y0; y < y1 && y < tc->H; y++)
                for (int x = x0; x < x1 && x < tc->W; x++) tc->masks[f][(j * tc->H + y) * tc->W + x] = 1.0f;
        }
    }
}

static void tiny_free(tiny_case_t *tc) {
    for (int i = 0; i < 2 * (tc->n_aux + 1); i++) free(tc->logits[i]);
    for (int f = 0; f < tc->frames; f++) {
        free(tc->masks[f]);
        free(tc->classes[f]);
    }
}

/* The loss of the tiny case on ctx with points from rng seeded `point_seed`;
 * with grads non-NULL the logits require grad and their gradients are copied
 * to grads[k]. Returns the total (NAN on error). */
static double tiny_loss(ctx_t *ctx, const tiny_case_t *tc, uint64_t point_seed, float **grads, m2f_loss_report_t *r,
                        err_code_t *rc_out) {
    m2f_prediction_t groups[4];
    int64_t class_shape[3] = {tc->frames, tc->queries, tc->labels + 1};
    int64_t mask_shape[4] = {tc->frames, tc->queries, tc->h, tc->w};
    for (int g = 0; g <= tc->n_aux; g++) {
        groups[g].class_logits = tensor_from_host(ctx->arena, DTYPE_F32, 3, class_shape, tc->logits[2 * g]);
        groups[g].mask_logits = tensor_from_host(ctx->arena, DTYPE_F32, 4, mask_shape, tc->logits[2 * g + 1]);
        groups[g].class_logits->requires_grad = grads != NULL;
        groups[g].mask_logits->requires_grad = grads != NULL;
    }
    tensor_t *masks[4], *classes[4];
    for (int f = 0; f < tc->frames; f++) {
        int64_t ms[3] = {tc->n_targets[f], tc->H, tc->W}, cs = tc->n_targets[f];
        masks[f] = tensor_from_host(ctx->arena, DTYPE_F32, 3, ms, tc->masks[f]);
        classes[f] = tensor_from_host(ctx->arena, DTYPE_I64, 1, &cs, tc->classes[f]);
    }
    m2f_predictions_t preds = {.final = groups[tc->n_aux], .aux = groups, .n_aux = tc->n_aux};
    m2f_targets_t targets = {.n_frames = tc->frames, .mask_labels = masks, .class_labels = classes};
    rng_t rng;
    rng_seed(&rng, point_seed);
    m2f_point_source_t src = {.kind = M2F_POINTS_RANDOM, .rng = &rng};
    m2f_loss_options_t opts = {.variant = M2F_VARIANT_AVSS};
    tensor_t *total = NULL;
    err_t err = {0};
    int grad_was = ctx_set_grad(ctx, grads != NULL);
    err_code_t rc = m2f_loss(ctx, &tc->cfg, &preds, &targets, &src, &opts, &total, r, &err);
    if (rc_out) *rc_out = rc;
    double value = NAN;
    if (rc == ERR_OK) {
        float v;
        tensor_to_host(total, &v);
        value = v;
        if (grads) {
            ctx_backward(ctx, total, NULL);
            for (int g = 0; g <= tc->n_aux; g++) {
                tensor_t *t[2] = {groups[g].class_logits, groups[g].mask_logits};
                for (int k = 0; k < 2; k++) {
                    memset(grads[2 * g + k], 0, (size_t)t[k]->numel * sizeof(float));
                    if (t[k]->grad)
                        ctx->be->copy_to_host(grads[2 * g + k], t[k]->grad, (size_t)t[k]->numel * sizeof(float));
                }
            }
        }
    } else {
        fprintf(stderr, "tiny_loss: %s\n", err.msg);
    }
    ctx_set_grad(ctx, grad_was);
    ctx_reset(ctx);
    return value;
}

/* Same matching and same points in both reports. */
static int same_choices(const m2f_loss_report_t *a, const m2f_loss_report_t *b) {
    if (a->n_groups != b->n_groups) return 0;
    for (int g = 0; g < a->n_groups; g++) {
        const m2f_loss_group_t *x = &a->groups[g], *y = &b->groups[g];
        int64_t n = x->matching.offset[x->matching.n_frames];
        if (n != y->matching.offset[y->matching.n_frames]) return 0;
        for (int64_t i = 0; i < n; i++)
            if (x->matching.pred_idx[i] != y->matching.pred_idx[i] || x->matching.tgt_idx[i] != y->matching.tgt_idx[i])
                return 0;
        if (memcmp(x->point_coords, y->point_coords, (size_t)(n * x->n_points * 2) * sizeof(float)) != 0) return 0;
    }
    return 1;
}

static void test_gradients(void) {
    tiny_case_t tc;
    tiny_init(&tc, 5);
    ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
    int n_tensors = 2 * (tc.n_aux + 1);
    float *grads[8];
    for (int k = 0; k < n_tensors; k++) grads[k] = malloc((size_t)tc.logit_numel[k] * sizeof(float));
    m2f_loss_report_t base = {0};
    double value = tiny_loss(ctx, &tc, 77, grads, &base, NULL);
    check(isfinite(value), "m2f_loss/grad/runs", "total %g", value);
    /* float32 forward with totals of tens of units: a step of 3e-3 keeps the
     * rounding noise / (2 step) near 1e-3, inside atol. The matching and the
     * uncertain points are piecewise constant in the logits: a step that
     * changes them crosses a seam where the loss jumps, and finite
     * differences mean nothing there. Such elements are skipped (and counted);
     * everywhere else the choices are the base run's, fixed. */
    const double eps = 3e-3, rtol = 2e-2, atol = 2e-3;
    int changed = 0, bad = 0, compared = 0;
    double worst = 0.0;
    char why[256] = "";
    const char *names[2] = {"class", "mask"};
    for (int k = 0; k < n_tensors && isfinite(value); k++) {
        for (int64_t i = 0; i < tc.logit_numel[k]; i++) {
            float keep = tc.logits[k][i];
            m2f_loss_report_t up_r = {0}, down_r = {0};
            tc.logits[k][i] = keep + (float)eps;
            double up = tiny_loss(ctx, &tc, 77, NULL, &up_r, NULL);
            tc.logits[k][i] = keep - (float)eps;
            double down = tiny_loss(ctx, &tc, 77, NULL, &down_r, NULL);
            tc.logits[k][i] = keep;
            int same = same_choices(&base, &up_r) && same_choices(&base, &down_r);
            m2f_loss_report_free(&up_r);
            m2f_loss_report_free(&down_r);
            if (!same) {
                changed++;
                continue;
            }
            compared++;
            /* the step actually taken in float */
            double h = ((double)(keep + (float)eps) - (double)(keep - (float)eps)) / 2.0;
            double num = (up - down) / (2.0 * h), ana = grads[k][i];
            double err = fabs(num - ana) / (fmax(fabs(num), fabs(ana)) + atol / rtol);
            if (err > worst) worst = err;
            if (!(fabs(num - ana) <= rtol * fmax(fabs(num), fabs(ana)) + atol)) {
                if (!bad)
                    snprintf(why, sizeof why, "group %d %s logit %lld: analytic %.6g, numeric %.6g", k / 2,
                             names[k % 2], (long long)i, ana, num);
                bad++;
            }
        }
    }
    check(changed * 10 <= compared, "m2f_loss/grad/choices_fixed",
          "%d perturbations changed the matching or the points, %d did not (want at most 10%%)", changed, compared);
    check(isfinite(value) && bad == 0 && compared > 0, "m2f_loss/grad/fd", "%d of %d elements off (worst %.3g): %s",
          bad, compared, worst, why);
    printf("  m2f_loss/grad/fd: %d elements compared, %d skipped at a seam, worst scaled error %.3g\n", compared,
           changed, worst);

    /* the same seed gives the same draws: the same total and choices */
    m2f_loss_report_t again = {0};
    double value2 = tiny_loss(ctx, &tc, 77, NULL, &again, NULL);
    check(value2 == value && same_choices(&base, &again), "m2f_loss/random/deterministic", "total %.9g then %.9g",
          value, value2);
    int in_range = 1;
    for (int g = 0; g < again.n_groups; g++) {
        const m2f_loss_group_t *grp = &again.groups[g];
        int64_t n = grp->matching.offset[grp->matching.n_frames] * grp->n_points * 2;
        for (int64_t i = 0; i < n; i++) in_range &= grp->point_coords[i] >= 0.0f && grp->point_coords[i] < 1.0f;
    }
    check(in_range && again.n_groups == 2 && strcmp(again.groups[1].name, "aux0") == 0 &&
              m2f_loss_report_term(&again, "loss_dice_0") && m2f_loss_report_term(&again, "loss_cross_entropy"),
          "m2f_loss/random/report", "points in [0, 1): %d; groups %d", in_range, again.n_groups);
    m2f_loss_report_free(&again);
    m2f_loss_report_free(&base);

    /* more targets than queries (only Q match), a frame without targets, and
     * importance ratios 0 and 1 */
    tc.n_targets[0] = 0;
    tc.n_targets[1] = 1;
    tc.queries = 4;
    double empty_frame = tiny_loss(ctx, &tc, 3, NULL, NULL, NULL);
    tc.n_targets[0] = 2;
    tc.cfg.importance_sample_ratio = 0.0;
    double ratio0 = tiny_loss(ctx, &tc, 3, NULL, NULL, NULL);
    tc.cfg.importance_sample_ratio = 1.0;
    double ratio1 = tiny_loss(ctx, &tc, 3, NULL, NULL, NULL);
    check(isfinite(empty_frame) && isfinite(ratio0) && isfinite(ratio1), "m2f_loss/random/edges",
          "frame without targets %g, ratio 0: %g, ratio 1: %g", empty_frame, ratio0, ratio1);
    tiny_free(&tc);

    tiny_case_t wide;
    tiny_init(&wide, 9);
    wide.queries = 2; /* the logits were made for 4 queries: fewer is a prefix of them */
    for (int f = 0; f < wide.frames; f++) {
        free(wide.masks[f]);
        free(wide.classes[f]);
        wide.n_targets[f] = 3;
        wide.masks[f] = calloc((size_t)(3 * wide.H * wide.W), sizeof(float));
        wide.classes[f] = calloc(3, sizeof(int64_t));
        for (int j = 0; j < 3; j++) {
            wide.classes[f][j] = j;
            for (int p = j * 10; p < j * 10 + 20; p++) wide.masks[f][j * wide.H * wide.W + p] = 1.0f;
        }
    }
    m2f_loss_report_t wr = {0};
    double wide_value = tiny_loss(ctx, &wide, 4, NULL, &wr, NULL);
    check(isfinite(wide_value) && wr.n_groups == 2 && wr.groups[0].matching.offset[1] == 2 &&
              wr.groups[0].matching.offset[2] == 4,
          "m2f_loss/random/more_targets_than_queries", "total %g, matched %lld", wide_value,
          wr.n_groups ? (long long)wr.groups[0].matching.offset[2] : -1LL);
    m2f_loss_report_free(&wr);
    tiny_free(&wide);

    for (int k = 0; k < n_tensors; k++) free(grads[k]);
    ctx_destroy(ctx);
}

/* ---- the matcher's cost against a double-precision recomputation ---- */

/* grid_sample(align_corners=False, zeros) of one [h, w] map at (x, y) in [0, 1]^2 */
static double bilinear_at(const float *map, int h, int w, double x, double y) {
    double ix = x * w - 0.5, iy = y * h - 0.5;
    int x0 = (int)floor(ix), y0 = (int)floor(iy);
    double fx = ix - x0, fy = iy - y0, v = 0.0;
    for (int dy = 0; dy <= 1; dy++)
        for (int dx = 0; dx <= 1; dx++) {
            int yy = y0 + dy, xx = x0 + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            v += (dy ? fy : 1.0 - fy) * (dx ? fx : 1.0 - fx) * map[yy * w + xx];
        }
    return v;
}

static double softplus(double x) { return fmax(x, 0.0) + log1p(exp(-fabs(x))); }

static void test_matcher_cost(void) {
    tiny_case_t tc;
    tiny_init(&tc, 13);
    /* logits far out too, where BCE against zeros is tiny next to the logit */
    for (int64_t i = 0; i < tc.logit_numel[1]; i += 7) tc.logits[1][i] = (i % 2 ? 25.0f : -25.0f) + (float)(i % 5);
    ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
    int64_t class_shape[3] = {tc.frames, tc.queries, tc.labels + 1};
    int64_t mask_shape[4] = {tc.frames, tc.queries, tc.h, tc.w};
    tensor_t *cl = tensor_from_host(ctx->arena, DTYPE_F32, 3, class_shape, tc.logits[0]);
    tensor_t *ml = tensor_from_host(ctx->arena, DTYPE_F32, 4, mask_shape, tc.logits[1]);
    tensor_t *masks[4], *classes[4];
    for (int f = 0; f < tc.frames; f++) {
        int64_t ms[3] = {tc.n_targets[f], tc.H, tc.W}, cs = tc.n_targets[f];
        masks[f] = tensor_from_host(ctx->arena, DTYPE_F32, 3, ms, tc.masks[f]);
        classes[f] = tensor_from_host(ctx->arena, DTYPE_I64, 1, &cs, tc.classes[f]);
    }
    m2f_targets_t targets = {.n_frames = tc.frames, .mask_labels = masks, .class_labels = classes};
    const int points = 40;
    rng_t rng;
    rng_seed(&rng, 8);
    float *coords = malloc((size_t)(tc.frames * points * 2) * sizeof(float));
    for (int i = 0; i < tc.frames * points * 2; i++) coords[i] = rng_float(&rng);
    int64_t coords_shape[4] = {tc.frames, 1, points, 2};
    tensor_t *coords_t = tensor_from_host(ctx->arena, DTYPE_F32, 4, coords_shape, coords);
    m2f_match_weights_t w = {.cost_class = 1.0f, .cost_mask = 5.0f, .cost_dice = 5.0f};
    m2f_matching_t match;
    float *costs[4];
    err_t err = {0};
    err_code_t rc = m2f_match(ctx, w, cl, ml, &targets, coords_t, &match, costs, &err);
    double worst = 0.0;
    int classes_n = tc.labels + 1;
    for (int f = 0; rc == ERR_OK && f < tc.frames; f++) {
        int n = tc.n_targets[f];
        for (int q = 0; q < tc.queries; q++) {
            const float *logit_map = tc.logits[1] + (f * tc.queries + q) * tc.h * tc.w;
            const float *class_row = tc.logits[0] + (f * tc.queries + q) * classes_n;
            double zmax = class_row[0], zsum = 0.0;
            for (int c = 1; c < classes_n; c++) zmax = fmax(zmax, class_row[c]);
            for (int c = 0; c < classes_n; c++) zsum += exp(class_row[c] - zmax);
            for (int j = 0; j < n; j++) {
                const float *target_map = tc.masks[f] + j * tc.H * tc.W;
                double bce = 0.0, st = 0.0, s_sum = 0.0, t_sum = 0.0;
                for (int p = 0; p < points; p++) {
                    double x = coords[(f * points + p) * 2], y = coords[(f * points + p) * 2 + 1];
                    double logit = bilinear_at(logit_map, tc.h, tc.w, x, y);
                    double t = bilinear_at(target_map, tc.H, tc.W, x, y);
                    double sig = 1.0 / (1.0 + exp(-logit));
                    bce += softplus(-logit) * t + softplus(logit) * (1.0 - t);
                    st += sig * t;
                    s_sum += sig;
                    t_sum += t;
                }
                double prob = exp(class_row[tc.classes[f][j]] - zmax) / zsum;
                double want = 5.0 * bce / points - prob + 5.0 * (1.0 - (2.0 * st + 1.0) / (s_sum + t_sum + 1.0));
                double e = fabs(costs[f][q * n + j] - want) / fmax(1.0, fabs(want));
                if (e > worst) worst = e;
            }
        }
    }
    check(rc == ERR_OK && worst <= 1e-5, "m2f_loss/matcher/cost_vs_double", "rc %d (%s), worst error %.3g", rc,
          err.msg, worst);
    printf("  m2f_loss/matcher/cost_vs_double: worst relative error %.3g\n", worst);
    if (rc == ERR_OK) {
        m2f_matching_free(&match);
        for (int f = 0; f < tc.frames; f++) free(costs[f]);
    }
    free(coords);
    ctx_destroy(ctx);
    tiny_free(&tc);
}

/* ---- avs/'s empty v1m batch ---- */

static void test_avs_empty(void) {
    tiny_case_t tc;
    tiny_init(&tc, 21);
    ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
    int64_t class_shape[3] = {tc.frames, tc.queries, tc.labels + 1};
    int64_t mask_shape[4] = {tc.frames, tc.queries, tc.h, tc.w};
    m2f_prediction_t groups[2];
    for (int g = 0; g < 2; g++) {
        groups[g].class_logits = tensor_from_host(ctx->arena, DTYPE_F32, 3, class_shape, tc.logits[2 * g]);
        groups[g].mask_logits = tensor_from_host(ctx->arena, DTYPE_F32, 4, mask_shape, tc.logits[2 * g + 1]);
        groups[g].class_logits->requires_grad = groups[g].mask_logits->requires_grad = 1;
    }
    tensor_t *masks[2], *classes[2];
    for (int f = 0; f < 2; f++) {
        int64_t ms[3] = {tc.n_targets[f], tc.H, tc.W}, cs = tc.n_targets[f];
        masks[f] = tensor_from_host(ctx->arena, DTYPE_F32, 3, ms, tc.masks[f]);
        classes[f] = tensor_from_host(ctx->arena, DTYPE_I64, 1, &cs, tc.classes[f]);
    }
    m2f_predictions_t preds = {.final = groups[1], .aux = groups, .n_aux = 1};
    m2f_targets_t targets = {.n_frames = 2, .mask_labels = masks, .class_labels = classes};
    rng_t rng;
    rng_seed(&rng, 1);
    m2f_point_source_t src = {.kind = M2F_POINTS_RANDOM, .rng = &rng};
    int64_t map_shape[3] = {2, tc.H, tc.W};
    tensor_t *empty_map = tensor_zeros(ctx->arena, DTYPE_I64, 3, map_shape);
    tensor_t *empty_f32 = tensor_zeros(ctx->arena, DTYPE_F32, 3, map_shape);
    int64_t *one_pixel = calloc((size_t)(2 * tc.H * tc.W), sizeof(int64_t));
    one_pixel[tc.H * tc.W + 7] = 1;
    tensor_t *some_map = tensor_from_host(ctx->arena, DTYPE_I64, 3, map_shape, one_pixel);
    free(one_pixel);
    err_t err = {0};
    tensor_t *total = NULL;
    m2f_loss_report_t r = {0};

    m2f_loss_options_t avs_empty = {.variant = M2F_VARIANT_AVS, .v1m_label_maps = empty_map};
    err_code_t rc = m2f_loss(ctx, &tc.cfg, &preds, &targets, &src, &avs_empty, &total, &r, &err);
    float v = -1.0f;
    if (rc == ERR_OK) {
        tensor_to_host(total, &v);
        ctx_backward(ctx, total, NULL);
    }
    int no_grad = !groups[0].class_logits->grad && !groups[0].mask_logits->grad && !groups[1].class_logits->grad &&
                  !groups[1].mask_logits->grad;
    check(rc == ERR_OK && r.skipped && v == 0.0f && total->ndim == 0 && no_grad, "m2f_loss/avs_empty/zero",
          "rc %d (%s), skipped %d, total %g, no gradient %d", rc, err.msg, r.skipped, v, no_grad);
    m2f_loss_report_free(&r);

    avs_empty.v1m_label_maps = empty_f32;
    rc = m2f_loss(ctx, &tc.cfg, &preds, &targets, &src, &avs_empty, &total, &r, &err);
    check(rc == ERR_OK && r.skipped, "m2f_loss/avs_empty/f32_maps", "rc %d, skipped %d", rc, r.skipped);
    m2f_loss_report_free(&r);

    m2f_loss_options_t avs_some = {.variant = M2F_VARIANT_AVS, .v1m_label_maps = some_map};
    rc = m2f_loss(ctx, &tc.cfg, &preds, &targets, &src, &avs_some, &total, &r, &err);
    v = 0.0f;
    if (rc == ERR_OK) tensor_to_host(total, &v);
    check(rc == ERR_OK && !r.skipped && v > 0.0f, "m2f_loss/avs_empty/one_pixel_counts",
          "rc %d (%s), skipped %d, total %g", rc, err.msg, r.skipped, v);
    m2f_loss_report_free(&r);

    m2f_loss_options_t avss_maps = {.variant = M2F_VARIANT_AVSS, .v1m_label_maps = empty_map};
    rc = m2f_loss(ctx, &tc.cfg, &preds, &targets, &src, &avss_maps, &total, &r, &err);
    check(rc == ERR_ARG, "m2f_loss/avs_empty/avss_has_no_rule", "rc %d, want ERR_ARG", rc);

    /* ---- errors ---- */
    int64_t bad_class = 7;
    int64_t one = 1;
    tensor_t *keep = classes[1];
    classes[1] = tensor_from_host(ctx->arena, DTYPE_I64, 1, &one, &bad_class);
    m2f_loss_options_t plain = {.variant = M2F_VARIANT_AVSS};
    rc = m2f_loss(ctx, &tc.cfg, &preds, &targets, &src, &plain, &total, &r, &err);
    check(rc == ERR_ARG && strstr(err.msg, "frame 1"), "m2f_loss/errors/class_out_of_range", "rc %d: %s", rc,
          err.msg);
    classes[1] = keep;

    int64_t none_ms[3] = {0, tc.H, tc.W}, none_cs = 0;
    tensor_t *no_masks[2] = {tensor_zeros(ctx->arena, DTYPE_F32, 3, none_ms),
                             tensor_zeros(ctx->arena, DTYPE_F32, 3, none_ms)};
    tensor_t *no_classes[2] = {tensor_zeros(ctx->arena, DTYPE_I64, 1, &none_cs),
                               tensor_zeros(ctx->arena, DTYPE_I64, 1, &none_cs)};
    m2f_targets_t nothing = {.n_frames = 2, .mask_labels = no_masks, .class_labels = no_classes};
    rc = m2f_loss(ctx, &tc.cfg, &preds, &nothing, &src, &plain, &total, &r, &err);
    check(rc == ERR_ARG && strstr(err.msg, "num_masks"), "m2f_loss/errors/no_targets", "rc %d: %s", rc, err.msg);

    /* a fixed source that lacks the draws, or has them in another shape */
    st_writer_t *w = safetensors_writer_new();
    float coords[2 * 1 * 8 * 2] = {0};
    int64_t wrong_shape[4] = {2, 1, 7, 2};
    safetensors_writer_add(w, "loss.final.matcher_point_coords", DTYPE_F32, 4, wrong_shape, coords, &err);
    char path[] = "/tmp/stepstone-test-m2f-loss-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    rc = safetensors_writer_save(w, path, &err);
    safetensors_writer_free(w);
    safetensors_t fixed = {0};
    if (rc == ERR_OK && safetensors_open(path, &fixed, &err) == ERR_OK) {
        m2f_point_source_t fsrc = {.kind = M2F_POINTS_FIXED, .fixed = &fixed};
        rc = m2f_loss(ctx, &tc.cfg, &preds, &targets, &fsrc, &plain, &total, &r, &err);
        check(rc == ERR_MISMATCH && strstr(err.msg, "loss.final.matcher_point_coords"),
              "m2f_loss/errors/fixed_wrong_shape", "rc %d: %s", rc, err.msg);
        preds.n_aux = 0;
        preds.final = groups[0];
        tc.cfg.train_num_points = 7;
        rc = m2f_loss(ctx, &tc.cfg, &preds, &targets, &fsrc, &plain, &total, &r, &err);
        check(rc == ERR_NOTFOUND && strstr(err.msg, "loss.final.oversampled_point_coords"),
              "m2f_loss/errors/fixed_missing", "rc %d: %s", rc, err.msg);
        safetensors_close(&fixed);
    } else {
        check(0, "m2f_loss/errors/fixed_file", "%s", err.msg);
    }
    remove(path);
    ctx_destroy(ctx);
    tiny_free(&tc);
}

int main(void) {
    test_golden_config();
    test_golden_case("avs-tiny", "avs");
    test_golden_case("avss-tiny", "avss");
    test_hungarian();
    test_hungarian_scipy();
    test_point_select();
    test_gradients();
    test_matcher_cost();
    test_avs_empty();
    return check_finish("test_m2f_loss");
}
