/* ops_layout.c - reshape, permute, slice, concat, roll and embedding. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops.h"

/* ---- reshape: a copy with new dims (data are contiguous, so the order is kept) ---- */

static void reshape_backward(ctx_t *ctx, tape_node_t *n) {
    ctx->be->axpy(ctx_grad(ctx, n->in[0]), n->out->grad, 1.0f, n->out->numel);
}

tensor_t *op_reshape(ctx_t *ctx, tensor_t *x, int ndim, const int64_t *shape) {
    op_check_f32(ctx, "reshape", x);
    int64_t s[TENSOR_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) fatal("reshape: %d dims", ndim);
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0) fatal("reshape: more than one -1");
            infer = i;
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) s[infer] = known ? x->numel / known : 0;
    char a[96], b[96];
    if (shape_numel(ndim, s) != x->numel)
        fatal("reshape: %s to %s", tensor_shape_str(x, a, 96), shape_str(ndim, s, b, 96));
    /* A view: a new header over the same data. No op writes into its inputs,
     * so sharing data is safe; the gradient stays per header (out->grad is
     * its own buffer, added into x's by the backward). */
    tensor_t *out = arena_alloc_host(ctx->arena, sizeof *out);
    *out = *x;
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++) out->shape[i] = s[i];
    out->grad = NULL;
    out->requires_grad = 0;
    ctx_record(ctx, "reshape", reshape_backward, out, 1, &x);
    return out;
}

/* ---- permute: out dim d is x's dim perm[d]; a strided gather ---- */

/* Row-major strides (in elements) of shape. */
static void contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d];
    }
}

/* iarg[d]: perm[d] (resolved) */
static void permute_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0], *y = n->out;
    /* dx is dy gathered by the inverse permutation: x's dim perm[d] is y's dim d */
    int64_t ystride[TENSOR_MAX_DIMS];
    contiguous_strides(y->ndim, y->shape, ystride);
    strided_t st;
    st.ndim = x->ndim;
    st.numel = x->numel;
    for (int d = 0; d < x->ndim; d++) {
        st.out_shape[n->iarg[d]] = x->shape[n->iarg[d]];
        st.in_stride[n->iarg[d]] = ystride[d];
    }
    ctx->be->strided_copy(ctx_grad(ctx, x), y->grad, &st, 1);
}

tensor_t *op_permute(ctx_t *ctx, tensor_t *x, const int *perm) {
    op_check_f32(ctx, "permute", x);
    int p[TENSOR_MAX_DIMS], seen[TENSOR_MAX_DIMS] = {0};
    char sx[96];
    for (int d = 0; d < x->ndim; d++) {
        p[d] = op_dim("permute", perm[d], x->ndim);
        if (seen[p[d]]++) fatal("permute: dim %d repeated in the permutation of %s", perm[d], tensor_shape_str(x, sx, 96));
    }
    int64_t xstride[TENSOR_MAX_DIMS], shape[TENSOR_MAX_DIMS];
    contiguous_strides(x->ndim, x->shape, xstride);
    strided_t st;
    st.ndim = x->ndim;
    st.numel = x->numel;
    for (int d = 0; d < x->ndim; d++) {
        shape[d] = x->shape[p[d]];
        st.out_shape[d] = shape[d];
        st.in_stride[d] = xstride[p[d]];
    }
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, x->ndim, shape);
    ctx->be->strided_copy(tensor_f32(out), tensor_f32(x), &st, 0);
    tape_node_t *n = ctx_record(ctx, "permute", permute_backward, out, 1, &x);
    if (n)
        for (int d = 0; d < x->ndim; d++) n->iarg[d] = p[d];
    return out;
}

/* ---- slice along one dim, [start, end) with Python's rules ---- */

/* x viewed as [outer, shape[dim], inner] */
static void split_at(const tensor_t *x, int dim, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) *inner *= x->shape[d];
}

/* iarg: dim (resolved), start */
static void slice_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0];
    int dim = (int)n->iarg[0];
    int64_t outer, inner, len = n->out->shape[dim];
    split_at(x, dim, &outer, &inner);
    ctx->be->slice_copy(ctx_grad(ctx, x), n->out->grad, outer, inner, x->shape[dim], n->iarg[1], len, 0, len, 1);
}

