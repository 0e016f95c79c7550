/* test_cache.c - the LMDB feature cache (cache/cache.h) and stepstone-cache.
 *
 * Round trips in every storage dtype, one-transaction atomicity (a put that
 * fails on a full map or a full disk leaves nothing; a writer killed with
 * SIGKILL leaves only whole videos, and resuming gives the same bytes as an
 * uninterrupted run), metadata checks naming the field, map growth, on-disk
 * corruption found by verify, merges, and the command line including bad
 * input. Every cache lives under one mkdtemp folder, removed at the end.
 *
 * The CLI binary is $STEPSTONE_CACHE_BIN, or ../bin/stepstone-cache next to
 * this test's folder (build/tests/test_cache -> build/bin/stepstone-cache). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cache_compare.h"
#include "check.h"
#include "crc32c.h"
#include "npy.h"
#include "png_io.h"

static char root[256];
static char cli[4096];
static int have_cli;

/* root/name in a string that lives until the end of the test (freed by free_paths) */
static char **paths;
static int n_paths;

static const char *path_in(const char *name) {
    char *p = malloc(strlen(root) + strlen(name) + 2);
    char **grown = realloc(paths, (size_t)(n_paths + 1) * sizeof *paths);
    if (!p || !grown) abort();
    paths = grown;
    sprintf(p, "%s/%s", root, name);
    paths[n_paths++] = p;
    return p;
}

static void free_paths(void) {
    for (int i = 0; i < n_paths; i++) free(paths[i]);
    free(paths);
}

/* ---- test videos ---- */

#define N_LEVELS 4
static const char *level_names[N_LEVELS] = {"stage1", "stage2", "stage3", "stage4"};

typedef struct {
    int64_t c, h, w;
} level_dims_t;

/* small but above LMDB's ~2 KB in-page limit, so frames take overflow pages */
static const level_dims_t small_dims[N_LEVELS] = {{8, 16, 16}, {16, 8, 8}, {32, 4, 4}, {64, 2, 2}};
/* bigger, for the kill test: a put takes a few milliseconds */
static const level_dims_t big_dims[N_LEVELS] = {{32, 64, 64}, {64, 32, 32}, {128, 16, 16}, {256, 8, 8}};

/* A deterministic value for (video, frame, level, index), spread over many
 * binades and signs, with some exact zeros. */
static float test_value(uint64_t video, int frame, int level, int64_t i) {
    uint64_t x = video * 0x9E3779B97F4A7C15ull ^ ((uint64_t)frame << 40) ^ ((uint64_t)level << 56) ^ (uint64_t)i;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    if ((x & 63) == 0) return 0.0f;
    float mant = (float)(x >> 40) / (float)(1 << 24);   /* [0, 1) */
    int exp = (int)((x >> 8) & 15) - 8;                 /* 2^-8 .. 2^7 */
    return (x & 16 ? -1.0f : 1.0f) * ldexpf(1.0f + mant, exp);
}

typedef struct {
    char subset[16], uid[32];
    int n_frames;
    tensor_t *levels[32 * N_LEVELS];
    tensor_t *audio;
} test_video_t;

static void video_names(int index, test_video_t *v) {
    snprintf(v->subset, sizeof v->subset, "%s", index % 3 == 0 ? "v1s" : "v2");
    snprintf(v->uid, sizeof v->uid, "vid%03d_%c", index, 'a' + index % 26);
}

static void make_video(arena_t *a, test_video_t *v, int index, int n_frames, const level_dims_t *dims) {
    video_names(index, v);
    v->n_frames = n_frames;
    for (int f = 0; f < n_frames; f++)
        for (int l = 0; l < N_LEVELS; l++) {
            int64_t shape[3] = {dims[l].c, dims[l].h, dims[l].w};
            tensor_t *t = tensor_new(a, DTYPE_F32, 3, shape);
            for (int64_t i = 0; i < t->numel; i++) tensor_f32(t)[i] = test_value((uint64_t)index, f, l, i);
            v->levels[f * N_LEVELS + l] = t;
        }
    int64_t ashape[2] = {n_frames, 128};
    v->audio = tensor_new(a, DTYPE_F32, 2, ashape);
    for (int64_t i = 0; i < v->audio->numel; i++) tensor_f32(v->audio)[i] = test_value((uint64_t)index, 99, 9, i);
}

static cache_video_t as_cache_video(const test_video_t *v) {
    cache_video_t cv = {v->subset, v->uid, v->n_frames, N_LEVELS, level_names, (const tensor_t *const *)v->levels,
                        v->audio};
    return cv;
}

static err_code_t put(cache_t *c, const test_video_t *v, err_t *err) {
    cache_video_t cv = as_cache_video(v);
    return cache_put_video(c, &cv, err);
}

static cache_options_t quick_options(dtype_t dt) {
    cache_options_t o = cache_default_options();
    o.dtype = dt;
    o.no_sync = 1; /* tests kill processes, not machines */
    return o;
}

/* What a stored f32 value reads back as in dtype dt. */
static float stored_as(float x, dtype_t dt) {
    if (dt == DTYPE_F16) return f16_to_f32(f32_to_f16(x));
    if (dt == DTYPE_BF16) return bf16_to_f32(f32_to_bf16(x));
    return x;
}

/* Reads the video back and compares each element with the expected stored
 * value, bit for bit. Returns 0 or writes why into msg. */
static int compare_video(cache_reader_t *r, const test_video_t *v, dtype_t dt, char *msg, size_t size) {
    cache_entry_t e;
    err_t err;
    for (int f = 0; f < v->n_frames; f++) {
        if (cache_get_frame(r, v->subset, v->uid, f, &e, &err) != ERR_OK) return snprintf(msg, size, "%.480s", err.msg), -1;
        if (e.n_tensors != N_LEVELS) return snprintf(msg, size, "frame %d: %d tensors", f, e.n_tensors), -1;
        for (int l = 0; l < N_LEVELS; l++) {
            const cache_view_t *view = &e.tensors[l];
            const tensor_t *t = v->levels[f * N_LEVELS + l];
            if (strcmp(view->name, level_names[l]) != 0 || view->dtype != dt || view->ndim != 3 ||
                view->numel != t->numel || view->shape[0] != t->shape[0] || view->shape[2] != t->shape[2])
                return snprintf(msg, size, "frame %d level %d: name/dtype/shape differ", f, l), -1;
            if ((uintptr_t)view->data % dtype_size(dt) != 0) return snprintf(msg, size, "misaligned view"), -1;
            for (int64_t i = 0; i < t->numel; i++) {
                float got;
                dtype_convert_host(&got, DTYPE_F32, (const char *)view->data + i * (int64_t)dtype_size(dt), dt, 1);
                float want = stored_as(tensor_f32(t)[i], dt);
                if (memcmp(&got, &want, 4) != 0)
                    return snprintf(msg, size, "frame %d level %d element %lld: %g, want %g", f, l, (long long)i,
                                    got, want), -1;
            }
        }
    }
    if (cache_get_audio(r, v->subset, v->uid, &e, &err) != ERR_OK) return snprintf(msg, size, "%.480s", err.msg), -1;
    const cache_view_t *av = cache_entry_find(&e, CACHE_AUDIO_TENSOR);
    if (!av || av->numel != v->audio->numel || av->shape[1] != 128) return snprintf(msg, size, "audio shape"), -1;
    for (int64_t i = 0; i < av->numel; i++) {
        float got;
        dtype_convert_host(&got, DTYPE_F32, (const char *)av->data + i * (int64_t)dtype_size(dt), dt, 1);
        float want = stored_as(tensor_f32(v->audio)[i], dt);
        if (memcmp(&got, &want, 4) != 0) return snprintf(msg, size, "audio element %lld differs", (long long)i), -1;
    }
    return 0;
}

