/* resampy.h - band-limited resampling with resampy's kaiser_best filter,
 * giving the numbers resampy.resample(x, sr_orig, sr_new) gives.
 *
 * resampy interpolates with one wing of a Kaiser-windowed sinc kept as a
 * table (precision entries per zero crossing) and linear interpolation between
 * table entries. The table ships with the pip package as data; here it is
 * regenerated from its definition (resampy.filters.sinc_window) once per
 * process, so no data file is needed:
 *   table[k] = kaiser(2n+1, beta)[n + k] * rolloff * sinc(rolloff * k / precision),
 *   k = 0..n, n = num_zeros * precision.
 * Two versions of resampy differ, and both are here:
 *   RESAMPY_V04  resampy >= 0.4.1 (the pip package since 2022-09, 0.4.3 now):
 *                50 zeros, 2^13 entries per zero, rolloff 0.9173473712608761
 *                (stored in the package), beta 12.98458524704 (recovered from
 *                the table: the package stores no beta, its docstring rounds it
 *                to 12.9846); output time t * (sr_orig / sr_new), output length
 *                floor(N * sr_new / sr_orig).
 *   RESAMPY_V02  resampy <= 0.2.2 (2019 and before): 64 zeros, 2^9 entries,
 *                rolloff 0.9475937167399596, beta 14.769656459379492; output
 *                time accumulated by repeated addition; length int(N * ratio).
 * (resampy 0.3.0 to 0.4.0 had V04's table and output times with V02's length
 * rule; the two rules differ by one sample for rare lengths only.)
 * Generated tables agree with the shipped ones to ~1e-15 (not bit for bit: the
 * packages were built with other versions of numpy/scipy's sin and i0), and the
 * interpolation itself is the same arithmetic in the same order as resampy's
 * numba loop (double precision, no fused multiply-add: -std=c11 turns
 * contraction off), so outputs agree to ~1e-15. */
#ifndef STEPSTONE_RESAMPY_H
#define STEPSTONE_RESAMPY_H

#include <stdint.h>

#include "error.h"

typedef enum { RESAMPY_V04 = 0, RESAMPY_V02 = 1 } resampy_version_t;

/* The parameters of a windowed-sinc table (resampy.filters.sinc_window with a
 * Kaiser window). */
typedef struct {
    int num_zeros;      /* zero crossings kept in the wing */
    int precision_bits; /* 2^precision_bits table entries per zero crossing */
    double rolloff;     /* cut-off as a fraction of Nyquist */
    double kaiser_beta;
} resampy_filter_spec_t;

/* kaiser_best of the given resampy version. */
resampy_filter_spec_t resampy_kaiser_best(resampy_version_t version);

/* A generated table: half_window[0..length) (length = num_zeros * 2^bits + 1). */
typedef struct {
    const double *half_window;
    int64_t length;
    int64_t num_table; /* entries per zero crossing */
    double rolloff;
} resampy_filter_t;

/* kaiser_best of `version`, generated on first use (thread-safe) and kept for
 * the life of the process; never NULL (out of memory is fatal). */
const resampy_filter_t *resampy_filter(resampy_version_t version);

/* Generates the table of spec into a new malloc'd array (caller frees);
 * *length gets its size. NULL when out of memory. */
double *resampy_sinc_window(const resampy_filter_spec_t *spec, int64_t *length);

/* The number of output samples resampy gives for n input samples. */
int64_t resampy_output_length(int64_t n, int sr_orig, int sr_new, resampy_version_t version);

/* Resamples x[0..n) from sr_orig to sr_new into y[0..resampy_output_length());
 * sr_orig == sr_new copies. ERR_ARG for rates <= 0 or an output of no samples
 * (resampy's "too small to resample"). Runs in parallel over output samples
 * (each is independent, so the result does not depend on the thread count). */
err_code_t resampy_resample(const double *x, int64_t n, int sr_orig, int sr_new, resampy_version_t version, double *y,
                            err_t *err);

#endif
