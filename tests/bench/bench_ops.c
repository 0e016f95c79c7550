/* bench_ops.c - GFLOP/s of the CPU GEMM path, linear+GELU and attention at
 * Swin-B and Mask2Former sizes (forward, f32). Prints one line per shape:
 *   <name> <ms per call> <GFLOP/s>
 * tests/bench/run.sh puts PyTorch's numbers for the same shapes beside them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_shapes.h"
#include "ops.h"
#include "rng.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static tensor_t *random_tensor(arena_t *a, rng_t *r, int ndim, const int64_t *shape, float scale) {
    tensor_t *t = tensor_new(a, DTYPE_F32, ndim, shape);
    float *p = tensor_f32(t);
    for (int64_t i = 0; i < t->numel; i++) p[i] = scale * (float)rng_normal(r);
    return t;
}

typedef tensor_t *(*bench_fn_t)(ctx_t *ctx, tensor_t **in);

/* Calls fn until 0.5 s have passed (at least 3 calls, after one warm-up). */
static double time_ms(ctx_t *ctx, bench_fn_t fn, tensor_t **in) {
    fn(ctx, in);
    ctx_reset(ctx);
    int calls = 0;
    double start = now(), t = start;
    while (calls < 3 || t - start < 0.5) {
        fn(ctx, in);
        ctx_reset(ctx);
        calls++;
        t = now();
    }
    return 1e3 * (t - start) / calls;
}

static tensor_t *run_matmul(ctx_t *ctx, tensor_t **in) { return op_matmul(ctx, in[0], in[1]); }
static tensor_t *run_linear_gelu(ctx_t *ctx, tensor_t **in) { return op_gelu(ctx, op_linear(ctx, in[0], in[1], in[2])); }
static tensor_t *run_attention(ctx_t *ctx, tensor_t **in) {
    attn_mask_kind_t kind = !in[3] ? ATTN_MASK_NONE : in[3]->dtype == DTYPE_U8 ? ATTN_MASK_BLOCK : ATTN_MASK_ADD;
    return op_attention(ctx, in[0], in[1], in[2], in[3], kind, 0.0f);
}

static void report(const char *name, double ms, double flops) {
    printf("%-32s %10.3f %10.1f\n", name, ms, flops / (ms * 1e-3) / 1e9);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    ctx_t *ctx = ctx_create(DEVICE_CPU, 64 << 20);
    ctx_set_grad(ctx, 0);
    arena_t *a = arena_create(DEVICE_CPU, 64 << 20);
    rng_t r;
    rng_seed(&r, 1);
    printf("%-32s %10s %10s\n", "# shape", "ms", "GFLOP/s");
    for (size_t i = 0; i < sizeof bench_gemms / sizeof bench_gemms[0]; i++) {
        const gemm_shape_t *s = &bench_gemms[i];
        if (only && !strstr(s->name, only)) continue;
        int64_t sa[2] = {s->m, s->k}, sb[2] = {s->k, s->n};
        tensor_t *in[2] = {random_tensor(a, &r, 2, sa, 1.0f), random_tensor(a, &r, 2, sb, 1.0f)};
        report(s->name, time_ms(ctx, run_matmul, in), 2.0 * s->m * s->n * s->k);
        arena_reset(a);
    }
    for (size_t i = 0; i < sizeof bench_linear_gelu / sizeof bench_linear_gelu[0]; i++) {
        const gemm_shape_t *s = &bench_linear_gelu[i];
        if (only && !strstr(s->name, only)) continue;
        int64_t sx[2] = {s->m, s->k}, sw[2] = {s->n, s->k}, sbias[1] = {s->n};
        tensor_t *in[3] = {random_tensor(a, &r, 2, sx, 1.0f), random_tensor(a, &r, 2, sw, 0.05f),
                           random_tensor(a, &r, 1, sbias, 0.1f)};
        report(s->name, time_ms(ctx, run_linear_gelu, in), 2.0 * s->m * s->n * s->k);
        arena_reset(a);
    }
    for (size_t i = 0; i < sizeof bench_attention / sizeof bench_attention[0]; i++) {
        const attn_shape_t *s = &bench_attention[i];
        if (only && !strstr(s->name, only)) continue;
        int64_t sq[4] = {s->b, s->h, s->lq, s->d}, sk[4] = {s->b, s->h, s->lk, s->d};
        tensor_t *in[4] = {random_tensor(a, &r, 4, sq, 1.0f), random_tensor(a, &r, 4, sk, 1.0f),
                           random_tensor(a, &r, 4, sk, 1.0f), NULL};
        if (s->mask == 1) { /* additive, per window as Swin's shifted-window mask: [b, 1, l, l] */
            int64_t sm[4] = {s->b, 1, s->lq, s->lk};
            in[3] = tensor_zeros(a, DTYPE_F32, 4, sm);
            float *m = tensor_f32(in[3]);
            for (int64_t j = 0; j < in[3]->numel; j++) m[j] = (j % 7 == 0) ? -100.0f : 0.0f;
        } else if (s->mask == 2) { /* boolean, per head as Mask2Former's masked attention */
            int64_t sm[4] = {s->b, s->h, s->lq, s->lk};
            in[3] = tensor_zeros(a, DTYPE_U8, 4, sm);
            uint8_t *m = in[3]->data;
            for (int64_t j = 0; j < in[3]->numel; j++) m[j] = (uint8_t)(rng_below(&r, 2) && (j % s->lk) != 0);
        }
        double flops = 4.0 * s->b * s->h * s->lq * s->lk * s->d;
        report(s->name, time_ms(ctx, run_attention, in), flops);
        arena_reset(a);
    }
    arena_destroy(a);
    ctx_destroy(ctx);
    return 0;
}
