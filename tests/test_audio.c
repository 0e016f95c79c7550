/* test_audio.c - the audio path against the official one run in Python
 * (tests/reference/audio_ref.py: soundfile, resampy, torchvggish):
 *   audio/filter/...      resampy's kaiser_best tables regenerated here vs the package's
 *   audio/<clip>/...      resampled samples vs resampy, log-mel examples within 1e-4,
 *                       embeddings within 1e-4 relative (towhee's path, final ReLU,
 *                       PCA + quantization), on CPU and, when present, CUDA
 *   audio/swr/...         libswresample: runs, close, and not exact (says so)
 *   audio/bad/...         missing, empty, non-audio and too-short files: errors naming the file
 *   audio/weights/...     missing, mis-shaped and mis-typed tensors: errors naming the tensor
 *   audio/full/...        real-size VGGish, with STEPSTONE_VGGISH_FULL=DIR (audio_ref.py --full DIR) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "audio.h"
#include "check.h"
#include "resampy.h"
#include "safetensors.h"
#include "vggish.h"

#define FIXTURES "tests/fixtures/audio"
#define REF "tests/reference/audio_ref.safetensors"
#define TINY "tests/reference/vggish_tiny.safetensors"

static arena_t *host;      /* expected tensors */
static safetensors_t ref;

static tensor_t *expected(const safetensors_t *st, const char *name, dtype_t dtype) {
    tensor_t *t = NULL;
    err_t err;
    if (safetensors_load(st, name, host, dtype, 0, NULL, &t, &err) != ERR_OK) fatal("%s", err.msg);
    return t;
}

/* A double stored as two floats (hi + lo). */
static double *expected_doubles(const safetensors_t *st, const char *name, int64_t *n) {
    char key[256];
    snprintf(key, sizeof key, "%s.hi", name);
    tensor_t *hi = expected(st, key, DTYPE_F32);
    snprintf(key, sizeof key, "%s.lo", name);
    tensor_t *lo = expected(st, key, DTYPE_F32);
    double *x = malloc((size_t)hi->numel * sizeof(double));
    for (int64_t i = 0; i < hi->numel; i++) x[i] = (double)tensor_f32(hi)[i] + (double)tensor_f32(lo)[i];
    *n = hi->numel;
    return x;
}

