/* bench_extract.c - stepstone-extract's throughput end to end (JPEG decode
 * and processing, Swin-B, VGGish, f16 conversion and the LMDB write) at
 * full-size dims: Mask2Former's Swin-B (embed 128, depths 2-2-18-2, window
 * 12) on the official 384x384 frames and the full VGGish (64-128-256-256-
 * 512-512, FC 4096-4096-128), with random weights written here as f16
 * .safetensors. The data are a small generated AVSBench tree
 * (tests/lib/avs_tree.h): BENCH_VIDEOS (default 3) v1s videos of 5 frames at
 * 640x360 with 5 s of audio (one at 44.1 kHz stereo, resampled).
 *
 * Drives the built program (../bin/stepstone-extract beside this bench's
 * folder, or $STEPSTONE_EXTRACT_BIN) as a user would, on the CPU, and reads
 * the timings from its manifest.json. Rows:
 *   extract.wall         the whole command: seconds, frames/s
 *   extract.loop         the per-video loop (no start-up): seconds, frames/s
 *   extract.<part>       seconds spent in each part (decode runs on its own
 *                        thread beside the networks; decode_wait is the time
 *                        the networks waited for it) */
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "avs_tree.h"
#include "config.h"
#include "dtype.h"
#include "rng.h"
#include "safetensors.h"
#include "swin.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *swin_b_config_json =
    "{\"model_type\": \"mask2former\", \"backbone_config\": {\"model_type\": \"swin\", \"num_channels\": 3,\n"
    " \"patch_size\": 4, \"embed_dim\": 128, \"depths\": [2, 2, 18, 2], \"num_heads\": [4, 8, 16, 32],\n"
    " \"window_size\": 12, \"mlp_ratio\": 4.0, \"qkv_bias\": true, \"hidden_act\": \"gelu\",\n"
    " \"layer_norm_eps\": 1e-05, \"use_absolute_embeddings\": false, \"image_size\": 384,\n"
    " \"out_features\": [\"stage1\", \"stage2\", \"stage3\", \"stage4\"]}}\n";

/* Random Swin-B weights under the bare HF names, stored as f16. */
static int write_swin_weights(const char *config_path, const char *path) {
    err_t err;
    config_t cfg;
    swin_config_t sc;
    if (config_load(config_path, &cfg, &err) || swin_config_from_json(&cfg, &sc, &err)) {
        fprintf(stderr, "bench_extract: %s\n", err.msg);
        return -1;
    }
    config_free(&cfg);
    arena_t *a = arena_create(DEVICE_CPU, 64 << 20);
    param_list_t params;
    param_list_init(&params, a);
    swin_t *m = swin_random(&sc, &params, 1, 0.02f);
    st_writer_t *w = safetensors_writer_new();
    err_code_t rc = ERR_OK;
    for (int i = 0; i < params.count && rc == ERR_OK; i++) {
        tensor_t *half = tensor_convert(a, params.tensors[i], DTYPE_F16);
        rc = safetensors_writer_add_tensor(w, params.names[i], half, &err);
    }
    if (rc == ERR_OK) rc = safetensors_writer_save(w, path, &err);
    if (rc != ERR_OK) fprintf(stderr, "bench_extract: %s\n", err.msg);
    safetensors_writer_free(w);
    swin_free(m);
    param_list_free(&params);
    arena_destroy(a);
    return rc == ERR_OK ? 0 : -1;
}

