/* ops_attention.c - scaled dot-product attention and cosine similarity. */
#include <math.h>

#include "error.h"
#include "ops.h"

/* ---- attention: softmax(q k^T * scale + mask) v ---- */

/* iarg: bh (batch * heads), lq, lk, d, dv; farg[0]: scale; saved[0]: the
 * probabilities P [b, h, lq, lk]. With S = scale * q k^T and O = P v:
 *   dv += P^T dO,  dP = dO v^T,  dS = softmax_backward(P, dP),
 *   dq += scale * dS k,  dk += scale * dS^T q.
 * Blocked scores have P = 0, so dS is 0 there and a BLOCK mask needs no
 * gradient; an ADD mask gets dS reduced over the dims it broadcasts over. */
static void attention_backward(ctx_t *ctx, tape_node_t *n) {
    const backend_t *be = ctx->be;
    tensor_t *q = n->in[0], *k = n->in[1], *v = n->in[2];
    int64_t bh = n->iarg[0], lq = n->iarg[1], lk = n->iarg[2], d = n->iarg[3], dv = n->iarg[4];
    float scale = n->farg[0];
    const float *p = tensor_f32(n->saved[0]), *dout = n->out->grad;
    if (v->requires_grad)
        be->gemm_batched(1, 0, lk, dv, lq, 1.0f, p, lk, lq * lk, dout, dv, lq * dv, 1.0f, ctx_grad(ctx, v), dv,
                         lk * dv, bh);
    tensor_t *add_mask = n->nin > 3 ? n->in[3] : NULL;
    if (!q->requires_grad && !k->requires_grad && !(add_mask && add_mask->requires_grad)) return;
    tensor_t *dp = tensor_new_like(ctx->arena, n->saved[0]);
    tensor_t *ds = tensor_zeros(ctx->arena, DTYPE_F32, n->saved[0]->ndim, n->saved[0]->shape);
    be->gemm_batched(0, 1, lq, lk, dv, 1.0f, dout, dv, lq * dv, tensor_f32(v), dv, lk * dv, 0.0f, tensor_f32(dp), lk,
                     lq * lk, bh);
    be->softmax_backward(tensor_f32(ds), p, tensor_f32(dp), bh * lq, lk, 1);
    /* an additive mask enters the logits as is: its gradient is dS summed over
     * the dims it broadcasts over (Swin's relative position bias needs this) */
    tensor_t *mask = n->nin > 3 ? n->in[3] : NULL;
    if (mask && mask->requires_grad) {
        bcast_t bc;
        op_broadcast("attention", n->saved[0], mask, &bc);
        be->binary_backward(BINARY_ADD, NULL, ctx_grad(ctx, mask), tensor_f32(ds), tensor_f32(ds), tensor_f32(mask), &bc);
    }
    if (q->requires_grad)
        be->gemm_batched(0, 0, lq, d, lk, scale, tensor_f32(ds), lk, lq * lk, tensor_f32(k), d, lk * d, 1.0f,
                         ctx_grad(ctx, q), d, lq * d, bh);
    if (k->requires_grad)
        be->gemm_batched(1, 0, lk, d, lq, scale, tensor_f32(ds), lk, lq * lk, tensor_f32(q), d, lq * d, 1.0f,
                         ctx_grad(ctx, k), d, lk * d, bh);
}

/* fatal() unless mask fits kind and the scores [b, h, lq, lk] */
static void check_mask(ctx_t *ctx, const tensor_t *mask, attn_mask_kind_t kind, const tensor_t *q, int64_t lk) {
    char sm[96], sq[96];
    if (kind == ATTN_MASK_NONE) fatal("attention: a mask %s given with kind NONE", tensor_shape_str(mask, sm, 96));
    if (kind == ATTN_MASK_BLOCK && mask->dtype != DTYPE_U8 && mask->dtype != DTYPE_BOOL)
        fatal("attention: a BLOCK mask must be U8 or BOOL, got %s", dtype_name(mask->dtype));
    if (kind == ATTN_MASK_ADD && mask->dtype != DTYPE_F32)
        fatal("attention: an ADD mask must be F32, got %s", dtype_name(mask->dtype));
    if (kind != ATTN_MASK_BLOCK && kind != ATTN_MASK_ADD) fatal("attention: unknown mask kind %d", (int)kind);
    if (mask->device != ctx->device)
        fatal("attention: mask on %s, context on %s", device_name(mask->device), device_name(ctx->device));
    int ok = mask->ndim == 4 && (mask->shape[0] == 1 || mask->shape[0] == q->shape[0]) &&
             (mask->shape[1] == 1 || mask->shape[1] == q->shape[1]) && mask->shape[2] == q->shape[2] &&
             mask->shape[3] == lk;
    if (!ok)
        fatal("attention: mask %s does not fit queries %s and %lld keys (want [1|b, 1|h, lq, lk])",
              tensor_shape_str(mask, sm, 96), tensor_shape_str(q, sq, 96), (long long)lk);
}

