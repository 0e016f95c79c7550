/* tape.h - the execution context: device, step arena and gradient tape.
 *
 * Every op takes a ctx_t. It allocates its output from ctx->arena, computes
 * the forward on ctx's backend, and when gradients are on and an input
 * requires grad it records a node with what its backward needs. ctx_backward
 * walks the nodes in reverse and each node's backward accumulates into the
 * .grad of its inputs. Leaves that outlive the step (parameters) must have
 * their grad allocated from their own arena (tensor_alloc_grad) beforehand;
 * every other grad comes from the step arena and is gone after ctx_reset. */
#ifndef STEPSTONE_TAPE_H
#define STEPSTONE_TAPE_H

#include "tensor.h"

typedef struct ctx ctx_t;
typedef struct tape_node tape_node_t;
typedef void (*backward_fn_t)(ctx_t *ctx, tape_node_t *node);

#define TAPE_MAX_IARGS 12
#define TAPE_MAX_FARGS 4

struct tape_node {
    const char *op;          /* op name, for messages */
    backward_fn_t backward;
    tensor_t *out;
    tensor_t **in;           /* nin inputs (from the arena) */
    int nin;
    tensor_t *saved[4];      /* extra tensors the backward needs (e.g. softmax probabilities) */
    void *record;            /* any other op-specific record, from the arena */
    int64_t iarg[TAPE_MAX_IARGS];
    float farg[TAPE_MAX_FARGS];
};

struct ctx {
    device_t device;
    const backend_t *be;
    arena_t *arena;          /* owned: activations, saved tensors and grads of one step */
    tape_node_t *nodes;      /* owned, host */
    int n_nodes, cap_nodes;
    int grad_enabled;
};

/* A context on `device` with a step arena of block_bytes blocks; NULL if the
 * device is absent. */
ctx_t *ctx_create(device_t device, size_t block_bytes);
void ctx_destroy(ctx_t *ctx);
/* Drops the tape and every tensor of the step. */
void ctx_reset(ctx_t *ctx);
/* Turns recording on or off; returns the previous setting. */
int ctx_set_grad(ctx_t *ctx, int enabled);

/* Records a node when gradients are on and any input requires grad; then
 * marks out as requiring grad and returns the node, else returns NULL. */
tape_node_t *ctx_record(ctx_t *ctx, const char *op, backward_fn_t backward, tensor_t *out,
                        int nin, tensor_t *const *in);
/* The gradient buffer of t, allocated zeroed from the step arena if absent. */
float *ctx_grad(ctx_t *ctx, tensor_t *t);
/* d/dt of the input when it wants one (requires_grad), else NULL; use it
 * to pass NULL to a kernel for gradients nobody needs. */
float *ctx_grad_if(ctx_t *ctx, tensor_t *t);

/* A point to come back to in a forward pass without gradients. */
typedef struct {
    arena_mark_t arena;
    int n_nodes;
} ctx_mark_t;
ctx_mark_t ctx_mark(const ctx_t *ctx);
/* Frees everything the step allocated since the mark except `keep`, which
 * is returned as a new tensor with the same contents. Only for stretches that
 * recorded no tape node (fatal otherwise): it lets a no-grad forward, such as
 * feature extraction, run in the memory of one layer instead of all. */
tensor_t *ctx_keep(ctx_t *ctx, ctx_mark_t mark, const tensor_t *keep);

/* Backpropagates from `out`. seed == NULL: out must have one element and its
 * gradient is 1; otherwise seed (same shape, on the device) is d loss/d out. */
void ctx_backward(ctx_t *ctx, tensor_t *out, const tensor_t *seed);

#endif
