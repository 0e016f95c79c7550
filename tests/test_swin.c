/* test_swin.c - the Swin backbone against the official model and HuggingFace:
 *   swin/<case>/...        parity of every stage output and every debug token
 *                          sequence with the golden files (../shared/golden,
 *                          official AAVS code) and the reference cases of
 *                          tests/reference/swin/ (HF SwinBackbone in float64 at
 *                          sizes the golden files do not cover: written by
 *                          tests/reference/swin_ref.py); on CUDA too when a GPU
 *                          is present;
 *   swin/bad_weights/...   missing tensor, wrong shape, wrong dtype, a partial
 *                          adapter set, an unused tensor: errors naming it;
 *   swin/config/...        configs that must be refused;
 *   swin/grad/...          finite differences through whole blocks (the ops
 *                          are checked one by one in test_ops; this checks
 *                          their composition). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ops.h"
#include "rng.h"
#include "swin.h"

/* max |got - want| / max(1, max |want|), the golden README's activations tolerance */
#define PARITY_TOL 1e-4

static char tmp_dir[] = "/tmp/stepstone-test-swin-XXXXXX";

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

/* ---- parity ---- */

typedef struct {
    const safetensors_t *expected;
    char first_bad[256]; /* the first debug tensor off (the forward order), or "" */
    double first_bad_err;
    double worst;        /* the largest relative error over the debug tensors */
    int compared;
} debug_compare_t;

/* Compares got with expected tensor `name`; returns the relative error, or
 * INFINITY when it is missing or of another size. *abs_out gets the max abs diff. */
static double compare(const safetensors_t *expected, const char *name, const tensor_t *got, double *abs_out) {
    const st_entry_t *e = safetensors_find(expected, name);
    if (!e || e->dtype != DTYPE_F32 || e->numel != got->numel || e->ndim != got->ndim) return INFINITY;
    for (int i = 0; i < e->ndim; i++)
        if (e->shape[i] != got->shape[i]) return INFINITY;
    float *want = malloc((size_t)(e->numel ? e->numel : 1) * sizeof(float));
    memcpy(want, e->data, (size_t)e->numel * sizeof(float));
    float *have = to_host(got);
    double rel = rel_error(have, want, e->numel);
    if (abs_out) *abs_out = max_abs_diff(have, want, e->numel);
    free(want);
    free(have);
    return rel;
}

static void on_debug(void *user, const char *name, const tensor_t *tokens) {
    debug_compare_t *d = user;
    char full[256];
    snprintf(full, sizeof full, "debug.backbone.%s", name);
    if (!safetensors_find(d->expected, full)) return;
    double rel = compare(d->expected, full, tokens, NULL);
    d->compared++;
    if (rel > d->worst) d->worst = rel;
    if (!(rel <= PARITY_TOL) && !d->first_bad[0]) {
        snprintf(d->first_bad, sizeof d->first_bad, "%s", full);
        d->first_bad_err = rel;
    }
}

static const char *stage_name(int s, char *buf, size_t size) {
    if (s == 0) snprintf(buf, size, "stem");
    else snprintf(buf, size, "stage%d", s);
    return buf;
}

/* Loads a case folder (config.json, weights.safetensors, inputs.safetensors,
 * expected.safetensors) and checks the backbone's outputs on ctx's device. */
