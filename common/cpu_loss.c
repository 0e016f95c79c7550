/* cpu_loss.c - CPU kernels: BCE with logits, dice loss, weighted softmax
 * cross-entropy and the AdamW update.
 *
 * Elementwise and per-row work runs under OpenMP; the sums that form one
 * scalar loss run serially in double so that the result is the same on every
 * run. Every backward writes only the gradient of its own elements (rows), so
 * none of them needs a serial scatter. */
#include <math.h>

#include "adamw_math.h"
#include "cpu_kernels.h"

/* sigmoid without overflow for large |x| */
static double sigmoid_d(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* ---- BCE with logits (elementwise) ---- */

/* torch's stable form: max(x, 0) - x t + log(1 + exp(-|x|)) */
static void cpu_bce_logits_forward(float *out, const float *x, const float *t, int64_t n) {
#pragma omp parallel for if (n > 16384)
    for (int64_t i = 0; i < n; i++) {
        double xi = x[i];
        out[i] = (float)(fmax(xi, 0.0) - xi * (double)t[i] + log1p(exp(-fabs(xi))));
    }
}

/* d/dx = sigmoid(x) - t */
static void cpu_bce_logits_backward(float *dx, const float *dout, const float *x, const float *t, int64_t n) {
    if (!dx) return;
#pragma omp parallel for if (n > 16384)
    for (int64_t i = 0; i < n; i++) dx[i] += (float)((double)dout[i] * (sigmoid_d(x[i]) - (double)t[i]));
}

/* ---- dice loss per row ---- */

/* The row's sums: sp = sum p, st = sum t, spt = sum p t, with p = sigmoid(x). */
static void dice_row_sums(const float *x, const float *t, int64_t n, double *sp, double *st, double *spt) {
    double a = 0.0, b = 0.0, c = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double p = sigmoid_d(x[j]);
        a += p;
        b += t[j];
        c += p * t[j];
    }
    *sp = a;
    *st = b;
    *spt = c;
}

/* out[r] = 1 - (2 spt + 1) / (sp + st + 1) */
static void cpu_dice_forward(float *out, const float *x, const float *t, int64_t rows, int64_t n) {
#pragma omp parallel for if (rows * n > 16384)
    for (int64_t r = 0; r < rows; r++) {
        double sp, st, spt;
        dice_row_sums(x + r * n, t + r * n, n, &sp, &st, &spt);
        out[r] = (float)(1.0 - (2.0 * spt + 1.0) / (sp + st + 1.0));
    }
}

/* With num = 2 spt + 1 and den = sp + st + 1, loss = 1 - num/den, so
 * d loss / d p_j = (num - 2 t_j den) / den^2 and d p_j / d x_j = p_j (1 - p_j). */
static void cpu_dice_backward(float *dx, const float *dout, const float *x, const float *t, int64_t rows,
                              int64_t n) {
    if (!dx) return;
#pragma omp parallel for if (rows * n > 16384)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n, *tr = t + r * n;
        double sp, st, spt;
        dice_row_sums(xr, tr, n, &sp, &st, &spt);
        double num = 2.0 * spt + 1.0, den = sp + st + 1.0;
        double g = (double)dout[r] / (den * den);
        for (int64_t j = 0; j < n; j++) {
            double p = sigmoid_d(xr[j]);
            dx[r * n + j] += (float)(g * (num - 2.0 * (double)tr[j] * den) * p * (1.0 - p));
        }
    }
}

/* ---- weighted softmax cross-entropy, reduction 'mean' ---- */

/* log(sum_c exp(l_c)) of one row, shifted by its max for range */
static double row_logsumexp(const float *l, int64_t classes) {
    double m = -INFINITY;
    for (int64_t c = 0; c < classes; c++)
        if (l[c] > m) m = l[c];
    double s = 0.0;
    for (int64_t c = 0; c < classes; c++) s += exp((double)l[c] - m);
    return m + log(s);
}

/* The normaliser W = sum_i w[y_i] over rows that are not ignored. */
static double xent_total_weight(const int64_t *target, const float *weight, int64_t rows, int64_t ignore_index) {
    double w = 0.0;
    for (int64_t i = 0; i < rows; i++)
        if (target[i] != ignore_index) w += weight ? (double)weight[target[i]] : 1.0;
    return w;
}

/* out[0] = sum_i w[y_i] (lse_i - l[i, y_i]) / W. With every row ignored W = 0
 * and the result is 0/0 = NaN, as in torch. The ops layer has checked that each
 * target is in [0, classes) or equal to ignore_index. */
static void cpu_softmax_xent_forward(float *out, const float *logits, const int64_t *target, const float *weight,
                                     int64_t rows, int64_t classes, int64_t ignore_index) {
    double s = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        int64_t y = target[i];
        if (y == ignore_index) continue;
        const float *l = logits + i * classes;
        double w = weight ? (double)weight[y] : 1.0;
        s += w * (row_logsumexp(l, classes) - (double)l[y]);
    }
    out[0] = (float)(s / xent_total_weight(target, weight, rows, ignore_index));
}

static void cpu_softmax_xent_backward(float *dlogits, const float *dout, const float *logits, const int64_t *target,
                                      const float *weight, int64_t rows, int64_t classes, int64_t ignore_index) {
    if (!dlogits) return;
    double total = xent_total_weight(target, weight, rows, ignore_index);
    double g = (double)dout[0] / total;
#pragma omp parallel for if (rows * classes > 16384)
    for (int64_t i = 0; i < rows; i++) {
        int64_t y = target[i];
        if (y == ignore_index) continue; /* ignored rows get no gradient */
        const float *l = logits + i * classes;
        double lse = row_logsumexp(l, classes);
        double gi = g * (weight ? (double)weight[y] : 1.0);
        for (int64_t c = 0; c < classes; c++) {
            double p = exp((double)l[c] - lse);
            dlogits[i * classes + c] += (float)(gi * (p - (c == y ? 1.0 : 0.0)));
        }
    }
}

/* ---- AdamW ---- */

/* torch.optim.AdamW, one step (adamw_math.h) */
static void cpu_adamw_step(float *p, const float *g, float *m, float *v, int64_t n, const adamw_scalars_t *s) {
    const adamw_scalars_t sc = *s;
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) adamw_element(&p[i], g[i], &m[i], &v[i], sc);
}

void cpu_register_loss(backend_t *be) {
    be->bce_logits_forward = cpu_bce_logits_forward;
    be->bce_logits_backward = cpu_bce_logits_backward;
    be->dice_forward = cpu_dice_forward;
    be->dice_backward = cpu_dice_backward;
    be->softmax_xent_forward = cpu_softmax_xent_forward;
    be->softmax_xent_backward = cpu_softmax_xent_backward;
    be->adamw_step = cpu_adamw_step;
}
