/* rng.h - a deterministic, seeded random number generator.
 *
 * xoshiro256** (Blackman and Vigna, https://prng.di.unimi.it/) with its state
 * filled from the seed by splitmix64, the seeding its authors recommend (and
 * the one rand_xoshiro's seed_from_u64 and PHP's Xoshiro256StarStar use, so
 * their published outputs check ours). The same seed gives the same integers
 * and uniforms on every run and machine: they are pure 64-bit integer
 * arithmetic. rng_normal also goes through libm's log, cos and sqrt, so its
 * values are bit-identical wherever the libm is the same (glibc on x86-64)
 * and may differ in the last bit elsewhere.
 *
 * For parallel streams, copy a seeded generator and rng_jump() each copy a
 * different number of times: streams 2^128 draws apart never overlap.
 * An rng_t is plain data, used from one thread at a time. */
#ifndef STEPSTONE_RNG_H
#define STEPSTONE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4]; /* never all zero (rng_seed guarantees it) */
} rng_t;

/* Advances *state and returns the next splitmix64 output. Also a good 64-bit
 * hash for deriving seeds. */
uint64_t splitmix64_next(uint64_t *state);

/* s[0..3] = four successive splitmix64 outputs from `seed`. */
void rng_seed(rng_t *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t rng_u64(rng_t *r);
/* Uniform in [0, 1): 24 random bits (every float step of 2^-24 is equally likely). */
float rng_float(rng_t *r);
/* Uniform in [0, 1): 53 random bits. */
double rng_double(rng_t *r);
/* Uniform in [0, n), without modulo bias; n > 0 (n == 0 is a fatal error). */
uint64_t rng_below(rng_t *r, uint64_t n);
/* Uniform in [lo, hi), half-open like rng_below; lo < hi (else fatal). */
int64_t rng_range(rng_t *r, int64_t lo, int64_t hi);
/* Standard normal (mean 0, variance 1) by Box-Muller; two uniforms per value,
 * no cached spare, so the stream position depends only on the call count. */
double rng_normal(rng_t *r);

/* Fisher-Yates shuffle of n elements of elem_size bytes at base. */
void rng_shuffle(rng_t *r, void *base, size_t n, size_t elem_size);

/* Advance as if by 2^128 (rng_jump) or 2^192 (rng_long_jump) draws. */
void rng_jump(rng_t *r);
void rng_long_jump(rng_t *r);

#endif
