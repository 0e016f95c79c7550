/* ops_linear.c - matmul (batched) and linear with bias, on the backend's GEMM. */
#include "error.h"
#include "ops.h"

/* iarg: m, n, k, batch, b_shared (b is one 2-D matrix for every batch) */
static void matmul_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *a = n->in[0], *b = n->in[1];
    int64_t m = n->iarg[0], nn = n->iarg[1], k = n->iarg[2], batch = n->iarg[3], shared = n->iarg[4];
    const float *dc = n->out->grad;
    if (a->requires_grad) /* dA[m,k] += dC[m,n] @ B^T */
        ctx->be->gemm_batched(0, 1, m, k, nn, 1.0f, dc, nn, m * nn, tensor_f32(b), nn, shared ? 0 : k * nn, 1.0f,
                              ctx_grad(ctx, a), k, m * k, batch);
    if (b->requires_grad) {
        if (shared) /* dB[k,n] += A^T @ dC with the batch folded into the rows */
            ctx->be->gemm(1, 0, k, nn, batch * m, 1.0f, tensor_f32(a), k, dc, nn, 1.0f, ctx_grad(ctx, b), nn);
        else
            ctx->be->gemm_batched(1, 0, k, nn, m, 1.0f, tensor_f32(a), k, m * k, dc, nn, m * nn, 1.0f,
                                  ctx_grad(ctx, b), nn, k * nn, batch);
    }
}

tensor_t *op_matmul(ctx_t *ctx, tensor_t *a, tensor_t *b) {
    op_check_f32(ctx, "matmul", a);
    op_check_f32(ctx, "matmul", b);
    char sa[96], sb[96];
    if (a->ndim < 2 || b->ndim < 2) fatal("matmul: operands need 2+ dims, got %s and %s", tensor_shape_str(a, sa, 96), tensor_shape_str(b, sb, 96));
    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t kb = b->shape[b->ndim - 2], nn = b->shape[b->ndim - 1];
    int shared = b->ndim == 2;
    int ok = k == kb && (shared || a->ndim == b->ndim);
    for (int i = 0; ok && !shared && i < a->ndim - 2; i++) ok = a->shape[i] == b->shape[i];
    if (!ok) fatal("matmul: %s @ %s", tensor_shape_str(a, sa, 96), tensor_shape_str(b, sb, 96));
    int64_t batch = 1;
    int64_t shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < a->ndim - 2; i++) {
        batch *= a->shape[i];
        shape[i] = a->shape[i];
    }
    shape[a->ndim - 2] = m;
    shape[a->ndim - 1] = nn;
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, a->ndim, shape);
    if (shared)
        ctx->be->gemm(0, 0, batch * m, nn, k, 1.0f, tensor_f32(a), k, tensor_f32(b), nn, 0.0f, tensor_f32(out), nn);
    else
        ctx->be->gemm_batched(0, 0, m, nn, k, 1.0f, tensor_f32(a), k, m * k, tensor_f32(b), nn, k * nn, 0.0f,
                              tensor_f32(out), nn, m * nn, batch);
    tensor_t *in[2] = {a, b};
    tape_node_t *node = ctx_record(ctx, "matmul", matmul_backward, out, 2, in);
    if (node) {
        node->iarg[0] = m;
        node->iarg[1] = nn;
        node->iarg[2] = k;
        node->iarg[3] = batch;
        node->iarg[4] = shared;
    }
    return out;
}

/* iarg: rows, in_features, out_features */
static void linear_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int64_t rows = n->iarg[0], in_f = n->iarg[1], out_f = n->iarg[2];
    const float *dy = n->out->grad;
    if (x->requires_grad) /* dx[rows,in] += dy[rows,out] @ W[out,in] */
        ctx->be->gemm(0, 0, rows, in_f, out_f, 1.0f, dy, out_f, tensor_f32(w), in_f, 1.0f, ctx_grad(ctx, x), in_f);
    if (w->requires_grad) /* dW[out,in] += dy^T @ x */
        ctx->be->gemm(1, 0, out_f, in_f, rows, 1.0f, dy, out_f, tensor_f32(x), in_f, 1.0f, ctx_grad(ctx, w), in_f);
    if (b && b->requires_grad) ctx->be->reduce_sum(ctx_grad(ctx, b), dy, 1, rows, out_f, 1);
}

tensor_t *op_linear(ctx_t *ctx, tensor_t *x, tensor_t *w, tensor_t *b) {
    op_check_f32(ctx, "linear", x);
    op_check_f32(ctx, "linear", w);
    char sx[96], sw[96];
    if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1])
        fatal("linear: input %s, weight %s (want [out, %lld])", tensor_shape_str(x, sx, 96), tensor_shape_str(w, sw, 96),
              x->ndim ? (long long)x->shape[x->ndim - 1] : 0LL);
    int64_t in_f = w->shape[1], out_f = w->shape[0];
    if (b) {
        op_check_f32(ctx, "linear", b);
        if (b->numel != out_f) fatal("linear: bias has %lld elements, weight has %lld outputs", (long long)b->numel, (long long)out_f);
    }
    int64_t rows = x->numel / (in_f ? in_f : 1);
    int64_t shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = out_f;
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, x->ndim, shape);
    float *y = tensor_f32(out);
    /* y = x @ W^T (+ b): the bias is put in C first and GEMM adds with beta = 1 */
    if (b) {
        ctx->be->memset_zero(y, (size_t)out->numel * sizeof(float));
        ctx->be->broadcast_add(y, tensor_f32(b), 1, rows, out_f, 1.0f);
    }
    ctx->be->gemm(0, 1, rows, out_f, in_f, 1.0f, tensor_f32(x), in_f, tensor_f32(w), in_f, b ? 1.0f : 0.0f, y, out_f);
    tensor_t *in[3] = {x, w, b};
    tape_node_t *n = ctx_record(ctx, "linear", linear_backward, out, 3, in);
    if (n) {
        n->iarg[0] = rows;
        n->iarg[1] = in_f;
        n->iarg[2] = out_f;
    }
    return out;
}