static void check_case(ctx_t *ctx, const char *dir, const char *label) {
    char path[1024], name[256];
    err_t err = {0};
    config_t cfg;
    swin_config_t sc;
    arena_t *param_arena = arena_create(ctx->device, 1 << 20);
    param_list_t params;
    param_list_init(&params, param_arena);
    weights_t w;
    swin_t *m = NULL;
    safetensors_t inputs = {0}, expected = {0};
    tensor_t *px = NULL;
    /* each step runs when the ones before succeeded */
    snprintf(path, sizeof path, "%s/config.json", dir);
    err_code_t rc = config_load(path, &cfg, &err);
    if (rc == ERR_OK) {
        rc = swin_config_from_json(&cfg, &sc, &err);
        config_free(&cfg);
    }
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if (rc == ERR_OK && (rc = weights_open(path, &w, &err)) == ERR_OK) {
        rc = swin_load(&sc, &w, &params, NULL, &m, &err);
        weights_close(&w);
    }
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (rc == ERR_OK) rc = safetensors_open(path, &inputs, &err);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (rc == ERR_OK) rc = safetensors_open(path, &expected, &err);
    if (rc == ERR_OK) rc = safetensors_load(&inputs, "pixel_values", ctx->arena, DTYPE_F32, 0, NULL, &px, &err);
    snprintf(name, sizeof name, "swin/%s/load", label);
    if (check(rc == ERR_OK, name, "%s", err.msg)) {
        debug_compare_t dbg = {.expected = &expected};
        tensor_t *features[SWIN_MAX_STAGES + 1];
        int old = ctx_set_grad(ctx, 0);
        swin_forward(ctx, m, px, features, on_debug, &dbg);
        ctx_set_grad(ctx, old);
        for (int i = 0; i < sc.n_out; i++) {
            char stage[32], key[128], cname[256];
            stage_name(sc.out_stages[i], stage, sizeof stage);
            snprintf(key, sizeof key, "backbone.feature_map.%s", stage);
            snprintf(cname, sizeof cname, "swin/%s/%s", label, stage);
            double abs_diff = INFINITY;
            double rel = compare(&expected, key, features[i], &abs_diff);
            char shape[96];
            printf("#   %-40s %-18s max abs diff %.3g, rel %.3g\n", cname,
                   tensor_shape_str(features[i], shape, sizeof shape), abs_diff, rel);
            check(rel <= PARITY_TOL, cname, "%s: rel error %.3g > %g (max abs diff %.3g; first debug tensor off: %s)",
                  key, rel, PARITY_TOL, abs_diff, dbg.first_bad[0] ? dbg.first_bad : "none");
        }
        snprintf(name, sizeof name, "swin/%s/debug_tokens", label);
        printf("#   %-40s %d debug tensors, worst rel %.3g\n", name, dbg.compared, dbg.worst);
        check(dbg.compared > 0 && !dbg.first_bad[0], name, "%d compared; first off: %s (rel %.3g)", dbg.compared,
              dbg.first_bad, dbg.first_bad_err);
    }
    ctx_reset(ctx);
    safetensors_close(&inputs);
    safetensors_close(&expected);
    swin_free(m);
    param_list_free(&params);
    arena_destroy(param_arena);
}

static const char *const reference_cases[] = {"nonsquare_pad", "bare_small_stages", "aavs_three_stages"};

static void test_parity(ctx_t *ctx, const char *suffix) {
    const char *shared = shared_dir();
    static const char *const golden[] = {"avs-tiny", "avss-tiny"};
    char dir[1024], label[256];
    for (int i = 0; i < 2; i++) {
        snprintf(label, sizeof label, "golden-%s%s", golden[i], suffix);
        if (shared) snprintf(dir, sizeof dir, "%s/golden/%s", shared, golden[i]);
        if (!shared || !exists(dir)) {
            char n[300];
            snprintf(n, sizeof n, "swin/%s", label);
            check_skip(n, "no shared data (golden/%s; set STEPSTONE_SHARED)", golden[i]);
            continue;
        }
        check_case(ctx, dir, label);
    }
    for (size_t i = 0; i < sizeof reference_cases / sizeof *reference_cases; i++) {
        snprintf(dir, sizeof dir, "tests/reference/swin/%s", reference_cases[i]);
        snprintf(label, sizeof label, "%s%s", reference_cases[i], suffix);
        check_case(ctx, dir, label);
    }
}

/* ---- loading details ---- */

