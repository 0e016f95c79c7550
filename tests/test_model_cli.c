/* test_model_cli.c - stepstone-model forward end to end: the golden backbone
 * tensors and the whole AAVS head of both golden cases (forward, semantic map,
 * loss terms, matchings, gradients), the head from backbone features, --train
 * all, random loss points, frames and audio made by the program itself against
 * the reference outputs, --fit-frames, --help, and bad input with exit codes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "frames.h"
#include "cli.h"
#include "safetensors.h"

static char model_bin[4096], out_text[65536], log_path[512];
static int sanitizer_reports; /* runs whose output holds an ASan/UBSan/LSan report (SANITIZE=1 builds) */

/* Runs the program with argv (NULL-terminated, no quoting needed for the
 * paths used here); its output lands in out_text. Returns the exit status. */
static int program_run(char *const argv[], char *out, size_t size) {
    char cmd[8192];
    size_t n = 0;
    for (int i = 0; argv[i] && n < sizeof cmd; i++) n += (size_t)snprintf(cmd + n, sizeof cmd - n, "'%s' ", argv[i]);
    unlink(log_path);
    int rc = cli_run(cmd, log_path);
    char *text = cli_read_text(log_path);
    snprintf(out, size, "%s", text ? text : "");
    if (text && (strstr(text, "Sanitizer") || strstr(text, "runtime error:"))) sanitizer_reports++;
    free(text);
    return rc;
}

static double compare(const safetensors_t *got, const char *got_name, const safetensors_t *want, const char *want_name,
                      arena_t *a) {
    tensor_t *g = NULL, *w = NULL;
    err_t err;
    if (safetensors_load(got, got_name, a, DTYPE_F32, 0, NULL, &g, &err) != ERR_OK) return 1e9;
    if (safetensors_load(want, want_name, a, DTYPE_F32, 0, NULL, &w, &err) != ERR_OK) return 1e9;
    if (!tensor_same_shape(g, w)) return 1e9;
    return rel_error(tensor_f32(g), tensor_f32(w), g->numel);
}

/* ---- the head's outputs against the golden tensors ---- */

#define PARITY_TOL 1e-4 /* activations and logits */
#define LOSS_TOL 1e-5   /* loss terms */
#define GRAD_TOL 1e-3   /* gradients */

/* Worst error and first failure of a group of outputs. */
typedef struct {
    double worst;
    int compared, failed;
    char first_bad[256];
} tally_t;

/* The error of output got_name against want_name: the relative error for F32
 * (max |got - want| / max(1, max |want|)), the number of differing elements for
 * other dtypes (*exact set); INFINITY when either is missing or they differ in
 * dtype or shape. */
static double entry_error(const safetensors_t *got, const char *got_name, const safetensors_t *want,
                          const char *want_name, int *exact) {
    const st_entry_t *g = safetensors_find(got, got_name), *w = safetensors_find(want, want_name);
    *exact = w && w->dtype != DTYPE_F32;
    if (!g || !w || g->dtype != w->dtype || g->ndim != w->ndim) return INFINITY;
    for (int d = 0; d < g->ndim; d++)
        if (g->shape[d] != w->shape[d]) return INFINITY;
    size_t es = dtype_size(g->dtype), bytes = (size_t)g->numel * es;
    if (*exact) {
        int64_t differ = 0;
        for (int64_t i = 0; i < g->numel; i++)
            differ += memcmp((const char *)g->data + (size_t)i * es, (const char *)w->data + (size_t)i * es, es) != 0;
        return (double)differ;
    }
    /* the file's bytes may be unaligned for floats */
    float *gf = malloc(bytes ? bytes : 1), *wf = malloc(bytes ? bytes : 1);
    memcpy(gf, g->data, bytes);
    memcpy(wf, w->data, bytes);
    double r = rel_error(gf, wf, g->numel);
    free(gf);
    free(wf);
    return r;
}

