/* test_pixel_decoder.c - the pixel decoder against the official model:
 *   pixel_decoder/golden-<case>/...  parity of every pixel_decoder.* tensor and
 *                                    every debug.pixel_decoder.* tensor with the
 *                                    golden files (../shared/golden, official AAVS
 *                                    code, both variants), fed the golden backbone
 *                                    features; with the sampling core fused (the
 *                                    CPU's default) and composed; on CUDA too when
 *                                    a GPU is present; and the other variant's
 *                                    attention must NOT match;
 *   pixel_decoder/config/...         configs that must be refused, and defaults;
 *   pixel_decoder/names/...          registered names, HF files without avs_adapt;
 *   pixel_decoder/bad_weights/...    missing tensor, wrong shape, partial adapters,
 *                                    an unused tensor: errors naming it;
 *   pixel_decoder/fused_sampling/... the fused sampling op against the composed
 *                                    ops: output and the gradients of its inputs;
 *   pixel_decoder/grad/...           finite differences through the whole module
 *                                    (every parameter and every input), fused and
 *                                    composed sampling, and deliberately broken
 *                                    backwards that must be caught;
 *   pixel_decoder/cuda_vs_cpu/...    forward and gradients on both devices. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "check.h"
#include "msdeform_attn.h"
#include "ops.h"
#include "pixel_decoder.h"
#include "rng.h"

/* max |got - want| / max(1, max |want|), the golden README's activations tolerance */
#define PARITY_TOL 1e-4

static char tmp_dir[] = "/tmp/stepstone-test-pixel-decoder-XXXXXX";

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

static float *to_host(const tensor_t *t) {
    float *h = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!h) abort();
    tensor_to_host(t, h);
    return h;
}

/* t's gradient as a malloc'd host array (zeros when it has none) */
static float *grad_to_host(const tensor_t *t) {
    float *h = calloc((size_t)(t->numel ? t->numel : 1), sizeof(float));
    if (!h) abort();
    if (t->grad) backend_get(t->device)->copy_to_host(h, t->grad, (size_t)t->numel * sizeof(float));
    return h;
}

/* ---- configs ---- */

static err_code_t config_from_text(const char *text, pixel_decoder_variant_t variant, pixel_decoder_config_t *pc,
                                   err_t *err) {
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root) return err_set(err, ERR_FORMAT, "test JSON: %s", jerr.text);
    config_t cfg;
    err_code_t rc = config_from_json(&cfg, root, "test-config", err);
    json_decref(root);
    if (rc == ERR_OK) rc = pixel_decoder_config_from_json(&cfg, variant, pc, err);
    config_free(&cfg);
    return rc;
}

/* The tiny configuration of the gradient, CUDA and loading checks: channels 4,
 * 8, 16, 32 from the backbone, C = 64 (GroupNorm of two channels per group),
 * 2 heads, 2 encoder layers, one FPN level. */
#define TINY_BACKBONE                                                                                          \
    "\"backbone_config\": {\"model_type\": \"swin\", \"embed_dim\": 4, \"depths\": [1, 1, 1, 1], "         \
    "\"num_heads\": [1, 1, 1, 1], \"out_features\": [\"stage1\", \"stage2\", \"stage3\", \"stage4\"]}"
static const char *const tiny_config_json =
    "{\"model_type\": \"mask2former\", \"feature_size\": 64, \"mask_feature_size\": 8, \"encoder_layers\": 2, "
    "\"encoder_feedforward_dim\": 16, \"num_attention_heads\": 2, \"common_stride\": 4, "
    "\"feature_strides\": [4, 8, 16, 32], " TINY_BACKBONE "}";

static pixel_decoder_config_t tiny_config(pixel_decoder_variant_t variant) {
    pixel_decoder_config_t pc;
    err_t err;
    if (config_from_text(tiny_config_json, variant, &pc, &err) != ERR_OK) {
        printf("# tiny config: %s\n", err.msg);
        abort();
    }
    return pc;
}

static void test_configs(void) {
    pixel_decoder_config_t pc;
    err_t err = {0};
    err_code_t rc;
    rc = config_from_text("{\"feature_size\": 48, " TINY_BACKBONE "}", PIXEL_DECODER_AVS, &pc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "feature_size 48") && has(err.msg, "GroupNorm"),
          "pixel_decoder/config/feature_size_not_multiple_of_32", "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   %s\n", err.msg);
    rc = config_from_text("{\"feature_size\": 32, \"num_attention_heads\": 3, " TINY_BACKBONE "}", PIXEL_DECODER_AVS,
                          &pc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "num_attention_heads 3"), "pixel_decoder/config/heads_not_dividing",
          "rc %s: %s", err_code_name(rc), err.msg);
    rc = config_from_text("{\"dropout\": 0.1, " TINY_BACKBONE "}", PIXEL_DECODER_AVS, &pc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "dropout"), "pixel_decoder/config/dropout", "rc %s: %s",
          err_code_name(rc), err.msg);
    rc = config_from_text("{\"backbone_config\": {\"model_type\": \"swin\", \"out_features\": [\"stage3\", "
                          "\"stage4\"]}}",
                          PIXEL_DECODER_AVS, &pc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "2 feature maps"), "pixel_decoder/config/two_backbone_outputs",
          "rc %s: %s", err_code_name(rc), err.msg);
    rc = config_from_text("{\"common_stride\": 32, " TINY_BACKBONE "}", PIXEL_DECODER_AVS, &pc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "common_stride 32"), "pixel_decoder/config/common_stride", "rc %s: %s",
          err_code_name(rc), err.msg);
    rc = config_from_text("{\"feature_strides\": [8, 16], " TINY_BACKBONE "}", PIXEL_DECODER_AVS, &pc, &err);
    check(rc == ERR_MISMATCH && has(err.msg, "feature_strides"), "pixel_decoder/config/short_strides", "rc %s: %s",
          err_code_name(rc), err.msg);
    /* Mask2FormerConfig's defaults on a Swin-B backbone: the official AAVS model */
    rc = config_from_text("{\"model_type\": \"mask2former\", \"backbone_config\": {\"model_type\": \"swin\", "
                          "\"embed_dim\": 128, \"depths\": [2, 2, 18, 2], \"num_heads\": [4, 8, 16, 32], "
                          "\"out_features\": [\"stage1\", \"stage2\", \"stage3\", \"stage4\"]}}",
                          PIXEL_DECODER_AVSS, &pc, &err);
    check(rc == ERR_OK && pc.feature_size == 256 && pc.mask_feature_size == 256 && pc.encoder_layers == 6 &&
              pc.encoder_ffn_dim == 1024 && pc.num_heads == 8 && pc.n_fpn_levels == 1 && pc.n_features == 4 &&
              pc.in_channels[0] == 128 && pc.in_channels[3] == 1024 && pc.variant == PIXEL_DECODER_AVSS &&
              fabsf(pc.init_std - 0.02f) < 1e-9f,
          "pixel_decoder/config/defaults", "rc %s: %s", err_code_name(rc), err.msg);
    /* common_stride 2 asks for two FPN levels: adapter_1 (features[0]) and
     * adapter_2 (features[1]), run coarse to fine; the mask features come out
     * at features[0]'s size */
    rc = config_from_text("{\"feature_size\": 32, \"mask_feature_size\": 8, \"encoder_layers\": 1, "
                          "\"common_stride\": 2, " TINY_BACKBONE "}",
                          PIXEL_DECODER_AVS, &pc, &err);
    if (check(rc == ERR_OK && pc.n_fpn_levels == 2, "pixel_decoder/config/two_fpn_levels", "rc %s: %s, %d levels",
              err_code_name(rc), err.msg, pc.n_fpn_levels)) {
        arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
        param_list_t params;
        param_list_init(&params, a);
        pixel_decoder_t *pd = pixel_decoder_random(&pc, &params, NULL, 3, 0.2f);
        tensor_t *adapter2 = param_list_find(&params, "adapter_2.0.weight");
        ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
        const int64_t sizes[4][2] = {{12, 10}, {6, 5}, {3, 3}, {2, 2}};
        tensor_t *features[4];
        for (int k = 0; k < 4; k++)
            features[k] = tensor_zeros(ctx->arena, DTYPE_F32, 4,
                                       (int64_t[]){1, pc.in_channels[k], sizes[k][0], sizes[k][1]});
        pixel_decoder_output_t out;
        pixel_decoder_forward(ctx, pd, features, &out, NULL, NULL);
        const tensor_t *m = out.mask_features;
        check(adapter2 && adapter2 == pd->lateral[0].conv_w && adapter2->shape[1] == pc.in_channels[1] &&
                  m->shape[1] == 8 && m->shape[2] == 12 && m->shape[3] == 10,
              "pixel_decoder/config/two_fpn_levels_run", "adapter_2 %p, mask features [%lld, %lld, %lld, %lld]",
              (void *)adapter2, (long long)m->shape[0], (long long)m->shape[1], (long long)m->shape[2],
              (long long)m->shape[3]);
        ctx_destroy(ctx);
        pixel_decoder_free(pd);
        param_list_free(&params);
        arena_destroy(a);
    }
}

