/* bench_shapes.h - the shapes `make bench` measures, shared by the C bench and
 * (by the same names and numbers) tests/bench/bench_torch.py.
 * Swin-B at 384x384: stage 1 has 96x96 tokens of 128 channels, stage 3 24x24 of
 * 512, windows of 12x12; Mask2Former (ADE, hidden 256): 100 queries, FFN 2048,
 * the pixel decoder's 3 levels hold 48^2 + 24^2 + 12^2 = 3024 tokens, FFN 1024. */
#ifndef STEPSTONE_BENCH_SHAPES_H
#define STEPSTONE_BENCH_SHAPES_H

typedef struct {
    const char *name;
    int m, n, k; /* C[m,n] = A[m,k] B[k,n] */
} gemm_shape_t;

static const gemm_shape_t bench_gemms[] = {
    {"gemm.square1024", 1024, 1024, 1024},
    {"gemm.swin_s1_qkv", 9216, 384, 128},
    {"gemm.swin_s1_fc2", 9216, 128, 512},
    {"gemm.swin_s3_fc1", 576, 2048, 512},
    {"gemm.m2f_dec_ffn", 500, 2048, 256},
    {"gemm.m2f_pixdec_ffn", 3024, 1024, 256},
};

/* linear + GELU: x [m, k] -> [m, n] */
static const gemm_shape_t bench_linear_gelu[] = {
    {"linear_gelu.swin_s1_fc1", 9216, 512, 128},
    {"linear_gelu.swin_s3_fc1", 576, 2048, 512},
    {"linear_gelu.swin_s4_fc1", 144, 4096, 1024},
};

typedef struct {
    const char *name;
    int b, h, lq, lk, d;
    int mask; /* 0 none, 1 additive (shifted windows), 2 boolean block (masked attention) */
} attn_shape_t;

static const attn_shape_t bench_attention[] = {
    {"attention.swin_s1_windows", 64, 4, 144, 144, 32, 1},
    {"attention.swin_s3_windows", 4, 16, 144, 144, 32, 1},
    {"attention.m2f_cross_48x48", 5, 8, 100, 2304, 32, 2},
    {"attention.m2f_self", 5, 8, 100, 100, 32, 0},
};

#endif
