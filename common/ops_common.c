/* ops_common.c - argument checks shared by the ops. */
#include <stdio.h>

#include "error.h"
#include "ops.h"

int op_dim(const char *op, int dim, int ndim) {
    int d = dim < 0 ? dim + ndim : dim;
    if (d < 0 || d >= ndim) fatal("%s: dim %d out of range for %d dims", op, dim, ndim);
    return d;
}

void op_broadcast(const char *op, const tensor_t *a, const tensor_t *b, bcast_t *bc) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    char sa[96], sb[96];
    bc->ndim = nd;
    bc->numel = 1;
    int64_t sta = 1, stb = 1;
    for (int d = nd - 1; d >= 0; d--) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t ea = da >= 0 ? a->shape[da] : 1;
        int64_t eb = db >= 0 ? b->shape[db] : 1;
        if (ea != eb && ea != 1 && eb != 1)
            fatal("%s: shapes %s and %s do not broadcast", op, tensor_shape_str(a, sa, sizeof sa),
                  tensor_shape_str(b, sb, sizeof sb));
        int64_t e = ea > eb ? ea : eb;
        if (ea == 0 || eb == 0) e = 0;
        bc->shape[d] = e;
        bc->a_stride[d] = (ea == 1) ? 0 : sta;
        bc->b_stride[d] = (eb == 1) ? 0 : stb;
        sta *= ea;
        stb *= eb;
        bc->numel *= e;
    }
}

void op_check_f32(ctx_t *ctx, const char *op, const tensor_t *t) {
    if (!t) fatal("%s: missing tensor", op);
    if (t->dtype != DTYPE_F32) fatal("%s: %s tensor given, F32 needed", op, dtype_name(t->dtype));
    if (t->device != ctx->device)
        fatal("%s: tensor on %s, context on %s", op, device_name(t->device), device_name(ctx->device));
}