/* Random full-size VGGish weights (He-scaled, so activations stay in range). */
static int write_vggish_weights(const char *path) {
    static const int conv_index[6] = {0, 3, 6, 8, 11, 13}, conv_out[6] = {64, 128, 256, 256, 512, 512};
    static const int fc_index[3] = {0, 2, 4}, fc_out[3] = {4096, 4096, 128}, fc_in[3] = {512 * 6 * 4, 4096, 4096};
    rng_t r;
    rng_seed(&r, 2);
    st_writer_t *w = safetensors_writer_new();
    err_t err;
    err_code_t rc = ERR_OK;
    for (int layer = 0; layer < 9 && rc == ERR_OK; layer++) {
        int conv = layer < 6;
        int out = conv ? conv_out[layer] : fc_out[layer - 6];
        int in = conv ? (layer == 0 ? 1 : conv_out[layer - 1]) : fc_in[layer - 6];
        int64_t wshape[4] = {out, in, 3, 3}, bshape[1] = {out}; /* the linear layers use [out, in] */
        int ndim = conv ? 4 : 2;
        int64_t n = conv ? (int64_t)out * in * 9 : (int64_t)out * in;
        double std = sqrt(2.0 / (double)(conv ? in * 9 : in));
        uint16_t *values = malloc(sizeof(uint16_t) * (size_t)n);
        if (!values) return -1;
        for (int64_t i = 0; i < n; i++) values[i] = f32_to_f16((float)(std * rng_normal(&r)));
        char name[64];
        snprintf(name, sizeof name, "%s.%d.weight", conv ? "features" : "embeddings",
                 conv ? conv_index[layer] : fc_index[layer - 6]);
        rc = safetensors_writer_add(w, name, DTYPE_F16, ndim, wshape, values, &err);
        for (int i = 0; i < out; i++) values[i] = f32_to_f16((float)(0.01 * rng_normal(&r)));
        snprintf(name, sizeof name, "%s.%d.bias", conv ? "features" : "embeddings",
                 conv ? conv_index[layer] : fc_index[layer - 6]);
        if (rc == ERR_OK) rc = safetensors_writer_add(w, name, DTYPE_F16, 1, bshape, values, &err);
        free(values);
    }
    if (rc == ERR_OK) rc = safetensors_writer_save(w, path, &err);
    if (rc != ERR_OK) fprintf(stderr, "bench_extract: %s\n", err.msg);
    safetensors_writer_free(w);
    return rc == ERR_OK ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static double timing(json_t *m, const char *name) {
    return json_number_value(json_object_get(json_object_get(m, "timings"), name));
}

int main(void) {
    char bin[PATH_MAX], exe[PATH_MAX];
    const char *env = getenv("STEPSTONE_EXTRACT_BIN");
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else if (len > 0) {
        exe[len] = '\0';
        *strrchr(exe, '/') = '\0'; /* <BUILD>/bench */
        if ((size_t)snprintf(bin, sizeof bin, "%s/../bin/stepstone-extract", exe) >= sizeof bin) return 1;
    }
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "bench_extract: %s is not built (make)\n", bin);
        return 1;
    }
    int n_videos = getenv("BENCH_VIDEOS") ? atoi(getenv("BENCH_VIDEOS")) : 3;
    if (n_videos < 1 || n_videos > 100) n_videos = 3;
    const char *tmp = getenv("TMPDIR");
    char root[512];
    snprintf(root, sizeof root, "%s/stepstone-bench-extract-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        fprintf(stderr, "bench_extract: %s: %s\n", root, strerror(errno));
        return 1;
    }
    char config[600], weights[600], vggish[600], data[600], cache[600];
    snprintf(config, sizeof config, "%s/config.json", root);
    snprintf(weights, sizeof weights, "%s/swin-b.safetensors", root);
    snprintf(vggish, sizeof vggish, "%s/vggish.safetensors", root);
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(cache, sizeof cache, "%s/cache", root);
    avs_tree_video_t videos[100];
    char uids[100][32];
    for (int i = 0; i < n_videos; i++) {
        snprintf(uids[i], sizeof uids[i], "bench_%03d", i);
        avs_tree_video_t v = {"v1s", "test", uids[i], 5, 640, 360, 5.0, i == 0 ? 44100 : 16000, i == 0 ? 2 : 1,
                              (uint64_t)i + 1};
        videos[i] = v;
    }
    FILE *f = fopen(config, "w");
    int ok = f && fputs(swin_b_config_json, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    double t0 = now();
    ok = ok && write_swin_weights(config, weights) == 0 && write_vggish_weights(vggish) == 0 &&
         avs_tree_write(data, videos, n_videos) == 0;
    double prepare_s = now() - t0;
    int status = -1;
    json_t *m = NULL;
    double wall = 0;
    if (ok) {
        char cmd[8 * PATH_MAX];
        snprintf(cmd, sizeof cmd,
                 "'%s' --data '%s' --cache '%s' --config '%s' --weights '%s' --audio-weights '%s' --dtype f16 "
                 ">'%s/extract.log' 2>&1",
                 bin, data, cache, config, weights, vggish, root);
        t0 = now();
        status = system(cmd);
        wall = now() - t0;
        char manifest[700];
        snprintf(manifest, sizeof manifest, "%s/manifest.json", cache);
        m = json_load_file(manifest, 0, NULL);
    }
    int frames = 5 * n_videos;
    if (!ok || status != 0 || !m) {
        fprintf(stderr, "bench_extract: the extraction failed (status %d); log in %s/extract.log (kept)\n", status,
                root);
        return 1;
    }
    printf("%-28s %10s %10s   (%d videos, %d frames of 640x360 -> 384x384, Swin-B + VGGish, f16 cache; weights made "
           "in %.1f s)\n",
           "# extract, cpu", "seconds", "frames/s", n_videos, frames, prepare_s);
    printf("%-28s %10.2f %10.3f\n", "extract.wall", wall, frames / wall);
    double loop = timing(m, "loop_s");
    printf("%-28s %10.2f %10.3f\n", "extract.loop", loop, loop > 0 ? frames / loop : 0.0);
    const char *parts[] = {"setup_s", "decode_s", "decode_wait_s", "backbone_s", "audio_s", "write_s"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "extract.%.*s", (int)(strlen(parts[i]) - 2), parts[i]);
        printf("%-28s %10.2f %10s\n", name, timing(m, parts[i]), "-");
    }
    json_decref(m);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
