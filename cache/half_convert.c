/* half_convert.c - F16C conversion with a scalar fallback (see half_convert.h). */
#include "half_convert.h"

#include <pthread.h>
#include <string.h>

static int have_f16c;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    have_f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
#endif
}

int half_convert_hardware(void) {
    pthread_once(&probe_once, probe);
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

int half_convert(void *dst, dtype_t dst_dtype, const void *src, dtype_t src_dtype, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (half_convert_hardware()) {
        /* the scalar tails and NaN blocks index dst/src as arrays: callers
         * pass element-aligned pointers for the element types (cache.c
         * converts into scratch memory when a destination is not) */
        if (dst_dtype == DTYPE_F16 && src_dtype == DTYPE_F32) {
            f32_to_f16_f16c(dst, src, n);
            return 0;
        }
        if (dst_dtype == DTYPE_F32 && src_dtype == DTYPE_F16) {
            f16_to_f32_f16c(dst, src, n);
            return 0;
        }
    }
#endif
    return dtype_convert_host(dst, dst_dtype, src, src_dtype, n);
}