static void test_loading_names(void) {
    /* a file without adapters gets zero ones under the official names (an
     * optimizer can select them), and parameters take the caller's prefix */
    err_t err = {0};
    config_t cfg;
    swin_config_t sc;
    if (!check(config_load("tests/reference/swin/bare_small_stages/config.json", &cfg, &err) == ERR_OK,
               "swin/names/config", "%s", err.msg))
        return;
    err_code_t rc = swin_config_from_json(&cfg, &sc, &err);
    config_free(&cfg);
    if (!check(rc == ERR_OK, "swin/names/config", "%s", err.msg)) return;
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    param_list_init(&params, a);
    weights_t w;
    swin_t *m = NULL;
    rc = weights_open("tests/reference/swin/bare_small_stages/weights.safetensors", &w, &err);
    if (rc == ERR_OK) rc = swin_load(&sc, &w, &params, "backbone.", &m, &err);
    if (rc == ERR_OK) {
        tensor_t *adapter = param_list_find(&params, "backbone.encoder.layers.2.blocks.1.output.swin_adapt_3.2.weight");
        tensor_t *norm = param_list_find(&params, "backbone.hidden_states_norms.stem.bias");
        check(adapter && adapter->shape[0] == 24 && adapter->shape[1] == 6 && m->adapters_from_file == 0 &&
                  m->stages[2].blocks[1].adapt_mlp.zero_at_load && norm &&
                  strcmp(norm->name, "backbone.hidden_states_norms.stem.bias") == 0,
              "swin/names/zero_adapters_registered", "adapter %p, norm %p, from file %d", (void *)adapter,
              (void *)norm, m->adapters_from_file);
        /* 7 blocks x (14 without qkv bias + 8 adapter) + patch 2 + embed norm 2 + 3 merges x 3 + 3 output norms x 2 */
        int want = 7 * (14 + 8) + 2 + 2 + 3 * 3 + 3 * 2;
        check(params.count == want, "swin/names/count", "%d parameters, want %d", params.count, want);
    } else {
        check(0, "swin/names/zero_adapters_registered", "%s", err.msg);
    }
    weights_close(&w);
    swin_free(m);
    param_list_free(&params);
    arena_destroy(a);
}

/* ---- bad weights ---- */

typedef enum { EDIT_DROP, EDIT_RESHAPE, EDIT_AS_I32, EDIT_ADD } edit_t;

/* Copies src to dst with one change to tensor `target` (EDIT_ADD: adds it, [3] F32). */
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
        size_t bytes = (size_t)e->numel * dtype_size(e->dtype);
        void *copy = malloc(bytes ? bytes : 1);
        memcpy(copy, e->data, bytes);
        if (strcmp(e->name, target) != 0) {
            ok = safetensors_writer_add(wr, e->name, e->dtype, e->ndim, e->shape, copy, &err) == ERR_OK;
        } else if (edit == EDIT_RESHAPE) {
            int64_t flat[1] = {e->numel};
            ok = safetensors_writer_add(wr, e->name, e->dtype, 1, flat, copy, &err) == ERR_OK;
        } else if (edit == EDIT_AS_I32) {
            /* same bytes, another dtype: a file that says I32 where the model wants floats */
            ok = e->dtype == DTYPE_F32 &&
                 safetensors_writer_add(wr, e->name, DTYPE_I32, e->ndim, e->shape, copy, &err) == ERR_OK;
        }
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