/* ---- parity with the golden files ---- */

typedef struct {
    const safetensors_t *expected;
    const char *label;
    int compared;
    int failed;
} debug_compare_t;

/* Compares got with expected tensor `name` (F32 within PARITY_TOL, I64 exactly),
 * prints the error and records a check named label/short_name. */
static void compare_named(const safetensors_t *expected, const char *label, const char *name, const char *short_name,
                          const tensor_t *got, int *failed) {
    char cname[300], shape[96];
    snprintf(cname, sizeof cname, "pixel_decoder/%s/%s", label, short_name);
    const st_entry_t *e = safetensors_find(expected, name);
    int same_shape = e && e->ndim == got->ndim && e->numel == got->numel;
    for (int i = 0; same_shape && i < e->ndim; i++) same_shape = e->shape[i] == got->shape[i];
    if (!same_shape || e->dtype != got->dtype) {
        check(0, cname, "%s: missing, or not of shape %s and dtype %s", name, tensor_shape_str(got, shape, 96),
              dtype_name(got->dtype));
        if (failed) (*failed)++;
        return;
    }
    if (got->dtype == DTYPE_I64) {
        int64_t *have = malloc((size_t)got->numel * sizeof *have);
        tensor_to_host(got, have);
        int equal = memcmp(have, e->data, (size_t)got->numel * sizeof *have) == 0;
        free(have);
        printf("#   %-58s %-14s %s\n", cname, tensor_shape_str(got, shape, 96), equal ? "equal" : "DIFFERENT");
        if (!check(equal, cname, "%s differs", name) && failed) (*failed)++;
        return;
    }
    float *want = malloc((size_t)(e->numel ? e->numel : 1) * sizeof(float));
    memcpy(want, e->data, (size_t)e->numel * sizeof(float));
    float *have = to_host(got);
    double rel = rel_error(have, want, e->numel), abs_diff = max_abs_diff(have, want, e->numel);
    free(want);
    free(have);
    printf("#   %-58s %-14s max abs diff %.3g, rel %.3g\n", cname, tensor_shape_str(got, shape, 96), abs_diff, rel);
    if (!check(rel <= PARITY_TOL, cname, "%s: rel error %.3g > %g (max abs diff %.3g)", name, rel, PARITY_TOL,
               abs_diff) &&
        failed)
        (*failed)++;
}

static void on_debug(void *user, const char *name, const tensor_t *t) {
    debug_compare_t *d = user;
    char full[256], short_name[256];
    snprintf(full, sizeof full, "debug.pixel_decoder.%s", name);
    snprintf(short_name, sizeof short_name, "debug.%s", name);
    d->compared++;
    compare_named(d->expected, d->label, full, short_name, t, &d->failed);
}

/* The variant a golden case was made with (harness.json "variant"). */
static err_code_t case_variant(const char *dir, pixel_decoder_variant_t *variant, err_t *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/harness.json", dir);
    config_t h;
    err_code_t rc = config_load(path, &h, err);
    if (rc != ERR_OK) return rc;
    const char *v;
    rc = config_get_string(&h, "variant", &v, err);
    if (rc == ERR_OK) {
        if (strcmp(v, "avs") == 0) *variant = PIXEL_DECODER_AVS;
        else if (strcmp(v, "avss") == 0) *variant = PIXEL_DECODER_AVSS;
        else rc = err_set(err, ERR_MISMATCH, "%s: variant '%s'", path, v);
    }
    config_free(&h);
    return rc;
}

/* Loads a golden case on ctx's device, runs the pixel decoder with `variant` on
 * the golden backbone features (the sampling core fused, or composed). With
 * report, checks every tensor; without, returns the largest relative error of
 * the outputs (for the checks of the composed sampling, and that the other
 * variant does NOT match). */
