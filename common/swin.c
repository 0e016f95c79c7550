/* swin.c - the Swin backbone's forward pass, composed of ops (so it runs on
 * every backend and has a backward). See swin.h for what it computes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "swin.h"

/* torch.nn.LayerNorm's default eps, used by the norms HF builds without one:
 * embeddings.norm, downsample.norm and hidden_states_norms */
#define TORCH_LN_EPS 1e-5f
/* the score HF's SW-MSA mask puts between tokens of different regions */
#define SHIFT_MASK_VALUE (-100.0f)

/* x padded with n zeros at the end of dim (nn.functional.pad with zeros) */
static tensor_t *pad_end(ctx_t *ctx, tensor_t *x, int dim, int64_t n) {
    if (n == 0) return x;
    int64_t shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = n;
    tensor_t *parts[2] = {x, tensor_zeros(ctx->arena, DTYPE_F32, x->ndim, shape)};
    return op_concat(ctx, parts, 2, dim);
}

/* y + Linear(ReLU(Linear(y))): the AAVS adapter, skipped when it is known zero
 * and nothing will ask it for a gradient (then it adds exactly 0). */
static tensor_t *adapter_forward(ctx_t *ctx, const swin_adapter_t *a, tensor_t *y) {
    int trained = a->down_w->requires_grad || a->down_b->requires_grad || a->up_w->requires_grad ||
                  a->up_b->requires_grad;
    if (a->zero_at_load && !trained) return y;
    tensor_t *h = op_relu(ctx, op_linear(ctx, y, a->down_w, a->down_b));
    return op_add(ctx, op_linear(ctx, h, a->up_w, a->up_b), y);
}

/* [F, H, W, C] -> windows [F * nh * nw, ws * ws, C] (window_partition) */
static tensor_t *window_partition(ctx_t *ctx, tensor_t *x, int64_t ws) {
    int64_t f = x->shape[0], hp = x->shape[1], wp = x->shape[2], c = x->shape[3];
    tensor_t *t = op_reshape(ctx, x, 6, (int64_t[]){f, hp / ws, ws, wp / ws, ws, c});
    t = op_permute(ctx, t, (int[]){0, 1, 3, 2, 4, 5});
    return op_reshape(ctx, t, 3, (int64_t[]){f * (hp / ws) * (wp / ws), ws * ws, c});
}

/* windows [F * nh * nw, ws * ws, C] -> [F, H, W, C] (window_reverse) */
static tensor_t *window_reverse(ctx_t *ctx, tensor_t *win, int64_t f, int64_t hp, int64_t wp, int64_t ws) {
    int64_t c = win->shape[2];
    tensor_t *t = op_reshape(ctx, win, 6, (int64_t[]){f, hp / ws, wp / ws, ws, ws, c});
    t = op_permute(ctx, t, (int[]){0, 1, 3, 2, 4, 5});
    return op_reshape(ctx, t, 4, (int64_t[]){f, hp, wp, c});
}

/* [B, L, heads * d] -> [B, heads, L, d] (transpose_for_scores) */
static tensor_t *split_heads(ctx_t *ctx, tensor_t *y, int64_t heads) {
    int64_t b = y->shape[0], l = y->shape[1], d = y->shape[2] / heads;
    tensor_t *t = op_reshape(ctx, y, 4, (int64_t[]){b, l, heads, d});
    return op_permute(ctx, t, (int[]){0, 2, 1, 3});
}

/* The SW-MSA mask of SwinLayer.get_attn_mask on the padded map hp x wp:
 * [nW, 1, L, L], 0 within a region and -100 across regions. The regions are
 * the 3 x 3 split of the map at rows/cols (-ws, -shift). */
static tensor_t *shift_mask(ctx_t *ctx, int64_t hp, int64_t wp, int64_t ws, int64_t shift) {
    int64_t nh = hp / ws, nw = wp / ws, l = ws * ws;
    float *m = malloc((size_t)(nh * nw * l * l) * sizeof *m);
    int *region = malloc((size_t)l * sizeof *region);
    if (!m || !region) fatal("swin: out of memory for the shift mask");
    for (int64_t wi = 0; wi < nh; wi++)
        for (int64_t wj = 0; wj < nw; wj++) {
            for (int64_t t = 0; t < l; t++) {
                int64_t r = wi * ws + t / ws, c = wj * ws + t % ws;
                int rr = r < hp - ws ? 0 : (r < hp - shift ? 1 : 2);
                int rc = c < wp - ws ? 0 : (c < wp - shift ? 1 : 2);
                region[t] = rr * 3 + rc;
            }
            float *mw = m + (wi * nw + wj) * l * l;
            for (int64_t p = 0; p < l; p++)
                for (int64_t q = 0; q < l; q++) mw[p * l + q] = region[p] == region[q] ? 0.0f : SHIFT_MASK_VALUE;
        }
    tensor_t *t = tensor_from_host(ctx->arena, DTYPE_F32, 4, (int64_t[]){nh * nw, 1, l, l}, m);
    free(m);
    free(region);
    return t;
}

