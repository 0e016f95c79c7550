/* test_dtype.c - f16/bf16 conversions and storage round trips.
 *
 * f16 is checked against the compiler's own IEEE half conversion (_Float16,
 * which gcc implements with round-to-nearest-even) over every f16 value and
 * many random floats; bf16 against hand-computed roundings. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dtype.h"
#include "rng.h"
#include "tensor.h"

static uint16_t ref_f16_bits(float f) {
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

static float ref_f16_value(uint16_t u) {
    _Float16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_f16_all_values(void) {
    int bad = -1;
    for (uint32_t u = 0; u < 65536 && bad < 0; u++) {
        float want = ref_f16_value((uint16_t)u), got = f16_to_f32((uint16_t)u);
        if (isnan(want) ? !isnan(got) : bits(want) != bits(got)) bad = (int)u;
        /* and back: every finite half survives f32 -> f16 */
        if (!isnan(want) && f32_to_f16(got) != (uint16_t)u) bad = (int)u;
    }
    check(bad < 0, "f16/every_value_round_trip", "half 0x%04x differs", bad);
}

static void test_f16_rounding(void) {
    rng_t r;
    rng_seed(&r, 7);
    int bad = 0;
    float worst = 0;
    for (int i = 0; i < 2000000 && !bad; i++) {
        /* random bit patterns cover subnormals, ties, overflow, NaN */
        uint32_t u = (uint32_t)rng_u64(&r);
        if (i % 4 == 0) u = (u & 0x807fffffu) | ((uint32_t)(100 + i % 60) << 23); /* around the f16 range */
        float f = from_bits(u);
        uint16_t want = ref_f16_bits(f), got = f32_to_f16(f);
        if (isnan(f)) {
            if ((got & 0x7c00u) != 0x7c00u || (got & 0x3ffu) == 0) bad = 1, worst = f;
        } else if (want != got) {
            bad = 1;
            worst = f;
        }
    }
    check(!bad, "f16/rounding_matches_compiler", "f32 %a (bits 0x%08x) converts differently", (double)worst, bits(worst));
    check(f32_to_f16(1.0f + 1.0f / 2048.0f) == 0x3c00u && f32_to_f16(1.0f + 3.0f / 2048.0f) == 0x3c02u,
          "f16/ties_to_even", "1+2^-11 -> 0x%04x, 1+3*2^-11 -> 0x%04x", f32_to_f16(1.0f + 1.0f / 2048.0f),
          f32_to_f16(1.0f + 3.0f / 2048.0f));
    check(f32_to_f16(65520.0f) == 0x7c00u && f32_to_f16(65519.0f) == 0x7bffu, "f16/overflow_boundary",
          "65520 -> 0x%04x, 65519 -> 0x%04x", f32_to_f16(65520.0f), f32_to_f16(65519.0f));
}

static void test_bf16(void) {
    /* 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even keeps 1.0 (0x3f80);
     * 1 + 3*2^-8 ties up to 1 + 2^-6 (0x3f82) */
    uint16_t a = f32_to_bf16(1.0f + 1.0f / 256.0f), b = f32_to_bf16(1.0f + 3.0f / 256.0f);
    uint16_t c = f32_to_bf16(-2.5f), d = f32_to_bf16(NAN);
    check(a == 0x3f80u && b == 0x3f82u && c == 0xc020u && (d & 0x7f80u) == 0x7f80u && (d & 0x7fu),
          "bf16/rounding", "got 0x%04x 0x%04x 0x%04x 0x%04x", a, b, c, d);
    int bad = 0;
    for (uint32_t u = 0; u < 65536; u++) {
        float f = bf16_to_f32((uint16_t)u);
        if (!isnan(f) && f32_to_bf16(f) != u) bad++;
    }
    check(bad == 0, "bf16/every_value_round_trip", "%d values changed", bad);
}

/* The bulk (F16C) path must give the scalar functions' bits: every f16 value, and f32 values
 * over the whole range (a stride through all 2^32 bit patterns plus the
 * rounding, subnormal and overflow boundaries), NaNs included. */
static void test_bulk_f16(void) {
    size_t n = 65536;
    uint16_t *h = malloc(n * 2), *h_fast = malloc(n * 2), *h_ref = malloc(n * 2);
    float *f_fast = malloc(n * 4), *f_ref = malloc(n * 4);
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)i;
    dtype_convert_host(f_fast, DTYPE_F32, h, DTYPE_F16, (int64_t)n);
    for (size_t i = 0; i < n; i++) f_ref[i] = f16_to_f32(h[i]);
    check(memcmp(f_fast, f_ref, n * 4) == 0, "f16/bulk_to_f32_all_values", "F16C %d", dtype_f16c_available());
    int ok = 1;
    uint32_t edges[] = {0x477ff000u, 0x477fefffu, 0x477fe000u, 0x38800000u, 0x387fffffu, 0x33000000u, 0x33000001u,
                        0x32ffffffu, 0x7f800000u, 0x7f800001u, 0x7fc00000u, 0x00000001u, 0x3f800fffu, 0x3f801000u,
                        0x3f801001u, 0x3f803000u};
    for (uint64_t base = 0; base < (1ull << 32) && ok; base += (1ull << 32) / 512) {
        uint32_t bits[65536 / 4];
        size_t m = sizeof bits / sizeof bits[0];
        for (size_t i = 0; i < m; i++) {
            /* near each stride point, every pattern; then the edges, both signs */
            bits[i] = (uint32_t)(base + i * 7);
            if (i < 32) bits[i] = edges[i % 16] | (i >= 16 ? 0x80000000u : 0);
        }
        dtype_convert_host(h_fast, DTYPE_F16, bits, DTYPE_F32, (int64_t)m);
        for (size_t i = 0; i < m; i++) {
            float f;
            memcpy(&f, &bits[i], 4);
            h_ref[i] = f32_to_f16(f);
        }
        ok = memcmp(h_fast, h_ref, m * 2) == 0;
    }
    check(ok, "f16/bulk_from_f32_matches_scalar", "F16C %d", dtype_f16c_available());
    free(h);
    free(h_fast);
    free(h_ref);
    free(f_fast);
    free(f_ref);
}

static void test_tensor_convert(void) {
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    float src[7] = {0.0f, 1.0f, -3.140625f, 1e-3f, 65504.0f, 1e-9f, 0.333333f};
    int64_t shape[1] = {7};
    tensor_t *t = tensor_from_host(a, DTYPE_F32, 1, shape, src);
    tensor_t *h = tensor_convert(a, t, DTYPE_F16);
    tensor_t *b = tensor_convert(a, t, DTYPE_BF16);
    tensor_t *h32 = tensor_convert(a, h, DTYPE_F32);
    tensor_t *b32 = tensor_convert(a, b, DTYPE_F32);
    int ok = 1;
    for (int i = 0; i < 7; i++) {
        float fh = tensor_f32(h32)[i], fb = tensor_f32(b32)[i];
        if (fabsf(fh - src[i]) > fabsf(src[i]) * (1.0f / 2048.0f) + 6e-8f) ok = 0;
        if (fabsf(fb - src[i]) > fabsf(src[i]) * (1.0f / 256.0f)) ok = 0;
    }
    check(ok, "tensor/convert_f16_bf16_round_trip", "a value moved by more than half an ulp of its format");
    arena_destroy(a);
}

int main(void) {
    test_f16_all_values();
    test_f16_rounding();
    test_bf16();
    test_bulk_f16();
    test_tensor_convert();
    return check_finish("test_dtype");
}