static double max_abs_diff_d(const double *a, const double *b, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* ---- resampy's tables ---- */

static void test_filter(resampy_version_t version, const char *key) {
    char name[64], idx_name[64];
    snprintf(name, sizeof name, "filter.%s", key);
    snprintf(idx_name, sizeof idx_name, "filter.%s.index", key);
    int64_t n;
    double *want = expected_doubles(&ref, name, &n);
    tensor_t *idx = expected(&ref, idx_name, DTYPE_I64);
    const resampy_filter_t *f = resampy_filter(version);
    const int64_t *ix = idx->data;
    double worst = 0.0;
    int in_range = 1;
    for (int64_t i = 0; i < n; i++) {
        if (ix[i] >= f->length) in_range = 0;
        if (!in_range) break;
        double d = fabs(f->half_window[ix[i]] - want[i]);
        if (d > worst) worst = d;
    }
    int64_t last = ix[n - 1] + 1;
    printf("# resampy kaiser_best %s: %lld entries, max |C - package| %.3g over %lld sampled entries\n", key,
           (long long)f->length, worst, (long long)n);
    snprintf(name, sizeof name, "audio/filter/%s", key);
    check(in_range && last == f->length && worst <= 1e-14, name, "length %lld (want %lld), max diff %.3g",
          (long long)f->length, (long long)last, worst);
    free(want);
}

/* ---- one clip, end to end ---- */

typedef struct {
    const char *key, *file;
    int rate, channels;
} clip_t;

static const clip_t clips[] = {
    {"speech16k_mono", "speech16k_mono.wav", 16000, 1},
    {"speech44k_stereo", "speech44k_stereo.wav", 44100, 2},
    {"speech10s", "speech10s.wav", 16000, 1},
    {"tone8k_flac", "tone8k.flac", 8000, 1},
};

static void test_resampled(const clip_t *c, const char *path) {
    char name[128], key[128];
    audio_mono_t wave;
    err_t err;
    snprintf(name, sizeof name, "audio/%s/resampled", c->key);
    if (audio_load_mono(path, 16000, AUDIO_RESAMPLE_RESAMPY, 0, &wave, &err) != ERR_OK) {
        check(0, name, "%s", err.msg);
        return;
    }
    snprintf(key, sizeof key, "clip.%s.resampled", c->key);
    int64_t n;
    double *want = expected_doubles(&ref, key, &n);
    double d = n == wave.n ? max_abs_diff_d(wave.samples, want, n) : INFINITY;
    printf("# %s: %d Hz -> 16 kHz, %lld samples, max |C - resampy| %.3g\n", c->key, c->rate, (long long)wave.n, d);
    check(n == wave.n && d <= 1e-12, name, "%lld samples (resampy %lld), max diff %.3g", (long long)wave.n,
          (long long)n, d);
    free(want);
    audio_mono_free(&wave);
}

/* resampy 0.2.2's variant on the same clip (its first samples) */
static void test_resampled_v02(const clip_t *c, const char *path) {
    char name[128], key[128];
    audio_mono_t wave;
    err_t err;
    snprintf(name, sizeof name, "audio/%s/resampled_v02", c->key);
    if (audio_load_mono(path, 16000, AUDIO_RESAMPLE_RESAMPY_V02, 0, &wave, &err) != ERR_OK) {
        check(0, name, "%s", err.msg);
        return;
    }
    snprintf(key, sizeof key, "clip.%s.resampled_v02", c->key);
    int64_t n;
    double *want = expected_doubles(&ref, key, &n);
    double d = n <= wave.n ? max_abs_diff_d(wave.samples, want, n) : INFINITY;
    printf("# %s: resampy 0.2.2 variant, max |C - reference| %.3g\n", c->key, d);
    check(d <= 1e-12, name, "max diff %.3g", d);
    free(want);
    audio_mono_free(&wave);
}

static void test_decode(const clip_t *c, const char *path) {
    char name[128];
    snprintf(name, sizeof name, "audio/%s/decode", c->key);
    audio_decoded_t a;
    err_t err;
    if (audio_decode(path, &a, &err) != ERR_OK) {
        check(0, name, "%s", err.msg);
        return;
    }
    /* every fixture is 16-bit: each value is a multiple of 1/32768 */
    int on_grid = 1;
    for (int64_t i = 0; i < a.frames * a.channels && on_grid; i++)
        on_grid = a.samples[i] * 32768.0 == nearbyint(a.samples[i] * 32768.0);
    check(a.sample_rate == c->rate && a.channels == c->channels && on_grid, name,
          "%d Hz, %d channels, format %s (want %d Hz, %d channels, int16 / 32768 values)", a.sample_rate, a.channels,
          a.format, c->rate, c->channels);
    audio_decoded_free(&a);
}

/* Embeddings of examples through a model on device, against expected[key]. */
static void check_embeddings(const char *name, const vggish_t *m, const float *examples, int64_t t,
                             const char *key, int quantized) {
    float *emb = NULL;
    err_t err;
    if (vggish_embed(m, examples, t, 4, &emb, &err) != ERR_OK) {
        check(0, name, "%s", err.msg);
        return;
    }
    tensor_t *want = expected(&ref, key, DTYPE_F32);
    int64_t e = vggish_embedding_size(m);
    if (want->numel != t * e) {
        check(0, name, "%lld values, expected %lld", (long long)(t * e), (long long)want->numel);
        free(emb);
        return;
    }
    if (!quantized) {
        double r = rel_error(emb, tensor_f32(want), want->numel);
        printf("# %s: rel error %.3g (max |emb| scale)\n", name, r);
        check(r <= 1e-4, name, "rel error %.3g > 1e-4", r);
    } else {
        /* 0..255 integers: equal, except that a value whose unrounded PCA output
         * sits within 1e-3 of a .5 boundary may round either way in float32 */
        char raw_key[128];
        snprintf(raw_key, sizeof raw_key, "%.*s.pca_raw", (int)(strlen(key) - strlen(".embeddings_pca")), key);
        tensor_t *raw = expected(&ref, raw_key, DTYPE_F32);
        int64_t bad = 0, flips = 0;
        for (int64_t i = 0; i < want->numel; i++) {
            float g = emb[i], w = tensor_f32(want)[i], r = tensor_f32(raw)[i];
            if (g == w) continue;
            double frac = r - floor(r);
            if (fabsf(g - w) == 1.0f && fabs(frac - 0.5) < 1e-3) flips++;
            else bad++;
        }
        printf("# %s: %lld of %lld quantized values equal, %lld boundary flips\n", name,
               (long long)(want->numel - bad - flips), (long long)want->numel, (long long)flips);
        check(bad == 0, name, "%lld values differ", (long long)bad);
    }
    free(emb);
}

/* group: "audio" (the committed reference) or "audio/full" (real dims: no
 * decode or resampling checks, the committed reference has those) */
static void test_clip(const clip_t *c, vggish_t *const models[3], const char *device, const char *group) {
    char path[256], name[160], key[128];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, c->file);
    int first_pass = strcmp(device, "cpu") == 0;
    if (first_pass && strcmp(group, "audio") == 0) {
        test_decode(c, path);
        if (c->rate != 16000) test_resampled(c, path);
        if (strcmp(c->key, "speech44k_stereo") == 0) test_resampled_v02(c, path);
    }
    float *examples = NULL;
    int64_t t = 0;
    err_t err;
    snprintf(name, sizeof name, "%s/%s/log_mel", group, c->key);
    if (vggish_examples_from_file(path, AUDIO_RESAMPLE_RESAMPY, &examples, &t, &err) != ERR_OK) {
        check(0, name, "%s", err.msg);
        return;
    }
    snprintf(key, sizeof key, "clip.%s.log_mel", c->key);
    tensor_t *want = expected(&ref, key, DTYPE_F32);
    if (first_pass) {
        double d = want->numel == t * 96 * 64 ? max_abs_diff(examples, tensor_f32(want), want->numel) : INFINITY;
        printf("# %s: %lld examples, log-mel max |C - torchvggish| %.3g\n", c->key, (long long)t, d);
        check(d <= 1e-4, name, "%lld examples (want %lld), max diff %.3g", (long long)t,
              (long long)want->shape[0], d);
    }
    static const char *const variants[3] = {"embeddings", "embeddings_relu", "embeddings_pca"};
    for (int v = 0; v < 3; v++) {
        snprintf(name, sizeof name, "%s/%s/%s/%s", group, c->key, variants[v], device);
        snprintf(key, sizeof key, "clip.%s.%s", c->key, variants[v]);
        check_embeddings(name, models[v], examples, t, key, v == 2);
    }
    free(examples);
}