/* (shifted) window attention on the normed tokens x [F, H, W, C]; returns [F, H, W, C] */
static tensor_t *window_attention(ctx_t *ctx, const swin_t *m, const swin_block_t *b, int64_t heads, tensor_t *x) {
    int64_t ws = m->cfg.window_size, f = x->shape[0], h = x->shape[1], w = x->shape[2], c = x->shape[3];
    /* pad to multiples of the window with zero tokens (SwinLayer.maybe_pad) */
    tensor_t *t = pad_end(ctx, x, 2, (ws - w % ws) % ws);
    t = pad_end(ctx, t, 1, (ws - h % ws) % ws);
    int64_t hp = t->shape[1], wp = t->shape[2], shift = b->shift;
    if (shift > 0) t = op_roll(ctx, t, 2, (int64_t[]){-shift, -shift}, (int[]){1, 2});
    tensor_t *win = window_partition(ctx, t, ws);
    int64_t nwin = (hp / ws) * (wp / ws), l = ws * ws, d = c / heads;
    tensor_t *q = split_heads(ctx, op_linear(ctx, win, b->q_w, b->q_b), heads);
    tensor_t *k = split_heads(ctx, op_linear(ctx, win, b->k_w, b->k_b), heads);
    tensor_t *v = split_heads(ctx, op_linear(ctx, win, b->v_w, b->v_b), heads);
    /* relative position bias: table[index] -> [L, L, heads] -> [1, heads, L, L] */
    tensor_t *bias = op_embedding(ctx, b->rel_bias_table, m->rel_index);
    bias = op_reshape(ctx, bias, 3, (int64_t[]){l, l, heads});
    bias = op_permute(ctx, bias, (int[]){2, 0, 1});
    bias = op_reshape(ctx, bias, 4, (int64_t[]){1, heads, l, l});
    tensor_t *out;
    float scale = 1.0f / sqrtf((float)d);
    if (shift > 0) {
        /* The mask differs per window and the bias per head: view the batch
         * [F * nW, heads] as [F, nW * heads] so that one [1, nW * heads, L, L]
         * mask serves every frame. */
        tensor_t *mask = op_add(ctx, bias, shift_mask(ctx, hp, wp, ws, shift));
        mask = op_reshape(ctx, mask, 4, (int64_t[]){1, nwin * heads, l, l});
        int64_t grouped[4] = {f, nwin * heads, l, d};
        q = op_reshape(ctx, q, 4, grouped);
        k = op_reshape(ctx, k, 4, grouped);
        v = op_reshape(ctx, v, 4, grouped);
        out = op_attention(ctx, q, k, v, mask, ATTN_MASK_ADD, scale);
        out = op_reshape(ctx, out, 4, (int64_t[]){f * nwin, heads, l, d});
    } else {
        out = op_attention(ctx, q, k, v, bias, ATTN_MASK_ADD, scale);
    }
    out = op_permute(ctx, out, (int[]){0, 2, 1, 3});
    out = op_reshape(ctx, out, 3, (int64_t[]){f * nwin, l, c});
    out = op_linear(ctx, out, b->attn_out_w, b->attn_out_b);
    out = adapter_forward(ctx, &b->adapt_attn, out);
    out = window_reverse(ctx, out, f, hp, wp, ws);
    if (shift > 0) out = op_roll(ctx, out, 2, (int64_t[]){shift, shift}, (int[]){1, 2});
    if (hp != h) out = op_slice(ctx, out, 1, 0, h);
    if (wp != w) out = op_slice(ctx, out, 2, 0, w);
    return out;
}

tensor_t *swin_block_forward(ctx_t *ctx, const swin_t *m, const swin_block_t *b, int heads, tensor_t *x, int64_t h,
                             int64_t w) {
    int64_t f = x->shape[0], c = x->shape[2];
    float eps = m->cfg.layer_norm_eps;
    tensor_t *t = op_layer_norm(ctx, x, b->ln_before_w, b->ln_before_b, eps);
    t = op_reshape(ctx, t, 4, (int64_t[]){f, h, w, c});
    t = window_attention(ctx, m, b, heads, t);
    t = op_reshape(ctx, t, 3, (int64_t[]){f, h * w, c});
    x = op_add(ctx, x, t); /* drop path is the identity in evaluation */
    t = op_layer_norm(ctx, x, b->ln_after_w, b->ln_after_b, eps);
    t = op_linear(ctx, t, b->mlp_in_w, b->mlp_in_b);
    t = m->cfg.hidden_act == SWIN_ACT_GELU ? op_gelu(ctx, t) : op_relu(ctx, t);
    t = op_linear(ctx, t, b->mlp_out_w, b->mlp_out_b);
    t = adapter_forward(ctx, &b->adapt_mlp, t);
    return op_add(ctx, x, t);
}

