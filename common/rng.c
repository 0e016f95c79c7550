#include "rng.h"

#include <math.h>
#include <string.h>

#include "error.h"

uint64_t splitmix64_next(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void rng_seed(rng_t *r, uint64_t seed) {
    uint64_t state = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64_next(&state);
    /* splitmix64's mixing is a bijection and its four inputs differ, so at
     * most one output is zero: never the all-zero state, a fixed point. */
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_u64(rng_t *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The high bits: xoshiro's low bits are its weakest. */
float rng_float(rng_t *r) { return (float)(rng_u64(r) >> 40) * 0x1.0p-24f; }

double rng_double(rng_t *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t rng_below(rng_t *r, uint64_t n) {
    if (n == 0) fatal("rng_below: n must be positive");
    /* Reject the lowest (2^64 mod n) values so that every residue has the same
     * number of preimages; at most half the draws are rejected (n > 2^63). */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = rng_u64(r);
        if (x >= threshold) return x % n;
    }
}

int64_t rng_range(rng_t *r, int64_t lo, int64_t hi) {
    if (lo >= hi) fatal("rng_range: empty range [%lld, %lld)", (long long)lo, (long long)hi);
    /* The width fits uint64_t even for [INT64_MIN, INT64_MAX). */
    uint64_t width = (uint64_t)hi - (uint64_t)lo;
    return (int64_t)((uint64_t)lo + rng_below(r, width));
}

double rng_normal(rng_t *r) {
    /* u1 in (0, 1] keeps log() finite; u2 in [0, 1) sets the angle. */
    double u1 = 1.0 - rng_double(r);
    double u2 = rng_double(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static void swap_bytes(unsigned char *a, unsigned char *b, size_t size) {
    for (size_t i = 0; i < size; i++) {
        unsigned char t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

void rng_shuffle(rng_t *r, void *base, size_t n, size_t elem_size) {
    unsigned char *bytes = base;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        if (j != i - 1) swap_bytes(bytes + j * elem_size, bytes + (i - 1) * elem_size, elem_size);
    }
}

/* Applies the jump polynomial `poly` (from the reference xoshiro256starstar.c). */
static void jump_by(rng_t *r, const uint64_t poly[4]) {
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        for (int b = 0; b < 64; b++) {
            if (poly[i] & (UINT64_C(1) << b))
                for (int k = 0; k < 4; k++) acc[k] ^= r->s[k];
            rng_u64(r);
        }
    }
    memcpy(r->s, acc, sizeof acc);
}

void rng_jump(rng_t *r) {
    static const uint64_t poly[4] = {UINT64_C(0x180ec6d33cfd0aba), UINT64_C(0xd5a61266f0c9392c),
                                     UINT64_C(0xa9582618e03fc9aa), UINT64_C(0x39abdc4529b1661c)};
    jump_by(r, poly);
}

void rng_long_jump(rng_t *r) {
    static const uint64_t poly[4] = {UINT64_C(0x76e15d3efefdcbbf), UINT64_C(0xc5004e441c522fb3),
                                     UINT64_C(0x77710069854ee241), UINT64_C(0x39109bb02acbe635)};
    jump_by(r, poly);
}
