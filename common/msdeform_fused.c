/* msdeform_fused.c - the sampling core of multi-scale deformable attention as
 * one op with a CPU kernel (see msdeform_attn.h): for each query and head, the
 * attention-weighted sum of bilinear samples of the head's value maps, with
 * grid_sample's arithmetic (align_corners=False, zeros padding) so that it
 * agrees with the composed path. Nothing but the output is stored; the
 * backward recomputes the corners. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "msdeform_attn.h"
#include "ops.h"

/* Multiply-adds below which a thread team costs more than it saves */
#define PARALLEL_MIN_WORK (1 << 20)

/* The problem's sizes; the level shapes live in a record on the tape. */
typedef struct {
    int64_t frames, queries, positions, heads, dim; /* dim: channels per head */
    int levels, points;
    int64_t shape[MSDEFORM_MAX_LEVELS][2];         /* (h, w) */
    int64_t start[MSDEFORM_MAX_LEVELS];            /* first position of each level */
} msdeform_dims_t;

/* A sampling point on a map h x w: grid_sample's pixel position
 * ((2 loc - 1 + 1) w - 1) / 2, its top-left corner and the weights of the far
 * corners (the same steps and clamp as the CPU grid_sample kernel). */
typedef struct {
    int64_t x0, y0;
    float wx1, wy1;
} corner_t;

static corner_t corner_of(float loc_x, float loc_y, int64_t h, int64_t w) {
    float gx = 2.0f * loc_x + -1.0f, gy = 2.0f * loc_y + -1.0f; /* as op_affine(loc, 2, -1) */
    float ix = ((gx + 1.0f) * (float)w - 1.0f) * 0.5f;
    float iy = ((gy + 1.0f) * (float)h - 1.0f) * 0.5f;
    /* far outside every corner is padding; the clamp keeps the conversion defined */
    ix = fminf(fmaxf(ix, -2.0f), (float)w + 1.0f);
    iy = fminf(fmaxf(iy, -2.0f), (float)h + 1.0f);
    float fx = floorf(ix), fy = floorf(iy);
    corner_t c = {(int64_t)fx, (int64_t)fy, ix - fx, iy - fy};
    return c;
}

static int inside(int64_t y, int64_t x, int64_t h, int64_t w) { return y >= 0 && y < h && x >= 0 && x < w; }

/* The head's value vector at (y, x) of level l, or NULL outside the map. */
static const float *value_at(const msdeform_dims_t *m, const float *value, int64_t f, int l, int64_t head, int64_t y,
                             int64_t x) {
    int64_t h = m->shape[l][0], w = m->shape[l][1];
    if (!inside(y, x, h, w)) return NULL;
    int64_t pos = m->start[l] + y * w + x;
    return value + (f * m->positions + pos) * m->heads * m->dim + head * m->dim;
}

static void fused_forward(const msdeform_dims_t *m, float *out, const float *value, const float *loc,
                          const float *weights) {
    int64_t d = m->dim, lp = (int64_t)m->levels * m->points;
    /* what a corner outside the map reads: zeros padding without a branch per channel */
    float *zeros = calloc((size_t)d, sizeof *zeros);
    if (!zeros) fatal("msdeform_core: out of memory");
#pragma omp parallel for if (m->frames * m->queries * m->heads * lp * d > PARALLEL_MIN_WORK)
    for (int64_t fq = 0; fq < m->frames * m->queries; fq++) {
        int64_t f = fq / m->queries;
        for (int64_t head = 0; head < m->heads; head++) {
            float *o = out + (fq * m->heads + head) * d;
            memset(o, 0, (size_t)d * sizeof *o);
            const float *wt = weights + (fq * m->heads + head) * lp;
            const float *lc = loc + (fq * m->heads + head) * lp * 2;
            for (int l = 0; l < m->levels; l++) {
                int64_t h = m->shape[l][0], w = m->shape[l][1];
                for (int p = 0; p < m->points; p++) {
                    int64_t k = (int64_t)l * m->points + p;
                    corner_t c = corner_of(lc[k * 2], lc[k * 2 + 1], h, w);
                    float wx0 = 1.0f - c.wx1, wy0 = 1.0f - c.wy1;
                    const float *v00 = value_at(m, value, f, l, head, c.y0, c.x0);
                    const float *v01 = value_at(m, value, f, l, head, c.y0, c.x0 + 1);
                    const float *v10 = value_at(m, value, f, l, head, c.y0 + 1, c.x0);
                    const float *v11 = value_at(m, value, f, l, head, c.y0 + 1, c.x0 + 1);
                    if (!v00) v00 = zeros;
                    if (!v01) v01 = zeros;
                    if (!v10) v10 = zeros;
                    if (!v11) v11 = zeros;
                    float a = wt[k];
                    /* grid_sample's value (the CPU kernel's expression), then times the weight, as torch does */
                    for (int64_t ch = 0; ch < d; ch++) {
                        float sample =
                            wy0 * (wx0 * v00[ch] + c.wx1 * v01[ch]) + c.wy1 * (wx0 * v10[ch] + c.wx1 * v11[ch]);
                        o[ch] += a * sample;
                    }
                }
            }
        }
    }
    free(zeros);
}

