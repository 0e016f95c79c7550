/* cases_core.c - op kinds: elementwise, reductions, matmul, linear.
 * Cases: tests/reference/ops_core.py. */
#include "op_cases.h"

static tensor_t *run_add(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_add(c, in[0], in[1]);
}
static tensor_t *run_sub(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_sub(c, in[0], in[1]);
}
static tensor_t *run_mul(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_mul(c, in[0], in[1]);
}
static tensor_t *run_div(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_div(c, in[0], in[1]);
}
/* args: alpha and beta in thousandths */
static tensor_t *run_affine(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_affine(c, in[0], (float)a[0] / 1000.0f, (float)a[1] / 1000.0f);
}
static tensor_t *run_relu(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_relu(c, in[0]);
}
static tensor_t *run_gelu(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_gelu(c, in[0]);
}
static tensor_t *run_sigmoid(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_sigmoid(c, in[0]);
}
static tensor_t *run_exp(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_exp(c, in[0]);
}
static tensor_t *run_log(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_log(c, in[0]);
}
static tensor_t *run_sqrt(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_sqrt(c, in[0]);
}
static tensor_t *run_tanh(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_tanh(c, in[0]);
}
/* args: dim, keepdim */
static tensor_t *run_sum(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_sum(c, in[0], (int)a[0], (int)a[1]);
}
static tensor_t *run_mean(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_mean(c, in[0], (int)a[0], (int)a[1]);
}
static tensor_t *run_sum_all(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_sum_all(c, in[0]);
}
static tensor_t *run_mean_all(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_mean_all(c, in[0]);
}
static tensor_t *run_matmul(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)a, (void)na;
    return op_matmul(c, in[0], in[1]);
}
/* inputs: x, w, and optionally b */
static tensor_t *run_linear(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)a, (void)na;
    return op_linear(c, in[0], in[1], n > 2 ? in[2] : NULL);
}
/* linear then GELU, the Swin MLP's first half */
static tensor_t *run_linear_gelu(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)a, (void)na;
    return op_gelu(c, op_linear(c, in[0], in[1], n > 2 ? in[2] : NULL));
}

const op_kind_t op_kinds_core[] = {
    {"add", run_add, 0, 0},
    {"sub", run_sub, 0, 0},
    {"mul", run_mul, 0, 0},
    {"div", run_div, 0, 0},
    {"affine", run_affine, 0, 0},
    {"relu", run_relu, 0, 0},
    {"gelu", run_gelu, 0, 0},
    {"sigmoid", run_sigmoid, 0, 0},
    {"exp", run_exp, 0, 0},
    {"log", run_log, 0, 0},
    {"sqrt", run_sqrt, 0, 0},
    {"tanh", run_tanh, 0, 0},
    {"sum", run_sum, 0, 0},
    {"mean", run_mean, 0, 0},
    {"sum_all", run_sum_all, 0, 0},
    {"mean_all", run_mean_all, 0, 0},
    {"matmul", run_matmul, 0, 0},
    {"linear", run_linear, 0, 0},
    {"linear_gelu", run_linear_gelu, 0, 0},
    {NULL, NULL, 0, 0},
};