static int load_models(const char *weights, device_t device, vggish_t *models[3]) {
    static const vggish_options_t options[3] = {{0, 0}, {1, 0}, {1, 1}};
    err_t err;
    for (int v = 0; v < 3; v++) {
        models[v] = NULL;
        if (vggish_load(weights, device, &options[v], &models[v], &err) != ERR_OK) {
            check(0, "audio/load_weights", "%s", err.msg);
            return 0;
        }
    }
    return 1;
}

static void free_models(vggish_t *models[3]) {
    for (int v = 0; v < 3; v++) vggish_free(models[v]);
}

/* ---- libswresample: the faster, inexact option ---- */

static void test_swr(void) {
    const char *path = FIXTURES "/speech44k_stereo.wav";
    float *exact = NULL, *fast = NULL;
    int64_t t1 = 0, t2 = 0;
    err_t err;
    int ok = vggish_examples_from_file(path, AUDIO_RESAMPLE_RESAMPY, &exact, &t1, &err) == ERR_OK &&
             vggish_examples_from_file(path, AUDIO_RESAMPLE_SWR, &fast, &t2, &err) == ERR_OK;
    if (!ok || t1 != t2) {
        check(0, "audio/swr", "%s", ok ? "example counts differ" : err.msg);
    } else {
        double d = max_abs_diff(fast, exact, t1 * 96 * 64);
        printf("# libswresample vs resampy: log-mel max |diff| %.3g\n", d);
        check(d > 1e-6 && d < 2.0, "audio/swr", "log-mel max diff %.3g: not close, or exact", d);
    }
    free(exact);
    free(fast);
}

/* ---- bad inputs ---- */

