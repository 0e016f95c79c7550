/* init.c - `stepstone-model init`: random-weight models in the formats users
 * bring, for the demo pipeline, tests and benchmarks (no real weights can be
 * downloaded here). The backbone follows the config's backbone_config and is
 * written under the HuggingFace Mask2Former names, with the swin_adapt
 * adapters zero as in phase 1 of the official training; VGGish under the
 * torchvggish names, at the widths asked for (the real ones are 288 MB). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "model_cli.h"
#include "rng.h"
#include "safetensors.h"
#include "swin.h"

#define VGGISH_N_CONVS 6
#define VGGISH_N_LINEARS 3

static void init_usage(FILE *f) {
    fputs("usage: stepstone-model init --config config.json [--backbone-out B.safetensors]\n"
          "                            [--vggish-out V.safetensors] [--vggish-widths C1,..,C6,F1,F2,E] [--seed N]\n"
          "\n"
          "Writes random-weight models: the Swin backbone of config.json under the HuggingFace\n"
          "Mask2Former names (model.pixel_level_module.encoder.*; swin_adapt adapters zero) and a\n"
          "VGGish under the torchvggish names. The default VGGish widths are a small demo network,\n"
          "8,16,32,32,64,64,128,128,128; the real ones are 64,128,256,256,512,512,4096,4096,128.\n"
          "The same seed writes the same bytes.\n"
          "\n"
          "exit codes: 0 written, 1 a file could not be read or written, 2 bad command line\n",
          f);
}

/* The backbone of cfg with N(0, 0.02^2) weights, adapters zero. */
static err_code_t write_backbone(const char *config_path, const char *out, uint64_t seed, err_t *err) {
    config_t cfg;
    err_code_t rc = config_load(config_path, &cfg, err);
    if (rc != ERR_OK) return rc;
    swin_config_t sc;
    rc = swin_config_from_json(&cfg, &sc, err);
    config_free(&cfg);
    if (rc != ERR_OK) return err_prefix(err, "%s: ", config_path);
    arena_t *a = arena_create(DEVICE_CPU, 16 << 20);
    param_list_t params;
    param_list_init(&params, a);
    swin_t *m = swin_random(&sc, &params, seed, 0.02f);
    st_writer_t *w = safetensors_writer_new();
    for (int i = 0; i < params.count && rc == ERR_OK; i++) {
        tensor_t *t = params.tensors[i];
        if (strstr(params.names[i], "swin_adapt")) a->backend->memset_zero(t->data, (size_t)t->numel * sizeof(float));
        /* layer norms start at weight 1, bias 0 as torch initialises them */
        if (strstr(params.names[i], "norm") && t->ndim == 1) {
            int is_weight = strstr(params.names[i], ".weight") != NULL;
            for (int64_t j = 0; j < t->numel; j++) tensor_f32(t)[j] = is_weight ? 1.0f : 0.0f;
        }
        char name[512];
        snprintf(name, sizeof name, "model.pixel_level_module.encoder.%s", params.names[i]);
        rc = safetensors_writer_add_tensor(w, name, t, err);
    }
    if (rc == ERR_OK) rc = safetensors_writer_save(w, out, err);
    safetensors_writer_free(w);
    swin_free(m);
    param_list_free(&params);
    arena_destroy(a);
    return rc;
}

/* Adds a [rows, cols...] tensor of N(0, std^2) values. */
static err_code_t add_random(st_writer_t *w, rng_t *r, const char *name, int ndim, const int64_t *shape, float std,
                             err_t *err) {
    int64_t n = shape_numel(ndim, shape);
    float *v = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!v) return err_set(err, ERR_NOMEM, "out of memory for %s", name);
    for (int64_t i = 0; i < n; i++) v[i] = std * (float)rng_normal(r);
    err_code_t rc = safetensors_writer_add(w, name, DTYPE_F32, ndim, shape, v, err);
    free(v);
    return rc;
}

/* VGGish (torchvggish layout: features.{0,3,6,8,11,13}, embeddings.{0,2,4}) at
 * widths[0..5] conv channels and widths[6..8] linear sizes, He-scaled. */