/* d value (may be NULL), d locations (may be NULL), d weights (may be NULL)
 * from d out. One thread per (frame, head): every write lands in that frame's
 * and head's slice, so no two threads touch the same element. */
static void fused_backward(const msdeform_dims_t *m, float *dvalue, float *dloc, float *dweights, const float *dout,
                           const float *value, const float *loc, const float *weights) {
    int64_t d = m->dim, lp = (int64_t)m->levels * m->points;
#pragma omp parallel for if (m->frames * m->queries * m->heads * lp * d > PARALLEL_MIN_WORK)
    for (int64_t fh = 0; fh < m->frames * m->heads; fh++) {
        int64_t f = fh / m->heads, head = fh % m->heads;
        for (int64_t q = 0; q < m->queries; q++) {
            int64_t fq = f * m->queries + q;
            const float *g = dout + (fq * m->heads + head) * d;
            const float *wt = weights + (fq * m->heads + head) * lp;
            const float *lc = loc + (fq * m->heads + head) * lp * 2;
            for (int l = 0; l < m->levels; l++) {
                int64_t h = m->shape[l][0], w = m->shape[l][1];
                for (int p = 0; p < m->points; p++) {
                    int64_t k = (int64_t)l * m->points + p;
                    corner_t c = corner_of(lc[k * 2], lc[k * 2 + 1], h, w);
                    float cw[4] = {(1.0f - c.wy1) * (1.0f - c.wx1), (1.0f - c.wy1) * c.wx1, c.wy1 * (1.0f - c.wx1),
                                   c.wy1 * c.wx1};
                    int64_t ys[4] = {c.y0, c.y0, c.y0 + 1, c.y0 + 1}, xs[4] = {c.x0, c.x0 + 1, c.x0, c.x0 + 1};
                    const float *v[4];
                    for (int i = 0; i < 4; i++) v[i] = value_at(m, value, f, l, head, ys[i], xs[i]);
                    float a = wt[k];
                    if (dvalue)
                        for (int i = 0; i < 4; i++) {
                            if (!v[i]) continue;
                            float *dv = dvalue + (v[i] - value); /* the same element of the gradient */
                            float s = a * cw[i];
                            for (int64_t ch = 0; ch < d; ch++) dv[ch] += s * g[ch];
                        }
                    if (dweights || dloc) {
                        /* per channel: the sample, and its slopes along x and y (grid_sample's backward) */
                        double sample = 0.0, sx = 0.0, sy = 0.0;
                        for (int64_t ch = 0; ch < d; ch++) {
                            double v00 = v[0] ? v[0][ch] : 0.0, v01 = v[1] ? v[1][ch] : 0.0;
                            double v10 = v[2] ? v[2][ch] : 0.0, v11 = v[3] ? v[3][ch] : 0.0;
                            double gc = g[ch];
                            sample += gc * (cw[0] * v00 + cw[1] * v01 + cw[2] * v10 + cw[3] * v11);
                            sx += gc * ((1.0 - c.wy1) * (v01 - v00) + c.wy1 * (v11 - v10));
                            sy += gc * ((1.0 - c.wx1) * (v10 - v00) + c.wx1 * (v11 - v01));
                        }
                        int64_t at = (fq * m->heads + head) * lp + k;
                        if (dweights) dweights[at] += (float)sample;
                        /* d pixel / d loc = d pixel / d grid (w / 2) * d grid / d loc (2) = w */
                        if (dloc) {
                            dloc[at * 2] += (float)((double)a * sx * (double)w);
                            dloc[at * 2 + 1] += (float)((double)a * sy * (double)h);
                        }
                    }
                }
            }
        }
    }
}