static void test_bad(const char *label, const char *path, err_code_t want_code, const char *want_text) {
    char name[128];
    snprintf(name, sizeof name, "audio/bad/%s", label);
    float *examples = NULL;
    int64_t t = 0;
    err_t err = {0};
    err_code_t rc = vggish_examples_from_file(path, AUDIO_RESAMPLE_RESAMPY, &examples, &t, &err);
    printf("# %s: %s\n", label, err.msg);
    check(rc == want_code && strstr(err.msg, path) && (!want_text || strstr(err.msg, want_text)) && !examples, name,
          "code %s (want %s), message '%s'", err_code_name(rc), err_code_name(want_code), err.msg);
}

/* ---- weights with a problem ---- */

/* Copies TINY to path, leaving out `drop`, with `reshape` one element shorter
 * along dim reshape_dim, and `retype` stored as I32. */
static void write_broken(const char *path, const char *drop, const char *reshape, int reshape_dim,
                         const char *retype) {
    safetensors_t st;
    err_t err;
    if (safetensors_open(TINY, &st, &err) != ERR_OK) fatal("%s", err.msg);
    st_writer_t *w = safetensors_writer_new();
    for (int i = 0; i < st.n_entries; i++) {
        const st_entry_t *e = &st.entries[i];
        if (drop && strcmp(e->name, drop) == 0) continue;
        int64_t shape[SAFETENSORS_MAX_DIMS];
        memcpy(shape, e->shape, sizeof shape);
        dtype_t dtype = e->dtype;
        if (reshape && strcmp(e->name, reshape) == 0) shape[reshape_dim] -= 1;
        if (retype && strcmp(e->name, retype) == 0) dtype = DTYPE_I32; /* same size as F32 */
        if (safetensors_writer_add(w, e->name, dtype, e->ndim, shape, e->data, &err) != ERR_OK) fatal("%s", err.msg);
    }
    if (safetensors_writer_save(w, path, &err) != ERR_OK) fatal("%s", err.msg);
    safetensors_writer_free(w);
    safetensors_close(&st);
}

static void test_weights_error(const char *label, const char *drop, const char *reshape, int reshape_dim,
                               const char *retype, const vggish_options_t *opt, err_code_t want_code,
                               const char *tensor, const char *text) {
    char path[256], name[128];
    snprintf(path, sizeof path, "/tmp/stepstone_vggish_%s_%d.safetensors", label, (int)getpid());
    write_broken(path, drop, reshape, reshape_dim, retype);
    vggish_t *m = NULL;
    err_t err = {0};
    err_code_t rc = vggish_load(path, DEVICE_CPU, opt, &m, &err);
    printf("# %s: %s\n", label, err.msg);
    snprintf(name, sizeof name, "audio/weights/%s", label);
    check(rc == want_code && !m && strstr(err.msg, tensor) && (!text || strstr(err.msg, text)), name,
          "code %s, message '%s'", err_code_name(rc), err.msg);
    vggish_free(m);
    unlink(path);
}

static void test_weights(void) {
    vggish_options_t towhee = {0, 0}, pca = {1, 1};
    test_weights_error("missing", "features.3.bias", NULL, 0, NULL, &towhee, ERR_NOTFOUND, "features.3.bias", NULL);
    /* a kernel of 3x2: the tensor named with both shapes */
    test_weights_error("wrong_shape", NULL, "features.3.weight", 3, NULL, &towhee, ERR_MISMATCH,
                       "features.3.weight", "expected shape [8, 4, 3, 3], found [8, 4, 3, 2]");
    /* a conv with 15 outputs: its own width is free (read from the file), so
     * the bias, which still has 16, is the one that disagrees */
    test_weights_error("wrong_width", NULL, "features.6.weight", 0, NULL, &towhee, ERR_MISMATCH, "features.6.bias",
                       "expected shape [15], found [16]");
    /* the first linear layer must take the flattened 32 x 6 x 4 maps */
    test_weights_error("wrong_flatten", NULL, "embeddings.0.weight", 1, NULL, &towhee, ERR_MISMATCH,
                       "embeddings.0.weight", "expected shape [64, 768], found [64, 767]");
    test_weights_error("wrong_dtype", NULL, NULL, 0, "embeddings.4.weight", &towhee, ERR_MISMATCH,
                       "embeddings.4.weight", "I32");
    test_weights_error("missing_pca", "pproc.pca_means", NULL, 0, NULL, &pca, ERR_NOTFOUND, "pproc.pca_means", NULL);
    /* without pca the PCA tensors may be absent */
    char path[256];
    snprintf(path, sizeof path, "/tmp/stepstone_vggish_nopca_%d.safetensors", (int)getpid());
    write_broken(path, "pproc.pca_means", NULL, 0, NULL);
    vggish_t *m = NULL;
    err_t err = {0};
    check(vggish_load(path, DEVICE_CPU, &towhee, &m, &err) == ERR_OK, "audio/weights/no_pca_needed", "%s", err.msg);
    vggish_free(m);
    unlink(path);
}

