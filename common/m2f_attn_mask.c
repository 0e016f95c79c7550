/* m2f_attn_mask.c - Mask2Former's binary attention masks and the AAVS prompt
 * choice (see m2f_attn_mask.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "m2f_attn_mask.h"
#include "ops.h"

void m2f_attn_mask_from_logits(uint8_t *mask, const float *logits, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-logits[i]));
        mask[i] = s < 0.5f;
    }
}

void m2f_attn_mask_from_boost(uint8_t *mask, const float *boost, int64_t frames, int64_t queries, int64_t len) {
    for (int64_t f = 0; f < frames; f++)
        for (int64_t q = 0; q < queries; q++)
            for (int64_t k = 0; k < len; k++) mask[(f * queries + q) * len + k] = boost[f * len + k] < 0.5f;
}

void m2f_attn_mask_open_full_rows(uint8_t *mask, int64_t rows, int64_t len) {
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = mask + r * len;
        int64_t blocked = 0;
        for (int64_t k = 0; k < len; k++) blocked += row[k] != 0;
        if (blocked == len) memset(row, 0, (size_t)len);
    }
}

void m2f_prompt_index(int64_t *index, const float *p, int64_t n) {
    /* 0.4 and 0.6 as float32: torch compares a float32 tensor with a Python
     * float in float32 */
    const float low = 0.4f, high = 0.6f;
    for (int64_t i = 0; i < n; i++)
        index[i] = p[i] <= low ? M2F_PROMPT_SILENCE : p[i] >= high ? M2F_PROMPT_AUDIO : M2F_PROMPT_UNCERTAIN;
}

static float *to_host(const tensor_t *t) {
    float *h = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!h) fatal("attention mask: out of host memory");
    tensor_to_host(t, h);
    return h;
}

/* U8 [F, 1, Q, len] on ctx's device from host bytes */
static tensor_t *upload(ctx_t *ctx, const uint8_t *mask, int64_t frames, int64_t queries, int64_t len) {
    int64_t shape[4] = {frames, 1, queries, len};
    return tensor_from_host(ctx->arena, DTYPE_U8, 4, shape, mask);
}

tensor_t *m2f_attn_mask_from_mask_logits(ctx_t *ctx, tensor_t *mask_logits, int64_t h, int64_t w) {
    char s[96];
    if (mask_logits->ndim != 4)
        fatal("attention mask: mask logits %s, want [F, Q, H, W]", tensor_shape_str(mask_logits, s, 96));
    int64_t frames = mask_logits->shape[0], queries = mask_logits->shape[1], len = h * w;
    /* detached, as the official code detaches it */
    int old = ctx_set_grad(ctx, 0);
    tensor_t *resized = op_interpolate_bilinear(ctx, mask_logits, h, w);
    ctx_set_grad(ctx, old);
    float *host = to_host(resized);
    uint8_t *mask = malloc((size_t)(resized->numel ? resized->numel : 1));
    if (!mask) fatal("attention mask: out of host memory");
    m2f_attn_mask_from_logits(mask, host, resized->numel);
    m2f_attn_mask_open_full_rows(mask, frames * queries, len);
    tensor_t *t = upload(ctx, mask, frames, queries, len);
    free(mask);
    free(host);
    return t;
}

tensor_t *m2f_attn_mask_from_boost_map(ctx_t *ctx, tensor_t *boost, int64_t queries) {
    char s[96];
    if (boost->ndim != 4 || boost->shape[1] != 1)
        fatal("attention mask: boost map %s, want [F, 1, h, w]", tensor_shape_str(boost, s, 96));
    int64_t frames = boost->shape[0], len = boost->shape[2] * boost->shape[3];
    float *host = to_host(boost);
    int64_t n = frames * queries * len;
    uint8_t *mask = malloc((size_t)(n > 0 ? n : 1));
    if (!mask) fatal("attention mask: out of host memory");
    m2f_attn_mask_from_boost(mask, host, frames, queries, len);
    m2f_attn_mask_open_full_rows(mask, frames * queries, len);
    tensor_t *t = upload(ctx, mask, frames, queries, len);
    free(mask);
    free(host);
    return t;
}