static err_code_t write_vggish(const char *out, const int *widths, uint64_t seed, err_t *err) {
    static const int conv_index[VGGISH_N_CONVS] = {0, 3, 6, 8, 11, 13};
    static const int linear_index[VGGISH_N_LINEARS] = {0, 2, 4};
    rng_t r;
    rng_seed(&r, seed);
    st_writer_t *w = safetensors_writer_new();
    err_code_t rc = ERR_OK;
    int in_ch = 1;
    char name[64];
    for (int i = 0; i < VGGISH_N_CONVS && rc == ERR_OK; i++) {
        int64_t ws[4] = {widths[i], in_ch, 3, 3}, bs[1] = {widths[i]};
        snprintf(name, sizeof name, "features.%d.weight", conv_index[i]);
        rc = add_random(w, &r, name, 4, ws, sqrtf(2.0f / (9.0f * (float)in_ch)), err);
        snprintf(name, sizeof name, "features.%d.bias", conv_index[i]);
        if (rc == ERR_OK) rc = add_random(w, &r, name, 1, bs, 0.01f, err);
        in_ch = widths[i];
    }
    /* four 2x2 pools take 96x64 log-mel examples to 6x4 */
    int in_f = in_ch * 6 * 4;
    for (int i = 0; i < VGGISH_N_LINEARS && rc == ERR_OK; i++) {
        int out_f = widths[VGGISH_N_CONVS + i];
        int64_t ws[2] = {out_f, in_f}, bs[1] = {out_f};
        snprintf(name, sizeof name, "embeddings.%d.weight", linear_index[i]);
        rc = add_random(w, &r, name, 2, ws, sqrtf(2.0f / (float)in_f), err);
        snprintf(name, sizeof name, "embeddings.%d.bias", linear_index[i]);
        if (rc == ERR_OK) rc = add_random(w, &r, name, 1, bs, 0.01f, err);
        in_f = out_f;
    }
    if (rc == ERR_OK) rc = safetensors_writer_save(w, out, err);
    safetensors_writer_free(w);
    return rc;
}

int model_init_main(int argc, char **argv) {
    static const struct option longs[] = {
        {"config", required_argument, 0, 'c'},       {"backbone-out", required_argument, 0, 'b'},
        {"vggish-out", required_argument, 0, 'v'},   {"vggish-widths", required_argument, 0, 'w'},
        {"seed", required_argument, 0, 's'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *config = NULL, *backbone_out = NULL, *vggish_out = NULL;
    int widths[VGGISH_N_CONVS + VGGISH_N_LINEARS] = {8, 16, 32, 32, 64, 64, 128, 128, 128};
    uint64_t seed = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'b': backbone_out = optarg; break;
        case 'v': vggish_out = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'w': {
            int n = sscanf(optarg, "%d,%d,%d,%d,%d,%d,%d,%d,%d", &widths[0], &widths[1], &widths[2], &widths[3],
                           &widths[4], &widths[5], &widths[6], &widths[7], &widths[8]);
            int ok = n == VGGISH_N_CONVS + VGGISH_N_LINEARS;
            for (int i = 0; ok && i < n; i++) ok = widths[i] > 0 && widths[i] <= 65536;
            if (!ok) {
                fprintf(stderr, "stepstone-model init: --vggish-widths wants 9 positive numbers\n");
                return 2;
            }
            break;
        }
        case 'h': init_usage(stdout); return 0;
        default: init_usage(stderr); return 2;
        }
    }
    if (!backbone_out && !vggish_out) {
        fprintf(stderr, "stepstone-model init: nothing to write (--backbone-out, --vggish-out)\n");
        return 2;
    }
    if (backbone_out && !config) {
        fprintf(stderr, "stepstone-model init: --backbone-out needs --config\n");
        return 2;
    }
    err_t err = {0};
    err_code_t rc = ERR_OK;
    if (backbone_out) rc = write_backbone(config, backbone_out, seed, &err);
    if (rc == ERR_OK && backbone_out) log_info("wrote %s", backbone_out);
    if (rc == ERR_OK && vggish_out) rc = write_vggish(vggish_out, widths, seed + 1, &err);
    if (rc == ERR_OK && vggish_out) log_info("wrote %s", vggish_out);
    if (rc != ERR_OK) {
        log_error("%s", err.msg);
        return 1;
    }
    return 0;
}
