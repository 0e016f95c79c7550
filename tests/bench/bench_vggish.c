/* bench_vggish.c - seconds of audio per second through VGGish at its real
 * size (64,128,256,256,512,512 conv channels, FC 4096, 4096, 128; random
 * weights): the log-mel front end and the network, on 60 s of 16 kHz audio.
 * tests/bench/bench_vggish_torch.py runs torchvggish's front end and VGG on
 * the same audio and threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "rng.h"
#include "safetensors.h"
#include "vggish.h"

#define SECONDS 60

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* He-scaled random weights under the torchvggish names into path. */
static int write_weights(const char *path) {
    static const int conv_index[6] = {0, 3, 6, 8, 11, 13}, widths[6] = {64, 128, 256, 256, 512, 512};
    static const int linear_index[3] = {0, 2, 4}, linears[3] = {4096, 4096, 128};
    rng_t r;
    rng_seed(&r, 3);
    st_writer_t *w = safetensors_writer_new();
    err_t err;
    int in = 1, ok = 1;
    char name[64];
    for (int i = 0; i < 9 && ok; i++) {
        int conv = i < 6, out = conv ? widths[i] : linears[i - 6];
        int fan_in = conv ? in * 9 : (i == 6 ? 512 * 24 : in);
        int64_t ws[4] = {out, conv ? in : fan_in, 3, 3}, bs[1] = {out};
        int64_t n = (int64_t)out * fan_in;
        float *v = malloc((size_t)n * sizeof(float)), b[4096];
        for (int64_t j = 0; j < n; j++) v[j] = sqrtf(2.0f / (float)fan_in) * (float)rng_normal(&r);
        for (int j = 0; j < out; j++) b[j] = 0.01f * (float)rng_normal(&r);
        snprintf(name, sizeof name, conv ? "features.%d.weight" : "embeddings.%d.weight",
                 conv ? conv_index[i] : linear_index[i - 6]);
        ok = safetensors_writer_add(w, name, DTYPE_F32, conv ? 4 : 2, ws, v, &err) == ERR_OK;
        snprintf(name, sizeof name, conv ? "features.%d.bias" : "embeddings.%d.bias",
                 conv ? conv_index[i] : linear_index[i - 6]);
        ok = ok && safetensors_writer_add(w, name, DTYPE_F32, 1, bs, b, &err) == ERR_OK;
        free(v);
        in = out;
    }
    ok = ok && safetensors_writer_save(w, path, &err) == ERR_OK;
    if (!ok) fprintf(stderr, "bench_vggish: %s\n", err.msg);
    safetensors_writer_free(w);
    return ok;
}

int main(void) {
    char path[] = "/tmp/stepstone-bench-vggish-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    close(fd);
    if (!write_weights(path)) return 1;
    vggish_t *m = NULL;
    err_t err;
    if (vggish_load(path, DEVICE_CPU, NULL, &m, &err) != ERR_OK) {
        fprintf(stderr, "bench_vggish: %s\n", err.msg);
        return 1;
    }
    unlink(path);
    /* the same audio as the torch twin: two tones and a chirp, 16 kHz */
    int64_t n = (int64_t)SECONDS * VGGISH_SAMPLE_RATE;
    double *wave = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / VGGISH_SAMPLE_RATE;
        wave[i] = 0.3 * sin(2 * M_PI * 440 * t) + 0.2 * sin(2 * M_PI * 1250 * t) + 0.1 * sin(2 * M_PI * (200 + 50 * t) * t);
    }
    printf("%-32s %10s %12s\n", "# vggish, 60 s of audio", "s", "audio s/s");
    float *examples = NULL, *emb = NULL;
    int64_t count = 0;
    double t0 = now();
    vggish_log_mel_examples(wave, n, &examples, &count, &err);
    double t1 = now();
    vggish_embed(m, examples, count, 0, &emb, &err);
    double t2 = now();
    printf("%-32s %10.3f %12.1f\n", "vggish.front_end", t1 - t0, SECONDS / (t1 - t0));
    printf("%-32s %10.3f %12.1f\n", "vggish.network", t2 - t1, SECONDS / (t2 - t1));
    printf("%-32s %10.3f %12.1f\n", "vggish.total", t2 - t0, SECONDS / (t2 - t0));
    free(examples);
    free(emb);
    free(wave);
    vggish_free(m);
    return 0;
}
