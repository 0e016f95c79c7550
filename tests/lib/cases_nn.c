/* cases_nn.c - op kinds: softmax, layer norm, group norm, attention, cosine similarity.
 * Cases: tests/reference/ops_nn.py. Float parameters travel as integer args
 * in fixed units (eps in 1e-9, scale in 1e-6) since a case's args are int64. */
#include "op_cases.h"

static float eps_arg(int64_t nano) { return (float)((double)nano * 1e-9); }

/* args: dim */
static tensor_t *run_softmax(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_softmax(c, in[0], (int)a[0]);
}

/* inputs: x, then w if has_w, then b if has_b; args: eps (1e-9), has_w, has_b */
static tensor_t *run_layer_norm(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    int k = 1;
    tensor_t *w = a[1] ? in[k++] : NULL;
    tensor_t *b = a[2] ? in[k++] : NULL;
    return op_layer_norm(c, in[0], w, b, eps_arg(a[0]));
}

/* inputs: x, and w, b when there are three; args: groups, eps (1e-9) */
static tensor_t *run_group_norm(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)na;
    return op_group_norm(c, in[0], (int)a[0], n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, eps_arg(a[1]));
}

/* inputs: q, k, v, and the mask when kind is not NONE; args: mask kind, scale (1e-6, 0 = 1/sqrt(d)) */
static tensor_t *run_attention(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)na;
    attn_mask_kind_t kind = (attn_mask_kind_t)a[0];
    return op_attention(c, in[0], in[1], in[2], n > 3 ? in[3] : NULL, kind, (float)((double)a[1] * 1e-6));
}

/* layer_norm(q + attention(q, k, v)) over d: a post-norm transformer step
 * without the projections. inputs: q, k, v, w, b, and the mask when kind is
 * not NONE; args: mask kind, scale (1e-6), eps (1e-9) */
static tensor_t *run_attention_residual_ln(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)na;
    attn_mask_kind_t kind = (attn_mask_kind_t)a[0];
    tensor_t *att = op_attention(c, in[0], in[1], in[2], n > 5 ? in[5] : NULL, kind, (float)((double)a[1] * 1e-6));
    return op_layer_norm(c, op_add(c, in[0], att), in[3], in[4], eps_arg(a[2]));
}

/* args: eps (1e-9) */
static tensor_t *run_cosine(ctx_t *c, tensor_t **in, int n, const int64_t *a, int na) {
    (void)n, (void)na;
    return op_cosine_similarity(c, in[0], in[1], eps_arg(a[0]));
}

const op_kind_t op_kinds_nn[] = {
    {"softmax", run_softmax, 0, 0},
    {"layer_norm", run_layer_norm, 0, 0},
    {"group_norm", run_group_norm, 0, 0},
    {"attention", run_attention, 0, 0},
    {"attention_residual_ln", run_attention_residual_ln, 0, 0},
    {"cosine_similarity", run_cosine, 0, 0},
    {NULL, NULL, 0, 0},
};