tensor_t *op_attention(ctx_t *ctx, tensor_t *q, tensor_t *k, tensor_t *v, tensor_t *mask, attn_mask_kind_t kind,
                       float scale) {
    op_check_f32(ctx, "attention", q);
    op_check_f32(ctx, "attention", k);
    op_check_f32(ctx, "attention", v);
    char sq[96], sk[96], sv[96];
    int ok = q->ndim == 4 && k->ndim == 4 && v->ndim == 4;
    for (int i = 0; ok && i < 2; i++) ok = q->shape[i] == k->shape[i] && q->shape[i] == v->shape[i];
    ok = ok && q->shape[3] == k->shape[3] && k->shape[2] == v->shape[2];
    if (!ok)
        fatal("attention: q %s, k %s, v %s (want [b, h, lq, d], [b, h, lk, d], [b, h, lk, dv])",
              tensor_shape_str(q, sq, 96), tensor_shape_str(k, sk, 96), tensor_shape_str(v, sv, 96));
    int64_t b = q->shape[0], h = q->shape[1], lq = q->shape[2], d = q->shape[3];
    int64_t lk = k->shape[2], dv = v->shape[3], bh = b * h;
    if (mask) check_mask(ctx, mask, kind, q, lk);
    if (scale <= 0.0f) scale = 1.0f / sqrtf((float)d);

    int64_t score_shape[4] = {b, h, lq, lk};
    tensor_t *scores = tensor_new(ctx->arena, DTYPE_F32, 4, score_shape);
    ctx->be->gemm_batched(0, 1, lq, lk, d, scale, tensor_f32(q), d, lq * d, tensor_f32(k), d, lk * d, 0.0f,
                          tensor_f32(scores), lk, lq * lk, bh);
    if (mask)
        ctx->be->attn_mask_apply(tensor_f32(scores), mask->data, kind, b, h, lq, lk, mask->shape[0], mask->shape[1]);
    /* The probabilities get their own buffer (not softmax in place over the
     * scores): backward needs them, and no backend has to support aliasing. */
    tensor_t *probs = tensor_new(ctx->arena, DTYPE_F32, 4, score_shape);
    ctx->be->softmax_forward(tensor_f32(probs), tensor_f32(scores), bh * lq, lk, 1);
    int64_t out_shape[4] = {b, h, lq, dv};
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, 4, out_shape);
    ctx->be->gemm_batched(0, 0, lq, dv, lk, 1.0f, tensor_f32(probs), lk, lq * lk, tensor_f32(v), dv, lk * dv, 0.0f,
                          tensor_f32(out), dv, lq * dv, bh);

    /* an ADD mask is an input of the tape (it may want a gradient); a BLOCK mask is not */
    tensor_t *in[4] = {q, k, v, (mask && kind == ATTN_MASK_ADD) ? mask : NULL};
    tape_node_t *n = ctx_record(ctx, "attention", attention_backward, out, in[3] ? 4 : 3, in);
    if (n) {
        n->iarg[0] = bh;
        n->iarg[1] = lq;
        n->iarg[2] = lk;
        n->iarg[3] = d;
        n->iarg[4] = dv;
        n->farg[0] = scale;
        n->saved[0] = probs;
    }
    return out;
}

/* ---- cosine similarity along the last dim ---- */

typedef struct {
    bcast_t bc; /* over the leading dims, strides in rows of d */
} cosine_record_t;

/* iarg: d; farg[0]: eps */
static void cosine_backward(ctx_t *ctx, tape_node_t *n) {
    cosine_record_t *r = n->record;
    tensor_t *a = n->in[0], *b = n->in[1];
    ctx->be->cosine_backward(ctx_grad_if(ctx, a), ctx_grad_if(ctx, b), n->out->grad, tensor_f32(a), tensor_f32(b),
                             &r->bc, n->iarg[0], n->farg[0]);
}

tensor_t *op_cosine_similarity(ctx_t *ctx, tensor_t *a, tensor_t *b, float eps) {
    op_check_f32(ctx, "cosine_similarity", a);
    op_check_f32(ctx, "cosine_similarity", b);
    char sa[96], sb[96];
    if (a->ndim < 1 || b->ndim < 1 || a->shape[a->ndim - 1] != b->shape[b->ndim - 1])
        fatal("cosine_similarity: %s and %s differ in the last dim", tensor_shape_str(a, sa, 96),
              tensor_shape_str(b, sb, 96));
    int64_t d = a->shape[a->ndim - 1];
    /* checked here so that the message shows the whole shapes */
    for (int i = 1; i < a->ndim && i < b->ndim; i++) {
        int64_t ea = a->shape[a->ndim - 1 - i], eb = b->shape[b->ndim - 1 - i];
        if (ea != eb && ea != 1 && eb != 1)
            fatal("cosine_similarity: leading dims of %s and %s do not broadcast", tensor_shape_str(a, sa, 96),
                  tensor_shape_str(b, sb, 96));
    }
    /* Broadcast the leading dims only: headers over them alone give strides
     * counted in rows of d, which is what the kernels take. */
    tensor_t lead_a = *a, lead_b = *b;
    lead_a.ndim = a->ndim - 1;
    lead_b.ndim = b->ndim - 1;
    bcast_t bc;
    op_broadcast("cosine_similarity", &lead_a, &lead_b, &bc);
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, bc.ndim, bc.shape);
    ctx->be->cosine_forward(tensor_f32(out), tensor_f32(a), tensor_f32(b), &bc, d, eps);
    tensor_t *in[2] = {a, b};
    tape_node_t *n = ctx_record(ctx, "cosine_similarity", cosine_backward, out, 2, in);
    if (n) {
        cosine_record_t *r = arena_alloc_host(ctx->arena, sizeof *r);
        r->bc = bc;
        n->record = r;
        n->iarg[0] = d;
        n->farg[0] = eps;
    }
    return out;
}
