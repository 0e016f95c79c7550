/* crc32c.c - CRC-32C in software (slicing by 8) and on SSE4.2.
 *
 * The hardware path follows Mark Adler's crc32c.c (zlib licence): three
 * streams run side by side to hide the crc32 instruction's 3-cycle latency,
 * and their CRCs are joined by multiplying by x^(8*len) in GF(2), done with
 * tables built once for the two block lengths. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82f63b78u /* reflected 0x1EDC6F41 */

static uint32_t slice_table[8][256];

static void build_slice_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
        slice_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = slice_table[0][n];
        for (int k = 1; k < 8; k++) {
            crc = slice_table[0][crc & 0xff] ^ (crc >> 8);
            slice_table[k][n] = crc;
        }
    }
}

static uint32_t portable_update(uint32_t crc, const unsigned char *p, size_t n) {
    while (n && ((uintptr_t)p & 7) != 0) {
        crc = slice_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* little-endian hosts only (cache.h checks) */
        w ^= crc;
        crc = slice_table[7][w & 0xff] ^ slice_table[6][(w >> 8) & 0xff] ^ slice_table[5][(w >> 16) & 0xff] ^
              slice_table[4][(w >> 24) & 0xff] ^ slice_table[3][(w >> 32) & 0xff] ^
              slice_table[2][(w >> 40) & 0xff] ^ slice_table[1][(w >> 48) & 0xff] ^ slice_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = slice_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* ---- joining streams: the operator "append len zero bytes" as tables ---- */

#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t zeros_long[4][256], zeros_short[4][256];

static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_matrix_times(mat, mat[n]);
}

/* The 32x32 matrix that advances a CRC register over len zero bytes. */
static void zeros_operator(uint32_t *even, size_t len) {
    uint32_t odd[32];
    odd[0] = CRC32C_POLY; /* one zero bit */
    uint32_t row = 1;
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_matrix_square(even, odd); /* two zero bits */
    gf2_matrix_square(odd, even); /* four zero bits */
    /* squaring odd -> even gives 8 bits (one byte), then 2, 4, ... bytes */
    do {
        gf2_matrix_square(even, odd);
        len >>= 1;
        if (len == 0) return;
        gf2_matrix_square(odd, even);
        len >>= 1;
    } while (len);
    memcpy(even, odd, sizeof odd);
}

static void build_zeros_table(uint32_t zeros[4][256], size_t len) {
    uint32_t op[32];
    zeros_operator(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_matrix_times(op, n);
        zeros[1][n] = gf2_matrix_times(op, n << 8);
        zeros[2][n] = gf2_matrix_times(op, n << 16);
        zeros[3][n] = gf2_matrix_times(op, n << 24);
    }
}

static uint32_t shift_crc(uint32_t zeros[4][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

static int have_sse42;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void init_tables(void) {
    build_slice_table();
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
    if (have_sse42) {
        build_zeros_table(zeros_long, LONG_BLOCK);
        build_zeros_table(zeros_short, SHORT_BLOCK);
    }
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>

static inline uint64_t load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* crc is the raw register (already inverted). Three streams per block. */
__attribute__((target("sse4.2"))) static uint32_t hardware_update(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t crc0 = crc;
    while (n && ((uintptr_t)p & 7) != 0) {
        crc0 = _mm_crc32_u8((uint32_t)crc0, *p++);
        n--;
    }
    while (n >= 3 * LONG_BLOCK) {
        uint64_t crc1 = 0, crc2 = 0;
        const unsigned char *end = p + LONG_BLOCK;
        do {
            crc0 = _mm_crc32_u64(crc0, load64(p));
            crc1 = _mm_crc32_u64(crc1, load64(p + LONG_BLOCK));
            crc2 = _mm_crc32_u64(crc2, load64(p + 2 * LONG_BLOCK));
            p += 8;
        } while (p < end);
        crc0 = shift_crc(zeros_long, (uint32_t)crc0) ^ (uint32_t)crc1;
        crc0 = shift_crc(zeros_long, (uint32_t)crc0) ^ (uint32_t)crc2;
        p += 2 * LONG_BLOCK;
        n -= 3 * LONG_BLOCK;
    }
    while (n >= 3 * SHORT_BLOCK) {
        uint64_t crc1 = 0, crc2 = 0;
        const unsigned char *end = p + SHORT_BLOCK;
        do {
            crc0 = _mm_crc32_u64(crc0, load64(p));
            crc1 = _mm_crc32_u64(crc1, load64(p + SHORT_BLOCK));
            crc2 = _mm_crc32_u64(crc2, load64(p + 2 * SHORT_BLOCK));
            p += 8;
        } while (p < end);
        crc0 = shift_crc(zeros_short, (uint32_t)crc0) ^ (uint32_t)crc1;
        crc0 = shift_crc(zeros_short, (uint32_t)crc0) ^ (uint32_t)crc2;
        p += 2 * SHORT_BLOCK;
        n -= 3 * SHORT_BLOCK;
    }
    while (n >= 8) {
        crc0 = _mm_crc32_u64(crc0, load64(p));
        p += 8;
        n -= 8;
    }
    while (n--) crc0 = _mm_crc32_u8((uint32_t)crc0, *p++);
    return (uint32_t)crc0;
}
#endif

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t n) {
    pthread_once(&tables_once, init_tables);
    return ~portable_update(~crc, data, n);
}

uint32_t crc32c(uint32_t crc, const void *data, size_t n) {
    pthread_once(&tables_once, init_tables);
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_sse42) return ~hardware_update(~crc, data, n);
#endif
    return ~portable_update(~crc, data, n);
}

int crc32c_hardware(void) {
    pthread_once(&tables_once, init_tables);
    return have_sse42;
}