/* Loads the nonsquare_pad model from an edited weights file; returns the code, message in err. */
static err_code_t load_edited(edit_t edit, const char *target, err_t *err) {
    const char *case_dir = "tests/reference/swin/nonsquare_pad";
    char src[512], dst[512], cpath[512];
    snprintf(src, sizeof src, "%s/weights.safetensors", case_dir);
    snprintf(dst, sizeof dst, "%s/edited.safetensors", tmp_dir);
    snprintf(cpath, sizeof cpath, "%s/config.json", case_dir);
    if (!write_edited(src, dst, edit, target)) return err_set(err, ERR_IO, "could not write the edited file");
    config_t cfg;
    swin_config_t sc;
    err_code_t rc = config_load(cpath, &cfg, err);
    if (rc != ERR_OK) return rc;
    rc = swin_config_from_json(&cfg, &sc, err);
    config_free(&cfg);
    if (rc != ERR_OK) return rc;
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    param_list_init(&params, a);
    weights_t w;
    swin_t *m = NULL;
    rc = weights_open(dst, &w, err);
    if (rc == ERR_OK) {
        rc = swin_load(&sc, &w, &params, NULL, &m, err);
        weights_close(&w);
    }
    if (rc == ERR_OK && m == NULL) rc = err_set(err, ERR_ARG, "no model and no error");
    if (rc != ERR_OK && m != NULL) rc = err_set(err, ERR_ARG, "an error and a model");
    swin_free(m);
    param_list_free(&params);
    arena_destroy(a);
    return rc;
}

static int has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

static void test_bad_weights(void) {
    const char *p = "model.pixel_level_module.encoder.";
    char t[512];
    err_t err = {0};
    err_code_t rc;

    snprintf(t, sizeof t, "%sencoder.layers.1.blocks.1.attention.self.key.weight", p);
    rc = load_edited(EDIT_DROP, t, &err);
    check(rc == ERR_NOTFOUND && has(err.msg, t) && has(err.msg, "missing"), "swin/bad_weights/missing_tensor",
          "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   missing: %s\n", err.msg);

    snprintf(t, sizeof t, "%sencoder.layers.0.blocks.0.attention.self.query.weight", p);
    rc = load_edited(EDIT_RESHAPE, t, &err);
    check(rc == ERR_MISMATCH && has(err.msg, t) && has(err.msg, "expected shape [4, 4]") && has(err.msg, "found [16]"),
          "swin/bad_weights/wrong_shape", "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   shape:   %s\n", err.msg);

    snprintf(t, sizeof t, "%shidden_states_norms.stage3.weight", p);
    rc = load_edited(EDIT_AS_I32, t, &err);
    check(rc == ERR_MISMATCH && has(err.msg, t) && has(err.msg, "I32") && has(err.msg, "[16]"),
          "swin/bad_weights/wrong_dtype", "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   dtype:   %s\n", err.msg);

    snprintf(t, sizeof t, "%sencoder.layers.2.blocks.0.output.swin_adapt_3.2.bias", p);
    rc = load_edited(EDIT_DROP, t, &err);
    check(rc == ERR_NOTFOUND && has(err.msg, t), "swin/bad_weights/partial_adapters", "rc %s: %s", err_code_name(rc),
          err.msg);

    snprintf(t, sizeof t, "%sencoder.layers.3.blocks.2.layernorm_before.weight", p);
    rc = load_edited(EDIT_ADD, t, &err);
    check(rc == ERR_MISMATCH && has(err.msg, t) && has(err.msg, "not used"), "swin/bad_weights/unused_tensor",
          "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   unused:  %s\n", err.msg);

    /* a file of something else entirely: no prefix fits */
    snprintf(t, sizeof t, "%sembeddings.patch_embeddings.projection.weight", p);
    rc = load_edited(EDIT_DROP, t, &err);
    check(rc == ERR_NOTFOUND && has(err.msg, "model.model.pixel_level_module.encoder.embeddings") &&
              has(err.msg, "'embeddings.patch_embeddings.projection.weight'"),
          "swin/bad_weights/no_backbone", "rc %s: %s", err_code_name(rc), err.msg);
}

/* ---- configs that must be refused ---- */

