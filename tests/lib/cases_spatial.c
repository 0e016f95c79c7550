/* cases_spatial.c - op kinds: conv2d, bilinear interpolation, grid sampling.
 * Cases: tests/reference/ops_spatial.py. */
#include "op_cases.h"

/* inputs: x, w, and optionally b; args: stride_h, stride_w, pad_h, pad_w */
static tensor_t *run_conv2d(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)na;
    return op_conv2d(c, in[0], in[1], n > 2 ? in[2] : NULL, (int)a[0], (int)a[1], (int)a[2], (int)a[3]);
}
/* args: oh, ow */
static tensor_t *run_interpolate(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_interpolate_bilinear(c, in[0], a[0], a[1]);
}
/* inputs: x, grid */
static tensor_t *run_grid_sample(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_grid_sample(c, in[0], in[1]);
}

const op_kind_t op_kinds_spatial[] = {
    {"conv2d", run_conv2d, 0, 0},
    {"interpolate", run_interpolate, 0, 0},
    {"grid_sample", run_grid_sample, 0, 0},
    {NULL, NULL, 0, 0},
};