static void tally(tally_t *t, const safetensors_t *got, const char *got_name, const safetensors_t *want,
                  const char *want_name, double tol) {
    int exact;
    double r = entry_error(got, got_name, want, want_name, &exact);
    int ok = exact ? r == 0.0 : r <= tol;
    t->compared++;
    if (!exact && r > t->worst) t->worst = r;
    if (!ok) {
        t->failed++;
        if (!t->first_bad[0]) snprintf(t->first_bad, sizeof t->first_bad, "%s (%.3g)", got_name, r);
    }
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* How many outputs start with prefix. */
static int count_prefixed(const safetensors_t *st, const char *prefix) {
    int n = 0;
    for (int i = 0; i < st->n_entries; i++) n += starts_with(st->entries[i].name, prefix);
    return n;
}

/* The forward outputs and the semantic map of got against the golden want. */
static void check_head_forward(const safetensors_t *got, const safetensors_t *want, const char *label) {
    tally_t t = {0};
    char name[128], check_name[256];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "pixel_decoder.multi_scale_features.%d", i);
        tally(&t, got, name, want, name, PARITY_TOL);
    }
    tally(&t, got, "pixel_decoder.mask_features", want, "pixel_decoder.mask_features", PARITY_TOL);
    tally(&t, got, "class_queries_logits", want, "class_queries_logits", PARITY_TOL);
    tally(&t, got, "masks_queries_logits", want, "masks_queries_logits", PARITY_TOL);
    int n_aux = 0;
    for (;; n_aux++) {
        snprintf(name, sizeof name, "aux.%d.class_queries_logits", n_aux);
        if (!safetensors_find(want, name)) break;
        tally(&t, got, name, want, name, PARITY_TOL);
        snprintf(name, sizeof name, "aux.%d.masks_queries_logits", n_aux);
        tally(&t, got, name, want, name, PARITY_TOL);
    }
    printf("#   model_cli/%s/head_forward: %d outputs (%d aux predictions), worst rel %.3g\n", label, t.compared, n_aux,
           t.worst);
    snprintf(check_name, sizeof check_name, "model_cli/%s/head_forward", label);
    check(t.failed == 0 && n_aux > 0, check_name, "%d off, first: %s", t.failed, t.first_bad);
    tally_t m = {0};
    tally(&m, got, "semantic_map", want, "postprocess.semantic_map", 0.0);
    snprintf(check_name, sizeof check_name, "model_cli/%s/semantic_map", label);
    check(m.failed == 0, check_name, "%s pixels differ", m.first_bad);
}

/* Every loss term, matching and point set, and the gradients of want (the
 * phase-1 parameters) in got; with exact_grad_set, no other gradient either. */
static void check_head_loss(const safetensors_t *got, const safetensors_t *want, const char *label,
                            int exact_grad_set) {
    tally_t loss = {0}, match = {0}, grad = {0};
    for (int i = 0; i < want->n_entries; i++) {
        const char *n = want->entries[i].name;
        if (starts_with(n, "loss_terms.") || starts_with(n, "loss_unweighted.") || strcmp(n, "loss.total") == 0)
            tally(&loss, got, n, want, n, LOSS_TOL);
        else if (starts_with(n, "loss.") && (strstr(n, ".match_") || strstr(n, ".point_coords")))
            tally(&match, got, n, want, n, PARITY_TOL);
        else if (starts_with(n, "grad."))
            tally(&grad, got, n, want, n, GRAD_TOL);
    }
    char check_name[256];
    printf("#   model_cli/%s/loss: %d terms, worst rel %.3g; %d matchings and point sets; %d gradients (of %d "
           "written), worst rel %.3g\n",
           label, loss.compared, loss.worst, match.compared, grad.compared, count_prefixed(got, "grad."), grad.worst);
    snprintf(check_name, sizeof check_name, "model_cli/%s/loss_terms", label);
    check(loss.failed == 0 && loss.compared >= 13, check_name, "%d off, first: %s", loss.failed, loss.first_bad);
    snprintf(check_name, sizeof check_name, "model_cli/%s/matching", label);
    check(match.failed == 0 && match.compared > 0, check_name, "%d off, first: %s", match.failed, match.first_bad);
    snprintf(check_name, sizeof check_name, "model_cli/%s/grads", label);
    int extra = count_prefixed(got, "grad.") - grad.compared;
    check(grad.failed == 0 && grad.compared > 0 && (!exact_grad_set || extra == 0), check_name,
          "%d off, first: %s; %d gradients the golden file lacks", grad.failed, grad.first_bad, extra);
}