static err_code_t config_from_text(const char *text, swin_config_t *sc, err_t *err) {
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root) return err_set(err, ERR_FORMAT, "test JSON: %s", jerr.text);
    config_t cfg;
    err_code_t rc = config_from_json(&cfg, root, "test-config", err);
    json_decref(root);
    if (rc == ERR_OK) rc = swin_config_from_json(&cfg, sc, err);
    config_free(&cfg);
    return rc;
}

static void test_configs(void) {
    swin_config_t sc;
    err_t err = {0};
    err_code_t rc = config_from_text("{\"model_type\": \"mask2former\", \"backbone_config\": {\"embed_dim\": 8, "
                                     "\"depths\": [1, 1], \"num_heads\": [2, 3], \"window_size\": 4}}",
                                     &sc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "stage 2") && has(err.msg, "3 heads"), "swin/config/heads_not_dividing",
          "rc %s: %s", err_code_name(rc), err.msg);
    rc = config_from_text("{\"model_type\": \"swin\", \"use_absolute_embeddings\": true}", &sc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "use_absolute_embeddings"), "swin/config/absolute_embeddings",
          "rc %s: %s", err_code_name(rc), err.msg);
    rc = config_from_text("{\"model_type\": \"swin\", \"hidden_act\": \"gelu_new\"}", &sc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "gelu_new"), "swin/config/activation", "rc %s: %s", err_code_name(rc),
          err.msg);
    rc = config_from_text("{\"model_type\": \"mask2former\"}", &sc, &err);
    check(rc == ERR_NOTFOUND && has(err.msg, "backbone_config"), "swin/config/no_backbone", "rc %s: %s",
          err_code_name(rc), err.msg);
    rc = config_from_text("{\"backbone_config\": {\"model_type\": \"resnet\"}}", &sc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "resnet"), "swin/config/other_backbone", "rc %s: %s", err_code_name(rc),
          err.msg);
    rc = config_from_text("{\"model_type\": \"swin\", \"out_features\": [\"stage5\"]}", &sc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "out_features"), "swin/config/bad_out_feature", "rc %s: %s",
          err_code_name(rc), err.msg);
    /* SwinConfig's defaults (swin-tiny), out_features defaulting to the last stage */
    rc = config_from_text("{\"model_type\": \"swin\"}", &sc, &err);
    check(rc == ERR_OK && sc.embed_dim == 96 && sc.n_stages == 4 && sc.depths[2] == 6 && sc.num_heads[3] == 24 &&
              sc.window_size == 7 && sc.n_out == 1 && sc.out_stages[0] == 4 && sc.mlp_hidden[0] == 384,
          "swin/config/defaults", "rc %s: %s", err_code_name(rc), err.msg);
}

/* ---- gradients through whole blocks ---- */

typedef struct {
    ctx_t *ctx;
    const swin_t *m;
    const swin_block_t *b;
    int heads;
    int64_t f, h, w, c;
    float *x;       /* host input [f, h*w, c] */
    const float *r; /* host weights of the objective sum(out * r) */
} block_case_t;

/* Runs the block; with grads, fills the input's gradient into dx. Returns sum(out * r) in double. */
static double block_objective(const block_case_t *bc, int with_grad, float *dx, tensor_t **out_keep) {
    ctx_t *ctx = bc->ctx;
    int old = ctx_set_grad(ctx, with_grad);
    tensor_t *x = tensor_from_host(ctx->arena, DTYPE_F32, 3, (int64_t[]){bc->f, bc->h * bc->w, bc->c}, bc->x);
    x->requires_grad = with_grad;
    tensor_t *out = swin_block_forward(ctx, bc->m, bc->b, bc->heads, x, bc->h, bc->w);
    const float *o = tensor_f32(out);
    double s = 0.0;
    for (int64_t i = 0; i < out->numel; i++) s += (double)o[i] * (double)bc->r[i];
    if (with_grad) {
        tensor_t *rt = tensor_from_host(ctx->arena, DTYPE_F32, out->ndim, out->shape, bc->r);
        ctx_backward(ctx, out, rt);
        memcpy(dx, x->grad, (size_t)x->numel * sizeof(float));
    }
    if (out_keep) *out_keep = out;
    ctx_set_grad(ctx, old);
    return s;
}