static double run_case(ctx_t *ctx, const char *dir, const char *label, int use_other_variant, int composed,
                       int report) {
    char path[1024], name[300];
    err_t err = {0};
    config_t cfg;
    pixel_decoder_config_t pc;
    pixel_decoder_variant_t variant = PIXEL_DECODER_AVS;
    arena_t *param_arena = arena_create(ctx->device, 1 << 20);
    param_list_t params;
    param_list_init(&params, param_arena);
    weights_t w;
    pixel_decoder_t *pd = NULL;
    safetensors_t expected = {0};
    tensor_t *features[4] = {0};
    double worst = 0.0;
    err_code_t rc = case_variant(dir, &variant, &err);
    if (use_other_variant) variant = variant == PIXEL_DECODER_AVS ? PIXEL_DECODER_AVSS : PIXEL_DECODER_AVS;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (rc == ERR_OK && (rc = config_load(path, &cfg, &err)) == ERR_OK) {
        rc = pixel_decoder_config_from_json(&cfg, variant, &pc, &err);
        config_free(&cfg);
    }
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if (rc == ERR_OK && (rc = weights_open(path, &w, &err)) == ERR_OK) {
        rc = pixel_decoder_load(&pc, &w, &params, PIXEL_DECODER_AAVS_PREFIX, 1, &pd, &err);
        weights_close(&w);
    }
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (rc == ERR_OK) rc = safetensors_open(path, &expected, &err);
    for (int k = 0; k < 4 && rc == ERR_OK; k++) {
        snprintf(name, sizeof name, "backbone.feature_map.stage%d", k + 1);
        rc = safetensors_load(&expected, name, ctx->arena, DTYPE_F32, 0, NULL, &features[k], &err);
    }
    if (rc == ERR_OK) pd->composed_sampling = composed;
    if (rc == ERR_OK && pd->cfg.n_features != 4)
        rc = err_set(&err, ERR_MISMATCH, "%d backbone features in the config", pd->cfg.n_features);
    snprintf(name, sizeof name, "pixel_decoder/%s/load", label);
    if (report) check(rc == ERR_OK, name, "%s", err.msg);
    if (rc == ERR_OK) {
        debug_compare_t dbg = {.expected = &expected, .label = label};
        pixel_decoder_output_t out;
        int old = ctx_set_grad(ctx, 0);
        pixel_decoder_forward(ctx, pd, features, &out, report ? on_debug : NULL, &dbg);
        ctx_set_grad(ctx, old);
        if (report) {
            snprintf(name, sizeof name, "pixel_decoder/%s/debug_count", label);
            /* inputs_embeds, position_embeddings, spatial_shapes, level_start_index, valid_ratios, layers */
            int want = 5 + pd->cfg.encoder_layers;
            check(dbg.compared == want, name, "%d debug tensors reported, want %d", dbg.compared, want);
        }
        for (int l = 0; l < PIXEL_DECODER_LEVELS + 1; l++) {
            char key[96], short_name[96];
            tensor_t *t = l < PIXEL_DECODER_LEVELS ? out.multi_scale_features[l] : out.mask_features;
            if (l < PIXEL_DECODER_LEVELS) snprintf(key, sizeof key, "pixel_decoder.multi_scale_features.%d", l);
            else snprintf(key, sizeof key, "pixel_decoder.mask_features");
            snprintf(short_name, sizeof short_name, "%s", key + strlen("pixel_decoder."));
            if (report) {
                compare_named(&expected, label, key, short_name, t, NULL);
            } else {
                const st_entry_t *e = safetensors_find(&expected, key);
                if (!e || e->numel != t->numel) return INFINITY;
                float *want = malloc((size_t)e->numel * sizeof(float)), *have = to_host(t);
                memcpy(want, e->data, (size_t)e->numel * sizeof(float));
                double rel = rel_error(have, want, e->numel);
                if (rel > worst) worst = rel;
                free(want);
                free(have);
            }
        }
    } else {
        worst = INFINITY;
    }
    ctx_reset(ctx);
    safetensors_close(&expected);
    pixel_decoder_free(pd);
    param_list_free(&params);
    arena_destroy(param_arena);
    return worst;
}

static void test_parity(ctx_t *ctx, const char *suffix) {
    const char *shared = shared_dir();
    static const char *const golden[] = {"avs-tiny", "avss-tiny"};
    char dir[1024], label[256];
    for (int i = 0; i < 2; i++) {
        snprintf(label, sizeof label, "golden-%s%s", golden[i], suffix);
        if (shared) snprintf(dir, sizeof dir, "%s/golden/%s", shared, golden[i]);
        if (!shared || !exists(dir)) {
            char n[300];
            snprintf(n, sizeof n, "pixel_decoder/%s", label);
            check_skip(n, "no shared data (golden/%s; set STEPSTONE_SHARED)", golden[i]);
            continue;
        }
        run_case(ctx, dir, label, 0, 0, 1);
        char n[300];
        if (ctx->device == DEVICE_CPU) { /* elsewhere the sampling is always composed */
            double composed = run_case(ctx, dir, label, 0, 1, 0);
            snprintf(n, sizeof n, "pixel_decoder/%s/composed_sampling", label);
            printf("#   %-58s rel %.3g (all four outputs)\n", n, composed);
            check(composed <= PARITY_TOL, n, "rel %.3g", composed);
        }
        /* the other variant's attention (with or without output_proj) must not
         * match: the test can tell the two codes apart */
        double other = run_case(ctx, dir, label, 1, 0, 0);
        snprintf(n, sizeof n, "pixel_decoder/%s/other_variant_differs", label);
        printf("#   %-58s rel %.3g with the other variant's attention\n", n, other);
        check(other > 100 * PARITY_TOL && isfinite(other), n, "rel %.3g", other);
    }
}

/* ---- a weights file of the tiny model, and edits of it ---- */

/* Writes the parameters of a random tiny model as a file, under `prefix`,
 * leaving out names containing `drop` (may be NULL), with `reshape` (may be
 * NULL) flattened, and with an extra tensor `add` (may be NULL). */
static int write_tiny_weights(const char *path, const char *prefix, const char *drop, const char *reshape,
                              const char *add) {
    pixel_decoder_config_t pc = tiny_config(PIXEL_DECODER_AVSS);
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    param_list_init(&params, a);
    pixel_decoder_t *pd = pixel_decoder_random(&pc, &params, prefix, 5, 0.5f);
    st_writer_t *wr = safetensors_writer_new();
    err_t err;
    int ok = 1;
    for (int i = 0; i < params.count && ok; i++) {
        const char *name = params.names[i];
        tensor_t *t = params.tensors[i];
        if (drop && strstr(name, drop)) continue;
        if (reshape && strcmp(name, reshape) == 0) {
            ok = safetensors_writer_add(wr, name, DTYPE_F32, 1, (int64_t[]){t->numel}, tensor_f32(t), &err) == ERR_OK;
            continue;
        }
        ok = safetensors_writer_add_tensor(wr, name, t, &err) == ERR_OK;
    }
    if (ok && add) {
        float three[3] = {1, 2, 3};
        ok = safetensors_writer_add(wr, add, DTYPE_F32, 1, (int64_t[]){3}, three, &err) == ERR_OK;
    }
    /* another module's tensor beside the pixel decoder's, as in a whole checkpoint */
    if (ok) {
        float one = 1.0f;
        ok = safetensors_writer_add(wr, "model.model.transformer_module.level_embed", DTYPE_F32, 1, (int64_t[]){1},
                                    &one, &err) == ERR_OK;
    }
    if (ok) ok = safetensors_writer_save(wr, path, &err) == ERR_OK;
    if (!ok) printf("# writing %s: %s\n", path, err.msg);
    safetensors_writer_free(wr);
    pixel_decoder_free(pd);
    param_list_free(&params);
    arena_destroy(a);
    return ok;
}