/* SwinPatchMerging: [F, h*w, C] -> [F, ceil(h/2) * ceil(w/2), 2C] */
static tensor_t *patch_merging(ctx_t *ctx, const swin_stage_t *st, tensor_t *x, int64_t h, int64_t w) {
    int64_t f = x->shape[0], c = x->shape[2];
    tensor_t *t = op_reshape(ctx, x, 4, (int64_t[]){f, h, w, c});
    t = pad_end(ctx, t, 2, w % 2);
    t = pad_end(ctx, t, 1, h % 2);
    int64_t h2 = (h + 1) / 2, w2 = (w + 1) / 2;
    /* [F, h2, a, w2, b, C] -> [F, h2, w2, b, a, C]: the concatenation x00, x10, x01, x11
     * (row offset a, column offset b) puts neighbour (a, b) at position 2b + a */
    t = op_reshape(ctx, t, 6, (int64_t[]){f, h2, 2, w2, 2, c});
    t = op_permute(ctx, t, (int[]){0, 1, 3, 4, 2, 5});
    t = op_reshape(ctx, t, 3, (int64_t[]){f, h2 * w2, 4 * c});
    t = op_layer_norm(ctx, t, st->merge_norm_w, st->merge_norm_b, TORCH_LN_EPS);
    return op_linear(ctx, t, st->merge_reduction_w, NULL);
}

/* hidden_states_norms.<stage> on [F, h*w, C] -> [F, C, h, w] */
static tensor_t *stage_output(ctx_t *ctx, const swin_t *m, int s, tensor_t *x, int64_t h, int64_t w) {
    int64_t f = x->shape[0], c = x->shape[2];
    tensor_t *t = op_layer_norm(ctx, x, m->out_norm_w[s], m->out_norm_b[s], TORCH_LN_EPS);
    t = op_permute(ctx, t, (int[]){0, 2, 1});
    return op_reshape(ctx, t, 4, (int64_t[]){f, c, h, w});
}

/* patch embedding + norm: [F, Cin, H, W] -> [F, h*w, C] with h, w the patch grid */
static tensor_t *embed(ctx_t *ctx, const swin_t *m, tensor_t *px, int64_t *h, int64_t *w) {
    int64_t ph = m->cfg.patch_h, pw = m->cfg.patch_w;
    tensor_t *t = pad_end(ctx, px, 3, (pw - px->shape[3] % pw) % pw); /* SwinPatchEmbeddings.maybe_pad */
    t = pad_end(ctx, t, 2, (ph - px->shape[2] % ph) % ph);
    t = op_conv2d(ctx, t, m->patch_w, m->patch_b, (int)ph, (int)pw, 0, 0);
    int64_t f = t->shape[0], c = t->shape[1];
    *h = t->shape[2];
    *w = t->shape[3];
    t = op_reshape(ctx, t, 3, (int64_t[]){f, c, *h * *w});
    t = op_permute(ctx, t, (int[]){0, 2, 1});
    return op_layer_norm(ctx, t, m->embed_norm_w, m->embed_norm_b, TORCH_LN_EPS);
}

void swin_forward(ctx_t *ctx, const swin_t *m, tensor_t *pixel_values, tensor_t **features, swin_debug_fn_t debug,
                  void *debug_user) {
    const swin_config_t *c = &m->cfg;
    char sp[96];
    if (pixel_values->ndim != 4 || pixel_values->shape[1] != c->num_channels || pixel_values->shape[0] < 1 ||
        pixel_values->shape[2] < 1 || pixel_values->shape[3] < 1)
        fatal("swin_forward: pixel_values %s, want [F, %d, H, W]", tensor_shape_str(pixel_values, sp, sizeof sp),
              c->num_channels);
    tensor_t *by_stage[SWIN_MAX_STAGES + 1] = {0}; /* outputs by stage index, 0 = stem */
    int64_t h, w;
    tensor_t *x = embed(ctx, m, pixel_values, &h, &w);
    if (debug) debug(debug_user, "embeddings", x);
    if (m->out_norm_w[0]) by_stage[0] = stage_output(ctx, m, 0, x, h, w);
    for (int s = 0; s < c->n_stages; s++) {
        const swin_stage_t *st = &m->stages[s];
        char name[64];
        for (int j = 0; j < st->depth; j++) {
            /* without a tape (feature extraction) a block's temporaries are
             * dropped as soon as it is done: memory of one block, not all */
            ctx_mark_t mark = ctx_mark(ctx);
            x = swin_block_forward(ctx, m, &st->blocks[j], st->heads, x, h, w);
            if (ctx->n_nodes == mark.n_nodes) x = ctx_keep(ctx, mark, x);
            snprintf(name, sizeof name, "stage%d.block%d", s + 1, j);
            if (debug) debug(debug_user, name, x);
        }
        if (m->out_norm_w[s + 1]) by_stage[s + 1] = stage_output(ctx, m, s + 1, x, h, w);
        if (s + 1 == c->n_stages) break;
        x = patch_merging(ctx, st, x, h, w);
        h = (h + 1) / 2;
        w = (w + 1) / 2;
        snprintf(name, sizeof name, "stage%d.downsample", s + 1);
        if (debug) debug(debug_user, name, x);
    }
    for (int i = 0; i < c->n_out; i++) features[i] = by_stage[c->out_stages[i]];
}