/* the parameters of block b, with names for messages */
static int block_params(const swin_block_t *b, tensor_t **p, const char **names) {
    tensor_t *all[] = {b->ln_before_w, b->ln_before_b, b->q_w, b->q_b, b->k_w, b->k_b, b->v_w, b->v_b,
                       b->rel_bias_table, b->attn_out_w, b->attn_out_b, b->adapt_attn.down_w, b->adapt_attn.down_b,
                       b->adapt_attn.up_w, b->adapt_attn.up_b, b->ln_after_w, b->ln_after_b, b->mlp_in_w, b->mlp_in_b,
                       b->mlp_out_w, b->mlp_out_b, b->adapt_mlp.down_w, b->adapt_mlp.down_b, b->adapt_mlp.up_w,
                       b->adapt_mlp.up_b};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        if (!all[i]) continue;
        names[n] = all[i]->name;
        p[n++] = all[i];
    }
    return n;
}

/* central differences of the objective at a few elements of data[0..n) against grad */
static int fd_check(const block_case_t *bc, float *data, const float *grad, int64_t n, const char *what, char *msg,
                    size_t msg_size, double *worst) {
    const int points = 12;
    /* float32 forward: the objective carries ~1e-6 relative rounding noise, so
     * a step of 1e-2 and an absolute floor keep noise / (2 step) well inside */
    const double rtol = 2e-2, atol = 2e-3, eps = 1e-2;
    int64_t step = n > points ? n / points : 1;
    for (int64_t i = n > points ? step / 2 : 0; i < n; i += step) {
        float keep = data[i];
        float h = (float)(eps * fmax(1.0, fabs(keep)));
        data[i] = keep + h;
        double up = block_objective(bc, 0, NULL, NULL);
        ctx_reset(bc->ctx);
        data[i] = keep - h;
        double down = block_objective(bc, 0, NULL, NULL);
        ctx_reset(bc->ctx);
        data[i] = keep;
        double num = (up - down) / (2.0 * (double)h), ana = grad[i];
        double err = fabs(num - ana) / (fmax(fabs(num), fabs(ana)) + atol / rtol);
        if (err > *worst) *worst = err;
        if (!(fabs(num - ana) <= rtol * fmax(fabs(num), fabs(ana)) + atol)) {
            snprintf(msg, msg_size, "%s element %lld: analytic %.6g, numeric %.6g", what, (long long)i, ana, num);
            return 0;
        }
    }
    return 1;
}

