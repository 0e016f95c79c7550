/* test_extract.c - stepstone-extract end to end on a tiny AVSBench tree
 * (tests/lib/avs_tree.h writes it: 80x60 JPEG frames processed to 64x64,
 * WAV audio at 16, 22.05 and 44.1 kHz, mono and stereo, one track shorter
 * than the video) with the golden tiny Swin (../shared/golden/avs-tiny) and
 * the tiny VGGish (tests/reference/vggish_tiny.safetensors).
 *
 *   round trip   the cache's features equal swin_forward / vggish_embed run
 *                here on the same files: bit for bit in f32, and equal to the
 *                f32 values rounded to f16 for --dtype f16
 *   kill         SIGKILL part-way, run again: complete, and every key and
 *                value equals an uninterrupted run's
 *   shards       --shard 1/2 and 2/2 merged by stepstone-cache merge equal a
 *                single run
 *   bad videos   a corrupt JPEG, a truncated JPEG, a missing frame, an empty
 *                WAV and a too-short WAV are each named with the reason,
 *                listed as failed in manifest.json, the others extracted;
 *                exit 1, and 0 with --keep-going
 *   refusals     another dtype or image size on an existing cache is refused
 *                naming what differs; bad command lines exit 2
 *
 * The programs are $STEPSTONE_EXTRACT_BIN / $STEPSTONE_CACHE_BIN or
 * ../bin/stepstone-extract and ../bin/stepstone-cache beside this test's
 * folder (build/tests/test_extract -> build/bin/). */
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <lmdb.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "avs_tree.h"
#include "cache.h"
#include "cache_compare.h"
#include "check.h"
#include "config.h"
#include "frames.h"
#include "fingerprint.h"
#include "swin.h"
#include "vggish.h"

/* snprintf through a va_list: the text is cut to fit (paths here are far
 * below PATH_MAX, messages may be cut), without -Wformat-truncation guessing */
static int fmt(char *buf, size_t n, const char *format, ...) __attribute__((format(printf, 3, 4)));
static int fmt(char *buf, size_t n, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    int k = vsnprintf(buf, n, format, ap);
    va_end(ap);
    return k;
}

static char root[256];
static char extract_bin[PATH_MAX], cache_bin[PATH_MAX];
static char golden_config[PATH_MAX], golden_weights[PATH_MAX], vggish_weights[PATH_MAX];
static char processor_json[PATH_MAX];

/* ---- the tiny data set ---- */

static const avs_tree_video_t clean_videos[] = {
    {"v1s", "train", "s_train_a", 5, 80, 60, 5.0, 16000, 1, 11},
    {"v2", "test", "m_test_c", 10, 80, 60, 10.0, 16000, 1, 12},
    {"v1m", "val", "m_val_b", 5, 80, 60, 5.0, 22050, 1, 13},
    {"v1s", "test", "s_test_d", 5, 80, 60, 3.3, 44100, 2, 14}, /* 3 embeddings, padded to 5 */
    {"v1s", "val", "s_val_e", 5, 64, 64, 5.0, 16000, 2, 15},
    {"v2", "train", "w_train_f", 10, 80, 60, 10.0, 16000, 1, 16},
};
#define N_CLEAN ((int)(sizeof clean_videos / sizeof clean_videos[0]))

/* the bad videos, appended to the clean ones in the "bad" tree */
static const avs_tree_video_t bad_videos[] = {
    {"v1s", "train", "bad_garbage_jpeg", 5, 80, 60, 5.0, 16000, 1, 21},
    {"v1s", "train", "bad_truncated_jpeg", 5, 80, 60, 5.0, 16000, 1, 22},
    {"v1m", "test", "bad_missing_frame", 5, 80, 60, 5.0, 16000, 1, 23},
    {"v2", "val", "bad_empty_wav", 10, 80, 60, 10.0, 16000, 1, 24},
    {"v1s", "test", "bad_short_wav", 5, 80, 60, 0.5, 16000, 1, 25},
};
#define N_BAD ((int)(sizeof bad_videos / sizeof bad_videos[0]))

