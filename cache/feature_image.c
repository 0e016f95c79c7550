/* feature_image.c - PCA and channel-grid pictures of feature maps. */
#include "feature_image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int auto_scale(int scale, int64_t w, int64_t h) {
    if (scale > 0) return scale;
    int64_t longer = w > h ? w : h;
    int s = 1;
    while (s < 16 && longer * s < 256) s++;
    return s;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The top eigenvector of the symmetric m x m matrix a (power iteration),
 * then a -= lambda v v^T so the next call finds the next one. */
static void top_eigenvector(double *a, int64_t m, double *v, double *tmp) {
    for (int64_t i = 0; i < m; i++) v[i] = 1.0 + 0.01 * (double)(i % 97); /* fixed start: the same picture every run */
    double lambda = 0.0;
    for (int it = 0; it < 500; it++) {
        double norm = 0.0;
        for (int64_t i = 0; i < m; i++) {
            double s = 0.0;
            const double *row = a + i * m;
            for (int64_t j = 0; j < m; j++) s += row[j] * v[j];
            tmp[i] = s;
            norm += s * s;
        }
        norm = sqrt(norm);
        if (norm == 0.0) break;
        double change = 0.0;
        for (int64_t i = 0; i < m; i++) {
            double nv = tmp[i] / norm;
            change += fabs(nv - v[i]);
            v[i] = nv;
        }
        lambda = norm;
        if (change < 1e-10 * (double)m) break;
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) a[i * m + j] -= lambda * v[i] * v[j];
}

err_code_t feature_image_pca(const float *x, int64_t c, int64_t h, int64_t w, int scale, uint8_t **rgb, int *out_w,
                             int *out_h, err_t *err) {
    *rgb = NULL;
    int64_t n = h * w;
    if (c < 1 || h < 1 || w < 1 || c > 65536 || n > (1 << 26))
        return err_set(err, ERR_ARG, "feature map [%lld, %lld, %lld] is empty or too large for a picture", (long long)c,
                       (long long)h, (long long)w);
    int k = c < 3 ? (int)c : 3;
    /* work in the smaller of the channel covariance (c x c) and the pixel Gram matrix (n x n) */
    int64_t m = c <= n ? c : n;
    double *xc = malloc((size_t)(c * n) * sizeof *xc);
    double *a = malloc((size_t)(m * m) * sizeof *a);
    double *v = malloc((size_t)(m > c ? m : c) * sizeof *v), *tmp = malloc((size_t)(m > c ? m : c) * sizeof *tmp);
    double *scores = malloc((size_t)(3 * n) * sizeof *scores), *sorted = malloc((size_t)n * sizeof *sorted);
    err_code_t ec = ERR_OK;
    if (!xc || !a || !v || !tmp || !scores || !sorted) {
        ec = err_set(err, ERR_NOMEM, "feature picture: out of memory");
        goto done;
    }
    for (int64_t ch = 0; ch < c; ch++) {
        /* non-finite values (a damaged map) count as the channel mean */
        double mean = 0.0;
        int64_t finite = 0;
        for (int64_t p = 0; p < n; p++)
            if (isfinite(x[ch * n + p])) {
                mean += x[ch * n + p];
                finite++;
            }
        mean = finite ? mean / (double)finite : 0.0;
        for (int64_t p = 0; p < n; p++) xc[ch * n + p] = isfinite(x[ch * n + p]) ? x[ch * n + p] - mean : 0.0;
    }
    if (m == c) {
        for (int64_t i = 0; i < c; i++)
            for (int64_t j = i; j < c; j++) {
                double s = 0.0;
                for (int64_t p = 0; p < n; p++) s += xc[i * n + p] * xc[j * n + p];
                a[i * c + j] = a[j * c + i] = s / (double)n;
            }
    } else {
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p; q < n; q++) {
                double s = 0.0;
                for (int64_t ch = 0; ch < c; ch++) s += xc[ch * n + p] * xc[ch * n + q];
                a[p * n + q] = a[q * n + p] = s / (double)n;
            }
    }
    memset(scores, 0, (size_t)(3 * n) * sizeof *scores);
    for (int comp = 0; comp < k; comp++) {
        double *s = scores + comp * n;
        top_eigenvector(a, m, v, tmp);
        if (m == c) {
            for (int64_t p = 0; p < n; p++) {
                double d = 0.0;
                for (int64_t ch = 0; ch < c; ch++) d += xc[ch * n + p] * v[ch];
                s[p] = d;
            }
            /* v is the channel direction already */
        } else {
            memcpy(s, v, (size_t)n * sizeof *s);
            /* the channel direction is xc u, needed only for its sign */
            for (int64_t ch = 0; ch < c; ch++) {
                double d = 0.0;
                for (int64_t p = 0; p < n; p++) d += xc[ch * n + p] * s[p];
                tmp[ch] = d;
            }
            memcpy(v, tmp, (size_t)c * sizeof *v);
        }
        int64_t big = 0;
        for (int64_t ch = 1; ch < c; ch++)
            if (fabs(v[ch]) > fabs(v[big])) big = ch;
        if (v[big] < 0)
            for (int64_t p = 0; p < n; p++) s[p] = -s[p];
    }
    int sc = auto_scale(scale, w, h);
    int64_t W = w * sc, H = h * sc;
    *rgb = malloc((size_t)(W * H * 3));
    if (!*rgb) {
        ec = err_set(err, ERR_NOMEM, "feature picture: out of memory");
        goto done;
    }
    memset(*rgb, 0, (size_t)(W * H * 3));
    for (int comp = 0; comp < k; comp++) {
        const double *s = scores + comp * n;
        memcpy(sorted, s, (size_t)n * sizeof *sorted);
        qsort(sorted, (size_t)n, sizeof *sorted, compare_doubles);
        double lo = sorted[(int64_t)((double)(n - 1) * 0.01)], hi = sorted[(int64_t)((double)(n - 1) * 0.99)];
        double span = hi > lo ? hi - lo : 1.0;
        for (int64_t y = 0; y < H; y++)
            for (int64_t xx = 0; xx < W; xx++) {
                double t = (s[(y / sc) * w + xx / sc] - lo) / span;
                t = !(t > 0) ? 0 : t > 1 ? 1 : t; /* NaN counts as 0 */
                uint8_t val = (uint8_t)lround(t * 255.0);
                uint8_t *px = *rgb + (y * W + xx) * 3;
                if (k == 1) px[0] = px[1] = px[2] = val;
                else px[comp] = val;
            }
    }
    *out_w = (int)W;
    *out_h = (int)H;