/* ---- running the CLI ---- */

static char cli_out[65536], cli_err[65536];

static void read_file_into(const char *path, char *buf, size_t size) {
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs "stepstone-cache ARGS" (ARGS are shell words without quoting needs),
 * capturing stdout and stderr; returns the exit status. */
static int run_cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cli(const char *fmt, ...) {
    char args[4096], cmd[10000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char out_path[300], err_path[300]; /* not path_in: its buffers may hold the caller's arguments */
    snprintf(out_path, sizeof out_path, "%s/cli.out", root);
    snprintf(err_path, sizeof err_path, "%s/cli.err", root);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", cli, args, out_path, err_path);
    int st = system(cmd);
    read_file_into(out_path, cli_out, sizeof cli_out);
    read_file_into(err_path, cli_err, sizeof cli_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ---- tests ---- */

static void test_crc32c(void) {
    const char *s = "123456789";
    check(crc32c(0, s, 9) == 0xE3069283u && crc32c_portable(0, s, 9) == 0xE3069283u, "crc32c/check_value",
          "got %08x / %08x", crc32c(0, s, 9), crc32c_portable(0, s, 9));
    size_t n = 200000;
    unsigned char *buf = malloc(n);
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 131 + (i >> 7));
    int ok = 1;
    size_t lens[] = {0, 1, 7, 8, 63, 255, 767, 769, 24575, 24576, 24577, 100003, 199990};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t off = 0; off < 9; off += 3) {
            uint32_t h = crc32c(0, buf + off, lens[li]), p = crc32c_portable(0, buf + off, lens[li]);
            uint32_t split = crc32c(crc32c(0, buf + off, lens[li] / 3), buf + off + lens[li] / 3, lens[li] - lens[li] / 3);
            if (h != p || h != split) ok = 0;
        }
    check(ok, "crc32c/hardware_equals_portable_and_continues", "hardware %d", crc32c_hardware());
    free(buf);
}


static void test_value_format(void) {
    int64_t s1[3] = {3, 5, 7}, s2[1] = {11};
    cache_tensor_spec_t specs[2] = {{"a", DTYPE_F16, 3, s1}, {"bb", DTYPE_F32, 1, s2}};
    uint64_t off[2], total;
    err_t err;
    int ok = cache_value_layout(specs, 2, off, &total, &err) == ERR_OK;
    check(ok && off[0] % 64 == 48 && off[1] % 64 == 48 && off[0] >= 48 + 2 * 128 && off[1] >= off[0] + 105 * 2 &&
              total == off[1] + 44,
          "value/layout_phase_48", "offsets %llu %llu total %llu", (unsigned long long)off[0],
          (unsigned long long)off[1], (unsigned long long)total);
    unsigned char *v = malloc(total);
    memset(v, 0xAB, total); /* padding must come out zero whatever was there */
    cache_value_write_header(v, specs, 2, off, total);
    for (int i = 0; i < 105; i++) ((uint16_t *)(v + off[0]))[i] = f32_to_f16((float)i);
    for (int i = 0; i < 11; i++) ((float *)(v + off[1]))[i] = (float)-i;
    cache_value_seal(v, total);
    cache_entry_t e;
    ok = cache_value_parse(v, total, 1, &e, &err) == ERR_OK;
    check(ok && e.n_tensors == 2 && strcmp(e.tensors[1].name, "bb") == 0 && e.tensors[0].shape[2] == 7 &&
              e.tensors[0].dtype == DTYPE_F16 && ((const float *)e.tensors[1].data)[3] == -3.0f &&
              v[off[0] - 1] == 0 && v[off[1] - 1] == 0,
          "value/round_trip", "%s", ok ? "contents" : err.msg);
    v[off[1] + 5] ^= 1;
    err_code_t rc = cache_value_parse(v, total, 1, &e, &err);
    check(rc == ERR_FORMAT && strstr(err.msg, "checksum"), "value/bit_flip_detected", "rc %d: %s", rc, err.msg);
    v[off[1] + 5] ^= 1;
    rc = cache_value_parse(v, total - 1, 1, &e, &err);
    check(rc == ERR_FORMAT && strstr(err.msg, "truncated"), "value/truncated_refused", "rc %d: %s", rc, err.msg);
    v[8] = 2; /* format version 2 */
    rc = cache_value_parse(v, total, 0, &e, &err);
    check(rc == ERR_FORMAT && strstr(err.msg, "newer"), "value/newer_version_named", "rc %d: %s", rc, err.msg);
    v[8] = 1;
    v[48 + 112] = 0; /* first tensor's offset into the header */
    rc = cache_value_parse(v, total, 0, &e, &err);
    check(rc == ERR_FORMAT && strstr(err.msg, "tensor a"), "value/bad_offset_named", "rc %d: %s", rc, err.msg);
    free(v);
    int64_t bad_shape[1] = {-1};
    cache_tensor_spec_t bad[2] = {{"x", DTYPE_I64, 1, s2}, {"y", DTYPE_F32, 1, bad_shape}};
    rc = cache_value_layout(bad, 1, off, &total, &err);
    check(rc == ERR_ARG && strstr(err.msg, "I64"), "value/int_dtype_refused", "%s", err.msg);
    rc = cache_value_layout(bad + 1, 1, off, &total, &err);
    check(rc == ERR_ARG && strstr(err.msg, "tensor y"), "value/negative_dim_refused", "%s", err.msg);
}

static void test_round_trip(dtype_t dt, const char *name) {
    char label[64];
    arena_t *a = arena_create(DEVICE_CPU, 1 << 22);
    const char *dir = path_in(name);
    cache_options_t o = quick_options(dt);
    cache_t *c;
    err_t err;
    snprintf(label, sizeof label, "round_trip/%s/open", name);
    if (!check(cache_open(dir, CACHE_WRITE, &o, &c, &err) == ERR_OK, label, "%s", err.msg)) return;
    test_video_t v[3];
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        make_video(a, &v[i], i, 2 + i, small_dims);
        ok = ok && put(c, &v[i], &err) == ERR_OK;
    }
    snprintf(label, sizeof label, "round_trip/%s/put", name);
    check(ok, label, "%s", err.msg);
    cache_close(c);
    /* read back through a fresh open: what is on disk, not what is in memory */
    if (cache_open(dir, CACHE_READ, NULL, &c, &err) != ERR_OK) {
        check(0, label, "reopen: %s", err.msg);
        return;
    }
    cache_reader_t *r;
    cache_reader_begin(c, &r, &err);
    char msg[512] = "";
    ok = 1;
    for (int i = 0; i < 3 && ok; i++) ok = compare_video(r, &v[i], dt, msg, sizeof msg) == 0;
    snprintf(label, sizeof label, "round_trip/%s/%s", name, dt == DTYPE_F32 ? "bit_exact" : "equals_rounded_input");
    check(ok && cache_dtype(c) == dt, label, "%s", msg);
    /* the tolerance the issue states: within the dtype's rounding of f32 */
    if (dt != DTYPE_F32) {
        double worst = 0;
        cache_entry_t e;
        cache_get_frame(r, v[1].subset, v[1].uid, 1, &e, &err);
        tensor_t *t = v[1].levels[N_LEVELS + 0];
        for (int64_t i = 0; i < t->numel; i++) {
            float got;
            dtype_convert_host(&got, DTYPE_F32, (const char *)e.tensors[0].data + 2 * i, dt, 1);
            double want = tensor_f32(t)[i], rel = want != 0 ? fabs(got - want) / fabs(want) : fabs(got);
            if (rel > worst) worst = rel;
        }
        double bound = dt == DTYPE_F16 ? ldexp(1, -11) : ldexp(1, -8);
        snprintf(label, sizeof label, "round_trip/%s/within_rounding", name);
        check(worst <= bound, label, "worst relative error %g > %g", worst, bound);
    }
    /* frames of this size live on overflow pages: zero-copy and 64-byte aligned in the map */
    cache_entry_t e;
    ok = cache_get_frame(r, v[0].subset, v[0].uid, 0, &e, &err) == ERR_OK;
    int aligned = ok;
    for (int l = 0; ok && l < e.n_tensors; l++) aligned = aligned && (uintptr_t)e.tensors[l].data % 64 == 0;
    snprintf(label, sizeof label, "round_trip/%s/zero_copy_64_aligned", name);
    check(ok && e.zero_copy && e.copied == 0 && aligned, label, "zero_copy %d copied %d aligned %d", e.zero_copy,
          e.copied, aligned);
    /* conversion to F32 tensors in an arena */
    tensor_t *levels[N_LEVELS];
    int n = 0;
    ok = cache_load_frame(r, v[2].subset, v[2].uid, 3, a, levels, N_LEVELS, &n, &err) == ERR_OK;
    int same = ok && n == N_LEVELS && levels[3]->dtype == DTYPE_F32 && strcmp(levels[3]->name, "stage4") == 0;
    for (int64_t i = 0; same && i < levels[3]->numel; i++)
        same = tensor_f32(levels[3])[i] == stored_as(tensor_f32(v[2].levels[3 * N_LEVELS + 3])[i], dt);
    snprintf(label, sizeof label, "round_trip/%s/load_frame_f32", name);
    check(same, label, "%s", ok ? "values differ" : err.msg);
    cache_reader_end(r);
    cache_close(c);
    arena_destroy(a);
}

/* Values inside B-tree pages (small ones) may start at odd addresses: the
 * reader copies them so views are aligned, and the numbers are right. */
static void test_small_values_alignment(void) {
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    cache_options_t o = quick_options(DTYPE_F32);
    cache_t *c;
    err_t err;
    if (!check(cache_open(path_in("small"), CACHE_WRITE, &o, &c, &err) == ERR_OK, "alignment/open", "%s", err.msg))
        return;
    const char *uids[] = {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg"};
    int64_t shape[1] = {5}, ashape[2] = {1, 3};
    tensor_t *t = tensor_new(a, DTYPE_F32, 1, shape), *au = tensor_new(a, DTYPE_F32, 2, ashape);
    for (int i = 0; i < 5; i++) tensor_f32(t)[i] = 0.5f + (float)i;
    for (int i = 0; i < 3; i++) tensor_f32(au)[i] = -1.0f - (float)i;
    const char *one_name[1] = {"x"};
    const tensor_t *levels[1] = {t};
    int ok = 1;
    for (int i = 0; i < 7; i++) {
        cache_video_t cv = {"v2", uids[i], 1, 1, one_name, levels, au};
        ok = ok && cache_put_video(c, &cv, &err) == ERR_OK;
    }
    cache_reader_t *r;
    cache_reader_begin(c, &r, &err);
    int copied = 0, right = ok;
    for (int i = 0; i < 7 && right; i++) {
        cache_entry_t e;
        right = cache_get_frame(r, "v2", uids[i], 0, &e, &err) == ERR_OK &&
                (uintptr_t)e.tensors[0].data % 4 == 0 && ((const float *)e.tensors[0].data)[4] == 4.5f;
        copied += e.copied;
        right = right && cache_get_audio(r, "v2", uids[i], &e, &err) == ERR_OK &&
                (uintptr_t)e.tensors[0].data % 4 == 0 && ((const float *)e.tensors[0].data)[2] == -3.0f;
        copied += e.copied;
    }
    check(right, "alignment/small_values_aligned_and_right", "%s", err.msg);
    /* the keys differ in length by one byte at a time, so some values land at
     * addresses that are not multiples of 4; seeing a copy shows the path ran */
    check(copied > 0, "alignment/misaligned_values_copied", "no value needed a copy (LMDB layout changed?)");
    cache_reader_end(r);
    cache_close(c);
    arena_destroy(a);
}

static void test_keys_and_misses(void) {
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    cache_options_t o = quick_options(DTYPE_F16);
    cache_t *c;
    err_t err;
    cache_open(path_in("keys"), CACHE_WRITE, &o, &c, &err);
    test_video_t v;
    make_video(a, &v, 4, 3, small_dims);
    put(c, &v, &err);
    int present = -1;
    cache_has_video(c, v.subset, v.uid, &present, &err);
    int absent = -1;
    cache_has_video(c, v.subset, "nope", &absent, &err);
    check(present == 1 && absent == 0, "keys/has_video", "present %d absent %d", present, absent);
    cache_reader_t *r;
    cache_reader_begin(c, &r, &err);
    cache_entry_t e;
    err_code_t rc = cache_get_frame(r, v.subset, v.uid, 3, &e, &err);
    check(rc == ERR_NOTFOUND && strstr(err.msg, "v2/vid004_e/3"), "keys/missing_frame_named", "rc %d: %s", rc, err.msg);
    rc = cache_get_audio(r, "v2", "nope", &e, &err);
    check(rc == ERR_NOTFOUND && strstr(err.msg, "v2/nope"), "keys/missing_audio_named", "rc %d: %s", rc, err.msg);
    cache_video_info_t info;
    rc = cache_get_video_info(r, v.subset, v.uid, &info, &err);
    check(rc == ERR_OK && info.n_frames == 3 && info.has_audio, "keys/video_info", "rc %d frames %d", rc, info.n_frames);
    cache_reader_end(r);
    cache_video_t cv = as_cache_video(&v);
    cv.uid = "bad/uid";
    rc = cache_put_video(c, &cv, &err);
    check(rc == ERR_ARG && strstr(err.msg, "bad/uid"), "keys/slash_in_uid_refused", "rc %d: %s", rc, err.msg);
    cv = as_cache_video(&v);
    int64_t ishape[1] = {4};
    tensor_t *bad_levels[N_LEVELS * 3];
    memcpy(bad_levels, v.levels, sizeof bad_levels);
    bad_levels[N_LEVELS * 2 + 1] = tensor_new(a, DTYPE_I64, 1, ishape);
    cv.levels = (const tensor_t *const *)bad_levels;
    cv.uid = "other";
    rc = cache_put_video(c, &cv, &err);
    cache_has_video(c, v.subset, "other", &present, &err);
    check(rc == ERR_ARG && strstr(err.msg, "frame 2 level stage2") && strstr(err.msg, "I64") && present == 0,
          "keys/int_tensor_refused_nothing_written", "rc %d present %d: %s", rc, present, err.msg);
    /* replacing a video with fewer frames leaves none of the old ones */
    test_video_t shorter;
    make_video(a, &shorter, 4, 1, small_dims);
    rc = put(c, &shorter, &err);
    cache_reader_begin(c, &r, &err);
    err_code_t rc1 = cache_get_frame(r, v.subset, v.uid, 1, &e, &err);
    cache_get_video_info(r, v.subset, v.uid, &info, &err);
    check(rc == ERR_OK && rc1 == ERR_NOTFOUND && info.n_frames == 1, "keys/replace_drops_old_frames", "rc %d %d frames %d",
          rc, rc1, info.n_frames);
    cache_reader_end(r);
    /* a reader sees its snapshot until it refreshes */
    cache_reader_begin(c, &r, &err);
    test_video_t later;
    make_video(a, &later, 40, 2, small_dims);
    put(c, &later, &err);
    err_code_t before = cache_get_frame(r, later.subset, later.uid, 0, &e, &err);
    err_code_t refreshed = cache_reader_refresh(r, &err);
    err_code_t after = cache_get_frame(r, later.subset, later.uid, 0, &e, &err);
    tensor_t *audio = NULL;
    err_code_t loaded = cache_load_audio(r, later.subset, later.uid, a, &audio, &err);
    check(before == ERR_NOTFOUND && refreshed == ERR_OK && after == ERR_OK && loaded == ERR_OK &&
              audio->dtype == DTYPE_F32 && audio->shape[0] == 2 &&
              tensor_f32(audio)[5] == f16_to_f32(f32_to_f16(tensor_f32(later.audio)[5])),
          "keys/reader_snapshot_and_refresh", "before %d refresh %d after %d load %d: %s", before, refreshed, after,
          loaded, err.msg);
    cache_reader_end(r);
    /* LMDB breaks when one process opens an environment twice: refused */
    cache_t *again = NULL;
    rc = cache_open(path_in("keys"), CACHE_READ, NULL, &again, &err);
    check(rc == ERR_ARG && strstr(err.msg, "already open") && again == NULL, "keys/second_open_in_process_refused",
          "rc %d: %s", rc, err.msg);
    cache_close(c);
    rc = cache_open(path_in("keys"), CACHE_READ, NULL, &again, &err);
    check(rc == ERR_OK, "keys/open_again_after_close", "rc %d: %s", rc, err.msg);
    cache_close(again);
    arena_destroy(a);
}

static void test_atomic_map_full(void) {
    arena_t *a = arena_create(DEVICE_CPU, 1 << 22);
    cache_options_t o = quick_options(DTYPE_F32);
    o.map_size = 256 << 10;
    o.no_grow = 1;
    cache_t *c;
    err_t err;
    const char *dir = path_in("mapfull");
    cache_open(dir, CACHE_WRITE, &o, &c, &err);
    test_video_t small, big;
    make_video(a, &small, 1, 1, small_dims);
    make_video(a, &big, 2, 30, small_dims); /* 30 frames of ~15 KB: some fit in 64 pages, then the map is full */
    err_code_t rc1 = put(c, &small, &err);
    err_code_t rc2 = put(c, &big, &err);
    check(rc1 == ERR_OK && rc2 == ERR_IO && strstr(err.msg, "map is full") && strstr(err.msg, big.uid),
          "atomic/map_full_named", "rc %d %d: %s", rc1, rc2, err.msg);
    int present = -1;
    cache_has_video(c, big.subset, big.uid, &present, &err);
    cache_reader_t *r;
    cache_reader_begin(c, &r, &err);
    cache_entry_t e;
    err_code_t rc3 = cache_get_frame(r, big.subset, big.uid, 0, &e, &err);
    char msg[256] = "";
    int small_ok = compare_video(r, &small, DTYPE_F32, msg, sizeof msg) == 0;
    cache_reader_end(r);
    check(present == 0 && rc3 == ERR_NOTFOUND && small_ok, "atomic/failed_put_leaves_nothing",
          "present %d frame0 rc %d small %s", present, rc3, msg);
    cache_verify_report_t rep;
    cache_verify(c, NULL, NULL, &rep, &err);
    check(rep.bad == 0 && rep.checked > 0, "atomic/cache_consistent_after_map_full", "%lld bad", (long long)rep.bad);
    cache_close(c);
    arena_destroy(a);
}

/* A full disk, simulated with RLIMIT_FSIZE in a child: commit fails with
 * EFBIG, the put reports a full disk, and the cache holds what it held. */
static void test_atomic_disk_full(void) {
    arena_t *a = arena_create(DEVICE_CPU, 1 << 22);
    const char *dir = path_in("diskfull");
    cache_options_t o = quick_options(DTYPE_F32);
    cache_t *c;
    err_t err;
    cache_open(dir, CACHE_WRITE, &o, &c, &err);
    test_video_t first, second;
    make_video(a, &first, 5, 2, small_dims);
    make_video(a, &second, 6, 30, small_dims);
    put(c, &first, &err);
    cache_close(c);
    struct stat st;
    stat(path_in("diskfull/data.mdb"), &st);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {(rlim_t)st.st_size + 64 * 1024, (rlim_t)st.st_size + 64 * 1024};
        setrlimit(RLIMIT_FSIZE, &lim);
        cache_t *cc;
        err_t e2;
        if (cache_open(dir, CACHE_WRITE, &o, &cc, &e2) != ERR_OK) _exit(3);
        err_code_t rc = put(cc, &second, &e2);
        cache_close(cc);
        int named = rc == ERR_IO && strstr(e2.msg, "file size limit") && strstr(e2.msg, second.uid) &&
                    strstr(e2.msg, "not in the cache");
        if (!named) printf("child: rc %d: %s\n", rc, e2.msg);
        fflush(stdout);
        _exit(named ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "atomic/disk_full_reported", "child status %d", status);
    cache_open(dir, CACHE_READ, NULL, &c, &err);
    int present = -1;
    cache_has_video(c, second.subset, second.uid, &present, &err);
    cache_reader_t *r;
    cache_reader_begin(c, &r, &err);
    char msg[256] = "";
    int first_ok = compare_video(r, &first, DTYPE_F32, msg, sizeof msg) == 0;
    cache_reader_end(r);
    cache_verify_report_t rep;
    cache_verify(c, NULL, NULL, &rep, &err);
    check(present == 0 && first_ok && rep.bad == 0, "atomic/disk_full_leaves_cache_as_it_was",
          "present %d first %s bad %lld", present, msg, (long long)rep.bad);
    cache_close(c);
    arena_destroy(a);
}

#define KILL_VIDEOS 24

static void write_videos(const char *dir, int from, int to, const level_dims_t *dims, const char *producer) {
    arena_t *a = arena_create(DEVICE_CPU, 1 << 24);
    cache_options_t o = quick_options(DTYPE_F16);
    cache_t *c;
    err_t err;
    if (cache_open(dir, CACHE_WRITE, &o, &c, &err) != ERR_OK || cache_meta_ensure(c, producer, &err) != ERR_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(3);
    }
    for (int i = from; i < to; i++) {
        test_video_t v;
        int present = 0;
        video_names(i, &v);
        if (cache_has_video(c, v.subset, v.uid, &present, &err) != ERR_OK) exit(5);
        if (present) continue; /* resume: skip what is there */
        make_video(a, &v, i, 1 + i % 4, dims);
        if (put(c, &v, &err) != ERR_OK) {
            fprintf(stderr, "%s\n", err.msg);
            exit(4);
        }
        arena_reset(a);
    }
    cache_close(c);
    arena_destroy(a);
}

static int64_t count_videos(const char *dir) {
    cache_t *c;
    err_t err;
    if (cache_open(dir, CACHE_READ, NULL, &c, &err) != ERR_OK) return -1;
    cache_stat_t st;
    cache_stat(c, &st, &err);
    cache_close(c);
    return st.entries[CACHE_DB_VIDEOS];
}

static const char *producer_json = "{\"model\":{\"embed_dim\":128,\"depths\":[2,2,18,2]},\"image_size\":384,"
                                   "\"weights\":{\"swin\":\"sha256:aaaa\"},\"dtype\":\"F16\",\"program\":\"test 1\"}";

static void test_kill_and_resume(void) {
    const char *killed = path_in("killed"), *whole = path_in("whole");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        write_videos(killed, 0, KILL_VIDEOS, big_dims, producer_json);
        _exit(0);
    }
    /* kill it once a few videos are in: most of its time is spent inside a put */
    int64_t seen = 0;
    for (int i = 0; i < 4000 && seen < 4; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        seen = count_videos(killed);
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    int64_t after_kill = count_videos(killed);
    int was_killed = WIFSIGNALED(status);
    check(was_killed && after_kill >= 0 && after_kill < KILL_VIDEOS, "kill/writer_killed_part_way",
          "signalled %d, %lld videos", was_killed, (long long)after_kill);
    cache_t *c;
    err_t err;
    cache_verify_report_t rep = {0, 0, 0};
    if (cache_open(killed, CACHE_READ, NULL, &c, &err) == ERR_OK) {
        cache_verify(c, NULL, NULL, &rep, &err);
        cache_close(c);
    }
    check(rep.bad == 0 && rep.checked > 0, "kill/only_whole_videos_after_kill", "%lld problems", (long long)rep.bad);
    /* rerun: finishes the job, skipping what is there; equal to an uninterrupted run */
    write_videos(killed, 0, KILL_VIDEOS, big_dims, producer_json);
    write_videos(whole, 0, KILL_VIDEOS, big_dims, producer_json);
    char msg[700] = "";
    int same = caches_equal(killed, whole, msg, sizeof msg) == 0;
    check(same && count_videos(killed) == KILL_VIDEOS, "kill/resume_equals_uninterrupted", "%s", msg);
}

static void test_reopen_resume(void) {
    const char *part = path_in("resume"), *whole = path_in("resume_whole");
    write_videos(part, 0, 3, small_dims, producer_json);
    write_videos(part, 0, 7, small_dims, producer_json); /* reopens, skips 0..2 */
    write_videos(whole, 0, 7, small_dims, producer_json);
    char msg[700] = "";
    check(caches_equal(part, whole, msg, sizeof msg) == 0, "resume/reopen_and_continue", "%s", msg);
}

static void test_meta(void) {
    cache_options_t o = quick_options(DTYPE_F16);
    cache_t *c;
    err_t err;
    const char *dir = path_in("meta");
    cache_open(dir, CACHE_WRITE, &o, &c, &err);
    err_code_t rc = cache_check_meta(c, producer_json, &err);
    check(rc == ERR_NOTFOUND && strstr(err.msg, "producer"), "meta/absent_producer_reported", "rc %d: %s", rc, err.msg);
    rc = cache_meta_ensure(c, producer_json, &err);
    /* the same content in another key order and with 384.0 for 384 is equal */
    const char *reordered = "{\"program\":\"test 1\",\"dtype\":\"F16\",\"weights\":{\"swin\":\"sha256:aaaa\"},"
                            "\"image_size\":384.0,\"model\":{\"depths\":[2,2,18,2],\"embed_dim\":128}}";
    err_code_t rc2 = cache_check_meta(c, reordered, &err);
    check(rc == ERR_OK && rc2 == ERR_OK, "meta/equal_in_other_order", "rc %d %d: %s", rc, rc2, err.msg);
    cache_close(c);
    cache_open(dir, CACHE_READ, NULL, &c, &err);
    const char *other_dim = "{\"model\":{\"embed_dim\":96,\"depths\":[2,2,18,2]},\"image_size\":384,"
                            "\"weights\":{\"swin\":\"sha256:aaaa\"},\"dtype\":\"F16\",\"program\":\"test 1\"}";
    rc = cache_check_meta(c, other_dim, &err);
    check(rc == ERR_MISMATCH && strstr(err.msg, "model.embed_dim") && strstr(err.msg, "128") && strstr(err.msg, "96"),
          "meta/mismatch_names_field", "rc %d: %s", rc, err.msg);
    const char *other_depth = "{\"model\":{\"embed_dim\":128,\"depths\":[2,2,6,2]},\"image_size\":384,"
                              "\"weights\":{\"swin\":\"sha256:aaaa\"},\"dtype\":\"F16\",\"program\":\"test 1\"}";
    rc = cache_check_meta(c, other_depth, &err);
    check(rc == ERR_MISMATCH && strstr(err.msg, "model.depths.2"), "meta/mismatch_names_array_element", "rc %d: %s",
          rc, err.msg);
    const char *missing = "{\"model\":{\"embed_dim\":128,\"depths\":[2,2,18,2]},\"image_size\":384,"
                          "\"weights\":{\"swin\":\"sha256:aaaa\",\"vggish\":\"sha256:bbbb\"},\"dtype\":\"F16\","
                          "\"program\":\"test 1\"}";
    rc = cache_check_meta(c, missing, &err);
    check(rc == ERR_MISMATCH && strstr(err.msg, "weights.vggish") && strstr(err.msg, "no such field"),
          "meta/missing_field_named", "rc %d: %s", rc, err.msg);
    rc = cache_check_meta(c, "{not json", &err);
    check(rc == ERR_ARG, "meta/bad_expected_json", "rc %d: %s", rc, err.msg);
    rc = cache_meta_put(c, "note", "{}", &err);
    check(rc == ERR_ARG && strstr(err.msg, "reading"), "meta/put_on_read_only_refused", "rc %d: %s", rc, err.msg);
    cache_close(c);
    cache_open(dir, CACHE_WRITE, &o, &c, &err);
    rc = cache_meta_put(c, CACHE_META_FORMAT, "{}", &err);
    check(rc == ERR_ARG, "meta/format_record_reserved", "rc %d", rc);
    rc = cache_meta_ensure(c, other_dim, &err);
    check(rc == ERR_MISMATCH && strstr(err.msg, "embed_dim"), "meta/ensure_refuses_other_producer", "rc %d: %s", rc,
          err.msg);
    cache_close(c);
    cache_options_t f32 = quick_options(DTYPE_F32);
    rc = cache_open(dir, CACHE_WRITE, &f32, &c, &err);
    check(rc == ERR_MISMATCH && strstr(err.msg, "F16") && strstr(err.msg, "F32") && c == NULL,
          "meta/dtype_mismatch_on_reopen", "rc %d: %s", rc, err.msg);
}

static void test_map_growth(void) {
    arena_t *a = arena_create(DEVICE_CPU, 1 << 22);
    cache_options_t o = quick_options(DTYPE_F32);
    o.map_size = 64 << 10; /* 16 pages */
    cache_t *c;
    err_t err;
    const char *dir = path_in("growth");
    cache_open(dir, CACHE_WRITE, &o, &c, &err);
    cache_stat_t before, after;
    cache_stat(c, &before, &err);
    int ok = 1;
    test_video_t v[6];
    for (int i = 0; i < 6 && ok; i++) {
        make_video(a, &v[i], 10 + i, 5, small_dims);
        ok = put(c, &v[i], &err) == ERR_OK;
    }
    cache_stat(c, &after, &err);
    cache_reader_t *r;
    cache_reader_begin(c, &r, &err);
    char msg[256] = "";
    for (int i = 0; i < 6 && ok; i++) ok = compare_video(r, &v[i], DTYPE_F32, msg, sizeof msg) == 0;
    check(ok && after.map_size > before.map_size && after.map_used > 64 << 10, "growth/from_tiny_map",
          "%s %s: map %llu -> %llu", msg, err.msg, (unsigned long long)before.map_size,
          (unsigned long long)after.map_size);
    /* a reader of this process pins the mapping: growing must wait, and says so */
    test_video_t big;
    make_video(a, &big, 30, 16, big_dims);
    err_code_t rc = put(c, &big, &err);
    cache_reader_end(r);
    int present = -1;
    cache_has_video(c, big.subset, big.uid, &present, &err);
    check(rc == ERR_IO && strstr(err.msg, "reader") && present == 0, "growth/refused_while_reader_open", "rc %d: %s",
          rc, err.msg);
    rc = put(c, &big, &err);
    check(rc == ERR_OK, "growth/after_reader_ends", "%s", err.msg);
    cache_close(c);
    /* a cap on growth */
    o.map_size_max = 256 << 10;
    cache_open(path_in("growth_cap"), CACHE_WRITE, &o, &c, &err);
    rc = put(c, &big, &err);
    check(rc == ERR_IO && strstr(err.msg, "limit"), "growth/stops_at_map_size_max", "rc %d: %s", rc, err.msg);
    cache_close(c);
    arena_destroy(a);
}

/* Finds a value's bytes in data.mdb by its header (magic .. checksum, unique
 * per value) and flips one bit of its tensor data. */
static int corrupt_value_on_disk(const char *dir, cache_db_t db, const char *key) {
    cache_t *c;
    err_t err;
    if (cache_open(dir, CACHE_READ, NULL, &c, &err) != ERR_OK) return -1;
    cache_reader_t *r;
    cache_entry_t e;
    unsigned char header[64];
    int rc = -1;
    if (cache_reader_begin(c, &r, &err) == ERR_OK && cache_get_key(r, db, key, &e, &err) == ERR_OK && e.zero_copy) {
        memcpy(header, (const char *)e.tensors[0].data - e.tensors[0].offset, sizeof header);
        rc = 0;
    }
    uint64_t target = e.tensors[0].offset + e.tensors[0].nbytes / 2;
    cache_reader_end(r);
    cache_close(c);
    if (rc) return -1;
    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "r+b");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *all = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    int found = 0;
    long at = -1;
    if (fread(all, 1, (size_t)size, f) == (size_t)size) {
        for (unsigned char *p = all; (p = memmem(p, (size_t)(all + size - p), header, sizeof header)) != NULL; p++) {
            found++;
            at = p - all;
        }
    }
    if (found == 1) {
        unsigned char b = all[at + (long)target] ^ 0x10;
        fseek(f, at + (long)target, SEEK_SET);
        fwrite(&b, 1, 1, f);
    }
    fclose(f);
    free(all);
    return found == 1 ? 0 : -1;
}

typedef struct {
    char keys[8][300];
    int n;
} bad_list_t;

static void collect_bad(void *ctx, cache_db_t db, const char *key, const char *problem) {
    (void)problem;
    bad_list_t *b = ctx;
    if (b->n < 8) snprintf(b->keys[b->n++], 300, "%s %s", cache_db_name(db), key);
}

static void test_corruption(void) {
    const char *dir = path_in("corrupt");
    write_videos(dir, 0, 4, small_dims, producer_json);
    int rc = corrupt_value_on_disk(dir, CACHE_DB_VISUAL, "v2/vid002_c/1");
    if (!check(rc == 0, "corrupt/located_value_in_data_mdb", "value header not found exactly once")) return;
    cache_t *c;
    err_t err;
    cache_open(dir, CACHE_READ, NULL, &c, &err);
    bad_list_t bad = {.n = 0};
    cache_verify_report_t rep;
    cache_verify(c, collect_bad, &bad, &rep, &err);
    check(rep.bad == 1 && bad.n == 1 && strcmp(bad.keys[0], "visual v2/vid002_c/1") == 0, "corrupt/verify_names_key",
          "%lld bad, first \"%s\"", (long long)rep.bad, bad.n ? bad.keys[0] : "");
    cache_reader_t *r;
    cache_reader_begin(c, &r, &err);
    cache_entry_t e;
    err_code_t ec = cache_get_frame(r, "v2", "vid002_c", 1, &e, &err);
    check(ec == ERR_FORMAT && strstr(err.msg, "v2/vid002_c/1") && strstr(err.msg, "checksum"),
          "corrupt/read_refused_naming_key", "rc %d: %s", ec, err.msg);
    cache_reader_end(r);
    cache_close(c);
    if (!have_cli) return;
    int code = run_cli("verify %s", dir);
    check(code == 1 && strstr(cli_out, "bad visual v2/vid002_c/1") && strstr(cli_out, "1 problem"),
          "cli/verify_names_corrupt_key", "exit %d: %s%s", code, cli_out, cli_err);
    code = run_cli("show %s v2/vid002_c/1", dir);
    check(code == 4 && strstr(cli_err, "checksum") && strstr(cli_err, "v2/vid002_c/1"), "cli/show_corrupt_value",
          "exit %d: %s", code, cli_err);
    code = run_cli("show %s v2/vid002_c/1 --no-verify", dir);
    check(code == 0 && strstr(cli_out, "not checked"), "cli/show_corrupt_value_no_verify", "exit %d: %s", code, cli_err);
    /* merge refuses to spread a corrupt value */
    code = run_cli("merge %s %s --no-sync", path_in("corrupt_merged"), dir);
    check(code == 4 && strstr(cli_err, "v2/vid002_c/1"), "cli/merge_refuses_corrupt_value", "exit %d: %s", code, cli_err);
}

static void test_merge(void) {
    const char *a = path_in("shard_a"), *b = path_in("shard_b"), *all = path_in("shard_all"), *out = path_in("merged");
    write_videos(a, 0, 5, small_dims, producer_json);
    write_videos(b, 5, 9, small_dims, producer_json);
    write_videos(all, 0, 9, small_dims, producer_json);
    cache_options_t o = quick_options(DTYPE_F16);
    cache_t *co, *ca, *cb;
    err_t err;
    cache_open(out, CACHE_WRITE, &o, &co, &err);
    cache_open(a, CACHE_READ, NULL, &ca, &err);
    cache_open(b, CACHE_READ, NULL, &cb, &err);
    cache_merge_report_t ra, rb, again;
    err_code_t rc1 = cache_merge(co, ca, &ra, &err);
    err_code_t rc2 = cache_merge(co, cb, &rb, &err);
    check(rc1 == ERR_OK && rc2 == ERR_OK && ra.videos_copied == 5 && rb.videos_copied == 4, "merge/two_shards",
          "%d %d copied %lld %lld: %s", rc1, rc2, (long long)ra.videos_copied, (long long)rb.videos_copied, err.msg);
    err_code_t rc3 = cache_merge(co, ca, &again, &err);
    check(rc3 == ERR_OK && again.videos_copied == 0 && again.videos_present == 5, "merge/again_copies_nothing",
          "rc %d copied %lld present %lld", rc3, (long long)again.videos_copied, (long long)again.videos_present);
    cache_close(co);
    cache_close(ca);
    cache_close(cb);
    char msg[700] = "";
    check(caches_equal(out, all, msg, sizeof msg) == 0, "merge/equals_single_run", "%s", msg);
    /* a shard made by another model is refused, naming the field, before anything is copied */
    const char *other = path_in("shard_other");
    const char *other_producer = "{\"model\":{\"embed_dim\":128,\"depths\":[2,2,18,2]},\"image_size\":512,"
                                 "\"weights\":{\"swin\":\"sha256:aaaa\"},\"dtype\":\"F16\",\"program\":\"test 1\"}";
    write_videos(other, 20, 22, small_dims, other_producer);
    cache_open(out, CACHE_WRITE, &o, &co, &err);
    cache_t *cother;
    cache_open(other, CACHE_READ, NULL, &cother, &err);
    cache_merge_report_t rr;
    err_code_t rc = cache_merge(co, cother, &rr, &err);
    cache_close(cother);
    cache_close(co);
    check(rc == ERR_MISMATCH && strstr(err.msg, "image_size") && strstr(err.msg, "384") && strstr(err.msg, "512") &&
              caches_equal(out, all, msg, sizeof msg) == 0,
          "merge/mismatched_metadata_refused", "rc %d: %s", rc, err.msg);
    /* and another dtype */
    const char *f32dir = path_in("shard_f32");
    cache_options_t of = quick_options(DTYPE_F32);
    cache_t *cf;
    cache_open(f32dir, CACHE_WRITE, &of, &cf, &err);
    cache_meta_put(cf, CACHE_META_PRODUCER, producer_json, &err);
    cache_close(cf);
    cache_open(out, CACHE_WRITE, &o, &co, &err);
    cache_open(f32dir, CACHE_READ, NULL, &cf, &err);
    rc = cache_merge(co, cf, &rr, &err);
    cache_close(cf);
    cache_close(co);
    check(rc == ERR_MISMATCH && strstr(err.msg, "F32"), "merge/other_dtype_refused", "rc %d: %s", rc, err.msg);
    /* the same through the command line */
    if (!have_cli) return;
    const char *cli_out_dir = path_in("merged_cli");
    int code = run_cli("merge %s %s %s --no-sync", cli_out_dir, a, b);
    check(code == 0 && strstr(cli_out, "5 videos copied") && caches_equal(cli_out_dir, all, msg, sizeof msg) == 0,
          "cli/merge_equals_single_run", "exit %d: %s %s %s", code, cli_out, cli_err, msg);
    code = run_cli("merge %s %s --no-sync", a, a);
    check(code == 2 && strstr(cli_err, "already open"), "cli/merge_into_itself_refused", "exit %d: %s", code, cli_err);
    code = run_cli("merge %s %s %s --no-sync", path_in("merged_cli2"), a, other);
    struct stat st;
    check(code == 5 && strstr(cli_err, "image_size") && stat(path_in("merged_cli2"), &st) != 0,
          "cli/merge_mismatch_exit_5_nothing_made", "exit %d: %s", code, cli_err);
}

static void test_bad_folders(void) {
    cache_t *c = NULL;
    err_t err;
    mkdir(path_in("empty"), 0775);
    err_code_t rc = cache_open(path_in("empty"), CACHE_READ, NULL, &c, &err);
    check(rc == ERR_FORMAT && strstr(err.msg, "not a stepstone cache") && strstr(err.msg, "empty") && !c,
          "bad/empty_folder_read", "rc %d: %s", rc, err.msg);
    rc = cache_open(path_in("does/not/exist"), CACHE_READ, NULL, &c, &err);
    check(rc == ERR_NOTFOUND && strstr(err.msg, "does/not/exist"), "bad/missing_folder", "rc %d: %s", rc, err.msg);
    mkdir(path_in("garbage"), 0775);
    FILE *f = fopen(path_in("garbage/data.mdb"), "wb");
    for (int i = 0; i < 20000; i++) fputc(i * 7 & 0xff, f);
    fclose(f);
    rc = cache_open(path_in("garbage"), CACHE_READ, NULL, &c, &err);
    check(rc == ERR_FORMAT && strstr(err.msg, "not a stepstone cache"), "bad/garbage_data_mdb", "rc %d: %s", rc, err.msg);
    /* an LMDB environment that someone else made */
    mkdir(path_in("foreign"), 0775);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create(&env);
    mdb_env_open(env, path_in("foreign"), 0, 0664);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    MDB_val k = {3, "key"}, v = {5, "value"};
    mdb_put(txn, dbi, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    rc = cache_open(path_in("foreign"), CACHE_READ, NULL, &c, &err);
    err_code_t rcw = cache_open(path_in("foreign"), CACHE_WRITE, NULL, &c, &err);
    check(rc == ERR_FORMAT && rcw == ERR_FORMAT && strstr(err.msg, "LMDB environment but not a stepstone cache"),
          "bad/foreign_lmdb", "rc %d %d: %s", rc, rcw, err.msg);
    /* write mode refuses a non-empty folder that holds no cache */
    mkdir(path_in("home"), 0775);
    f = fopen(path_in("home/notes.txt"), "w");
    fputs("mine\n", f);
    fclose(f);
    rc = cache_open(path_in("home"), CACHE_WRITE, NULL, &c, &err);
    struct stat st;
    check(rc == ERR_FORMAT && strstr(err.msg, "notes.txt") && stat(path_in("home/data.mdb"), &st) != 0,
          "bad/non_empty_folder_not_taken", "rc %d: %s", rc, err.msg);
}

static void test_cli(void) {
    const char *dir = path_in("cli_cache");
    write_videos(dir, 0, 3, small_dims, producer_json);
    int code = run_cli("--help");
    check(code == 0 && strstr(cli_out, "exit codes") && strstr(cli_out, "merge OUT IN"), "cli/help", "exit %d", code);
    const char *cmds[] = {"ls", "stat", "show", "dump", "verify", "merge"};
    int all_help = 1;
    for (int i = 0; i < 6; i++) {
        code = run_cli("%s --help", cmds[i]);
        char want[32];
        snprintf(want, sizeof want, "usage: stepstone-cache %s", cmds[i]);
        if (code != 0 || !strstr(cli_out, want)) all_help = 0;
    }
    check(all_help, "cli/every_command_has_help", "a command's --help failed");
    code = run_cli("frobnicate %s", dir);
    check(code == 2 && strstr(cli_err, "unknown command"), "cli/unknown_command_exit_2", "exit %d", code);
    code = run_cli("ls");
    check(code == 2 && strstr(cli_err, "usage"), "cli/missing_argument_exit_2", "exit %d", code);
    code = run_cli("ls %s", dir);
    check(code == 0 && strstr(cli_out, "visual  v1s/vid000_a/0") && strstr(cli_out, "audio   v2/vid001_b") &&
              strstr(cli_out, "videos  v2/vid002_c") && strstr(cli_out, "meta    producer"),
          "cli/ls", "exit %d: %s", code, cli_out);
    code = run_cli("ls %s v2/vid002_c --db visual", dir);
    int lines = 0;
    for (const char *p = cli_out; (p = strchr(p, '\n')) != NULL; p++) lines++;
    check(code == 0 && lines == 3 && strstr(cli_out, "v2/vid002_c/2") && !strstr(cli_out, "vid001"), "cli/ls_prefix",
          "exit %d, %d lines: %s", code, lines, cli_out);
    code = run_cli("stat %s", dir);
    check(code == 0 && strstr(cli_out, "dtype F16") && strstr(cli_out, "videos       3") &&
              strstr(cli_out, "\"embed_dim\": 128") && strstr(cli_out, "map "),
          "cli/stat", "exit %d: %s", code, cli_out);
    code = run_cli("show %s v2/vid002_c/1", dir);
    check(code == 0 && strstr(cli_out, "stage1") && strstr(cli_out, "[8, 16, 16]") && strstr(cli_out, "stage4") &&
              strstr(cli_out, "std") && strstr(cli_out, "(checked)"),
          "cli/show_frame", "exit %d: %s", code, cli_out);
    code = run_cli("show %s v2/vid002_c", dir);
    check(code == 0 && strstr(cli_out, "audio") && strstr(cli_out, "[3, 128]") && strstr(cli_out, "\"frames\":3"),
          "cli/show_audio", "exit %d: %s", code, cli_out);
    code = run_cli("show %s meta:producer", dir);
    check(code == 0 && strstr(cli_out, "sha256:aaaa"), "cli/show_meta", "exit %d: %s", code, cli_out);
    code = run_cli("show %s v2/vid002_c/7", dir);
    check(code == 3 && strstr(cli_err, "v2/vid002_c/7"), "cli/show_missing_key_exit_3", "exit %d: %s", code, cli_err);
    /* dump .npy: header and data as numpy would read them */
    const char *npy = path_in("stage2.npy");
    code = run_cli("dump %s v2/vid001_b/0 --tensor stage2 --out %s", dir, npy);
    int npy_ok = 0;
    FILE *f = fopen(npy, "rb");
    if (f) {
        unsigned char file[4096];
        size_t n = fread(file, 1, sizeof file, f);
        fclose(f);
        size_t hlen = n > 10 ? file[8] + 256u * file[9] : 0, data_at = 10 + hlen;
        npy_ok = n > 10 && memcmp(file, "\x93NUMPY\x01\x00", 8) == 0 && data_at % 64 == 0 &&
                 file[data_at - 1] == '\n' && memmem(file, data_at, "'descr': '<f2'", 14) &&
                 memmem(file, data_at, "'shape': (16, 8, 8)", 19) && n == data_at + 2 * 1024;
        for (int i = 0; npy_ok && i < 1024; i++) {
            uint16_t h;
            memcpy(&h, file + data_at + 2 * i, 2);
            npy_ok = h == f32_to_f16(test_value(1, 0, 1, i));
        }
    }
    check(code == 0 && npy_ok, "cli/dump_npy", "exit %d: %s", code, cli_err);
    code = run_cli("dump %s v2/vid001_b --out %s --f32", dir, path_in("audio.npy"));
    struct stat st;
    check(code == 0 && stat(path_in("audio.npy"), &st) == 0 && st.st_size == 128 + 2 * 128 * 4, "cli/dump_audio_f32",
          "exit %d size %lld: %s", code, (long long)st.st_size, cli_err);
    code = run_cli("dump %s v2/vid001_b/0 --tensor stage1 --out %s", dir, path_in("pca.png"));
    png_io_image_t img;
    memset(&img, 0, sizeof img);
    err_t err;
    int png_ok = code == 0 && png_io_read(path_in("pca.png"), &img, PNG_IO_WANT_ASIS, &err) == ERR_OK &&
                 img.channels == 3 && img.width == 256 && img.height == 256;
    png_io_free(&img);
    check(png_ok, "cli/dump_png_pca", "exit %d: %s", code, cli_err);
    code = run_cli("dump %s v2/vid001_b/0 --tensor stage4 --out %s --grid --scale 3", dir, path_in("grid.png"));
    png_ok = code == 0 && png_io_read(path_in("grid.png"), &img, PNG_IO_WANT_ASIS, &err) == ERR_OK &&
             img.channels == 1 && img.width == 8 * 7 - 1 && img.height == 8 * 7 - 1;
    png_io_free(&img);
    check(png_ok, "cli/dump_png_grid", "exit %d %dx%d: %s", code, img.width, img.height, cli_err);
    code = run_cli("dump %s v2/vid001_b/0 --tensor stage9 --out %s", dir, path_in("x.npy"));
    check(code == 3 && strstr(cli_err, "stage9") && strstr(cli_err, "stage1, stage2"), "cli/dump_missing_tensor_exit_3",
          "exit %d: %s", code, cli_err);
    code = run_cli("dump %s v2/vid001_b/0 --out %s", dir, path_in("x.npy"));
    check(code == 2 && strstr(cli_err, "--tensor"), "cli/dump_needs_tensor_name", "exit %d: %s", code, cli_err);
    code = run_cli("verify %s", dir);
    check(code == 0 && strstr(cli_out, "0 problems"), "cli/verify_clean", "exit %d: %s", code, cli_out);
    code = run_cli("stat %s", path_in("empty"));
    check(code == 4 && strstr(cli_err, "not a stepstone cache"), "cli/not_a_cache_exit_4", "exit %d: %s", code, cli_err);
    code = run_cli("ls %s", path_in("no_such_folder"));
    check(code == 3 && strstr(cli_err, "no_such_folder"), "cli/missing_folder_exit_3", "exit %d: %s", code, cli_err);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int locate_cli(const char *argv0) {
    const char *env = getenv("STEPSTONE_CACHE_BIN");
    if (env) {
        snprintf(cli, sizeof cli, "%s", env);
    } else {
        char self[4000];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            snprintf(self, sizeof self, "%s", argv0);
            n = (ssize_t)strlen(self);
        }
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) *slash = '\0';
        snprintf(cli, sizeof cli, "%s/../bin/stepstone-cache", self);
    }
    return access(cli, X_OK);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(root, sizeof root, "/tmp/stepstone-test-cache-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    have_cli = locate_cli(argv[0]) == 0;
    test_crc32c();
    test_value_format();
    test_round_trip(DTYPE_F32, "rt_f32");
    test_round_trip(DTYPE_F16, "rt_f16");
    test_round_trip(DTYPE_BF16, "rt_bf16");
    test_small_values_alignment();
    test_keys_and_misses();
    test_atomic_map_full();
    test_atomic_disk_full();
    test_kill_and_resume();
    test_reopen_resume();
    test_meta();
    test_map_growth();
    test_bad_folders();
    test_corruption();
    test_merge();
    if (have_cli) {
        test_cli();
    } else {
        check_skip("cli", "no stepstone-cache at %s (build it, or set STEPSTONE_CACHE_BIN)", cli);
    }
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free_paths();
    return check_finish("test_cache");
}