/* Loads the tiny model (AVSS) from path into a fresh arena; returns the code.
 * With params_out, *params_out and *pd_out get the result (the caller frees
 * the model, the list and its arena); without, everything is freed here. */
static err_code_t load_tiny(const char *path, const char *param_prefix, err_t *err, param_list_t *params_out,
                            pixel_decoder_t **pd_out) {
    pixel_decoder_config_t pc = tiny_config(PIXEL_DECODER_AVSS);
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    param_list_init(&params, a);
    weights_t w;
    pixel_decoder_t *pd = NULL;
    err_code_t rc = weights_open(path, &w, err);
    if (rc == ERR_OK) {
        rc = pixel_decoder_load(&pc, &w, &params, param_prefix, 77, &pd, err);
        weights_close(&w);
    }
    if (rc == ERR_OK && pd == NULL) rc = err_set(err, ERR_ARG, "no model and no error");
    if (rc != ERR_OK && pd != NULL) rc = err_set(err, ERR_ARG, "an error and a model");
    if (params_out && rc == ERR_OK) {
        *params_out = params;
        *pd_out = pd;
        return rc;
    }
    pixel_decoder_free(pd);
    param_list_free(&params);
    arena_destroy(a);
    return rc;
}

static void test_loading(void) {
    char path[512];
    err_t err = {0};
    const char *p = PIXEL_DECODER_AAVS_PREFIX;
    snprintf(path, sizeof path, "%s/w.safetensors", tmp_dir);

    /* names: registered under the caller's prefix, the official ones */
    param_list_t params;
    pixel_decoder_t *pd = NULL;
    err_code_t rc = write_tiny_weights(path, p, NULL, NULL, NULL) ? load_tiny(path, p, &err, &params, &pd) : ERR_IO;
    if (check(rc == ERR_OK, "pixel_decoder/names/load", "%s", err.msg)) {
        tensor_t *adapt =
            param_list_find(&params, PIXEL_DECODER_AAVS_PREFIX "encoder.layers.1.self_attn.avs_adapt.2.weight");
        tensor_t *lateral = param_list_find(&params, PIXEL_DECODER_AAVS_PREFIX "adapter_1.0.weight");
        /* level_embed + 3 input projections x 4 + 2 layers x 20 + mask projection 2 + FPN (3 + 3) */
        int want = 1 + 12 + 2 * 20 + 2 + 6;
        check(adapt && adapt->shape[0] == 64 && adapt->shape[1] == 16 && adapt == pd->layers[1].adapt_up_w &&
                  lateral && lateral == pd->lateral[0].conv_w && lateral->shape[1] == 4 &&
                  params.count == want && pd->adapters_from_file,
              "pixel_decoder/names/official", "adapter %p, lateral %p, %d parameters (want %d)", (void *)adapt,
              (void *)lateral, params.count, want);
        pixel_decoder_free(pd);
        arena_t *a = params.arena;
        param_list_free(&params);
        arena_destroy(a);
    }

    /* a HuggingFace file (its prefix, no avs_adapt): adapters drawn as
     * from_pretrained initialises them, N(0, init_std^2) weights and zero biases */
    rc = write_tiny_weights(path, "model.pixel_level_module.decoder.", "avs_adapt", NULL, NULL)
             ? load_tiny(path, NULL, &err, &params, &pd)
             : ERR_IO;
    if (check(rc == ERR_OK, "pixel_decoder/names/hf_without_adapters", "%s", err.msg)) {
        float *wd = to_host(pd->layers[0].adapt_down_w), *bd = to_host(pd->layers[0].adapt_down_b);
        double sum2 = 0.0, bias_abs = 0.0;
        int64_t n = pd->layers[0].adapt_down_w->numel;
        for (int64_t i = 0; i < n; i++) sum2 += (double)wd[i] * wd[i];
        for (int64_t i = 0; i < pd->layers[0].adapt_down_b->numel; i++) bias_abs += fabs(bd[i]);
        double std = sqrt(sum2 / (double)n);
        check(!pd->adapters_from_file && std > 0.01 && std < 0.03 && bias_abs == 0.0 &&
                  param_list_find(&params, "encoder.layers.0.self_attn.avs_adapt.0.weight"),
              "pixel_decoder/names/hf_adapters_initialised", "from file %d, std %.4g, |bias| %.3g",
              pd->adapters_from_file, std, bias_abs);
        free(wd);
        free(bd);
        pixel_decoder_free(pd);
        arena_t *a = params.arena;
        param_list_free(&params);
        arena_destroy(a);
    }

    char t[512];
    snprintf(t, sizeof t, "%sencoder.layers.1.self_attn.value_proj.weight", p);
    rc = write_tiny_weights(path, p, t, NULL, NULL) ? load_tiny(path, NULL, &err, NULL, NULL) : ERR_IO;
    check(rc == ERR_NOTFOUND && has(err.msg, t) && has(err.msg, "missing"),
          "pixel_decoder/bad_weights/missing_tensor", "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   missing: %s\n", err.msg);

    snprintf(t, sizeof t, "%sencoder.layers.0.self_attn.sampling_offsets.weight", p);
    rc = write_tiny_weights(path, p, NULL, t, NULL) ? load_tiny(path, NULL, &err, NULL, NULL) : ERR_IO;
    check(rc == ERR_MISMATCH && has(err.msg, t) && has(err.msg, "[48, 64]") && has(err.msg, "[3072]"),
          "pixel_decoder/bad_weights/wrong_shape", "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   shape:   %s\n", err.msg);

    snprintf(t, sizeof t, "%sencoder.layers.1.self_attn.avs_adapt.0.bias", p);
    rc = write_tiny_weights(path, p, t, NULL, NULL) ? load_tiny(path, NULL, &err, NULL, NULL) : ERR_IO;
    check(rc == ERR_NOTFOUND && has(err.msg, t), "pixel_decoder/bad_weights/partial_adapters", "rc %s: %s",
          err_code_name(rc), err.msg);

    snprintf(t, sizeof t, "%sencoder.layers.2.fc1.weight", p);
    rc = write_tiny_weights(path, p, NULL, NULL, t) ? load_tiny(path, NULL, &err, NULL, NULL) : ERR_IO;
    check(rc == ERR_MISMATCH && has(err.msg, t) && has(err.msg, "not used"), "pixel_decoder/bad_weights/unused_tensor",
          "rc %s: %s", err_code_name(rc), err.msg);
    printf("#   unused:  %s\n", err.msg);

    /* a file without any pixel decoder: every candidate prefix named */
    rc = write_tiny_weights(path, p, "level_embed", NULL, NULL) ? load_tiny(path, NULL, &err, NULL, NULL) : ERR_IO;
    check(rc == ERR_NOTFOUND && has(err.msg, "model.model.pixel_level_module.decoder.level_embed") &&
              has(err.msg, "pixel decoder"),
          "pixel_decoder/bad_weights/no_pixel_decoder", "rc %s: %s", err_code_name(rc), err.msg);
    unlink(path);
}