static void test_block_gradients(void) {
    /* one stage of two blocks (unshifted, shifted), window 3 on a 4x5 map: the
     * window pads to 6x6 and the shift mask has all nine regions */
    swin_config_t sc = {.num_channels = 3, .patch_h = 2, .patch_w = 2, .embed_dim = 8, .n_stages = 1,
                        .depths = {2}, .num_heads = {2}, .window_size = 3, .mlp_hidden = {16}, .qkv_bias = 1,
                        .layer_norm_eps = 1e-5f, .hidden_act = SWIN_ACT_GELU, .n_out = 1, .out_stages = {1}};
    arena_t *pa = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    param_list_init(&params, pa);
    swin_t *m = swin_random(&sc, &params, 7, 0.4f);
    /* Layer norms near 1 so the block is well conditioned, and the adapters'
     * ReLU inputs kept far from 0 (biases +-4, small weights): a finite
     * difference across a kink measures nothing (ReLU itself is checked in test_ops). */
    for (int i = 0; i < params.count; i++) {
        float *d = tensor_f32(params.tensors[i]);
        const char *pn = params.names[i];
        for (int64_t k = 0; k < params.tensors[i]->numel; k++) {
            if (strstr(pn, "layernorm") && strstr(pn, "weight")) d[k] += 1.0f;
            if (strstr(pn, ".0.bias") && strstr(pn, "swin_adapt")) d[k] = k % 2 ? -4.0f : 4.0f;
            if (strstr(pn, ".0.weight") && strstr(pn, "swin_adapt")) d[k] *= 0.3f;
        }
    }
    ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
    int64_t f = 2, h = 4, w = 5, c = 8, n = f * h * w * c;
    float *x = malloc((size_t)n * sizeof(float)), *r = malloc((size_t)n * sizeof(float));
    float *dx = malloc((size_t)n * sizeof(float));
    rng_t rng;
    rng_seed(&rng, 99);
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)rng_normal(&rng);
        r[i] = (float)rng_normal(&rng);
    }
    for (int j = 0; j < 2; j++) {
        const swin_block_t *b = &m->stages[0].blocks[j];
        block_case_t bc = {ctx, m, b, 2, f, h, w, c, x, r};
        tensor_t *p[32];
        const char *names[32];
        int np = block_params(b, p, names);
        char name[128], msg[512] = "";
        double worst = 0.0;

        /* recording the tape (parameters wanting gradients) must not change the forward */
        tensor_t *fused, *split;
        block_objective(&bc, 0, NULL, &fused);
        float *fused_h = to_host(fused);
        for (int k = 0; k < np; k++) {
            tensor_alloc_grad(pa, p[k]);
            p[k]->requires_grad = 1;
            tensor_zero_grad(p[k]);
        }
        block_objective(&bc, 1, dx, &split);
        double diff = max_abs_diff(tensor_f32(split), fused_h, split->numel);
        snprintf(name, sizeof name, "swin/grad/block%d_forward_same_with_tape", j);
        check(diff <= 1e-5, name, "max abs diff %.3g", diff);
        free(fused_h);
        ctx_reset(ctx);

        /* every parameter's and the input's gradient against central differences */
        float *grads[32];
        for (int k = 0; k < np; k++) {
            grads[k] = malloc((size_t)p[k]->numel * sizeof(float));
            memcpy(grads[k], p[k]->grad, (size_t)p[k]->numel * sizeof(float));
            p[k]->requires_grad = 0; /* the objective runs without a tape */
        }
        int ok = fd_check(&bc, x, dx, n, "input", msg, sizeof msg, &worst);
        for (int k = 0; k < np && ok; k++)
            ok = fd_check(&bc, tensor_f32(p[k]), grads[k], p[k]->numel, names[k], msg, sizeof msg, &worst);
        snprintf(name, sizeof name, "swin/grad/block%d_%s_fd", j, b->shift ? "shifted" : "unshifted");
        printf("#   %s: %d parameters + input, worst relative error %.3g\n", name, np, worst);
        check(ok, name, "%s", msg);
        for (int k = 0; k < np; k++) free(grads[k]);
    }
    free(x);
    free(r);
    free(dx);
    ctx_destroy(ctx);
    swin_free(m);
    param_list_free(&params);
    arena_destroy(pa);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror(tmp_dir);
        return 2;
    }
    ctx_t *cpu = ctx_create(DEVICE_CPU, 8 << 20);
    test_parity(cpu, "");
    ctx_t *gpu = ctx_create(DEVICE_CUDA, 8 << 20);
    if (gpu) {
        test_parity(gpu, "/cuda");
        ctx_destroy(gpu);
    } else {
        check_skip("swin/cuda", "parity not run on CUDA: %s",
                   backend_cuda_built() ? "no GPU on this machine" : "built with CUDA=0");
    }
    ctx_destroy(cpu);
    test_loading_names();
    test_bad_weights();
    test_configs();
    test_block_gradients();
    char path[512];
    snprintf(path, sizeof path, "%s/edited.safetensors", tmp_dir);
    unlink(path);
    rmdir(tmp_dir);
    return check_finish("test_swin");
}