static const char *in_root(const char *name, char *buf) {
    fmt(buf, PATH_MAX, "%s/%s", root, name);
    return buf;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int make_bad_tree(const char *dir) {
    avs_tree_video_t all[N_CLEAN + N_BAD];
    memcpy(all, clean_videos, sizeof clean_videos);
    memcpy(all + N_CLEAN, bad_videos, sizeof bad_videos);
    if (avs_tree_write(dir, all, N_CLEAN + N_BAD)) return -1;
    char p[PATH_MAX];
    fmt(p, sizeof p, "%s/v1s/bad_garbage_jpeg/frames/2.jpg", dir);
    if (write_text(p, "this is not a JPEG file, whatever its name says\n")) return -1;
    /* keep the first 300 bytes: headers, then the scan stops short */
    fmt(p, sizeof p, "%s/v1s/bad_truncated_jpeg/frames/4.jpg", dir);
    if (truncate(p, 300)) return -1;
    fmt(p, sizeof p, "%s/v1m/bad_missing_frame/frames/3.jpg", dir);
    if (unlink(p)) return -1;
    fmt(p, sizeof p, "%s/v2/bad_empty_wav/audio.wav", dir);
    if (avs_tree_write_wav(p, 0.0, 16000, 1, 1)) return -1;
    return 0;
}

/* ---- running the programs ---- */

static char last_log[1 << 16];
static int sanitizer_reports; /* runs whose output holds an ASan/UBSan/LSan report */

static void read_log(const char *path) {
    last_log[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(last_log, 1, sizeof last_log - 1, f);
    last_log[n] = '\0';
    fclose(f);
}

/* Runs a shell command line (the words need no quoting), stdout and stderr
 * into root/run.log (then last_log); returns the exit status. */
static int run(const char *format, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *format, ...) {
    char args[8192], cmd[9000], log_path[PATH_MAX];
    va_list ap;
    va_start(ap, format);
    vsnprintf(args, sizeof args, format, ap);
    va_end(ap);
    in_root("run.log", log_path);
    fmt(cmd, sizeof cmd, "%s >'%s' 2>&1", args, log_path);
    int st = system(cmd);
    read_log(log_path);
    /* under SANITIZE=1 a report exits 1 too, which some checks expect for other reasons */
    if (strstr(last_log, "Sanitizer") || strstr(last_log, "runtime error:")) sanitizer_reports++;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* The common arguments of an extraction from data into cache. */
static const char *extract_args(const char *data, const char *cache, char *buf, size_t n) {
    fmt(buf, n, "'%s' --data '%s' --cache '%s' --config '%s' --weights '%s' --audio-weights '%s' --processor '%s' --no-sync",
             extract_bin, data, cache, golden_config, golden_weights, vggish_weights, processor_json);
    return buf;
}

static int extract(const char *data, const char *cache, const char *more) {
    char args[4096];
    return run("%s %s", extract_args(data, cache, args, sizeof args), more ? more : "");
}

static json_t *load_manifest(const char *cache) {
    char p[PATH_MAX];
    fmt(p, sizeof p, "%s/manifest.json", cache);
    return json_load_file(p, 0, NULL);
}

static long long manifest_count(json_t *m, const char *name) {
    return json_integer_value(json_object_get(json_object_get(m, "counts"), name));
}

/* ---- comparing caches ---- */


/* Videos in the cache at dir (0 when it cannot be opened yet). */
static int count_videos(const char *dir) {
    cache_t *c = NULL;
    err_t err;
    if (cache_open(dir, CACHE_READ, NULL, &c, &err) != ERR_OK) return 0;
    cache_stat_t s;
    int n = cache_stat(c, &s, &err) == ERR_OK ? (int)s.entries[CACHE_DB_VIDEOS] : 0;
    cache_close(c);
    return n;
}

/* ---- the reference: the networks run here on the same files ---- */

typedef struct {
    swin_t *swin;
    param_list_t params;
    arena_t *param_arena, *host;
    ctx_t *ctx;
    vggish_t *vggish;
    image_processor_t proc;
} reference_t;

static int reference_load(reference_t *r) {
    memset(r, 0, sizeof *r);
    err_t err;
    config_t cfg;
    swin_config_t sc;
    weights_t w;
    r->param_arena = arena_create(DEVICE_CPU, 16 << 20);
    r->host = arena_create(DEVICE_CPU, 16 << 20);
    r->ctx = ctx_create(DEVICE_CPU, 16 << 20);
    ctx_set_grad(r->ctx, 0);
    param_list_init(&r->params, r->param_arena);
    if (config_load(golden_config, &cfg, &err) || swin_config_from_json(&cfg, &sc, &err)) return -1;
    config_free(&cfg);
    if (weights_open(golden_weights, &w, &err)) return -1;
    err_code_t rc = swin_load(&sc, &w, &r->params, "", &r->swin, &err);
    weights_close(&w);
    if (rc || vggish_load(vggish_weights, DEVICE_CPU, NULL, &r->vggish, &err)) return -1;
    return image_processor_load(processor_json, &r->proc, &err) ? -1 : 0;
}

static void reference_free(reference_t *r) {
    swin_free(r->swin);
    param_list_free(&r->params);
    vggish_free(r->vggish);
    ctx_destroy(r->ctx);
    arena_destroy(r->host);
    arena_destroy(r->param_arena);
}

static float stored_as(float x, dtype_t dt) { return dt == DTYPE_F16 ? f16_to_f32(f32_to_f16(x)) : x; }

/* The features of one video as the reference computes them. */
typedef struct {
    tensor_t *features[SWIN_MAX_STAGES + 1]; /* [F, C, h, w] in the ctx arena */
    int n_levels;
    float *audio; /* [F, E] fitted to the frame count; malloc'd */
    int64_t audio_width;
} expected_t;

static int expected_compute(reference_t *ref, const char *data, const avs_tree_video_t *v, expected_t *x, char *msg,
                            size_t size) {
    err_t err;
    char paths[16][PATH_MAX];
    const char *path_ptrs[16];
    for (int f = 0; f < v->n_frames; f++) {
        fmt(paths[f], PATH_MAX, "%s/%s/%s/frames/%d.jpg", data, v->subset, v->uid, f);
        path_ptrs[f] = paths[f];
    }
    tensor_t *pixels;
    if (frames_to_pixel_values(path_ptrs, v->n_frames, &ref->proc, ref->host, &pixels, &err))
        return fmt(msg, size, "%s", err.msg), -1;
    swin_forward(ref->ctx, ref->swin, pixels, x->features, NULL, NULL);
    x->n_levels = ref->swin->cfg.n_out;
    char wav[PATH_MAX];
    fmt(wav, sizeof wav, "%s/%s/%s/audio.wav", data, v->subset, v->uid);
    float *examples = NULL, *emb = NULL;
    int64_t count = 0;
    x->audio_width = vggish_embedding_size(ref->vggish);
    x->audio = NULL;
    if (vggish_examples_from_file(wav, AUDIO_RESAMPLE_RESAMPY, &examples, &count, &err) == ERR_OK &&
        vggish_embed(ref->vggish, examples, count, 0, &emb, &err) == ERR_OK)
        x->audio = vggish_fit_frames(emb, count, x->audio_width, v->n_frames);
    free(examples);
    free(emb);
    return x->audio ? 0 : (fmt(msg, size, "audio of %s/%s: %s", v->subset, v->uid, err.msg), -1);
}

/* Compares every frame level and the audio of video v in the cache read by
 * rd (storage dtype dt) with x; 0 or a message. */
static int compare_with_expected(const expected_t *x, cache_reader_t *rd, const avs_tree_video_t *v, dtype_t dt,
                                 char *msg, size_t size) {
    err_t err;
    int rc = 0;
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    for (int f = 0; f < v->n_frames && rc == 0; f++) {
        tensor_t *levels[8];
        int got_levels;
        if (cache_load_frame(rd, v->subset, v->uid, f, a, levels, 8, &got_levels, &err)) {
            rc = -1;
            fmt(msg, size, "%s", err.msg);
            break;
        }
        if (got_levels != x->n_levels) rc = -1, fmt(msg, size, "%s/%s/%d: %d levels", v->subset, v->uid, f, got_levels);
        for (int l = 0; l < x->n_levels && rc == 0; l++) {
            const tensor_t *want = x->features[l];
            int64_t per_frame = want->numel / want->shape[0];
            if (levels[l]->numel != per_frame || levels[l]->shape[0] != want->shape[1]) {
                rc = -1;
                fmt(msg, size, "%s/%s/%d level %d: shape differs", v->subset, v->uid, f, l);
                break;
            }
            const float *w = tensor_f32(want) + f * per_frame, *g = tensor_f32(levels[l]);
            for (int64_t i = 0; i < per_frame; i++) {
                float expect = stored_as(w[i], dt);
                if (memcmp(&expect, &g[i], 4) != 0) {
                    rc = -1;
                    fmt(msg, size, "%s/%s frame %d level %d element %lld: cache %.9g, swin_forward %.9g", v->subset,
                        v->uid, f, l, (long long)i, g[i], expect);
                    break;
                }
            }
        }
        arena_reset(a);
    }
    tensor_t *audio = NULL;
    if (rc == 0 && cache_load_audio(rd, v->subset, v->uid, a, &audio, &err)) {
        rc = -1;
        fmt(msg, size, "%s", err.msg);
    } else if (rc == 0 && (audio->shape[0] != v->n_frames || audio->shape[1] != x->audio_width)) {
        rc = -1;
        fmt(msg, size, "audio of %s/%s: [%lld, %lld], want [%d, %lld]", v->subset, v->uid, (long long)audio->shape[0],
            (long long)audio->shape[1], v->n_frames, (long long)x->audio_width);
    }
    for (int64_t i = 0; rc == 0 && i < audio->numel; i++) {
        float expect = stored_as(x->audio[i], dt);
        if (memcmp(&expect, &tensor_f32(audio)[i], 4) != 0) {
            rc = -1;
            fmt(msg, size, "audio of %s/%s element %lld: cache %.9g, vggish %.9g", v->subset, v->uid, (long long)i,
                tensor_f32(audio)[i], expect);
        }
    }
    arena_destroy(a);
    return rc;
}

/* Round trips: the f32 cache bit for bit, the f16 cache equal to the f32
 * features rounded to f16 (the same round-to-nearest-even rounding). */
static void test_round_trip(const char *data, const char *cache_f32, const char *cache_f16) {
    const char *dirs[2] = {cache_f32, cache_f16};
    const dtype_t dtypes[2] = {DTYPE_F32, DTYPE_F16};
    const char *names[2] = {"round trip f32: cache == swin_forward and VGGish run here, bit for bit",
                            "round trip f16: cache == those features rounded to f16"};
    reference_t ref;
    char msg[2][2048] = {"", ""};
    int rc[2] = {0, 0};
    if (reference_load(&ref)) rc[0] = rc[1] = -1, fmt(msg[0], 2048, "could not load the reference networks");
    cache_t *c[2] = {NULL, NULL};
    cache_reader_t *rd[2] = {NULL, NULL};
    err_t err;
    for (int k = 0; k < 2; k++)
        if (rc[k] == 0 && (cache_open(dirs[k], CACHE_READ, NULL, &c[k], &err) || cache_reader_begin(c[k], &rd[k], &err)))
            rc[k] = -1, fmt(msg[k], 2048, "%s", err.msg);
    for (int i = 0; i < N_CLEAN && (rc[0] == 0 || rc[1] == 0); i++) {
        expected_t x;
        char why[2048];
        if (expected_compute(&ref, data, &clean_videos[i], &x, why, sizeof why)) {
            for (int k = 0; k < 2; k++) rc[k] = -1, fmt(msg[k], 2048, "%s", why);
            break;
        }
        for (int k = 0; k < 2; k++)
            if (rc[k] == 0) rc[k] = compare_with_expected(&x, rd[k], &clean_videos[i], dtypes[k], msg[k], 2048);
        free(x.audio);
        ctx_reset(ref.ctx);
        arena_reset(ref.host);
    }
    for (int k = 0; k < 2; k++) {
        check(rc[k] == 0, names[k], "%s", msg[k]);
        cache_reader_end(rd[k]);
        cache_close(c[k]);
    }
    reference_free(&ref);
}

/* The features do not depend on the thread count, so shards made on
 * machines with different core counts merge into what one run makes. */
static void test_thread_count(const char *data, const char *reference_cache) {
    char cache[PATH_MAX], args[4096], msg[1024] = "";
    extract_args(data, in_root("cache-1thread", cache), args, sizeof args);
    int rc = run("OMP_NUM_THREADS=1 %s --dtype f32", args);
    check(rc == 0 && caches_equal(reference_cache, cache, msg, sizeof msg) == 0,
          "one thread gives the same bytes as the default thread count", "rc %d: %s", rc, msg);
}

/* ---- tests ---- */

static void test_help_and_usage(void) {
    int rc = run("'%s' --help", extract_bin);
    const char *options[] = {"--data", "--cache", "--config", "--weights", "--audio-weights", "--subsets", "--splits",
                             "--device", "--shard", "--dtype", "--keep-going", "--map-size", "--processor",
                             "--resampler", "--layout", "--decode-threads", "--no-sync", "exit codes"};
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (!strstr(last_log, options[i])) missing = options[i];
    check(rc == 0 && !missing, "help lists every option and the exit codes", "rc %d, missing %s", rc,
          missing ? missing : "-");
    char args[4096];
    extract_args("nowhere", "nowhere", args, sizeof args);
    struct {
        const char *extra, *expect;
    } bad[] = {{"--shard 3/2", "--shard"},
               {"--shard 0/2", "--shard"},
               {"--dtype f8", "dtype"},
               {"--subsets v3", "v3"},
               {"--splits train,dev", "dev"},
               {"--map-size 12Q", "--map-size"},
               {"--device tpu", "tpu"},
               {"--bogus", "--bogus"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = run("%s %s", args, bad[i].extra);
        char name[128];
        fmt(name, sizeof name, "bad command line '%s' exits 2 naming it", bad[i].extra);
        check(rc == 2 && strstr(last_log, bad[i].expect), name, "rc %d, output: %.300s", rc, last_log);
    }
    rc = run("'%s' --data x --cache y --config z --weights w", extract_bin);
    check(rc == 2 && strstr(last_log, "--audio-weights"), "a missing required option exits 2 naming it", "rc %d: %.300s",
          rc, last_log);
}

static void test_clean_run(const char *data, const char *cache) {
    int rc = extract(data, cache, "--dtype f32");
    check(rc == 0, "extraction of a clean tree exits 0", "rc %d: %.2000s", rc, last_log);
    check(strstr(last_log, "frames/s") != NULL, "progress and summary report frames/s", "log: %.500s", last_log);
    json_t *m = load_manifest(cache);
    const char *status = json_string_value(json_object_get(m, "status"));
    check(m && status && strcmp(status, "complete") == 0 && manifest_count(m, "videos_extracted") == N_CLEAN &&
              manifest_count(m, "videos_failed") == 0 && json_array_size(json_object_get(m, "failed")) == 0,
          "manifest.json: complete, every video extracted, none failed", "status %s, extracted %lld",
          status ? status : "(none)", m ? manifest_count(m, "videos_extracted") : -1);
    file_fingerprint_t fp;
    err_t err;
    json_t *w = json_object_get(json_object_get(m, "inputs"), "weights");
    check(file_fingerprint(golden_weights, &fp, &err) == ERR_OK && w &&
              (uint64_t)json_integer_value(json_object_get(w, "bytes")) == fp.bytes &&
              strcmp(json_string_value(json_object_get(w, "sha256")), fp.sha256) == 0 &&
              json_object_get(json_object_get(m, "timings"), "frames_per_s") &&
              json_object_get(json_object_get(m, "config"), "shard"),
          "manifest.json: weights with size and SHA-256, timings, resolved config", "weights entry wrong or missing");
    json_t *producer = json_object_get(m, "producer");
    char *ptext = producer ? json_dumps(producer, JSON_COMPACT) : NULL;
    check(ptext && !strstr(ptext, "shard") && !strstr(ptext, root) && !strstr(ptext, "time") &&
              strstr(ptext, fp.sha256) && strstr(ptext, "\"height\":64"),
          "producer record: fingerprints and image size, no shard, paths or times", "%s", ptext ? ptext : "(none)");
    free(ptext);
    json_decref(m);
    check(count_videos(cache) == N_CLEAN, "every video is in the cache", "%d videos", count_videos(cache));

    /* a second run finds everything there */
    rc = extract(data, cache, "--dtype f32");
    m = load_manifest(cache);
    check(rc == 0 && manifest_count(m, "videos_present_before") == N_CLEAN && manifest_count(m, "videos_extracted") == 0,
          "a rerun skips the videos already there", "rc %d, present %lld", rc, manifest_count(m, "videos_present_before"));
    json_decref(m);
}

static void test_refusals(const char *data, const char *cache_f32) {
    int rc = extract(data, cache_f32, "--dtype f16");
    check(rc == 4 && strstr(last_log, "F32") && strstr(last_log, "F16"),
          "another --dtype on an existing cache is refused (exit 4) saying both", "rc %d: %.600s", rc, last_log);
    char other_proc[PATH_MAX];
    in_root("processor96.json", other_proc);
    write_text(other_proc, "{\"do_resize\": true, \"size\": {\"height\": 96, \"width\": 96}, \"size_divisor\": 32}\n");
    char args[4096];
    rc = run("%s --dtype f32 --processor '%s'", extract_args(data, cache_f32, args, sizeof args), other_proc);
    check(rc == 4 && strstr(last_log, "image.height"),
          "another image size on an existing cache is refused (exit 4) naming image.height", "rc %d: %.600s", rc,
          last_log);
    char empty_data[PATH_MAX], cache[PATH_MAX];
    rc = extract(in_root("no-such-data", empty_data), in_root("cache-none", cache), NULL);
    check(rc == 3 && strstr(last_log, "no-such-data"), "a missing data folder exits 3 naming it", "rc %d: %.400s", rc,
          last_log);
}

static void test_filters(const char *data) {
    char cache[PATH_MAX];
    int rc = extract(data, in_root("cache-filtered", cache), "--dtype f32 --subsets v2 --splits test,val");
    int want = 0;
    for (int i = 0; i < N_CLEAN; i++)
        want += strcmp(clean_videos[i].subset, "v2") == 0 && strcmp(clean_videos[i].split, "train") != 0;
    check(rc == 0 && count_videos(cache) == want, "--subsets and --splits select the videos", "rc %d, %d videos, want %d",
          rc, count_videos(cache), want);
}

/* Starts an extraction in the background; returns its pid. */
static pid_t start_extract(const char *data, const char *cache) {
    char args[4096], cmd[8192], log_path[PATH_MAX];
    extract_args(data, cache, args, sizeof args);
    fmt(cmd, sizeof cmd, "exec %s --dtype f32 >>'%s' 2>&1", args, in_root("kill.log", log_path));
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts an extraction into a fresh cache and sends sig as soon as the
 * first video is in. Returns the number of videos left in the cache when
 * that stopped the run part-way (the wait status in *status), or -1 when
 * five runs were all too quick to catch. */
static int stop_part_way(const char *data, const char *cache, int sig, int *status) {
    for (int attempt = 0; attempt < 5; attempt++) {
        char cmd[PATH_MAX + 16];
        fmt(cmd, sizeof cmd, "rm -rf '%s'", cache);
        if (system(cmd) != 0) return -1;
        pid_t pid = start_extract(data, cache);
        int exited = 0;
        *status = 0;
        for (int waited = 0; waited < 60000 && !exited; waited++) {
            if (count_videos(cache) >= 1) {
                kill(pid, sig);
                break;
            }
            exited = waitpid(pid, status, WNOHANG) == pid;
            sleep_ms(1);
        }
        if (!exited) waitpid(pid, status, 0);
        int after = count_videos(cache);
        int stopped = sig == SIGKILL ? WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL
                                     : WIFEXITED(*status) && WEXITSTATUS(*status) == 128 + sig;
        if (stopped && after >= 1 && after < N_CLEAN) return after;
    }
    return -1;
}

/* Runs the same command again on the stopped cache: it must extract only
 * the missing videos and end equal to an uninterrupted run. */
static void check_resume(const char *data, const char *cache, const char *reference_cache, int before, const char *how) {
    char name[160], msg[1024] = "";
    int rc = extract(data, cache, "--dtype f32");
    json_t *m = load_manifest(cache);
    fmt(name, sizeof name, "the rerun after %s extracts only the missing videos", how);
    check(rc == 0 && manifest_count(m, "videos_present_before") == before &&
              manifest_count(m, "videos_extracted") == N_CLEAN - before,
          name, "rc %d, present %lld, extracted %lld", rc, manifest_count(m, "videos_present_before"),
          manifest_count(m, "videos_extracted"));
    json_decref(m);
    fmt(name, sizeof name, "%s + rerun equals an uninterrupted run, key by key and byte by byte", how);
    check(caches_equal(reference_cache, cache, msg, sizeof msg) == 0, name, "%s", msg);
    rc = run("'%s' verify '%s'", cache_bin, cache);
    fmt(name, sizeof name, "stepstone-cache verify passes after %s + rerun", how);
    check(rc == 0, name, "rc %d: %.400s", rc, last_log);
}

static void test_kill_and_resume(const char *data, const char *reference_cache) {
    char cache[PATH_MAX];
    int status;
    int before = stop_part_way(data, in_root("cache-killed", cache), SIGKILL, &status);
    if (!check(before > 0, "SIGKILL part-way leaves some but not all videos", "no kill caught a partial cache"))
        return;
    printf("note: killed with %d of %d videos in\n", before, N_CLEAN);
    check_resume(data, cache, reference_cache, before, "SIGKILL");
}

static void test_interrupt(const char *data, const char *reference_cache) {
    char cache[PATH_MAX];
    int status;
    int before = stop_part_way(data, in_root("cache-interrupted", cache), SIGINT, &status);
    json_t *m = load_manifest(cache);
    const char *st = json_string_value(json_object_get(m, "status"));
    check(before > 0 && st && strcmp(st, "interrupted") == 0 && manifest_count(m, "videos_extracted") == before,
          "SIGINT: the video in progress is finished, exit 130, manifest status interrupted",
          "videos %d, status %s, extracted %lld", before, st ? st : "(none)", manifest_count(m, "videos_extracted"));
    json_decref(m);
    if (before > 0) check_resume(data, cache, reference_cache, before, "SIGINT");
}

static void test_shards(const char *data, const char *reference_cache) {
    char s1[PATH_MAX], s2[PATH_MAX], merged[PATH_MAX], msg[1024] = "";
    int rc1 = extract(data, in_root("cache-shard1", s1), "--dtype f32 --shard 1/2");
    int rc2 = extract(data, in_root("cache-shard2", s2), "--dtype f32 --shard 2/2");
    int n1 = count_videos(s1), n2 = count_videos(s2);
    /* row r goes to shard r % 2 + 1 */
    check(rc1 == 0 && rc2 == 0 && n1 == (N_CLEAN + 1) / 2 && n2 == N_CLEAN / 2,
          "--shard 1/2 and 2/2 take alternate rows of metadata.csv", "rc %d/%d, %d + %d videos", rc1, rc2, n1, n2);
    json_t *m1 = load_manifest(s1), *m2 = load_manifest(s2);
    check(m1 && m2 && json_equal(json_object_get(m1, "producer"), json_object_get(m2, "producer")),
          "both shards record the same producer", "producer records differ");
    json_decref(m1);
    json_decref(m2);
    int rc = run("'%s' merge '%s' '%s' '%s'", cache_bin, in_root("cache-merged", merged), s1, s2);
    check(rc == 0, "stepstone-cache merge joins the shards", "rc %d: %.600s", rc, last_log);
    check(caches_equal(reference_cache, merged, msg, sizeof msg) == 0, "two shards merged equal a single run", "%s", msg);
}

static void test_bad_videos(const char *bad_data) {
    char cache[PATH_MAX];
    in_root("cache-bad", cache);
    int rc = extract(bad_data, cache, "--dtype f16");
    check(rc == 1, "a tree with unreadable videos exits 1", "rc %d: %.1500s", rc, last_log);
    struct {
        const char *uid, *reason;
    } expect[N_BAD] = {{"bad_garbage_jpeg", "2.jpg"},
                       {"bad_truncated_jpeg", "4.jpg"},
                       {"bad_missing_frame", "3.jpg"},
                       {"bad_empty_wav", "audio.wav"},
                       {"bad_short_wav", "audio.wav"}};
    for (int i = 0; i < N_BAD; i++) {
        char name[160];
        fmt(name, sizeof name, "%s is named in the log with its file", expect[i].uid);
        const char *at = strstr(last_log, expect[i].uid);
        const char *eol = at ? strchr(at, '\n') : NULL;
        const char *file = at ? strstr(at, expect[i].reason) : NULL;
        check(at && file && (!eol || file < eol), name, "log: %.1500s", last_log);
    }
    json_t *m = load_manifest(cache);
    json_t *failed = json_object_get(m, "failed");
    int listed = 0;
    for (size_t i = 0; i < json_array_size(failed); i++) {
        const char *video = json_string_value(json_object_get(json_array_get(failed, i), "video"));
        const char *reason = json_string_value(json_object_get(json_array_get(failed, i), "reason"));
        for (int j = 0; j < N_BAD; j++)
            if (video && reason && strstr(video, expect[j].uid) && strstr(reason, expect[j].reason)) listed++;
    }
    const char *status = json_string_value(json_object_get(m, "status"));
    check(listed == N_BAD && json_array_size(failed) == (size_t)N_BAD && status && strcmp(status, "incomplete") == 0,
          "manifest.json lists every bad video with its reason; status incomplete", "%d of %d listed, status %s",
          listed, N_BAD, status ? status : "(none)");
    json_decref(m);
    check(count_videos(cache) == N_CLEAN, "the readable videos are extracted", "%d videos", count_videos(cache));
    rc = extract(bad_data, cache, "--dtype f16 --keep-going");
    m = load_manifest(cache);
    check(rc == 0 && manifest_count(m, "videos_failed") == N_BAD && manifest_count(m, "videos_present_before") == N_CLEAN,
          "--keep-going exits 0 and still lists the bad videos", "rc %d, failed %lld", rc,
          manifest_count(m, "videos_failed"));
    json_decref(m);
}

/* ---- setup ---- */

static int find_programs(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = '\0'; /* <BUILD>/tests */
    const char *env = getenv("STEPSTONE_EXTRACT_BIN");
    if (env) fmt(extract_bin, sizeof extract_bin, "%s", env);
    else fmt(extract_bin, sizeof extract_bin, "%s/../bin/stepstone-extract", exe);
    env = getenv("STEPSTONE_CACHE_BIN");
    if (env) fmt(cache_bin, sizeof cache_bin, "%s", env);
    else fmt(cache_bin, sizeof cache_bin, "%s/../bin/stepstone-cache", exe);
    return access(extract_bin, X_OK) == 0 ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void test_fingerprint(void) {
    /* FIPS 180-4's example "abc", through a file as the manifests read them */
    char path[] = "/tmp/stepstone-test-fp-XXXXXX";
    int fd = mkstemp(path);
    int ok = fd >= 0 && write(fd, "abc", 3) == 3;
    if (fd >= 0) close(fd);
    file_fingerprint_t fp;
    err_t err;
    ok = ok && file_fingerprint(path, &fp, &err) == ERR_OK && fp.bytes == 3 &&
         strcmp(fp.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0;
    unlink(path);
    check(ok, "file fingerprint: size and SHA-256 of the FIPS 180-4 example", "got %s", fp.sha256);
}

int main(void) {
    /* the programs run many tiny OpenMP regions here; on a busy machine
     * spinning workers wait for descheduled ones and a run takes 10x longer */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    /* the same reason for the reference networks run here (too late for the
     * wait policy: libgomp read it at start-up); the features do not depend
     * on the thread count (test_thread_count checks it through the program) */
    omp_set_num_threads(1);
    test_fingerprint();
    const char *shared = shared_dir();
    if (find_programs() != 0) {
        check_skip("stepstone-extract", "%s is not built", extract_bin);
        return check_finish("test_extract");
    }
    if (!shared) {
        check_skip("stepstone-extract", "no ../shared (golden tiny config and weights); set STEPSTONE_SHARED");
        return check_finish("test_extract");
    }
    fmt(golden_config, sizeof golden_config, "%s/golden/avs-tiny/config.json", shared);
    fmt(golden_weights, sizeof golden_weights, "%s/golden/avs-tiny/weights.safetensors", shared);
    fmt(vggish_weights, sizeof vggish_weights, "tests/reference/vggish_tiny.safetensors");
    if (access(golden_weights, R_OK) || access(vggish_weights, R_OK)) {
        check_skip("stepstone-extract", "missing %s or %s", golden_weights, vggish_weights);
        return check_finish("test_extract");
    }
    const char *tmp = getenv("TMPDIR");
    fmt(root, sizeof root, "%s/stepstone-extract-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        check(0, "scratch folder", "%s: %s", root, strerror(errno));
        return check_finish("test_extract");
    }
    char data[PATH_MAX], bad_data[PATH_MAX], cache_f32[PATH_MAX], cache_f16[PATH_MAX];
    in_root("processor.json", processor_json);
    write_text(processor_json, "{\"do_resize\": true, \"size\": {\"height\": 64, \"width\": 64}, \"size_divisor\": 32, "
                               "\"resample\": 2, \"do_rescale\": true, \"rescale_factor\": 0.00392156862745098, "
                               "\"do_normalize\": true, \"image_mean\": [0.485, 0.456, 0.406], "
                               "\"image_std\": [0.229, 0.224, 0.225]}\n");
    int ok = avs_tree_write(in_root("data", data), clean_videos, N_CLEAN) == 0 &&
             make_bad_tree(in_root("data-bad", bad_data)) == 0;
    if (check(ok, "the tiny AVSBench trees are written", "see stderr")) {
        test_help_and_usage();
        test_clean_run(data, in_root("cache-f32", cache_f32));
        int rc = extract(data, in_root("cache-f16", cache_f16), NULL);
        check(rc == 0, "extraction with the default dtype (f16)", "rc %d: %.1000s", rc, last_log);
        test_round_trip(data, cache_f32, cache_f16);
        test_thread_count(data, cache_f32);
        test_refusals(data, cache_f32);
        test_filters(data);
        test_kill_and_resume(data, cache_f32);
        test_interrupt(data, cache_f32);
        test_shards(data, cache_f32);
        test_bad_videos(bad_data);
    }
    char kill_log[PATH_MAX];
    read_log(in_root("kill.log", kill_log)); /* the runs started in the background */
    if (strstr(last_log, "Sanitizer") || strstr(last_log, "runtime error:")) sanitizer_reports++;
    check(sanitizer_reports == 0, "no sanitizer reports from the programs", "%d runs reported (see the logs with STEPSTONE_KEEP_TMP=1)",
          sanitizer_reports);
    if (!getenv("STEPSTONE_KEEP_TMP")) nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else printf("kept %s\n", root);
    return check_finish("test_extract");
}