tensor_t *op_slice(ctx_t *ctx, tensor_t *x, int dim, int64_t start, int64_t end) {
    op_check_f32(ctx, "slice", x);
    int d = op_dim("slice", dim, x->ndim);
    int64_t size = x->shape[d];
    /* as x[..., start:end]: negative bounds count from the end, then both are
     * clamped to [0, size], and an empty range gives a zero-length dim */
    if (start < 0) start += size;
    if (end < 0) end += size;
    if (start < 0) start = 0;
    if (start > size) start = size;
    if (end < start) end = start;
    if (end > size) end = size;
    int64_t len = end - start;
    int64_t shape[TENSOR_MAX_DIMS], outer, inner;
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[d] = len;
    split_at(x, d, &outer, &inner);
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, x->ndim, shape);
    ctx->be->slice_copy(tensor_f32(out), tensor_f32(x), outer, inner, len, 0, size, start, len, 0);
    tape_node_t *n = ctx_record(ctx, "slice", slice_backward, out, 1, &x);
    if (n) {
        n->iarg[0] = d;
        n->iarg[1] = start;
    }
    return out;
}

/* ---- concat along one dim ---- */

/* iarg: dim (resolved); each input's offset is the sum of the sizes before it */
static void concat_backward(ctx_t *ctx, tape_node_t *n) {
    int dim = (int)n->iarg[0];
    int64_t outer, inner, total = n->out->shape[dim], offset = 0;
    split_at(n->out, dim, &outer, &inner);
    for (int k = 0; k < n->nin; k++) {
        tensor_t *x = n->in[k];
        int64_t len = x->shape[dim];
        if (x->requires_grad)
            ctx->be->slice_copy(ctx_grad(ctx, x), n->out->grad, outer, inner, len, 0, total, offset, len, 1);
        offset += len;
    }
}

tensor_t *op_concat(ctx_t *ctx, tensor_t *const *xs, int n, int dim) {
    if (n < 1) fatal("concat: no tensors");
    for (int k = 0; k < n; k++) op_check_f32(ctx, "concat", xs[k]);
    const tensor_t *x0 = xs[0];
    int d = op_dim("concat", dim, x0->ndim);
    int64_t shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < x0->ndim; i++) shape[i] = x0->shape[i];
    shape[d] = 0;
    char sa[96], sb[96];
    for (int k = 0; k < n; k++) {
        int ok = xs[k]->ndim == x0->ndim;
        for (int i = 0; ok && i < x0->ndim; i++) ok = i == d || xs[k]->shape[i] == x0->shape[i];
        if (!ok)
            fatal("concat: tensor %d is %s, tensor 0 is %s (dim %d)", k, tensor_shape_str(xs[k], sa, 96),
                  tensor_shape_str(x0, sb, 96), dim);
        shape[d] += xs[k]->shape[d];
    }
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, x0->ndim, shape);
    int64_t outer, inner, offset = 0;
    split_at(out, d, &outer, &inner);
    for (int k = 0; k < n; k++) {
        int64_t len = xs[k]->shape[d];
        ctx->be->slice_copy(tensor_f32(out), tensor_f32(xs[k]), outer, inner, shape[d], offset, len, 0, len, 0);
        offset += len;
    }
    tape_node_t *node = ctx_record(ctx, "concat", concat_backward, out, n, xs);
    if (node) node->iarg[0] = d;
    return out;
}

/* ---- roll (torch.roll) ---- */

/* iarg: flat (dims == NULL: rolled as one flat dim), then the shift of each
 * rolled dim, already in [0, size) */
static void roll_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0];
    int flat = (int)n->iarg[0];
    int nd = flat ? 1 : x->ndim;
    int64_t shape[TENSOR_MAX_DIMS], back[TENSOR_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        shape[d] = flat ? x->numel : x->shape[d];
        back[d] = shape[d] ? (shape[d] - n->iarg[1 + d]) % shape[d] : 0; /* rolling back undoes it */
    }
    ctx->be->roll(ctx_grad(ctx, x), n->out->grad, nd, shape, back, 1);
}

