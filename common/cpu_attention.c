/* cpu_attention.c - CPU kernels: the attention mask and cosine similarity.
 *
 * The attention products themselves are GEMMs (cpu_core.c); only the mask is
 * a kernel of its own. Cosine similarity reduces each pair of rows in double;
 * its backward scatters into broadcast rows, so it runs serially (the same
 * sum order, and so the same bits, on every run). */
#include <math.h>

#include "cpu_kernels.h"

/* ---- attention mask on scores [batch, heads, lq, lk] ---- */

static void cpu_attn_mask_apply(float *scores, const void *mask, attn_mask_kind_t kind, int64_t batch,
                                int64_t heads, int64_t lq, int64_t lk, int64_t mask_batch, int64_t mask_heads) {
    if (kind == ATTN_MASK_NONE || !mask) return;
    int64_t plane = lq * lk;
#pragma omp parallel for if (batch * heads * plane > 65536)
    for (int64_t bh = 0; bh < batch * heads; bh++) {
        int64_t b = bh / heads, h = bh % heads;
        /* the mask's own (b, h) plane: index 0 along a dim it broadcasts over */
        int64_t mplane = ((mask_batch == 1 ? 0 : b) * mask_heads + (mask_heads == 1 ? 0 : h)) * plane;
        float *s = scores + bh * plane;
        if (kind == ATTN_MASK_BLOCK) {
            const uint8_t *m = (const uint8_t *)mask + mplane;
            /* branch-free so the compiler vectorizes it */
            for (int64_t i = 0; i < plane; i++) s[i] = m[i] ? -INFINITY : s[i];
        } else {
            const float *m = (const float *)mask + mplane;
            for (int64_t i = 0; i < plane; i++) s[i] += m[i];
        }
    }
}

/* ---- cosine similarity along rows of d, leading dims broadcast ---- */

/* Row offsets (in rows of d) of output row i into a and b under bc. */
static void row_offsets(const bcast_t *bc, int64_t i, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0;
    for (int dd = bc->ndim - 1; dd >= 0; dd--) {
        int64_t idx = i % bc->shape[dd];
        i /= bc->shape[dd];
        a += idx * bc->a_stride[dd];
        b += idx * bc->b_stride[dd];
    }
    *oa = a;
    *ob = b;
}

/* sum(a*b), |a|^2 and |b|^2 of one pair of rows, in double */
static void row_dots(const float *a, const float *b, int64_t d, double *ab, double *aa, double *bb) {
    double sab = 0.0, saa = 0.0, sbb = 0.0;
    for (int64_t j = 0; j < d; j++) {
        sab += (double)a[j] * (double)b[j];
        saa += (double)a[j] * (double)a[j];
        sbb += (double)b[j] * (double)b[j];
    }
    *ab = sab;
    *aa = saa;
    *bb = sbb;
}

static void cpu_cosine_forward(float *out, const float *a, const float *b, const bcast_t *bc, int64_t d, float eps) {
    double eps2 = (double)eps * (double)eps;
#pragma omp parallel for if (bc->numel * d > 32768)
    for (int64_t i = 0; i < bc->numel; i++) {
        int64_t oa, ob;
        row_offsets(bc, i, &oa, &ob);
        double ab, aa, bb;
        row_dots(a + oa * d, b + ob * d, d, &ab, &aa, &bb);
        out[i] = (float)(ab / sqrt(fmax(aa * bb, eps2)));
    }
}

/* With n = sqrt(|a|^2 |b|^2) at or above eps: df/da = b/n - f * a/|a|^2 (and the
 * same with a and b swapped). When the clamp bites n = eps is a constant
 * and df/da = b/eps, as torch's clamp_min passes no gradient to |a|^2 |b|^2. */
static void cpu_cosine_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                                const bcast_t *bc, int64_t d, float eps) {
    double eps2 = (double)eps * (double)eps;
    for (int64_t i = 0; i < bc->numel; i++) {
        int64_t oa, ob;
        row_offsets(bc, i, &oa, &ob);
        const float *ar = a + oa * d, *br = b + ob * d;
        double ab, aa, bb;
        row_dots(ar, br, d, &ab, &aa, &bb);
        double g = dout[i];
        double p = aa * bb;
        if (p >= eps2) { /* torch's clamp_min passes the gradient at equality */
            double n = sqrt(p), f = ab / n;
            double ka = g * f / aa, kb = g * f / bb;
            if (da)
                for (int64_t j = 0; j < d; j++) da[oa * d + j] += (float)(g * (double)br[j] / n - ka * (double)ar[j]);
            if (db)
                for (int64_t j = 0; j < d; j++) db[ob * d + j] += (float)(g * (double)ar[j] / n - kb * (double)br[j]);
        } else {
            double inv = 1.0 / (double)eps;
            if (da)
                for (int64_t j = 0; j < d; j++) da[oa * d + j] += (float)(g * (double)br[j] * inv);
            if (db)
                for (int64_t j = 0; j < d; j++) db[ob * d + j] += (float)(g * (double)ar[j] * inv);
        }
    }
}

void cpu_register_attention(backend_t *be) {
    be->attn_mask_apply = cpu_attn_mask_apply;
    be->cosine_forward = cpu_cosine_forward;
    be->cosine_backward = cpu_cosine_backward;
}
