#include "dtype.h"

#include <pthread.h>
#include <string.h>

size_t dtype_size(dtype_t dt) {
    switch (dt) {
    case DTYPE_F32: return 4;
    case DTYPE_F16: return 2;
    case DTYPE_BF16: return 2;
    case DTYPE_I64: return 8;
    case DTYPE_I32: return 4;
    case DTYPE_U8: return 1;
    case DTYPE_BOOL: return 1;
    }
    return 0;
}

static const char *const dtype_names[] = {"F32", "F16", "BF16", "I64", "I32", "U8", "BOOL"};

const char *dtype_name(dtype_t dt) {
    if ((unsigned)dt < sizeof dtype_names / sizeof dtype_names[0]) return dtype_names[dt];
    return "?";
}

int dtype_parse(const char *name, dtype_t *out) {
    for (unsigned i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++) {
        if (strcmp(name, dtype_names[i]) == 0) {
            *out = (dtype_t)i;
            return 0;
        }
    }
    return -1;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)((u + rounding) >> 16);
}

float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);      /* NaN */
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);     /* overflow (rounds to inf) */
    if (abs < 0x38800000u) {                                       /* subnormal or zero in f16 */
        if (abs < 0x33000000u) return (uint16_t)sign;              /* below half the smallest */
        uint32_t exp = abs >> 23;
        uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - exp;  /* to put the value in units of 2^-24 */
        uint32_t val = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (val & 1u))) val++;
        return (uint16_t)(sign | val);
    }
    /* normal: rebias exponent 127 -> 15 and round the 13 dropped bits to nearest even */
    uint32_t v = abs - 0x38000000u;
    uint32_t rounded = (v + 0xfffu + ((v >> 13) & 1u)) >> 13;
    return (uint16_t)(sign | rounded);
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* ---- bulk F32 <-> F16 on the F16C instructions ----
 * 8 elements at a time, about 10x the scalar code (the cache converts every
 * feature it writes and reads). Same bits as the scalar functions: a block of
 * 8 holding a NaN goes through the scalar code, because F16C keeps NaN
 * payloads where f32_to_f16/f16_to_f32 make them canonical. */
static int have_f16c;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe_f16c(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    have_f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
#endif
}

int dtype_f16c_available(void) {
    pthread_once(&probe_once, probe_f16c);
    return have_f16c;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(src + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0) {
            for (int k = 0; k < 8; k++) dst[i + k] = f32_to_f16(src[i + k]);
            continue;
        }
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) dst[i] = f32_to_f16(src[i]);
}

__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(float *dst, const uint16_t *src, int64_t n) {
    const __m128i abs_mask = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        /* |h| > 0x7c00 is a NaN; both sides are non-negative as int16 */
        if (_mm_movemask_epi8(_mm_cmpgt_epi16(_mm_and_si128(h, abs_mask), inf)) != 0) {
            for (int k = 0; k < 8; k++) dst[i + k] = f16_to_f32(src[i + k]);
            continue;
        }
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = f16_to_f32(src[i]);
}
#endif

static float load_as_f32(const void *src, dtype_t dt, int64_t i) {
    switch (dt) {
    case DTYPE_F32: return ((const float *)src)[i];
    case DTYPE_F16: return f16_to_f32(((const uint16_t *)src)[i]);
    case DTYPE_BF16: return bf16_to_f32(((const uint16_t *)src)[i]);
    case DTYPE_I64: return (float)((const int64_t *)src)[i];
    case DTYPE_I32: return (float)((const int32_t *)src)[i];
    case DTYPE_U8: return (float)((const uint8_t *)src)[i];
    case DTYPE_BOOL: return ((const uint8_t *)src)[i] ? 1.0f : 0.0f;
    }
    return 0.0f;
}

int dtype_convert_host(void *dst, dtype_t dst_dtype, const void *src, dtype_t src_dtype, int64_t n) {
    if (dst_dtype == src_dtype) {
        memmove(dst, src, (size_t)n * dtype_size(dst_dtype));
        return 0;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    if (dtype_f16c_available() && dst_dtype == DTYPE_F16 && src_dtype == DTYPE_F32) {
        f32_to_f16_f16c(dst, src, n);
        return 0;
    }
    if (dtype_f16c_available() && dst_dtype == DTYPE_F32 && src_dtype == DTYPE_F16) {
        f16_to_f32_f16c(dst, src, n);
        return 0;
    }
#endif
    switch (dst_dtype) {
    case DTYPE_F32:
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = load_as_f32(src, src_dtype, i);
        return 0;
    case DTYPE_F16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_f16(load_as_f32(src, src_dtype, i));
        return 0;
    case DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_bf16(load_as_f32(src, src_dtype, i));
        return 0;
    default:
        return -1;
    }
}
