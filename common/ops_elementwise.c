/* ops_elementwise.c - broadcasting arithmetic, scaling and unary activations. */
#include "error.h"
#include "ops.h"

/* ---- binary (add, sub, mul, div) with broadcasting ---- */

typedef struct {
    bcast_t bc;
    binary_op_t op;
} binary_record_t;

static void binary_backward(ctx_t *ctx, tape_node_t *n) {
    binary_record_t *r = n->record;
    tensor_t *a = n->in[0], *b = n->in[1];
    ctx->be->binary_backward(r->op, ctx_grad_if(ctx, a), ctx_grad_if(ctx, b), n->out->grad, tensor_f32(a),
                             tensor_f32(b), &r->bc);
}

static tensor_t *binary(ctx_t *ctx, const char *name, binary_op_t op, tensor_t *a, tensor_t *b) {
    op_check_f32(ctx, name, a);
    op_check_f32(ctx, name, b);
    bcast_t bc;
    op_broadcast(name, a, b, &bc);
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, bc.ndim, bc.shape);
    ctx->be->binary_forward(op, tensor_f32(out), tensor_f32(a), tensor_f32(b), &bc);
    tensor_t *in[2] = {a, b};
    tape_node_t *n = ctx_record(ctx, name, binary_backward, out, 2, in);
    if (n) {
        binary_record_t *r = arena_alloc_host(ctx->arena, sizeof *r);
        r->bc = bc;
        r->op = op;
        n->record = r;
    }
    return out;
}

tensor_t *op_add(ctx_t *ctx, tensor_t *a, tensor_t *b) { return binary(ctx, "add", BINARY_ADD, a, b); }
tensor_t *op_sub(ctx_t *ctx, tensor_t *a, tensor_t *b) { return binary(ctx, "sub", BINARY_SUB, a, b); }
tensor_t *op_mul(ctx_t *ctx, tensor_t *a, tensor_t *b) { return binary(ctx, "mul", BINARY_MUL, a, b); }
tensor_t *op_div(ctx_t *ctx, tensor_t *a, tensor_t *b) { return binary(ctx, "div", BINARY_DIV, a, b); }

/* ---- affine: alpha * x + beta ---- */

static void affine_backward(ctx_t *ctx, tape_node_t *n) {
    ctx->be->axpy(ctx_grad(ctx, n->in[0]), n->out->grad, n->farg[0], n->out->numel);
}

tensor_t *op_affine(ctx_t *ctx, tensor_t *x, float alpha, float beta) {
    op_check_f32(ctx, "affine", x);
    tensor_t *out = tensor_new_like(ctx->arena, x);
    ctx->be->affine(tensor_f32(out), tensor_f32(x), alpha, beta, x->numel);
    tape_node_t *n = ctx_record(ctx, "affine", affine_backward, out, 1, &x);
    if (n) n->farg[0] = alpha;
    return out;
}

tensor_t *op_scale(ctx_t *ctx, tensor_t *x, float alpha) { return op_affine(ctx, x, alpha, 0.0f); }

/* ---- unary activations ---- */

static void unary_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0];
    ctx->be->unary_backward((unary_op_t)n->iarg[0], ctx_grad(ctx, x), tensor_f32(x), tensor_f32(n->out),
                            n->out->grad, x->numel);
}

static tensor_t *unary(ctx_t *ctx, const char *name, unary_op_t op, tensor_t *x) {
    op_check_f32(ctx, name, x);
    tensor_t *out = tensor_new_like(ctx->arena, x);
    ctx->be->unary_forward(op, tensor_f32(out), tensor_f32(x), x->numel);
    tape_node_t *n = ctx_record(ctx, name, unary_backward, out, 1, &x);
    if (n) n->iarg[0] = op;
    return out;
}

tensor_t *op_relu(ctx_t *ctx, tensor_t *x) { return unary(ctx, "relu", UNARY_RELU, x); }
tensor_t *op_gelu(ctx_t *ctx, tensor_t *x) { return unary(ctx, "gelu", UNARY_GELU, x); }
tensor_t *op_sigmoid(ctx_t *ctx, tensor_t *x) { return unary(ctx, "sigmoid", UNARY_SIGMOID, x); }
tensor_t *op_exp(ctx_t *ctx, tensor_t *x) { return unary(ctx, "exp", UNARY_EXP, x); }
tensor_t *op_log(ctx_t *ctx, tensor_t *x) { return unary(ctx, "log", UNARY_LOG, x); }
tensor_t *op_sqrt(ctx_t *ctx, tensor_t *x) { return unary(ctx, "sqrt", UNARY_SQRT, x); }
tensor_t *op_tanh(ctx_t *ctx, tensor_t *x) { return unary(ctx, "tanh", UNARY_TANH, x); }
