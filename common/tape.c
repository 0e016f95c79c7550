#include "tape.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

ctx_t *ctx_create(device_t device, size_t block_bytes) {
    const backend_t *be = backend_get(device);
    if (!be) return NULL;
    ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->device = device;
    ctx->be = be;
    ctx->arena = arena_create(device, block_bytes);
    if (!ctx->arena) {
        free(ctx);
        return NULL;
    }
    ctx->grad_enabled = 1;
    return ctx;
}

void ctx_destroy(ctx_t *ctx) {
    if (!ctx) return;
    arena_destroy(ctx->arena);
    free(ctx->nodes);
    free(ctx);
}

void ctx_reset(ctx_t *ctx) {
    arena_reset(ctx->arena);
    ctx->n_nodes = 0;
}

int ctx_set_grad(ctx_t *ctx, int enabled) {
    int old = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return old;
}

tape_node_t *ctx_record(ctx_t *ctx, const char *op, backward_fn_t backward, tensor_t *out,
                        int nin, tensor_t *const *in) {
    if (!ctx->grad_enabled) return NULL;
    int any = 0;
    for (int i = 0; i < nin; i++)
        if (in[i] && in[i]->requires_grad) any = 1;
    if (!any) return NULL;
    if (ctx->n_nodes == ctx->cap_nodes) {
        int cap = ctx->cap_nodes ? 2 * ctx->cap_nodes : 256;
        tape_node_t *nodes = realloc(ctx->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) fatal("tape: out of memory for %d nodes", cap);
        ctx->nodes = nodes;
        ctx->cap_nodes = cap;
    }
    tape_node_t *n = &ctx->nodes[ctx->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->backward = backward;
    n->out = out;
    n->nin = nin;
    n->in = arena_alloc_host(ctx->arena, (size_t)(nin ? nin : 1) * sizeof(tensor_t *));
    for (int i = 0; i < nin; i++) n->in[i] = in[i];
    out->requires_grad = 1;
    return n;
}

float *ctx_grad(ctx_t *ctx, tensor_t *t) { return tensor_alloc_grad(ctx->arena, t); }

float *ctx_grad_if(ctx_t *ctx, tensor_t *t) {
    if (!t || !t->requires_grad) return NULL;
    return ctx_grad(ctx, t);
}

ctx_mark_t ctx_mark(const ctx_t *ctx) {
    ctx_mark_t m = {arena_mark(ctx->arena), ctx->n_nodes};
    return m;
}

tensor_t *ctx_keep(ctx_t *ctx, ctx_mark_t mark, const tensor_t *keep) {
    if (ctx->n_nodes != mark.n_nodes) fatal("ctx_keep: %d tape nodes recorded since the mark", ctx->n_nodes - mark.n_nodes);
    if (keep->device != ctx->device) fatal("ctx_keep: tensor on another device");
    size_t bytes = (size_t)keep->numel * dtype_size(keep->dtype);
    tensor_t saved = *keep;
    /* park the data outside the arena while the arena drops back to the mark */
    void *tmp = ctx->be->alloc(bytes ? bytes : 1);
    if (!tmp) fatal("ctx_keep: out of %s memory for %zu bytes", device_name(ctx->device), bytes);
    ctx->be->copy(tmp, keep->data, bytes);
    arena_release(ctx->arena, mark.arena);
    tensor_t *out = tensor_new(ctx->arena, saved.dtype, saved.ndim, saved.shape);
    ctx->be->copy(out->data, tmp, bytes);
    ctx->be->free(tmp);
    out->name = saved.name;
    return out;
}

void ctx_backward(ctx_t *ctx, tensor_t *out, const tensor_t *seed) {
    float *g = ctx_grad(ctx, out);
    if (seed) {
        if (!tensor_same_shape(seed, out)) fatal("ctx_backward: seed shape differs from the output");
        ctx->be->axpy(g, tensor_f32(seed), 1.0f, out->numel);
    } else {
        if (out->numel != 1) fatal("ctx_backward: output has %lld elements; give a seed", (long long)out->numel);
        ctx->be->fill(g, 1.0f, 1);
    }
    /* Nodes are in creation order, which is a topological order: walking it
     * backwards runs each node after every node that consumed its output. */
    for (int i = ctx->n_nodes - 1; i >= 0; i--) {
        tape_node_t *n = &ctx->nodes[i];
        if (!n->out->grad) continue; /* nothing downstream of this node reached the loss */
        n->backward(ctx, n);
    }
}