static void msdeform_backward(ctx_t *ctx, tape_node_t *n) {
    const msdeform_dims_t *m = n->record;
    tensor_t *value = n->in[0], *loc = n->in[1], *weights = n->in[2];
    fused_backward(m, ctx_grad_if(ctx, value), ctx_grad_if(ctx, loc), ctx_grad_if(ctx, weights), n->out->grad,
                   tensor_f32(value), tensor_f32(loc), tensor_f32(weights));
}

tensor_t *op_msdeform_core(ctx_t *ctx, tensor_t *value, tensor_t *locations, tensor_t *weights, int n_levels,
                           const int64_t (*shapes)[2]) {
    const char *op = "msdeform_core";
    if (ctx->device != DEVICE_CPU) fatal("%s: the fused kernel runs on the CPU only", op);
    op_check_f32(ctx, op, value);
    op_check_f32(ctx, op, locations);
    op_check_f32(ctx, op, weights);
    char sv[96], sl[96], sw[96];
    msdeform_dims_t m;
    memset(&m, 0, sizeof m);
    int shapes_ok = value->ndim == 3 && locations->ndim == 6 && weights->ndim == 5 && n_levels >= 1 &&
                    n_levels <= MSDEFORM_MAX_LEVELS;
    if (shapes_ok) {
        m.frames = locations->shape[0];
        m.queries = locations->shape[1];
        m.heads = locations->shape[2];
        m.levels = n_levels;
        m.points = (int)locations->shape[4];
        m.positions = value->shape[1];
        int64_t total = 0;
        for (int l = 0; l < n_levels; l++) {
            m.shape[l][0] = shapes[l][0];
            m.shape[l][1] = shapes[l][1];
            m.start[l] = total;
            total += shapes[l][0] * shapes[l][1];
            shapes_ok = shapes_ok && shapes[l][0] >= 1 && shapes[l][1] >= 1;
        }
        shapes_ok = shapes_ok && value->shape[0] == m.frames && total == m.positions && m.heads >= 1 &&
                    value->shape[2] % m.heads == 0 && locations->shape[3] == n_levels && locations->shape[5] == 2;
        for (int i = 0; i < 5 && shapes_ok; i++) shapes_ok = weights->shape[i] == locations->shape[i];
        m.dim = shapes_ok ? value->shape[2] / m.heads : 0;
    }
    if (!shapes_ok)
        fatal("%s: value %s, locations %s, weights %s with %d levels (want [F, S, heads * d], [F, Q, heads, L, P, 2], "
              "[F, Q, heads, L, P], S the levels' positions)",
              op, tensor_shape_str(value, sv, 96), tensor_shape_str(locations, sl, 96),
              tensor_shape_str(weights, sw, 96), n_levels);
    tensor_t *out = tensor_new(ctx->arena, DTYPE_F32, 3, (int64_t[]){m.frames, m.queries, m.heads * m.dim});
    fused_forward(&m, tensor_f32(out), tensor_f32(value), tensor_f32(locations), tensor_f32(weights));
    tensor_t *in[3] = {value, locations, weights};
    tape_node_t *n = ctx_record(ctx, op, msdeform_backward, out, 3, in);
    if (n) {
        msdeform_dims_t *rec = arena_alloc_host(ctx->arena, sizeof *rec);
        *rec = m;
        n->record = rec;
    }
    return out;
}