static void test_golden(const char *sh, const char *name) {
    char cfg[512], wts[512], in[512], exp[512], out[512], check_name[128];
    snprintf(cfg, sizeof cfg, "%s/golden/%s/config.json", sh, name);
    snprintf(wts, sizeof wts, "%s/golden/%s/weights.safetensors", sh, name);
    snprintf(in, sizeof in, "%s/golden/%s/inputs.safetensors", sh, name);
    snprintf(exp, sizeof exp, "%s/golden/%s/expected.safetensors", sh, name);
    snprintf(out, sizeof out, "/tmp/stepstone-test-model-%d-%s.safetensors", (int)getpid(), name);
    char *argv[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--inputs", in, "--out", out, NULL};
    int rc = program_run(argv, out_text, sizeof out_text);
    snprintf(check_name, sizeof check_name, "model_cli/golden_%s/runs", name);
    if (!check(rc == 0, check_name, "exit %d: %s", rc, out_text)) return;
    safetensors_t got, want;
    err_t err;
    if (safetensors_open(out, &got, &err) != ERR_OK || safetensors_open(exp, &want, &err) != ERR_OK) {
        check(0, check_name, "%s", err.msg);
        return;
    }
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    double worst = 0;
    for (int k = 1; k <= 4; k++) {
        char g[64], w[64];
        snprintf(g, sizeof g, "backbone.stage%d", k);
        snprintf(w, sizeof w, "backbone.feature_map.stage%d", k);
        double e = compare(&got, g, &want, w, a);
        if (e > worst) worst = e;
    }
    snprintf(check_name, sizeof check_name, "model_cli/golden_%s/backbone_stages", name);
    check(worst <= 1e-4, check_name, "worst rel error %.3g", worst);
    char label[128];
    snprintf(label, sizeof label, "golden_%s", name);
    check_head_forward(&got, &want, label);
    check_head_loss(&got, &want, label, 1);
    arena_destroy(a);
    safetensors_close(&got);
    safetensors_close(&want);
    unlink(out);
}

/* Copies entry src_name of src into w as dst_name; 0 or -1. */
static int copy_entry(st_writer_t *w, const safetensors_t *src, const char *src_name, const char *dst_name) {
    const st_entry_t *e = safetensors_find(src, src_name);
    err_t err;
    if (!e) return -1;
    return safetensors_writer_add(w, dst_name, e->dtype, e->ndim, e->shape, e->data, &err) == ERR_OK ? 0 : -1;
}

/* An inputs file for the head alone: backbone.stage<k> (the golden backbone
 * outputs), audio, the stage-1 mask and target_size, and with with_labels
 * the targets (with_points: and the official loss points). 0 or -1. */
static int write_head_inputs(const safetensors_t *in, const safetensors_t *exp, int with_labels, int with_points,
                             const char *path) {
    st_writer_t *w = safetensors_writer_new();
    int rc = 0;
    for (int k = 1; k <= 4 && rc == 0; k++) {
        char src[64], dst[64];
        snprintf(src, sizeof src, "backbone.feature_map.stage%d", k);
        snprintf(dst, sizeof dst, "backbone.stage%d", k);
        rc = copy_entry(w, exp, src, dst);
    }
    for (int i = 0; i < in->n_entries && rc == 0; i++) {
        const char *n = in->entries[i].name;
        int wanted = strcmp(n, "audio_embeddings") == 0 || strcmp(n, "audio_boost_mask") == 0 ||
                     strcmp(n, "target_size") == 0 ||
                     (with_labels && (starts_with(n, "mask_labels.") || starts_with(n, "class_labels."))) ||
                     (with_points && starts_with(n, "loss."));
        if (wanted) rc = copy_entry(w, in, n, n);
    }
    err_t err;
    if (rc == 0 && safetensors_writer_save(w, path, &err) != ERR_OK) rc = -1;
    safetensors_writer_free(w);
    return rc;
}

/* The head from backbone features (no pixel_values): the forward without
 * labels writes no loss; --train all writes every head parameter's gradient,
 * the phase-1 ones equal to the golden; random points are seeded. */
static void test_head_from_features(const char *sh, const char *name) {
    char cfg[512], wts[512], in_path[512], exp_path[512], in[256], out[256], out2[256], label[128], check_name[256];
    snprintf(cfg, sizeof cfg, "%s/golden/%s/config.json", sh, name);
    snprintf(wts, sizeof wts, "%s/golden/%s/weights.safetensors", sh, name);
    snprintf(in_path, sizeof in_path, "%s/golden/%s/inputs.safetensors", sh, name);
    snprintf(exp_path, sizeof exp_path, "%s/golden/%s/expected.safetensors", sh, name);
    snprintf(in, sizeof in, "/tmp/stepstone-test-model-%d-head-in.safetensors", (int)getpid());
    snprintf(out, sizeof out, "/tmp/stepstone-test-model-%d-head-out.safetensors", (int)getpid());
    snprintf(out2, sizeof out2, "/tmp/stepstone-test-model-%d-head-out2.safetensors", (int)getpid());
    snprintf(label, sizeof label, "features_%s", name);
    safetensors_t gin, want, got;
    err_t err;
    if (safetensors_open(in_path, &gin, &err) != ERR_OK || safetensors_open(exp_path, &want, &err) != ERR_OK) {
        check(0, "model_cli/features", "%s", err.msg);
        return;
    }

    /* forward only */
    int ok = write_head_inputs(&gin, &want, 0, 0, in) == 0;
    char *argv[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--inputs", in, "--out", out, NULL};
    int rc = ok ? program_run(argv, out_text, sizeof out_text) : -1;
    snprintf(check_name, sizeof check_name, "model_cli/%s/runs", label);
    if (check(rc == 0 && safetensors_open(out, &got, &err) == ERR_OK, check_name, "exit %d: %s", rc, out_text)) {
        check_head_forward(&got, &want, label);
        snprintf(check_name, sizeof check_name, "model_cli/%s/no_labels_no_loss", label);
        check(!safetensors_find(&got, "loss.total") && count_prefixed(&got, "grad.") == 0 &&
                  !safetensors_find(&got, "backbone.stage1"),
              check_name, "loss, gradient or backbone outputs written without labels or pixel_values");
        safetensors_close(&got);
    }

    /* every head parameter's gradient; the phase-1 ones as the golden */
    ok = write_head_inputs(&gin, &want, 1, 1, in) == 0;
    char *argv_all[] = {model_bin, "forward", "--config", cfg,  "--weights", wts, "--inputs",
                        in,        "--out",   out,    "--train", "all",     NULL};
    rc = ok ? program_run(argv_all, out_text, sizeof out_text) : -1;
    snprintf(check_name, sizeof check_name, "model_cli/%s/train_all_runs", label);
    if (check(rc == 0 && safetensors_open(out, &got, &err) == ERR_OK, check_name, "exit %d: %s", rc, out_text)) {
        snprintf(check_name, sizeof check_name, "model_cli/%s/train_all", label);
        int head_params = 0;
        safetensors_t wf;
        if (safetensors_open(wts, &wf, &err) == ERR_OK) {
            static const char *const head_prefixes[] = {"model.model.pixel_level_module.decoder.",
                                                        "model.model.transformer_module.", "model.class_predictor.",
                                                        "audio_proj."};
            for (int p = 0; p < 4; p++) head_params += count_prefixed(&wf, head_prefixes[p]);
            safetensors_close(&wf);
        }
        int n_grads = count_prefixed(&got, "grad.");
        printf("#   model_cli/%s/train_all: %d gradients for %d head parameters\n", label, n_grads, head_params);
        check(n_grads == head_params && head_params > count_prefixed(&want, "grad."), check_name,
              "%d gradients, %d head parameters", n_grads, head_params);
        char sub[160];
        snprintf(sub, sizeof sub, "%s_train_all", label);
        check_head_loss(&got, &want, sub, 0);
        safetensors_close(&got);
    }

    /* random points: the same seed gives the same bytes, another seed another loss */
    ok = write_head_inputs(&gin, &want, 1, 0, in) == 0;
    char *argv_s5[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--inputs", in, "--out", out,
                       "--seed", "5", NULL};
    char *argv_s5b[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--inputs", in, "--out", out2,
                        "--seed", "5", NULL};
    int rc1 = ok ? program_run(argv_s5, out_text, sizeof out_text) : -1;
    int rc2 = ok ? program_run(argv_s5b, out_text, sizeof out_text) : -1;
    snprintf(check_name, sizeof check_name, "model_cli/%s/random_points_seeded", label);
    check(rc1 == 0 && rc2 == 0 && cli_same_file(out, out2), check_name, "exit %d %d, files differ or: %s", rc1, rc2,
          out_text);
    char *argv_s6[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--inputs", in, "--out", out2,
                       "--seed", "6", NULL};
    rc2 = ok ? program_run(argv_s6, out_text, sizeof out_text) : -1;
    float l5 = NAN, l6 = NAN, lw = NAN;
    safetensors_t g5, g6;
    if (rc1 == 0 && safetensors_open(out, &g5, &err) == ERR_OK) {
        const st_entry_t *e = safetensors_find(&g5, "loss.total");
        if (e && e->dtype == DTYPE_F32) memcpy(&l5, e->data, 4);
        safetensors_close(&g5);
    }
    if (rc2 == 0 && safetensors_open(out2, &g6, &err) == ERR_OK) {
        const st_entry_t *e = safetensors_find(&g6, "loss.total");
        if (e && e->dtype == DTYPE_F32) memcpy(&l6, e->data, 4);
        safetensors_close(&g6);
    }
    const st_entry_t *e = safetensors_find(&want, "loss.total");
    if (e) memcpy(&lw, e->data, 4);
    printf("#   model_cli/%s/random_points: loss %.6g (seed 5), %.6g (seed 6), %.6g (the official points)\n", label, l5,
           l6, lw);
    snprintf(check_name, sizeof check_name, "model_cli/%s/random_points", label);
    /* other points estimate the same loss: near the official points' value */
    check(isfinite(l5) && isfinite(l6) && l5 != l6 && fabsf(l5 - lw) < 0.5f * lw && fabsf(l6 - lw) < 0.5f * lw,
          check_name, "loss %g, %g against %g", l5, l6, lw);
    safetensors_close(&gin);
    safetensors_close(&want);
    unlink(in);
    unlink(out);
    unlink(out2);
}

/* Inputs the head cannot use are refused, naming what is wrong. */
static void test_head_refusals(const char *sh) {
    char cfg[512], wts[512], avs_wts[512], in_path[512], exp_path[512], in[256], out[256];
    snprintf(cfg, sizeof cfg, "%s/golden/avss-tiny/config.json", sh);
    snprintf(wts, sizeof wts, "%s/golden/avss-tiny/weights.safetensors", sh);
    snprintf(avs_wts, sizeof avs_wts, "%s/golden/avs-tiny/weights.safetensors", sh);
    snprintf(in_path, sizeof in_path, "%s/golden/avss-tiny/inputs.safetensors", sh);
    snprintf(exp_path, sizeof exp_path, "%s/golden/avss-tiny/expected.safetensors", sh);
    snprintf(in, sizeof in, "/tmp/stepstone-test-model-%d-refuse.safetensors", (int)getpid());
    snprintf(out, sizeof out, "/tmp/stepstone-test-model-%d-never.safetensors", (int)getpid());
    safetensors_t gin, want;
    err_t err;
    if (safetensors_open(in_path, &gin, &err) != ERR_OK || safetensors_open(exp_path, &want, &err) != ERR_OK) {
        check(0, "model_cli/head_refusals", "%s", err.msg);
        return;
    }
    /* avss without the stage-1 mask */
    st_writer_t *w = safetensors_writer_new();
    int ok = copy_entry(w, &gin, "audio_embeddings", "audio_embeddings") == 0;
    for (int k = 1; k <= 4 && ok; k++) {
        char src[64], dst[64];
        snprintf(src, sizeof src, "backbone.feature_map.stage%d", k);
        snprintf(dst, sizeof dst, "backbone.stage%d", k);
        ok = copy_entry(w, &want, src, dst) == 0;
    }
    ok = ok && safetensors_writer_save(w, in, &err) == ERR_OK;
    safetensors_writer_free(w);
    char *a1[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--inputs", in, "--out", out, NULL};
    int rc = ok ? program_run(a1, out_text, sizeof out_text) : -1;
    check(rc == 1 && strstr(out_text, "audio_boost_mask") && access(out, F_OK) != 0,
          "model_cli/head_avss_needs_boost_mask", "exit %d: %s", rc, out_text);
    /* avss asked of avs weights: the prompt embeddings are missing */
    char *a2[] = {model_bin, "forward", "--config", cfg, "--weights", avs_wts, "--inputs", in_path, "--out", out,
                  "--variant", "avss", NULL};
    rc = program_run(a2, out_text, sizeof out_text);
    check(rc == 1 && strstr(out_text, "embed") && access(out, F_OK) != 0, "model_cli/head_variant_against_weights",
          "exit %d: %s", rc, out_text);
    char *a3[] = {model_bin, "forward", "--variant", "semantic", "--out", out, NULL};
    rc = program_run(a3, out_text, sizeof out_text);
    char *a4[] = {model_bin, "forward", "--train", "some", "--out", out, NULL};
    int rc4 = program_run(a4, out_text, sizeof out_text);
    check(rc == 2 && rc4 == 2, "model_cli/head_bad_options", "exit %d %d", rc, rc4);
    safetensors_close(&gin);
    safetensors_close(&want);
    unlink(in);
}

/* frames and audio decoded by the program: pixel_values equal to the library's,
 * log_mel and embeddings equal to the official path's (tests/reference/audio_ref.py) */
static void test_frames_and_audio(const char *sh) {
    char cfg[512], wts[512], out[512];
    snprintf(cfg, sizeof cfg, "%s/golden/avs-tiny/config.json", sh);
    snprintf(wts, sizeof wts, "%s/golden/avs-tiny/weights.safetensors", sh);
    snprintf(out, sizeof out, "/tmp/stepstone-test-model-%d-av.safetensors", (int)getpid());
    char frames[] = "tests/fixtures/frames/a_640x360_420.jpg,tests/fixtures/frames/m_7x5_420.jpg";
    char *argv[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--frames", frames,
                    "--audio", "tests/fixtures/audio/speech44k_stereo.wav", "--audio-weights",
                    "tests/reference/vggish_tiny.safetensors", "--out", out, NULL};
    int rc = program_run(argv, out_text, sizeof out_text);
    if (!check(rc == 0, "model_cli/frames_audio/runs", "exit %d: %s", rc, out_text)) return;
    safetensors_t got, ref;
    err_t err;
    if (safetensors_open(out, &got, &err) != ERR_OK || safetensors_open("tests/reference/audio_ref.safetensors", &ref, &err) != ERR_OK) {
        check(0, "model_cli/frames_audio/outputs", "%s", err.msg);
        return;
    }
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    const char *paths[2] = {"tests/fixtures/frames/a_640x360_420.jpg", "tests/fixtures/frames/m_7x5_420.jpg"};
    tensor_t *pv = NULL, *cli_pv = NULL;
    int ok = frames_to_pixel_values(paths, 2, NULL, a, &pv, &err) == ERR_OK &&
             safetensors_load(&got, "pixel_values", a, DTYPE_F32, 4, pv->shape, &cli_pv, &err) == ERR_OK;
    check(ok && max_abs_diff(tensor_f32(cli_pv), tensor_f32(pv), pv->numel) == 0.0, "model_cli/frames_audio/pixel_values",
          "%s", ok ? "differs from frames_to_pixel_values" : err.msg);
    check(safetensors_find(&got, "backbone.stage4") != NULL, "model_cli/frames_audio/backbone_on_frames", "no backbone.stage4");
    double e = compare(&got, "log_mel", &ref, "clip.speech44k_stereo.log_mel", a);
    check(e <= 1e-4, "model_cli/frames_audio/log_mel", "rel error %.3g", e);
    e = compare(&got, "vggish.embeddings", &ref, "clip.speech44k_stereo.embeddings", a);
    check(e <= 1e-4, "model_cli/frames_audio/embeddings", "rel error %.3g", e);
    arena_destroy(a);
    safetensors_close(&got);
    safetensors_close(&ref);
    unlink(out);

    /* --fit-frames pads two embeddings to five by repeating the last */
    char *argv2[] = {model_bin, "forward", "--audio", "tests/fixtures/audio/speech44k_stereo.wav", "--audio-weights",
                     "tests/reference/vggish_tiny.safetensors", "--fit-frames", "5", "--out", out, NULL};
    rc = program_run(argv2, out_text, sizeof out_text);
    ok = rc == 0 && safetensors_open(out, &got, &err) == ERR_OK;
    const st_entry_t *emb = ok ? safetensors_find(&got, "vggish.embeddings") : NULL;
    int fitted = emb && emb->ndim == 2 && emb->shape[0] == 5 &&
                 memcmp((const char *)emb->data + 3 * emb->shape[1] * 4, (const char *)emb->data + 1 * emb->shape[1] * 4,
                        (size_t)emb->shape[1] * 4) == 0;
    check(fitted, "model_cli/fit_frames", "exit %d: %s", rc, out_text);
    if (ok) safetensors_close(&got);
    unlink(out);
}

/* init writes models that forward loads; the same seed writes the same bytes */
static void test_init(const char *sh) {
    char cfg[512], b1[256], b2[256], v1[256], out[256];
    snprintf(cfg, sizeof cfg, "%s/golden/avss-tiny/config.json", sh);
    snprintf(b1, sizeof b1, "/tmp/stepstone-test-init-%d-b1.safetensors", (int)getpid());
    snprintf(b2, sizeof b2, "/tmp/stepstone-test-init-%d-b2.safetensors", (int)getpid());
    snprintf(v1, sizeof v1, "/tmp/stepstone-test-init-%d-v1.safetensors", (int)getpid());
    snprintf(out, sizeof out, "/tmp/stepstone-test-init-%d-out.safetensors", (int)getpid());
    char *a1[] = {model_bin, "init", "--config", cfg, "--backbone-out", b1, "--vggish-out", v1, "--seed", "7", NULL};
    char *a2[] = {model_bin, "init", "--config", cfg, "--backbone-out", b2, "--seed", "7", NULL};
    int rc1 = program_run(a1, out_text, sizeof out_text), rc2 = program_run(a2, out_text, sizeof out_text);
    check(rc1 == 0 && rc2 == 0 && cli_same_file(b1, b2), "model_cli/init_deterministic", "exit %d %d: %s", rc1, rc2, out_text);
    char *a3[] = {model_bin, "forward", "--config", cfg, "--weights", b1, "--frames", "tests/fixtures/frames/b_333x257_420.jpg",
                  "--audio", "tests/fixtures/audio/speech16k_mono.wav", "--audio-weights", v1, "--out", out, NULL};
    int rc = program_run(a3, out_text, sizeof out_text);
    safetensors_t got;
    err_t err;
    int ok = rc == 0 && safetensors_open(out, &got, &err) == ERR_OK;
    check(ok && safetensors_find(&got, "backbone.stage1") && safetensors_find(&got, "vggish.embeddings"),
          "model_cli/init_then_forward", "exit %d: %s", rc, out_text);
    if (ok) safetensors_close(&got);
    unlink(b1);
    unlink(b2);
    unlink(v1);
    unlink(out);
}

static void test_bad_input(const char *sh) {
    char cfg[512], in[512];
    snprintf(cfg, sizeof cfg, "%s/golden/avs-tiny/config.json", sh);
    snprintf(in, sizeof in, "%s/golden/avs-tiny/inputs.safetensors", sh);
    char *a1[] = {model_bin, "forward", "--config", cfg, "--weights", "/nonexistent/w.safetensors", "--inputs", in,
                  "--out", "/tmp/stepstone-test-model-never.safetensors", NULL};
    int rc = program_run(a1, out_text, sizeof out_text);
    check(rc == 1 && strstr(out_text, "/nonexistent/w.safetensors") && access("/tmp/stepstone-test-model-never.safetensors", F_OK) != 0,
          "model_cli/missing_weights", "exit %d: %s", rc, out_text);
    char *a2[] = {model_bin, "forward", "--audio", "tests/fixtures/audio/empty.wav", "--out",
                  "/tmp/stepstone-test-model-never.safetensors", NULL};
    rc = program_run(a2, out_text, sizeof out_text);
    check(rc == 1 && strstr(out_text, "empty.wav"), "model_cli/empty_wav", "exit %d: %s", rc, out_text);
    char *a3[] = {model_bin, "--out", "x", NULL};
    rc = program_run(a3, out_text, sizeof out_text);
    check(rc == 2, "model_cli/no_command", "exit %d: %s", rc, out_text);
    char *a4[] = {model_bin, "--help", NULL};
    rc = program_run(a4, out_text, sizeof out_text);
    static const char *const names[] = {
        "vggish.embeddings", "backbone.stage1", "audio_examples", "audio_embeddings", "audio_boost_mask",
        "pixel_values", "target_size", "mask_labels.<f>", "class_labels.<f>", "loss.<g>.matcher_point_coords",
        "pixel_decoder.multi_scale_features.<i>", "pixel_decoder.mask_features", "class_queries_logits",
        "masks_queries_logits", "aux.<i>.class_queries_logits", "aux.<i>.masks_queries_logits", "semantic_map",
        "loss.total", "loss_terms.<term>", "loss_unweighted.<term>", "grad.<param>", "--variant", "--train"};
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !missing; i++)
        if (!strstr(out_text, names[i])) missing = names[i];
    check(rc == 0 && !missing, "model_cli/help_lists_names", "exit %d, %s not in --help", rc, missing ? missing : "-");
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(log_path, sizeof log_path, "/tmp/stepstone-test-model-%d.log", (int)getpid());
    if (cli_program(argv[0], "stepstone-model", model_bin, sizeof model_bin) != 0) {
        check(0, "model_cli", "%s is not built", model_bin);
        return check_finish("test_model_cli");
    }
    const char *sh = shared_dir();
    if (!sh) {
        check_skip("model_cli", "no ../shared folder with the golden tensors");
        return check_finish("test_model_cli");
    }
    test_golden(sh, "avs-tiny");
    test_golden(sh, "avss-tiny");
    test_head_from_features(sh, "avs-tiny");
    test_head_from_features(sh, "avss-tiny");
    test_head_refusals(sh);
    test_frames_and_audio(sh);
    test_init(sh);
    test_bad_input(sh);
    check(sanitizer_reports == 0, "model_cli/no_sanitizer_reports", "%d runs reported", sanitizer_reports);
    unlink(log_path);
    return check_finish("test_model_cli");
}
