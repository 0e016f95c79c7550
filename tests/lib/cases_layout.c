/* cases_layout.c - op kinds: reshape, permute, slice, concat, roll, embedding,
 * and Swin's (shifted) window partition built from them.
 * Cases: tests/reference/ops_layout.py. */
#include "error.h"
#include "op_cases.h"

/* args: the new shape */
static tensor_t *run_reshape(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n;
    return op_reshape(c, in[0], na, a);
}
/* args: the permutation, one entry per dim */
static tensor_t *run_permute(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n;
    int perm[TENSOR_MAX_DIMS];
    if (na != in[0]->ndim) fatal("permute case: %d args for %d dims", na, in[0]->ndim);
    for (int i = 0; i < na; i++) perm[i] = (int)a[i];
    return op_permute(c, in[0], perm);
}
/* args: dim, start, end */
static tensor_t *run_slice(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_slice(c, in[0], (int)a[0], a[1], a[2]);
}
/* inputs: the pieces; args: dim */
static tensor_t *run_concat(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)na;
    return op_concat(c, in, n, (int)a[0]);
}
/* args: k, then k shifts, then k dims */
static tensor_t *run_roll(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n;
    int k = (int)a[0], dims[TENSOR_MAX_DIMS];
    if (k < 1 || k > TENSOR_MAX_DIMS || na != 1 + 2 * k) fatal("roll case: %d args for %d shifts", na, k);
    for (int i = 0; i < k; i++) dims[i] = (int)a[1 + k + i];
    return op_roll(c, in[0], k, a + 1, dims);
}
/* args: the shift of the flattened tensor (torch.roll without dims) */
static tensor_t *run_roll_flat(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_roll(c, in[0], 1, a, NULL);
}
/* inputs: weight, indices (I64) */
static tensor_t *run_embedding(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_embedding(c, in[0], in[1]);
}
/* x [b, h, w, c] -> [b * h/ws * w/ws, ws, ws, c], rolled by -shift on h and w
 * first when shift > 0 (Swin's shifted windows); args: ws, shift */
static tensor_t *run_window_partition(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    tensor_t *x = in[0];
    int64_t ws = a[0], shift = a[1];
    int64_t b = x->shape[0], h = x->shape[1], w = x->shape[2], ch = x->shape[3];
    if (shift) {
        int64_t shifts[2] = {-shift, -shift};
        int dims[2] = {1, 2};
        x = op_roll(c, x, 2, shifts, dims);
    }
    int64_t s6[6] = {b, h / ws, ws, w / ws, ws, ch};
    int perm[6] = {0, 1, 3, 2, 4, 5};
    int64_t s4[4] = {-1, ws, ws, ch};
    return op_reshape(c, op_permute(c, op_reshape(c, x, 6, s6), perm), 4, s4);
}

const op_kind_t op_kinds_layout[] = {
    {"reshape", run_reshape, 0, 0},
    {"permute", run_permute, 0, 0},
    {"slice", run_slice, 0, 0},
    {"concat", run_concat, 0, 0},
    {"roll", run_roll, 0, 0},
    {"roll_flat", run_roll_flat, 0, 0},
    {"embedding", run_embedding, 0, 0},
    {"window_partition", run_window_partition, 0, 0},
    {NULL, NULL, 0, 0},
};
