/* test_safetensors.c - round trips, conversions on load, and every kind of
 * malformed file: each must give an error code and a message naming the file
 * (and the tensor where there is one), never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "safetensors.h"

static char dir[256];

static const char *tmp_path(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Writes an 8-byte length + header + data file by hand. */
static void write_raw(const char *path, const char *header, const void *data, size_t n, long long len_override) {
    FILE *f = fopen(path, "wb");
    uint64_t len = len_override >= 0 ? (uint64_t)len_override : strlen(header);
    for (int i = 0; i < 8; i++) fputc((int)((len >> (8 * i)) & 0xff), f);
    fwrite(header, 1, strlen(header), f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void test_round_trip(void) {
    const char *path = tmp_path("rt.safetensors");
    float f[6] = {1, -2, 3.5f, 4, 5, 6};
    uint16_t h[3] = {f32_to_f16(1.5f), f32_to_f16(-0.25f), f32_to_f16(1000.0f)};
    int64_t idx[2] = {-5, 1LL << 40};
    uint8_t m[5] = {1, 0, 1, 1, 0};
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s2[1] = {2}, s5[1] = {5};
    err_t err;
    st_writer_t *w = safetensors_writer_new();
    int ok = safetensors_writer_add(w, "b.f32", DTYPE_F32, 2, s23, f, &err) == ERR_OK &&
             safetensors_writer_add(w, "a.f16", DTYPE_F16, 1, s3, h, &err) == ERR_OK &&
             safetensors_writer_add(w, "c.i64", DTYPE_I64, 1, s2, idx, &err) == ERR_OK &&
             safetensors_writer_add(w, "d.bool", DTYPE_BOOL, 1, s5, m, &err) == ERR_OK &&
             safetensors_writer_meta(w, "format", "pt", &err) == ERR_OK &&
             safetensors_writer_save(w, path, &err) == ERR_OK;
    safetensors_writer_free(w);
    check(ok, "safetensors/write", "%s", err.msg);
    safetensors_t st;
    if (!check(safetensors_open(path, &st, &err) == ERR_OK, "safetensors/read_back", "%s", err.msg)) return;
    const st_entry_t *e = safetensors_find(&st, "b.f32");
    const char *fmt = safetensors_meta(&st, "format");
    check(st.n_entries == 4 && e && e->ndim == 2 && e->shape[1] == 3 && memcmp(e->data, f, sizeof f) == 0 && fmt &&
              strcmp(fmt, "pt") == 0,
          "safetensors/entries_and_metadata", "entries %d", st.n_entries);
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    tensor_t *t = NULL;
    ok = safetensors_load(&st, "a.f16", a, DTYPE_F32, 1, s3, &t, &err) == ERR_OK;
    check(ok && tensor_f32(t)[0] == 1.5f && tensor_f32(t)[1] == -0.25f && tensor_f32(t)[2] == 1000.0f,
          "safetensors/load_f16_as_f32", "%s", ok ? "values differ" : err.msg);
    ok = safetensors_load(&st, "c.i64", a, DTYPE_I64, 0, NULL, &t, &err) == ERR_OK;
    check(ok && ((int64_t *)t->data)[1] == (1LL << 40), "safetensors/load_i64", "%s", ok ? "values differ" : err.msg);
    ok = safetensors_load(&st, "b.f32", a, DTYPE_BF16, 2, s23, &t, &err) == ERR_OK;
    check(ok && bf16_to_f32(((uint16_t *)t->data)[2]) == 3.5f, "safetensors/load_f32_as_bf16", "%s", ok ? "values differ" : err.msg);
    /* errors a weight loader must report by tensor name */
    err_code_t rc = safetensors_load(&st, "missing.weight", a, DTYPE_F32, 0, NULL, &t, &err);
    check(rc == ERR_NOTFOUND && strstr(err.msg, "missing.weight") && strstr(err.msg, path), "safetensors/missing_tensor_named",
          "rc %d: %s", rc, err.msg);
    int64_t s32[2] = {3, 2};
    rc = safetensors_load(&st, "b.f32", a, DTYPE_F32, 2, s32, &t, &err);
    check(rc == ERR_MISMATCH && strstr(err.msg, "b.f32") && strstr(err.msg, "[3, 2]") && strstr(err.msg, "[2, 3]"),
          "safetensors/wrong_shape_named", "rc %d: %s", rc, err.msg);
    rc = safetensors_load(&st, "c.i64", a, DTYPE_F16, 0, NULL, &t, &err);
    check(rc == ERR_MISMATCH && strstr(err.msg, "c.i64") && strstr(err.msg, "I64"), "safetensors/wrong_dtype_named",
          "rc %d: %s", rc, err.msg);
    arena_destroy(a);
    safetensors_close(&st);
}

typedef struct {
    const char *name;
    const char *header;
    size_t data_bytes;
    long long len_override; /* -1: the header's own length */
    const char *must_mention;
} bad_case_t;

static void test_malformed(void) {
    static const bad_case_t cases[] = {
        {"bad_json", "{\"a\": {\"dtype\": \"F32\", ", 0, -1, "JSON"},
        {"not_object", "[1, 2]", 0, -1, "not a JSON object"},
        {"unknown_dtype", "{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, "F8"},
        {"negative_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, -1, "shape"},
        {"float_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, -1, "shape"},
        {"missing_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -1, "data_offsets"},
        {"size_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, -1, "'a'"},
        {"beyond_file", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, -1, "beyond"},
        {"reversed_offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, -1, "data_offsets"},
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, "overlaps"},
        {"hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, "unused"},
        {"trailing_data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, -1, "after the last"},
        {"duplicate_key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, "duplicate"},
        {"header_too_long", "{}", 0, 1 << 20, "header length"},
        {"huge_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, -1, "'a'"},
        {"metadata_not_string", "{\"__metadata__\":{\"k\":1}}", 0, -1, "__metadata__"},
        {"junk_after_json", "{} x", 0, -1, "after the JSON"},
    };
    char zeros[64] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case_t *c = &cases[i];
        const char *path = tmp_path(c->name);
        write_raw(path, c->header, zeros, c->data_bytes, c->len_override);
        safetensors_t st;
        err_t err = {0};
        err_code_t rc = safetensors_open(path, &st, &err);
        char name[128];
        snprintf(name, sizeof name, "safetensors/malformed/%s", c->name);
        int ok = rc == ERR_FORMAT && strstr(err.msg, path) && strstr(err.msg, c->must_mention);
        check(ok, name, "rc %d, message: %s", rc, err.msg);
        if (rc == ERR_OK) safetensors_close(&st);
    }
    /* too short, missing, a folder */
    FILE *f = fopen(tmp_path("short"), "wb");
    fputs("abc", f);
    fclose(f);
    safetensors_t st;
    err_t err;
    err_code_t rc = safetensors_open(tmp_path("short"), &st, &err);
    check(rc == ERR_FORMAT && strstr(err.msg, "short"), "safetensors/malformed/too_short", "rc %d: %s", rc, err.msg);
    rc = safetensors_open(tmp_path("does_not_exist"), &st, &err);
    check(rc == ERR_IO && strstr(err.msg, "does_not_exist"), "safetensors/missing_file", "rc %d: %s", rc, err.msg);
    rc = safetensors_open(dir, &st, &err);
    check(rc == ERR_IO, "safetensors/directory", "rc %d: %s", rc, err.msg);
}

/* The golden weights of the official model open and validate. */
static void test_golden(void) {
    const char *sh = shared_dir();
    if (!sh) {
        check_skip("safetensors/golden_weights", "no ../shared folder");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/golden/avss-tiny/weights.safetensors", sh);
    safetensors_t st;
    err_t err;
    err_code_t rc = safetensors_open(path, &st, &err);
    int ok = rc == ERR_OK && st.n_entries > 100 && safetensors_find(&st, "audio_proj.0.weight");
    check(ok, "safetensors/golden_weights", "%s", rc == ERR_OK ? "expected tensors missing" : err.msg);
    if (rc == ERR_OK) safetensors_close(&st);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/stepstone-test-st-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_round_trip();
    test_malformed();
    test_golden();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("test_safetensors");
}