static void test_fit_frames(void) {
    float emb[3 * 2] = {1, 2, 3, 4, 5, 6};
    float *pad = vggish_fit_frames(emb, 3, 2, 5), *cut = vggish_fit_frames(emb, 3, 2, 2);
    static const float want_pad[10] = {1, 2, 3, 4, 5, 6, 5, 6, 5, 6};
    check(pad && cut && memcmp(pad, want_pad, sizeof want_pad) == 0 && memcmp(cut, emb, 4 * sizeof(float)) == 0,
          "audio/fit_frames", "pad or cut wrong");
    free(pad);
    free(cut);
}

/* ---- the real VGGish dims (weights made at test time by audio_ref.py --full) ---- */

static void test_full(void) {
    const char *dir = getenv("STEPSTONE_VGGISH_FULL");
    if (!dir) {
        check_skip("audio/full", "set STEPSTONE_VGGISH_FULL=DIR after python3 tests/reference/audio_ref.py --full DIR");
        return;
    }
    char weights[512], refpath[512];
    snprintf(weights, sizeof weights, "%s/vggish_full.safetensors", dir);
    snprintf(refpath, sizeof refpath, "%s/vggish_full_ref.safetensors", dir);
    safetensors_t saved = ref;
    err_t err;
    if (!check(safetensors_open(refpath, &ref, &err) == ERR_OK, "audio/full/open", "%s", err.msg)) {
        ref = saved;
        return;
    }
    vggish_t *models[3];
    if (load_models(weights, DEVICE_CPU, models)) {
        check(vggish_embedding_size(models[0]) == 128, "audio/full/dims", "embedding size %lld",
              (long long)vggish_embedding_size(models[0]));
        test_clip(&clips[2], models, "cpu", "audio/full");
        test_clip(&clips[1], models, "cpu", "audio/full");
    }
    free_models(models);
    safetensors_close(&ref);
    ref = saved;
}

int main(void) {
    av_log_set_level(AV_LOG_ERROR); /* FFmpeg's notes on the bad inputs are not test output */
    host = arena_create(DEVICE_CPU, 16u << 20);
    err_t err;
    if (safetensors_open(REF, &ref, &err) != ERR_OK) {
        check(0, "audio/reference", "%s (run from the repository root)", err.msg);
        return check_finish("test_audio");
    }
    test_filter(RESAMPY_V04, "v04");
    test_filter(RESAMPY_V02, "v02");

    vggish_t *models[3];
    if (load_models(TINY, DEVICE_CPU, models))
        for (size_t i = 0; i < sizeof clips / sizeof clips[0]; i++) test_clip(&clips[i], models, "cpu", "audio");
    free_models(models);
    if (backend_cuda_get() && load_models(TINY, DEVICE_CUDA, models)) {
        for (size_t i = 0; i < sizeof clips / sizeof clips[0]; i++) test_clip(&clips[i], models, "cuda", "audio");
        free_models(models);
    } else {
        check_skip("audio/cuda", "no CUDA device (or built with CUDA=0)");
    }

    test_swr();
    test_bad("missing", FIXTURES "/no_such_file.wav", ERR_IO, "No such file");
    test_bad("empty", FIXTURES "/empty.wav", ERR_ARG, "no audio samples");
    test_bad("not_audio", FIXTURES "/not_audio.wav", ERR_FORMAT, NULL);
    test_bad("too_short", FIXTURES "/short.wav", ERR_ARG, "too short");
    test_weights();
    test_fit_frames();
    test_full();

    safetensors_close(&ref);
    arena_destroy(host);
    return check_finish("test_audio");
}