/* ---- the module as one function of its inputs and parameters ---- */

#define TINY_FRAMES 2

/* The sizes of the four backbone features (finest first) a case runs at. */
typedef struct {
    const char *name;
    int64_t sizes[4][2];
} geometry_t;
/* odd, non-square sizes, not halving exactly; the coarsest map large enough
 * that a GroupNorm over it is well conditioned */
static const geometry_t general_sizes = {"levels_of_different_sizes", {{11, 13}, {6, 7}, {4, 5}, {3, 4}}};
/* the three encoder levels of one (non-square) size: every token's reference
 * point is then a pixel centre of every level, so that sampling offsets of
 * half-integers put every sampling point midway between pixel centres */
static const geometry_t equal_level_sizes = {"levels_of_one_size", {{9, 11}, {4, 5}, {4, 5}, {4, 5}}};

typedef struct {
    ctx_t *ctx;
    const pixel_decoder_t *pd;
    const geometry_t *geo;
    float *inputs[4];   /* host features [F, C_k, h_k, w_k] */
    int64_t numel[4];
    float *r[4];        /* host weights of the objective: outputs (3 levels + mask features) */
    int64_t out_numel[4];
} module_case_t;

static void make_case(module_case_t *mc, ctx_t *ctx, const pixel_decoder_t *pd, const geometry_t *geo,
                      uint64_t seed) {
    memset(mc, 0, sizeof *mc);
    mc->ctx = ctx;
    mc->pd = pd;
    mc->geo = geo;
    rng_t rng;
    rng_seed(&rng, seed);
    for (int k = 0; k < 4; k++) {
        mc->numel[k] = TINY_FRAMES * pd->cfg.in_channels[k] * geo->sizes[k][0] * geo->sizes[k][1];
        mc->inputs[k] = malloc((size_t)mc->numel[k] * sizeof(float));
        for (int64_t i = 0; i < mc->numel[k]; i++) mc->inputs[k][i] = (float)rng_normal(&rng);
    }
    /* outputs: levels coarsest first (features 3, 2, 1), then mask features at feature 0's size */
    for (int l = 0; l < 4; l++) {
        int k = l < 3 ? 3 - l : 0;
        int64_t c = l < 3 ? pd->cfg.feature_size : pd->cfg.mask_feature_size;
        mc->out_numel[l] = TINY_FRAMES * c * geo->sizes[k][0] * geo->sizes[k][1];
        mc->r[l] = malloc((size_t)mc->out_numel[l] * sizeof(float));
        for (int64_t i = 0; i < mc->out_numel[l]; i++) mc->r[l][i] = (float)rng_normal(&rng);
    }
}

static void free_case(module_case_t *mc) {
    for (int k = 0; k < 4; k++) {
        free(mc->inputs[k]);
        free(mc->r[k]);
    }
}

/* Runs the module; returns sum over outputs of <out, r> in double. With grad,
 * backpropagates it, and d/d inputs land in din[k] (host, may be NULL). With
 * outs, the host outputs are copied there (caller frees). */
static double module_objective(const module_case_t *mc, int with_grad, float **din, float **outs) {
    ctx_t *ctx = mc->ctx;
    int old = ctx_set_grad(ctx, with_grad);
    tensor_t *features[4];
    for (int k = 0; k < 4; k++) {
        int64_t shape[4] = {TINY_FRAMES, mc->pd->cfg.in_channels[k], mc->geo->sizes[k][0], mc->geo->sizes[k][1]};
        features[k] = tensor_from_host(ctx->arena, DTYPE_F32, 4, shape, mc->inputs[k]);
        features[k]->requires_grad = with_grad;
    }
    pixel_decoder_output_t out;
    pixel_decoder_forward(ctx, mc->pd, features, &out, NULL, NULL);
    tensor_t *o[4] = {out.multi_scale_features[0], out.multi_scale_features[1], out.multi_scale_features[2],
                      out.mask_features};
    double s = 0.0;
    tensor_t *loss = NULL;
    for (int l = 0; l < 4; l++) {
        if (o[l]->numel != mc->out_numel[l]) fatal("output %d has %lld elements", l, (long long)o[l]->numel);
        float *h = to_host(o[l]);
        for (int64_t i = 0; i < o[l]->numel; i++) s += (double)h[i] * (double)mc->r[l][i];
        if (outs) outs[l] = h;
        else free(h);
        if (with_grad) {
            tensor_t *rt = tensor_from_host(ctx->arena, DTYPE_F32, o[l]->ndim, o[l]->shape, mc->r[l]);
            tensor_t *term = op_sum_all(ctx, op_mul(ctx, o[l], rt));
            loss = loss ? op_add(ctx, loss, term) : term;
        }
    }
    if (with_grad) {
        ctx_backward(ctx, loss, NULL);
        for (int k = 0; k < 4 && din; k++) {
            float *g = grad_to_host(features[k]);
            memcpy(din[k], g, (size_t)features[k]->numel * sizeof(float));
            free(g);
        }
    }
    ctx_set_grad(ctx, old);
    return s;
}

/* ---- gradients by finite differences ---- */

typedef struct {
    double worst;      /* largest error / tolerance seen */
    char worst_what[160];
    int checked;
} fd_stats_t;

/* The finite-difference steps: the objective (a sum of ~20000 products,
 * ~150) carries ~1e-4 of float32 rounding noise, so a step is as large as the
 * module's curvature allows: FD_STEP of a tensor's rms (at least of 0.1); and
 * FD_STEP_OFFSETS (absolute) for sampling_offsets, whose step moves the
 * sampling points themselves (by ~0.03 pixel). */
#define FD_STEP 3e-2
#define FD_STEP_OFFSETS 3e-3
/* random directions per tensor */
#define FD_DIRECTIONS 2

