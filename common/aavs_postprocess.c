/* aavs_postprocess.c - post-processing of Mask2Former predictions (see
 * aavs_postprocess.h). */
#include <stdlib.h>

#include "aavs_postprocess.h"
#include "error.h"
#include "ops.h"

/* AVS_CLASS_NUM of post_process_binary_segmentation */
#define BINARY_CLASSES 2

/* One frame: class [1, Q, L + 1], masks [1, Q, h, w] -> [1, n, th, tw] */
static tensor_t *frame_logits(ctx_t *ctx, tensor_t *cls, tensor_t *masks, int n_classes, int64_t th, int64_t tw) {
    int64_t q = cls->shape[1], s = AAVS_POSTPROCESS_SIZE;
    tensor_t *probs = op_sigmoid(ctx, op_interpolate_bilinear(ctx, masks, s, s));
    tensor_t *classes = op_slice(ctx, op_softmax(ctx, cls, -1), -1, 0, n_classes); /* [1, Q, n] */
    tensor_t *ct = op_permute(ctx, classes, (int[]){0, 2, 1});                     /* [1, n, Q] */
    tensor_t *seg = op_matmul(ctx, ct, op_reshape(ctx, probs, 3, (int64_t[]){1, q, s * s}));
    seg = op_reshape(ctx, seg, 4, (int64_t[]){1, n_classes, s, s});
    return op_interpolate_bilinear(ctx, seg, th, tw);
}

tensor_t *aavs_postprocess_logits(ctx_t *ctx, tensor_t *class_logits, tensor_t *mask_logits, int n_classes,
                                  int64_t target_h, int64_t target_w) {
    char a[96], b[96];
    if (class_logits->ndim != 3 || mask_logits->ndim != 4 || class_logits->shape[0] != mask_logits->shape[0] ||
        class_logits->shape[1] != mask_logits->shape[1] || n_classes < 1 || n_classes > class_logits->shape[2] ||
        target_h < 1 || target_w < 1)
        fatal("aavs_postprocess_logits: class logits %s, mask logits %s, %d classes to %lldx%lld",
              tensor_shape_str(class_logits, a, 96), tensor_shape_str(mask_logits, b, 96), n_classes,
              (long long)target_h, (long long)target_w);
    int old = ctx_set_grad(ctx, 0);
    int64_t f = class_logits->shape[0];
    tensor_t **frames = malloc((size_t)f * sizeof *frames);
    if (!frames) fatal("aavs_postprocess_logits: out of memory");
    for (int64_t i = 0; i < f; i++) {
        /* each frame's temporaries (its 384 x 384 maps) are dropped once its result is kept */
        ctx_mark_t mark = ctx_mark(ctx);
        tensor_t *cls = op_slice(ctx, class_logits, 0, i, i + 1);
        tensor_t *masks = op_slice(ctx, mask_logits, 0, i, i + 1);
        frames[i] = ctx_keep(ctx, mark, frame_logits(ctx, cls, masks, n_classes, target_h, target_w));
    }
    tensor_t *out = f == 1 ? frames[0] : op_concat(ctx, frames, (int)f, 0);
    free(frames);
    ctx_set_grad(ctx, old);
    return out;
}

tensor_t *aavs_argmax_classes(ctx_t *ctx, tensor_t *class_maps) {
    char s[96];
    if (class_maps->ndim != 4) fatal("aavs_argmax_classes: %s, want [F, n, h, w]", tensor_shape_str(class_maps, s, 96));
    int64_t f = class_maps->shape[0], n = class_maps->shape[1], plane = class_maps->shape[2] * class_maps->shape[3];
    float *v = malloc((size_t)(class_maps->numel ? class_maps->numel : 1) * sizeof(float));
    int64_t *idx = malloc((size_t)(f * plane + 1) * sizeof(int64_t));
    if (!v || !idx) fatal("aavs_argmax_classes: out of memory");
    tensor_to_host(class_maps, v);
    for (int64_t i = 0; i < f; i++)
        for (int64_t p = 0; p < plane; p++) {
            const float *col = v + i * n * plane + p;
            int64_t best = 0;
            /* strictly greater: the first of equal maxima wins */
            for (int64_t c = 1; c < n; c++)
                if (col[c * plane] > col[best * plane]) best = c;
            idx[i * plane + p] = best;
        }
    tensor_t *out = tensor_from_host(ctx->arena, DTYPE_I64, 3,
                                     (int64_t[]){f, class_maps->shape[2], class_maps->shape[3]}, idx);
    free(v);
    free(idx);
    return out;
}

tensor_t *aavs_semantic_map(ctx_t *ctx, tensor_t *class_logits, tensor_t *mask_logits, int64_t target_h,
                            int64_t target_w) {
    int labels = (int)class_logits->shape[class_logits->ndim - 1] - 1; /* [..., :-1] */
    return aavs_argmax_classes(ctx,
                               aavs_postprocess_logits(ctx, class_logits, mask_logits, labels, target_h, target_w));
}

tensor_t *aavs_binary_mask(ctx_t *ctx, tensor_t *class_logits, tensor_t *mask_logits, int64_t target_h,
                           int64_t target_w) {
    return aavs_argmax_classes(ctx, aavs_postprocess_logits(ctx, class_logits, mask_logits, BINARY_CLASSES, target_h,
                                                            target_w));
}
