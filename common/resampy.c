/* resampy.c - resampy's kaiser_best table and interpolation (see resampy.h). */
#include "resampy.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

resampy_filter_spec_t resampy_kaiser_best(resampy_version_t version) {
    if (version == RESAMPY_V02) {
        resampy_filter_spec_t s = {64, 9, 0.9475937167399596, 14.769656459379492};
        return s;
    }
    resampy_filter_spec_t s = {50, 13, 0.9173473712608761, 12.98458524704};
    return s;
}

/* The modified Bessel function I0 by its power series sum_k ((x/2)^k / k!)^2:
 * every term is positive, so the sum has no cancellation and for the betas used
 * here (x < 15, about 40 terms) it is within a few ulp, like scipy's i0. */
static double bessel_i0(double x) {
    double half = 0.5 * x, term = 1.0, sum = 1.0;
    for (int k = 1; k < 500; k++) {
        double f = half / (double)k;
        term *= f * f;
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

double *resampy_sinc_window(const resampy_filter_spec_t *spec, int64_t *length) {
    int64_t per_zero = (int64_t)1 << spec->precision_bits;
    int64_t n = per_zero * spec->num_zeros;
    double *win = malloc((size_t)(n + 1) * sizeof(double));
    if (!win) return NULL;
    /* np.linspace(0, num_zeros, n + 1): k * step, the last point exactly num_zeros */
    double step = (double)spec->num_zeros / (double)n;
    double i0_beta = bessel_i0(spec->kaiser_beta);
#pragma omp parallel for if (n > 4096)
    for (int64_t k = 0; k <= n; k++) {
        double pos = k == n ? (double)spec->num_zeros : (double)k * step;
        /* np.sinc(x) = sin(pi x) / (pi x), with x = 0 replaced by 1e-20 (giving 1) */
        double arg = spec->rolloff * pos;
        double y = M_PI * (arg == 0.0 ? 1.0e-20 : arg);
        double sinc = spec->rolloff * (sin(y) / y);
        /* scipy's kaiser(2n+1, beta)[n + k]: I0(beta sqrt(1 - (k/n)^2)) / I0(beta) */
        double r = (double)k / (double)n;
        double taper = bessel_i0(spec->kaiser_beta * sqrt(1.0 - r * r)) / i0_beta;
        win[k] = taper * sinc;
    }
    *length = n + 1;
    return win;
}

static resampy_filter_t filters[2];
static pthread_once_t filter_once[2] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

static void make_filter(resampy_version_t version) {
    resampy_filter_spec_t spec = resampy_kaiser_best(version);
    int64_t length = 0;
    double *win = resampy_sinc_window(&spec, &length);
    if (!win) fatal("resampy: out of memory for the kaiser_best table");
    filters[version].half_window = win;
    filters[version].length = length;
    filters[version].num_table = (int64_t)1 << spec.precision_bits;
    filters[version].rolloff = spec.rolloff;
}
static void make_filter_v04(void) { make_filter(RESAMPY_V04); }
static void make_filter_v02(void) { make_filter(RESAMPY_V02); }

const resampy_filter_t *resampy_filter(resampy_version_t version) {
    if (version == RESAMPY_V02) {
        pthread_once(&filter_once[RESAMPY_V02], make_filter_v02);
        return &filters[RESAMPY_V02];
    }
    pthread_once(&filter_once[RESAMPY_V04], make_filter_v04);
    return &filters[RESAMPY_V04];
}

int64_t resampy_output_length(int64_t n, int sr_orig, int sr_new, resampy_version_t version) {
    if (sr_orig <= 0 || sr_new <= 0 || n <= 0) return 0;
    if (sr_orig == sr_new) return n;
    /* >= 0.4.1: int(n * float(sr_new) / float(sr_orig)); before: int(n * (sr_new / sr_orig)),
     * which can round down one sample less (resampy issue #111) */
    if (version == RESAMPY_V02) return (int64_t)((double)n * ((double)sr_new / (double)sr_orig));
    return (int64_t)((double)n * (double)sr_new / (double)sr_orig);
}

/* The filter taps as the interpolation reads them. For an output sample the
 * left wing reads table entries offset, offset + step, offset + 2 step, ...
 * (step = index_step) and the right wing likewise from another offset; with
 * the table in resampy's order those reads are 23 kB apart and each misses the
 * cache. Here row r holds the (window, difference) pairs of entries
 * r, r + step, r + 2 step, ... side by side, so one wing is one sequential
 * read. The values are copies, so the arithmetic is unchanged. Row r has
 * resampy's tap count (nwin - r) / step, rounded down (so an entry near the
 * end of the table may be left out, as resampy leaves it out). Offsets run
 * from 0 to step inclusive (index_step rounds scale * num_table down); one
 * more row is kept for safety. */
typedef struct {
    double *pairs;       /* owned: row r at pairs + 2 * row_start[r] */
    int64_t *row_start;  /* owned: step + 3 entries (step + 2 rows and the end) */
    int64_t step;
} tap_rows_t;

static int tap_rows_build(tap_rows_t *rows, const double *win, const double *delta, int64_t nwin, int64_t step) {
    int64_t n_rows = step + 2;
    rows->step = step;
    rows->row_start = malloc((size_t)(n_rows + 1) * sizeof(int64_t));
    /* rows step and step + 1 repeat the entries of rows 0 and 1 */
    rows->pairs = malloc((size_t)(nwin + 2 * (nwin / step + 1)) * 2 * sizeof(double));
    if (!rows->row_start || !rows->pairs) return -1;
    int64_t at = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        rows->row_start[r] = at;
        int64_t count = r < nwin ? (nwin - r) / step : 0;
        for (int64_t i = 0; i < count; i++, at++) {
            rows->pairs[2 * at] = win[r + i * step];
            rows->pairs[2 * at + 1] = delta[r + i * step];
        }
    }
    rows->row_start[n_rows] = at;
    return 0;
}

static void tap_rows_free(tap_rows_t *rows) {
    free(rows->pairs);
    free(rows->row_start);
}

/* One output sample at input time `time` (in input samples): the left wing
 * over x[n], x[n-1], ... then the right wing over x[n+1], x[n+2], ..., summed
 * in that order as resampy does. (nwin - offset) / step taps per wing at most,
 * which is exactly the length of row `offset`. */
static double interpolate_at(const double *x, int64_t n_in, double time, const tap_rows_t *rows, int64_t num_table,
                             double scale) {
    int64_t n = (int64_t)time;
    double frac = scale * (time - (double)n);
    double index_frac = frac * (double)num_table;
    int64_t offset = (int64_t)index_frac;
    double eta = index_frac - (double)offset;
    if (offset > rows->step + 1) fatal("resample: filter offset %lld past %lld", (long long)offset, (long long)rows->step);
    const double *taps = rows->pairs + 2 * rows->row_start[offset];
    int64_t i_max = rows->row_start[offset + 1] - rows->row_start[offset];
    if (n + 1 < i_max) i_max = n + 1;
    double acc = 0.0;
    for (int64_t i = 0; i < i_max; i++) {
        double weight = taps[2 * i] + eta * taps[2 * i + 1];
        acc += weight * x[n - i];
    }
    frac = scale - frac;
    index_frac = frac * (double)num_table;
    offset = (int64_t)index_frac;
    eta = index_frac - (double)offset;
    if (offset > rows->step + 1) fatal("resample: filter offset %lld past %lld", (long long)offset, (long long)rows->step);
    taps = rows->pairs + 2 * rows->row_start[offset];
    int64_t k_max = rows->row_start[offset + 1] - rows->row_start[offset];
    if (n_in - n - 1 < k_max) k_max = n_in - n - 1;
    for (int64_t k = 0; k < k_max; k++) {
        double weight = taps[2 * k] + eta * taps[2 * k + 1];
        acc += weight * x[n + k + 1];
    }
    return acc;
}

err_code_t resampy_resample(const double *x, int64_t n, int sr_orig, int sr_new, resampy_version_t version, double *y,
                            err_t *err) {
    if (sr_orig <= 0 || sr_new <= 0)
        return err_set(err, ERR_ARG, "resample: invalid sample rates %d -> %d", sr_orig, sr_new);
    if (sr_orig == sr_new) {
        if (n > 0) memcpy(y, x, (size_t)n * sizeof(double));
        return ERR_OK;
    }
    int64_t n_out = resampy_output_length(n, sr_orig, sr_new, version);
    if (n_out < 1)
        return err_set(err, ERR_ARG, "resample: %lld samples are too few to resample from %d to %d Hz", (long long)n,
                       sr_orig, sr_new);
    const resampy_filter_t *f = resampy_filter(version);
    double sample_ratio = (double)sr_new / (double)sr_orig;
    /* downsampling narrows the filter: resampy scales the table by the ratio
     * (a copy) before taking the differences between neighbouring entries */
    int64_t nwin = f->length;
    double *win = malloc((size_t)nwin * 2 * sizeof(double));
    if (!win) return err_set(err, ERR_NOMEM, "resample: out of memory for the filter table");
    double *delta = win + nwin;
    for (int64_t i = 0; i < nwin; i++) win[i] = sample_ratio < 1.0 ? sample_ratio * f->half_window[i] : f->half_window[i];
    for (int64_t i = 0; i + 1 < nwin; i++) delta[i] = win[i + 1] - win[i];
    delta[nwin - 1] = 0.0;
    double scale = sample_ratio < 1.0 ? sample_ratio : 1.0;
    double time_increment = 1.0 / sample_ratio;
    int64_t index_step = (int64_t)(scale * (double)f->num_table);
    tap_rows_t rows;
    if (tap_rows_build(&rows, win, delta, nwin, index_step) != 0) {
        tap_rows_free(&rows);
        free(win);
        return err_set(err, ERR_NOMEM, "resample: out of memory for the filter table");
    }
    if (version == RESAMPY_V02) {
        /* 0.2.x advanced a time register by repeated addition: serial */
        double time = 0.0;
        for (int64_t t = 0; t < n_out; t++) {
            y[t] = interpolate_at(x, n, time, &rows, f->num_table, scale);
            time += time_increment;
        }
    } else {
#pragma omp parallel for schedule(static) if (n_out > 4096)
        for (int64_t t = 0; t < n_out; t++)
            y[t] = interpolate_at(x, n, (double)t * time_increment, &rows, f->num_table, scale);
    }
    tap_rows_free(&rows);
    free(win);
    return ERR_OK;
}