static double rms_of(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* Central differences of the objective along `directions` random directions
 * v (N(0, 1) entries) of data[0..n) (host memory the case reads: an input, or a
 * CPU parameter), data +- step * v, against <grad, v>. A direction moves every
 * element, so the derivative sums all of them and stands well above the
 * rounding noise (an element-by-element difference would be lost in it), while
 * any wrong element of grad still changes <grad, v>. The cases keep the module
 * smooth over the step (see offsets_mode_t and conditioned_random), so the
 * tolerance is tight. */
/* (f(keep + h v) - f(keep - h v)) / 2h, with data (which the case reads) restored to keep */
static double central_difference(const module_case_t *mc, float *data, const float *keep, const float *v, int64_t n,
                                 double h) {
    for (int64_t i = 0; i < n; i++) data[i] = (float)(keep[i] + h * v[i]);
    double up = module_objective(mc, 0, NULL, NULL);
    ctx_reset(mc->ctx);
    for (int64_t i = 0; i < n; i++) data[i] = (float)(keep[i] - h * v[i]);
    double down = module_objective(mc, 0, NULL, NULL);
    ctx_reset(mc->ctx);
    memcpy(data, keep, (size_t)n * sizeof *keep);
    return (up - down) / (2.0 * h);
}

static int fd_check(const module_case_t *mc, float *data, const float *grad, int64_t n, const char *what, double h,
                    int directions, uint64_t seed, fd_stats_t *st, char *msg, size_t msg_size) {
    const double rtol = 2e-2, atol = 2e-2;
    float *keep = malloc((size_t)n * sizeof *keep), *v = malloc((size_t)n * sizeof *v);
    memcpy(keep, data, (size_t)n * sizeof *keep);
    rng_t rng;
    rng_seed(&rng, seed);
    int ok = 1;
    for (int d = 0; d < directions && ok; d++) {
        for (int64_t i = 0; i < n; i++) v[i] = (float)rng_normal(&rng);
        double num = central_difference(mc, data, keep, v, n, h);
        double ana = 0.0; /* <grad, v> */
        for (int64_t i = 0; i < n; i++) ana += (double)grad[i] * v[i];
        double tol = rtol * fmax(fabs(num), fabs(ana)) + atol;
        double ratio = fabs(num - ana) / tol;
        st->checked++;
        if (ratio > st->worst) {
            st->worst = ratio;
            snprintf(st->worst_what, sizeof st->worst_what, "%s direction %d: analytic %.6g, numeric %.6g", what, d,
                     ana, num);
        }
        if (!(ratio <= 1.0)) {
            snprintf(msg, msg_size, "%s direction %d: analytic %.6g, numeric %.6g", what, d, ana, num);
            ok = 0;
        }
    }
    free(keep);
    free(v);
    return ok;
}

/* How the sampling offsets of a gradient check are set. Bilinear sampling is
 * piecewise bilinear: its slope jumps where a sampling point crosses a pixel
 * centre (and at the borders), and a finite difference whose step moves
 * thousands of points across such kinks measures them, not the derivative
 * (with random offsets the error of a directional difference reaches 10-30%
 * at any step above the float32 noise). So: */
typedef enum {
    OFFSETS_RANDOM,     /* as drawn (no finite differences: CUDA against CPU) */
    OFFSETS_FROZEN,     /* sampling_offsets.weight 0: the points stay put whatever else moves */
    OFFSETS_HALF_PIXEL, /* with equal_level_sizes: biases of half-integer pixels, weights tiny, so
                           every point sits about midway between pixel centres and the steps
                           (even of sampling_offsets itself) never carry one across */
} offsets_mode_t;

/* Random parameters shaped so that the module is well conditioned for finite
 * differences: norm weights near 1, and every ReLU kept away from its kink
 * (a difference across a kink measures nothing; ReLU itself is checked in
 * test_ops): the layers before a ReLU get small weights and biases of +-3 or
 * +-4, so that each unit is on or off for good. */
static pixel_decoder_t *conditioned_random(const pixel_decoder_config_t *pc, param_list_t *params, uint64_t seed,
                                           offsets_mode_t offsets) {
    pixel_decoder_t *pd = pixel_decoder_random(pc, params, PIXEL_DECODER_AAVS_PREFIX, seed, 0.3f);
    for (int i = 0; i < params->count; i++) {
        tensor_t *t = params->tensors[i];
        const char *n = params->names[i];
        float *d = to_host(t);
        for (int64_t k = 0; k < t->numel; k++) {
            if ((strstr(n, "norm") || strstr(n, ".1.weight")) && strstr(n, "weight") && t->ndim == 1) d[k] += 1.0f;
            if (strstr(n, "fc1.weight")) d[k] *= 0.2f;
            if (strstr(n, "avs_adapt.0.weight")) d[k] *= 0.05f; /* its input, the attention output, is not normed */
            if (strstr(n, "avs_adapt.0.bias") || strstr(n, "fc1.bias")) d[k] = k % 2 ? -3.0f : 3.0f;
            if (strstr(n, "layer_1.1.weight")) d[k] *= 0.5f; /* the output conv's GroupNorm, before its ReLU */
            if (strstr(n, "layer_1.1.bias")) d[k] = k % 4 ? 4.0f : -4.0f;
            if (strstr(n, "sampling_offsets.bias")) {
                if (offsets == OFFSETS_HALF_PIXEL) d[k] = (k % 2 ? -1.0f : 1.0f) * (0.5f + (float)((k / 2) % 2));
                else d[k] *= 5.0f; /* offsets of about 1.5 pixels */
            }
            if (strstr(n, "sampling_offsets.weight")) {
                if (offsets == OFFSETS_FROZEN) d[k] = 0.0f;
                /* the points move with the queries by a few hundredths of a pixel: the
                 * path from the locations back to the queries is exercised, and every
                 * point stays more than 0.25 pixel from a pixel centre through all the
                 * steps of the check (measured: 0.28) */
                if (offsets == OFFSETS_HALF_PIXEL) d[k] *= 0.01f;
            }
        }
        backend_get(t->device)->copy_from_host(t->data, d, (size_t)t->numel * sizeof(float));
        free(d);
    }
    return pd;
}

/* Gradient check of the whole module on ctx (CPU) for one variant, at the
 * geometry and offsets given: every input and every parameter (output_proj in
 * avs too: there its gradient must be 0) but those whose name contains `skip`
 * (may be NULL), or only those containing `only` (may be NULL); the sampling
 * core fused or composed (msdeform_attn.h). With `broken`
 * (naming how the caller broke ctx's backend; NULL: it did not), the check
 * must fail. */
static void grad_check_module(ctx_t *ctx, pixel_decoder_variant_t variant, const geometry_t *geo,
                              offsets_mode_t offsets, int composed, const char *skip, const char *only,
                              const char *broken) {
    pixel_decoder_config_t pc = tiny_config(variant);
    arena_t *pa = arena_create(DEVICE_CPU, 1 << 20);
    param_list_t params;
    param_list_init(&params, pa);
    pixel_decoder_t *pd = conditioned_random(&pc, &params, 11, offsets);
    pd->composed_sampling = composed;
    module_case_t mc;
    make_case(&mc, ctx, pd, geo, 12);
    char label[128];
    snprintf(label, sizeof label, "%s/%s/%s", variant == PIXEL_DECODER_AVS ? "avs" : "avss", geo->name,
             composed ? "composed_sampling" : "fused_sampling");
    char name[256], msg[512] = "";

    /* recording the tape must not change the forward */
    float *plain[4], *taped[4];
    module_objective(&mc, 0, NULL, plain);
    ctx_reset(ctx);
    for (int i = 0; i < params.count; i++) {
        tensor_alloc_grad(pa, params.tensors[i]);
        params.tensors[i]->requires_grad = 1;
        tensor_zero_grad(params.tensors[i]);
    }
    float *din[4];
    for (int k = 0; k < 4; k++) din[k] = malloc((size_t)mc.numel[k] * sizeof(float));
    module_objective(&mc, 1, din, taped);
    ctx_reset(ctx);
    double diff = 0.0;
    for (int l = 0; l < 4; l++) {
        double d = max_abs_diff(taped[l], plain[l], mc.out_numel[l]);
        if (d > diff) diff = d;
        free(plain[l]);
        free(taped[l]);
    }
    if (!broken) {
        snprintf(name, sizeof name, "pixel_decoder/grad/%s/forward_same_with_tape", label);
        check(diff == 0.0, name, "max abs diff %.3g", diff);
    }

    /* every parameter's gradient (output_proj in avs too: there it must be 0) and every input's */
    float **grads = calloc((size_t)params.count, sizeof *grads);
    for (int i = 0; i < params.count; i++) {
        tensor_t *t = params.tensors[i];
        grads[i] = grad_to_host(t);
        t->requires_grad = 0; /* the objective runs without a tape */
    }
    fd_stats_t st = {0};
    int ok = 1;
    for (int k = 0; k < 4 && ok && !only; k++) {
        char what[64];
        snprintf(what, sizeof what, "input feature %d", k);
        double h = FD_STEP * fmax(rms_of(mc.inputs[k], mc.numel[k]), 0.1);
        ok = fd_check(&mc, mc.inputs[k], din[k], mc.numel[k], what, h, FD_DIRECTIONS, 100 + (uint64_t)k, &st, msg,
                      sizeof msg);
    }
    int n_checked_params = 0;
    for (int i = 0; i < params.count && ok; i++) {
        if (only && !strstr(params.names[i], only)) continue;
        if (skip && strstr(params.names[i], skip)) continue;
        n_checked_params++;
        float *data = tensor_f32(params.tensors[i]);
        int64_t n = params.tensors[i]->numel;
        /* a step of sampling_offsets moves the points themselves: a small one keeps them off the kinks */
        double h = strstr(params.names[i], "sampling_offsets") ? FD_STEP_OFFSETS : FD_STEP * fmax(rms_of(data, n), 0.1);
        ok = fd_check(&mc, data, grads[i], n, params.names[i] + strlen(PIXEL_DECODER_AAVS_PREFIX), h, FD_DIRECTIONS,
                      200 + (uint64_t)i, &st, msg, sizeof msg);
    }
    if (broken) snprintf(name, sizeof name, "pixel_decoder/grad/%s/broken_backward_caught/%s", label, broken);
    else snprintf(name, sizeof name, "pixel_decoder/grad/%s/fd", label);
    printf("#   %s: %d parameters + %s, %d differences, worst error/tolerance %.3g (%s)\n", name, n_checked_params,
           only ? "no input" : "4 inputs", st.checked, st.worst, st.worst_what);
    if (broken) check(!ok, name, "a backward with the sampling-location gradient broken passed the check");
    else check(ok, name, "%s", msg);

    for (int i = 0; i < params.count; i++) free(grads[i]);
    free(grads);
    for (int k = 0; k < 4; k++) free(din[k]);
    free_case(&mc);
    pixel_decoder_free(pd);
    param_list_free(&params);
    arena_destroy(pa);
}

/* grid_sample's backward with the gradient of the grid scaled by
 * broken_dgrid_scale: 0 is a deformable attention whose sampling locations
 * were treated as constants, 0.9 one whose location gradient is 10% off. */
static void (*real_grid_sample_backward)(float *, float *, const float *, const float *, const float *, int64_t,
                                         int64_t, int64_t, int64_t, int64_t, int64_t);
static float broken_dgrid_scale;
static void grid_sample_backward_broken(float *din, float *dgrid, const float *dout, const float *in, const float *grid,
                                        int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo) {
    int64_t count = n * ho * wo * 2;
    float *mine = dgrid ? calloc((size_t)count, sizeof *mine) : NULL;
    real_grid_sample_backward(din, mine, dout, in, grid, n, c, h, w, ho, wo);
    for (int64_t i = 0; mine && i < count; i++) dgrid[i] += broken_dgrid_scale * mine[i];
    free(mine);
}

static void test_gradients(void) {
    ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
    for (int composed = 0; composed < 2; composed++) {
        /* levels of different sizes, the points frozen: everything but the offsets */
        grad_check_module(ctx, PIXEL_DECODER_AVSS, &general_sizes, OFFSETS_FROZEN, composed, "sampling_offsets", NULL,
                          NULL);
        /* the points midway between pixel centres: everything, the offsets included;
         * both variants (they differ in output_proj only) */
        grad_check_module(ctx, PIXEL_DECODER_AVSS, &equal_level_sizes, OFFSETS_HALF_PIXEL, composed, NULL, NULL, NULL);
        grad_check_module(ctx, PIXEL_DECODER_AVS, &equal_level_sizes, OFFSETS_HALF_PIXEL, composed, NULL, NULL, NULL);
    }
    /* the same check must catch a backward that drops the sampling locations'
     * gradient, or gets it 10% wrong: the composed sampling, with the CPU
     * backend's grid_sample_backward replaced in a copy of its table */
    backend_t broken = *ctx->be;
    real_grid_sample_backward = broken.grid_sample_backward;
    broken.grid_sample_backward = grid_sample_backward_broken;
    const backend_t *real = ctx->be;
    ctx->be = &broken;
    const float scales[2] = {0.0f, 0.9f};
    const char *labels[2] = {"dgrid_dropped", "dgrid_10_percent_low"};
    for (int i = 0; i < 2; i++) {
        broken_dgrid_scale = scales[i];
        grad_check_module(ctx, PIXEL_DECODER_AVSS, &equal_level_sizes, OFFSETS_HALF_PIXEL, 1, NULL, "sampling_offsets",
                          labels[i]);
    }
    ctx->be = real;
    ctx_destroy(ctx);
}

/* ---- the fused sampling op against the composed ops ---- */

/* Random values, locations (some outside the maps) and weights; the fused op
 * and the composition of grid_sample, concat, mul and sum must agree, in the
 * output and in the gradients of all three inputs. */
static void test_fused_sampling(void) {
    ctx_t *ctx = ctx_create(DEVICE_CPU, 1 << 20);
    const int64_t shapes[3][2] = {{4, 5}, {2, 3}, {1, 1}};
    const int64_t f = 2, q = 7, heads = 3, d = 5, levels = 3, points = 2, s = 20 + 6 + 1;
    int64_t value_shape[3] = {f, s, heads * d}, loc_shape[6] = {f, q, heads, levels, points, 2};
    int64_t w_shape[5] = {f, q, heads, levels, points}, out_shape[3] = {f, q, heads * d};
    int64_t nv = shape_numel(3, value_shape), nl = shape_numel(6, loc_shape), nw = shape_numel(5, w_shape);
    int64_t no = shape_numel(3, out_shape);
    float *hv = malloc((size_t)nv * sizeof(float)), *hl = malloc((size_t)nl * sizeof(float));
    float *hw = malloc((size_t)nw * sizeof(float)), *hr = malloc((size_t)no * sizeof(float));
    rng_t rng;
    rng_seed(&rng, 31);
    for (int64_t i = 0; i < nv; i++) hv[i] = (float)rng_normal(&rng);
    for (int64_t i = 0; i < nl; i++) hl[i] = -0.3f + 1.6f * rng_float(&rng); /* [-0.3, 1.3): corners off the maps */
    for (int64_t i = 0; i < nw; i++) hw[i] = rng_float(&rng);
    for (int64_t i = 0; i < no; i++) hr[i] = (float)rng_normal(&rng);
    float *got[2][4]; /* [fused, composed][out, d value, d locations, d weights] */
    for (int composed = 0; composed < 2; composed++) {
        tensor_t *value = tensor_from_host(ctx->arena, DTYPE_F32, 3, value_shape, hv);
        tensor_t *loc = tensor_from_host(ctx->arena, DTYPE_F32, 6, loc_shape, hl);
        tensor_t *w = tensor_from_host(ctx->arena, DTYPE_F32, 5, w_shape, hw);
        value->requires_grad = loc->requires_grad = w->requires_grad = 1;
        tensor_t *out = composed ? msdeform_core_composed(ctx, value, loc, w, (int)levels, shapes)
                                 : op_msdeform_core(ctx, value, loc, w, (int)levels, shapes);
        ctx_backward(ctx, out, tensor_from_host(ctx->arena, DTYPE_F32, 3, out_shape, hr));
        got[composed][0] = to_host(out);
        got[composed][1] = grad_to_host(value);
        got[composed][2] = grad_to_host(loc);
        got[composed][3] = grad_to_host(w);
        ctx_reset(ctx);
    }
    const char *what[4] = {"output", "grad_value", "grad_locations", "grad_weights"};
    int64_t counts[4] = {no, nv, nl, nw};
    for (int k = 0; k < 4; k++) {
        char name[128];
        snprintf(name, sizeof name, "pixel_decoder/fused_sampling/%s", what[k]);
        double rel = rel_error(got[0][k], got[1][k], counts[k]);
        printf("#   %-58s rel %.3g against the composed ops\n", name, rel);
        check(rel <= 1e-5, name, "rel %.3g", rel);
        free(got[0][k]);
        free(got[1][k]);
    }
    free(hv);
    free(hl);
    free(hw);
    free(hr);
    ctx_destroy(ctx);
}

/* ---- CUDA against CPU ---- */

/* Forward and gradients of the tiny model on both devices, same parameters and inputs. */
static void test_cuda_vs_cpu(void) {
    ctx_t *gpu = ctx_create(DEVICE_CUDA, 8 << 20);
    if (!gpu) {
        check_skip("pixel_decoder/cuda_vs_cpu", "not run: %s",
                   backend_cuda_built() ? "no GPU on this machine" : "built with CUDA=0");
        return;
    }
    ctx_t *cpu = ctx_create(DEVICE_CPU, 8 << 20);
    for (int v = 0; v < 2; v++) {
        pixel_decoder_variant_t variant = v ? PIXEL_DECODER_AVSS : PIXEL_DECODER_AVS;
        pixel_decoder_config_t pc = tiny_config(variant);
        arena_t *pa[2] = {arena_create(DEVICE_CPU, 1 << 20), arena_create(DEVICE_CUDA, 1 << 20)};
        ctx_t *ctxs[2] = {cpu, gpu};
        param_list_t params[2];
        pixel_decoder_t *pd[2];
        module_case_t mc[2];
        float *outs[2][4], *din[2][4];
        for (int d = 0; d < 2; d++) {
            param_list_init(&params[d], pa[d]);
            pd[d] = conditioned_random(&pc, &params[d], 21, OFFSETS_RANDOM); /* same seed, same values on both */
            for (int i = 0; i < params[d].count; i++) {
                tensor_alloc_grad(pa[d], params[d].tensors[i]);
                params[d].tensors[i]->requires_grad = 1;
            }
            make_case(&mc[d], ctxs[d], pd[d], &general_sizes, 22);
            for (int k = 0; k < 4; k++) din[d][k] = malloc((size_t)mc[d].numel[k] * sizeof(float));
            module_objective(&mc[d], 1, din[d], outs[d]);
            ctx_reset(ctxs[d]);
        }
        double out_err = 0.0, in_grad_err = 0.0, param_grad_err = 0.0;
        const char *worst_param = "";
        for (int l = 0; l < 4; l++) out_err = fmax(out_err, rel_error(outs[1][l], outs[0][l], mc[0].out_numel[l]));
        for (int k = 0; k < 4; k++) in_grad_err = fmax(in_grad_err, rel_error(din[1][k], din[0][k], mc[0].numel[k]));
        for (int i = 0; i < params[0].count; i++) {
            float *g0 = grad_to_host(params[0].tensors[i]), *g1 = grad_to_host(params[1].tensors[i]);
            double e = rel_error(g1, g0, params[0].tensors[i]->numel);
            if (e > param_grad_err) {
                param_grad_err = e;
                worst_param = params[0].names[i];
            }
            free(g0);
            free(g1);
        }
        char name[128];
        snprintf(name, sizeof name, "pixel_decoder/cuda_vs_cpu/%s", v ? "avss" : "avs");
        printf("#   %s: outputs rel %.3g, input grads rel %.3g, parameter grads rel %.3g (%s)\n", name, out_err,
               in_grad_err, param_grad_err, worst_param);
        check(out_err <= PARITY_TOL && in_grad_err <= 1e-3 && param_grad_err <= 1e-3, name,
              "outputs %.3g, input grads %.3g, parameter grads %.3g (%s)", out_err, in_grad_err, param_grad_err,
              worst_param);
        for (int d = 0; d < 2; d++) {
            for (int k = 0; k < 4; k++) {
                free(outs[d][k]);
                free(din[d][k]);
            }
            free_case(&mc[d]);
            pixel_decoder_free(pd[d]);
            param_list_free(&params[d]);
            arena_destroy(pa[d]);
        }
    }
    ctx_destroy(cpu);
    ctx_destroy(gpu);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror(tmp_dir);
        return 2;
    }
    ctx_t *cpu = ctx_create(DEVICE_CPU, 8 << 20);
    test_parity(cpu, "");
    ctx_destroy(cpu);
    ctx_t *gpu = ctx_create(DEVICE_CUDA, 8 << 20);
    if (gpu) {
        test_parity(gpu, "/cuda");
        ctx_destroy(gpu);
    } else {
        check_skip("pixel_decoder/golden/cuda", "parity not run on CUDA: %s",
                   backend_cuda_built() ? "no GPU on this machine" : "built with CUDA=0");
    }
    test_configs();
    test_loading();
    test_fused_sampling();
    test_gradients();
    test_cuda_vs_cpu();
    rmdir(tmp_dir);
    return check_finish("test_pixel_decoder");
}