done:
    free(xc);
    free(a);
    free(v);
    free(tmp);
    free(scores);
    free(sorted);
    return ec;
}

err_code_t feature_image_grid(const float *x, int64_t c, int64_t h, int64_t w, int scale, uint8_t **gray, int *out_w,
                              int *out_h, err_t *err) {
    *gray = NULL;
    if (c < 1 || h < 1 || w < 1 || c * h * w > (1 << 28))
        return err_set(err, ERR_ARG, "feature map [%lld, %lld, %lld] is empty or too large for a picture", (long long)c,
                       (long long)h, (long long)w);
    int64_t cols = (int64_t)ceil(sqrt((double)c));
    int64_t rows = (c + cols - 1) / cols;
    int sc = auto_scale(scale, cols * (w + 1), rows * (h + 1));
    if (scale <= 0 && (cols * (w + 1) > 256 || rows * (h + 1) > 256)) sc = 1;
    int64_t tw = w * sc, th = h * sc;
    int64_t W = cols * (tw + 1) - 1, H = rows * (th + 1) - 1;
    if (W * H > (1 << 28)) return err_set(err, ERR_ARG, "feature grid of %lld x %lld pixels is too large", (long long)W, (long long)H);
    *gray = malloc((size_t)(W * H));
    if (!*gray) return err_set(err, ERR_NOMEM, "feature picture: out of memory");
    memset(*gray, 24, (size_t)(W * H)); /* the gaps */
    for (int64_t ch = 0; ch < c; ch++) {
        const float *plane = x + ch * h * w;
        float lo = plane[0], hi = plane[0];
        for (int64_t p = 1; p < h * w; p++) {
            if (plane[p] < lo) lo = plane[p];
            if (plane[p] > hi) hi = plane[p];
        }
        float span = hi > lo ? hi - lo : 1.0f;
        int64_t ox = (ch % cols) * (tw + 1), oy = (ch / cols) * (th + 1);
        for (int64_t y = 0; y < th; y++)
            for (int64_t xx = 0; xx < tw; xx++) {
                float t = (plane[(y / sc) * w + xx / sc] - lo) / span;
                (*gray)[(oy + y) * W + ox + xx] = (uint8_t)lroundf((!(t > 0) ? 0 : t > 1 ? 1 : t) * 255.0f);
            }
    }
    *out_w = (int)W;
    *out_h = (int)H;
    return ERR_OK;
}