tensor_t *op_roll(ctx_t *ctx, tensor_t *x, int n, const int64_t *shifts, const int *dims) {
    op_check_f32(ctx, "roll", x);
    /* torch.roll without dims rolls the flattened tensor and restores the shape */
    int flat = dims == NULL;
    if (flat && n != 1) fatal("roll: %d shifts without dims (one is allowed)", n);
    int nd = flat ? 1 : x->ndim;
    int64_t shape[TENSOR_MAX_DIMS], sh[TENSOR_MAX_DIMS] = {0};
    for (int d = 0; d < nd; d++) shape[d] = flat ? x->numel : x->shape[d];
    for (int k = 0; k < n; k++) {
        int d = flat ? 0 : op_dim("roll", dims[k], x->ndim);
        /* a dim named twice is rolled twice: the shifts add up */
        if (shape[d]) sh[d] = ((sh[d] + shifts[k] % shape[d]) % shape[d] + shape[d]) % shape[d];
    }
    tensor_t *out = tensor_new_like(ctx->arena, x);
    ctx->be->roll(tensor_f32(out), tensor_f32(x), nd, shape, sh, 0);
    tape_node_t *node = ctx_record(ctx, "roll", roll_backward, out, 1, &x);
    if (node) {
        node->iarg[0] = flat;
        for (int d = 0; d < nd; d++) node->iarg[1 + d] = sh[d];
    }
    return out;
}

/* ---- embedding: rows of weight picked by integer indices ---- */

/* iarg: n (indices), vocab, dim */
static void embedding_backward(ctx_t *ctx, tape_node_t *n) {
    ctx->be->embedding_backward(ctx_grad(ctx, n->in[0]), n->out->grad, (const int64_t *)n->in[1]->data, n->iarg[0],
                                n->iarg[1], n->iarg[2]);
}

tensor_t *op_embedding(ctx_t *ctx, tensor_t *weight, tensor_t *idx) {
    op_check_f32(ctx, "embedding", weight);
    char sw[96], si[96];
    if (!idx || idx->dtype != DTYPE_I64 || idx->device != ctx->device)
        fatal("embedding: indices must be I64 on %s", device_name(ctx->device));
    if (weight->ndim != 2 || idx->ndim + 1 > TENSOR_MAX_DIMS)
        fatal("embedding: weight %s (want [vocab, dim]), indices %s", tensor_shape_str(weight, sw, 96),
              tensor_shape_str(idx, si, 96));
    int64_t vocab = weight->shape[0], dim = weight->shape[1];
    /* A bad index is a bug upstream (a tokenizer or label map): stop with it
     * here rather than read another row. The check needs the indices on the
     * host; they are small next to the rows they select. */
    int64_t *host = malloc((size_t)(idx->numel ? idx->numel : 1) * sizeof(int64_t));
    if (!host) fatal("embedding: out of host memory for %lld indices", (long long)idx->numel);
    ctx->be->copy_to_host(host, idx->data, (size_t)idx->numel * sizeof(int64_t));
    for (int64_t i = 0; i < idx->numel; i++) {
        if (host[i] < 0 || host[i] >= vocab) {
            long long bad = (long long)host[i];
            free(host);
            fatal("embedding: index %lld (element %lld of %s) out of range for weight %s", bad, (long long)i,
                  tensor_shape_str(idx, si, 96), tensor_shape_str(weight, sw, 96));
        }
    }
    free(host);
    int64_t shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < idx->ndim; i++) shape[i] = idx->shape[i];
    shape[idx->ndim] = dim;
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, idx->ndim + 1, shape);
    ctx->be->embedding_forward(tensor_f32(out), tensor_f32(weight), (const int64_t *)idx->data, idx->numel, vocab, dim);
    /* idx never requires grad, so it rides along only for the backward to read */
    tensor_t *in[2] = {weight, idx};
    tape_node_t *n = ctx_record(ctx, "embedding", embedding_backward, out, 2, in);
    if (n) {
        n->iarg[0] = idx->numel;
        n->iarg[1] = vocab;
        n->iarg[2] = dim;
    }
    return out;
}
