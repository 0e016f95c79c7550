#include "pil_resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fixed-point weights: 32 bits less 8 for the sample value and 2 for the
 * overshoot of filters with negative lobes. */
#define WEIGHT_BITS 22

/* ---- the filters, in double as Pillow evaluates them ---- */

static double box_filter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double bilinear_filter(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_filter(double x) {
    x = fabs(x);
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x *= M_PI;
    /* Pillow writes the window's constants as floats: 0.54f and 0.46f, which
     * are not 0.54 and 0.46 in double */
    return sin(x) / x * ((double)0.54f + (double)0.46f * cos(x));
}

static double bicubic_filter(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos_filter(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

typedef struct {
    const char *name;
    double (*fn)(double);
    double support;
} filter_t;

static const filter_t *filter_of(int filter) {
    static const filter_t lanczos = {"lanczos", lanczos_filter, 3.0};
    static const filter_t bilinear = {"bilinear", bilinear_filter, 1.0};
    static const filter_t bicubic = {"bicubic", bicubic_filter, 2.0};
    static const filter_t box = {"box", box_filter, 0.5};
    static const filter_t hamming = {"hamming", hamming_filter, 1.0};
    switch (filter) {
    case PIL_FILTER_LANCZOS: return &lanczos;
    case PIL_FILTER_BILINEAR: return &bilinear;
    case PIL_FILTER_BICUBIC: return &bicubic;
    case PIL_FILTER_BOX: return &box;
    case PIL_FILTER_HAMMING: return &hamming;
    }
    return NULL;
}

const char *pil_filter_name(int filter) {
    const filter_t *f = filter_of(filter);
    return f ? f->name : NULL;
}

/* ---- the weights of one axis ---- */

typedef struct {
    int ksize;        /* weights stored per output */
    int *first;       /* [out]: first input index read */
    int *count;       /* [out]: inputs read */
    int32_t *weights; /* [out * ksize]: fixed-point, WEIGHT_BITS fractional bits */
} axis_weights_t;

static void axis_weights_free(axis_weights_t *a) {
    free(a->first);
    free(a->count);
    free(a->weights);
    memset(a, 0, sizeof *a);
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for the whole-image box
 * (0, in_size): the same double expressions in the same order. */
static err_code_t axis_weights_compute(int in_size, int out_size, const filter_t *f, axis_weights_t *a, err_t *err) {
    memset(a, 0, sizeof *a);
    /* Pillow takes the box as floats: (float)in_size - 0.0f, then double */
    double scale = (double)(float)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    a->ksize = ksize;
    a->first = malloc(sizeof(int) * (size_t)out_size);
    a->count = malloc(sizeof(int) * (size_t)out_size);
    a->weights = malloc(sizeof(int32_t) * (size_t)out_size * (size_t)ksize);
    double *k = malloc(sizeof(double) * (size_t)ksize);
    if (!a->first || !a->count || !a->weights || !k) {
        free(k);
        axis_weights_free(a);
        return err_set(err, ERR_NOMEM, "out of memory for resampling weights (%d -> %d)", in_size, out_size);
    }
    double inv_filterscale = 1.0 / filterscale;
    for (int i = 0; i < out_size; i++) {
        double center = 0.0 + (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        if (n > ksize) n = ksize; /* cannot happen: ksize >= 2 * support + 1 */
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            double w = f->fn((j + lo - center + 0.5) * inv_filterscale);
            k[j] = w;
            sum += w;
        }
        if (sum != 0.0)
            for (int j = 0; j < n; j++) k[j] /= sum;
        int32_t *w = a->weights + (size_t)i * ksize;
        for (int j = 0; j < ksize; j++) {
            double v = j < n ? k[j] : 0.0;
            /* rounded half away from zero, as Pillow does */
            w[j] = v < 0 ? (int32_t)(-0.5 + v * (1 << WEIGHT_BITS)) : (int32_t)(0.5 + v * (1 << WEIGHT_BITS));
        }
        a->first[i] = lo;
        a->count[i] = n;
    }
    free(k);
    return ERR_OK;
}

/* acc >> 22 clipped to 0..255; a negative acc gives 0 (Pillow's table does
 * the same for the floor of a negative shift). */
static inline uint8_t clip_u8(int32_t acc) {
    if (acc < 0) return 0;
    acc >>= WEIGHT_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

/* ---- the two passes ---- */

/* Rows [row0, row0 + n_rows) of src (width sw) to n_rows rows of width dw.
 * Always inlined with a constant ch, so that the channel loop unrolls into
 * registers; the weights are read through locals because a store to a
 * uint8_t may alias anything and would force them to be reloaded. */
static inline __attribute__((always_inline)) void horizontal_pass(const uint8_t *src, int sw, int ch, int row0,
                                                                  int n_rows, uint8_t *dst, int dw,
                                                                  const axis_weights_t *a) {
    const int32_t *weights = a->weights;
    const int *first = a->first, *count = a->count;
    const size_t ksize = (size_t)a->ksize;
    for (int y = 0; y < n_rows; y++) {
        const uint8_t *in = src + (size_t)(row0 + y) * sw * ch;
        uint8_t *out = dst + (size_t)y * dw * ch;
        for (int x = 0; x < dw; x++) {
            const int32_t *w = weights + (size_t)x * ksize;
            const uint8_t *p = in + (size_t)first[x] * ch;
            const int n = count[x];
            int32_t acc[4] = {1 << (WEIGHT_BITS - 1), 1 << (WEIGHT_BITS - 1), 1 << (WEIGHT_BITS - 1),
                              1 << (WEIGHT_BITS - 1)};
            for (int t = 0; t < n; t++)
                for (int c = 0; c < ch; c++) acc[c] += p[t * ch + c] * w[t];
            for (int c = 0; c < ch; c++) out[x * ch + c] = clip_u8(acc[c]);
        }
    }
}

/* src: rows of row_bytes bytes; dst: dh rows of row_bytes bytes. The sum of
 * each output row is accumulated tap by tap over the whole row (same integer
 * result as Pillow's per-pixel loop, in an order that vectorises). */
static void vertical_pass(const uint8_t *src, size_t row_bytes, uint8_t *dst, int dh, const axis_weights_t *a,
                          int32_t *acc) {
    for (int y = 0; y < dh; y++) {
        const int32_t *w = a->weights + (size_t)y * a->ksize;
        for (size_t i = 0; i < row_bytes; i++) acc[i] = 1 << (WEIGHT_BITS - 1);
        for (int t = 0; t < a->count[y]; t++) {
            const uint8_t *in = src + (size_t)(a->first[y] + t) * row_bytes;
            int32_t wt = w[t];
#pragma omp simd
            for (size_t i = 0; i < row_bytes; i++) acc[i] += in[i] * wt;
        }
        uint8_t *out = dst + (size_t)y * row_bytes;
#pragma omp simd
        for (size_t i = 0; i < row_bytes; i++) out[i] = clip_u8(acc[i]);
    }
}

/* Pillow 13's choice: vertical first when the height loses more than twice
 * as many pixels as the width (differences of sizes, not ratios). */
static int runs_vertical_first(pil_pass_order_t order, int sw, int sh, int dw, int dh) {
    long long lost_h = (long long)sh - dh, lost_w = (long long)sw - dw;
    return order == PIL_ORDER_PILLOW13 && lost_h > 0 && lost_h > 2 * lost_w;
}

static void run_horizontal(const uint8_t *src, int sw, int ch, int row0, int n_rows, uint8_t *dst, int dw,
                           const axis_weights_t *a) {
    switch (ch) {
    case 1: horizontal_pass(src, sw, 1, row0, n_rows, dst, dw, a); break;
    case 3: horizontal_pass(src, sw, 3, row0, n_rows, dst, dw, a); break;
    default: horizontal_pass(src, sw, 4, row0, n_rows, dst, dw, a); break;
    }
}

/* Both passes, with the weights of each axis computed (wv.ksize 0 when the
 * height does not change, wh.ksize 0 when the width does not). */
static err_code_t run_passes(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh,
                             axis_weights_t *wh, axis_weights_t *wv, int vertical_first, err_t *err) {
    if (!wv->ksize) {
        run_horizontal(src, sw, ch, 0, sh, dst, dw, wh);
        return ERR_OK;
    }
    /* the vertical pass reads rows of the source when it comes first or
     * alone, rows of the dw-wide intermediate otherwise */
    int horizontal_then_vertical = wh->ksize && !vertical_first;
    size_t vertical_row_bytes = (size_t)(horizontal_then_vertical ? dw : sw) * ch;
    int32_t *acc = malloc(sizeof(int32_t) * vertical_row_bytes);
    if (!acc) return err_set(err, ERR_NOMEM, "resample: out of memory for a row of %zu bytes", vertical_row_bytes);
    if (!wh->ksize) {
        vertical_pass(src, vertical_row_bytes, dst, dh, wv, acc);
        free(acc);
        return ERR_OK;
    }
    /* horizontal first covers only the rows the vertical pass reads */
    int row0 = horizontal_then_vertical ? wv->first[0] : 0;
    int n_rows = horizontal_then_vertical ? wv->first[dh - 1] + wv->count[dh - 1] - row0 : dh;
    int tmp_width = horizontal_then_vertical ? dw : sw;
    uint8_t *tmp = malloc((size_t)tmp_width * n_rows * ch);
    if (!tmp) {
        free(acc);
        return err_set(err, ERR_NOMEM, "resample: out of memory for a %dx%d intermediate image", tmp_width, n_rows);
    }
    if (horizontal_then_vertical) {
        run_horizontal(src, sw, ch, row0, n_rows, tmp, dw, wh);
        for (int y = 0; y < dh; y++) wv->first[y] -= row0; /* the intermediate starts at source row row0 */
        vertical_pass(tmp, vertical_row_bytes, dst, dh, wv, acc);
    } else {
        vertical_pass(src, vertical_row_bytes, tmp, dh, wv, acc);
        run_horizontal(tmp, sw, ch, 0, dh, dst, dw, wh);
    }
    free(tmp);
    free(acc);
    return ERR_OK;
}

err_code_t pil_resample_u8(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh,
                           pil_filter_t filter, pil_pass_order_t order, err_t *err) {
    const filter_t *f = filter_of(filter);
    if (!f)
        return err_set(err, ERR_ARG, "resample: unknown Pillow filter %d (1..5: lanczos, bilinear, bicubic, box, hamming)",
                       (int)filter);
    if (order != PIL_ORDER_HORIZONTAL_FIRST && order != PIL_ORDER_PILLOW13)
        return err_set(err, ERR_ARG, "resample: unknown pass order %d", (int)order);
    if (sw < 1 || sh < 1 || dw < 1 || dh < 1)
        return err_set(err, ERR_ARG, "resample: sizes must be positive (%dx%d -> %dx%d)", sw, sh, dw, dh);
    if (ch != 1 && ch != 3 && ch != 4) return err_set(err, ERR_ARG, "resample: %d channels (1, 3 or 4)", ch);
    if (dw == sw && dh == sh) {
        memcpy(dst, src, (size_t)sw * sh * ch);
        return ERR_OK;
    }
    axis_weights_t wh = {0}, wv = {0};
    err_code_t code = ERR_OK;
    if (dh != sh) code = axis_weights_compute(sh, dh, f, &wv, err);
    if (code == ERR_OK && dw != sw) code = axis_weights_compute(sw, dw, f, &wh, err);
    if (code == ERR_OK)
        code = run_passes(src, sw, sh, ch, dst, dw, dh, &wh, &wv, runs_vertical_first(order, sw, sh, dw, dh), err);
    axis_weights_free(&wh);
    axis_weights_free(&wv);
    return code;
}
