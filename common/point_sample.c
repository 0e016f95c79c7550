/* point_sample.c - sample_point on the tape, and the uncertainty choice of
 * training points (see point_sample.h). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops.h"
#include "point_sample.h"

tensor_t *point_sample(ctx_t *ctx, tensor_t *features, tensor_t *coords) {
    char sf[96], sc[96];
    if (features->ndim != 4 || coords->ndim != 3 || coords->shape[0] != features->shape[0] || coords->shape[2] != 2)
        fatal("point_sample: features %s, coords %s (want [n, c, h, w] and [n, p, 2])",
              tensor_shape_str(features, sf, 96), tensor_shape_str(coords, sc, 96));
    int64_t n = features->shape[0], c = features->shape[1], p = coords->shape[1];
    /* sample_point turns [n, p, 2] into a grid of p rows and one column */
    int64_t grid_shape[4] = {n, p, 1, 2};
    tensor_t *grid = op_affine(ctx, op_reshape(ctx, coords, 4, grid_shape), 2.0f, -1.0f);
    tensor_t *sampled = op_grid_sample(ctx, features, grid); /* [n, c, p, 1] */
    int64_t out_shape[3] = {n, c, p};
    return op_reshape(ctx, sampled, 3, out_shape);
}

/* Sort key of one oversampled point, ascending = most uncertain first:
 * |logit| as its IEEE bits (for non-negative floats the bit order is the
 * numeric order) plus one, with 0 kept for NaN, which topk ranks above every
 * number; the point's index in the low 32 bits breaks ties. */
static uint64_t uncertainty_key(float logit, int64_t index) {
    uint32_t bits;
    memcpy(&bits, &logit, sizeof bits);
    bits &= 0x7fffffffu; /* |logit| */
    bits = bits > 0x7f800000u ? 0 : bits + 1;
    return ((uint64_t)bits << 32) | (uint64_t)index;
}

/* LSD radix sort of keys (8 bits per pass), ascending; tmp as long as keys */
static void radix_sort_u64(uint64_t *keys, uint64_t *tmp, int64_t n) {
    for (int shift = 0; shift < 64; shift += 8) {
        int64_t count[257] = {0};
        for (int64_t i = 0; i < n; i++) count[((keys[i] >> shift) & 0xff) + 1]++;
        if (count[((keys[0] >> shift) & 0xff) + 1] == n) continue; /* one bucket: the pass changes nothing */
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (int64_t i = 0; i < n; i++) tmp[count[(keys[i] >> shift) & 0xff]++] = keys[i];
        memcpy(keys, tmp, (size_t)n * sizeof *keys);
    }
}

void point_select_uncertain(const float *oversampled_logits, const float *oversampled_coords, int64_t n, int64_t m,
                            int64_t k, const float *random_coords, int64_t n_random, float *out) {
    if (k < 0 || k > m || m >= ((int64_t)1 << 32) || n_random < 0)
        fatal("point_select_uncertain: k = %lld of m = %lld oversampled points, %lld random", (long long)k,
              (long long)m, (long long)n_random);
    int64_t per_row = k + n_random;
    uint64_t *keys = malloc((size_t)(m ? m : 1) * sizeof *keys), *tmp = malloc((size_t)(m ? m : 1) * sizeof *tmp);
    if (!keys || !tmp) fatal("point_select_uncertain: out of memory for %lld points", (long long)m);
    for (int64_t i = 0; i < n; i++) {
        const float *logits = oversampled_logits + i * m, *coords = oversampled_coords + i * m * 2;
        float *row = out + i * per_row * 2;
        if (k > 0) {
            for (int64_t j = 0; j < m; j++) keys[j] = uncertainty_key(logits[j], j);
            radix_sort_u64(keys, tmp, m);
            for (int64_t j = 0; j < k; j++) {
                int64_t src = (int64_t)(keys[j] & 0xffffffffu);
                row[j * 2] = coords[src * 2];
                row[j * 2 + 1] = coords[src * 2 + 1];
            }
        }
        if (n_random > 0)
            memcpy(row + k * 2, random_coords + i * n_random * 2, (size_t)n_random * 2 * sizeof(float));
    }
    free(keys);
    free(tmp);
}
