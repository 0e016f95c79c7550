/* ops_resample.c - bilinear resizing (F.interpolate) and bilinear grid
 * sampling (F.grid_sample), both with align_corners=False. */
#include "error.h"
#include "ops.h"

/* ---- F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False) ---- */

/* iarg: planes, h, w, oh, ow; farg: scale_h, scale_w */
static void interpolate_backward(ctx_t *ctx, tape_node_t *n) {
    ctx->be->upsample_bilinear_backward(ctx_grad(ctx, n->in[0]), n->out->grad, n->iarg[0], n->iarg[1], n->iarg[2],
                                        n->iarg[3], n->iarg[4], n->farg[0], n->farg[1]);
}

tensor_t *op_interpolate_bilinear(ctx_t *ctx, tensor_t *x, int64_t oh, int64_t ow) {
    op_check_f32(ctx, "interpolate_bilinear", x);
    char sx[96];
    if (x->ndim < 2) fatal("interpolate_bilinear: input %s has fewer than 2 dims", tensor_shape_str(x, sx, 96));
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    if (oh < 1 || ow < 1 || h < 1 || w < 1)
        fatal("interpolate_bilinear: input %s to size (%lld, %lld)", tensor_shape_str(x, sx, 96), (long long)oh,
              (long long)ow);
    int64_t planes = x->numel / (h * w);
    int64_t shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim - 2; i++) shape[i] = x->shape[i];
    shape[x->ndim - 2] = oh;
    shape[x->ndim - 1] = ow;
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, x->ndim, shape);
    /* with a size given (no scale_factor), torch's source-per-destination scale is in / out */
    float scale_h = (float)((double)h / (double)oh), scale_w = (float)((double)w / (double)ow);
    ctx->be->upsample_bilinear_forward(tensor_f32(out), tensor_f32(x), planes, h, w, oh, ow, scale_h, scale_w);
    tape_node_t *n = ctx_record(ctx, "interpolate_bilinear", interpolate_backward, out, 1, &x);
    if (n) {
        n->iarg[0] = planes;
        n->iarg[1] = h;
        n->iarg[2] = w;
        n->iarg[3] = oh;
        n->iarg[4] = ow;
        n->farg[0] = scale_h;
        n->farg[1] = scale_w;
    }
    return out;
}

/* ---- F.grid_sample(x, grid, "bilinear", "zeros", align_corners=False) ---- */

static void grid_sample_backward(ctx_t *ctx, tape_node_t *n) {
    tensor_t *x = n->in[0], *grid = n->in[1];
    ctx->be->grid_sample_backward(ctx_grad_if(ctx, x), ctx_grad_if(ctx, grid), n->out->grad, tensor_f32(x),
                                  tensor_f32(grid), x->shape[0], x->shape[1], x->shape[2], x->shape[3],
                                  grid->shape[1], grid->shape[2]);
}

tensor_t *op_grid_sample(ctx_t *ctx, tensor_t *x, tensor_t *grid) {
    op_check_f32(ctx, "grid_sample", x);
    op_check_f32(ctx, "grid_sample", grid);
    char sx[96], sg[96];
    if (x->ndim != 4 || grid->ndim != 4 || grid->shape[0] != x->shape[0] || grid->shape[3] != 2)
        fatal("grid_sample: input %s, grid %s (want [n, c, h, w] and [n, ho, wo, 2])", tensor_shape_str(x, sx, 96),
              tensor_shape_str(grid, sg, 96));
    int64_t shape[4] = {x->shape[0], x->shape[1], grid->shape[1], grid->shape[2]};
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, 4, shape);
    ctx->be->grid_sample_forward(tensor_f32(out), tensor_f32(x), tensor_f32(grid), x->shape[0], x->shape[1],
                                 x->shape[2], x->shape[3], grid->shape[1], grid->shape[2]);
    tensor_t *in[2] = {x, grid};
    ctx_record(ctx, "grid_sample", grid_sample_backward, out, 2, in);
    return out;
}
