/* cases_pool.c - op kinds: 2-D max pooling. Cases: tests/reference/ops_pool.py. */
#include "op_cases.h"

/* args: kh, kw, sh, sw, ph, pw */
static tensor_t *run_maxpool2d(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_maxpool2d(c, in[0], (int)a[0], (int)a[1], (int)a[2], (int)a[3], (int)a[4], (int)a[5]);
}

const op_kind_t op_kinds_pool[] = {
    {"maxpool2d", run_maxpool2d, 0, 0},
    {NULL, NULL, 0, 0},
};
