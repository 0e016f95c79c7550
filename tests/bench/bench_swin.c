/* bench_swin.c - frames per second of the full-size Swin-B backbone (random
 * weights, 384x384, batch 1 and 5, no gradients) with the peak step-arena
 * memory. tests/bench/bench_swin_torch.py runs the same architecture in
 * PyTorch (HuggingFace SwinBackbone) on the same threads. */
#include <stdio.h>
#include <time.h>

#include "rng.h"
#include "swin.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Mask2Former's Swin-B (facebook/mask2former-swin-base-ade-semantic) */
static swin_config_t swin_b(void) {
    swin_config_t c = {0};
    c.num_channels = 3;
    c.patch_h = c.patch_w = 4;
    c.embed_dim = 128;
    c.n_stages = 4;
    int depths[4] = {2, 2, 18, 2}, heads[4] = {4, 8, 16, 32};
    for (int s = 0; s < 4; s++) {
        c.depths[s] = depths[s];
        c.num_heads[s] = heads[s];
        c.mlp_hidden[s] = 4 * (128 << s);
    }
    c.window_size = 12;
    c.qkv_bias = 1;
    c.layer_norm_eps = 1e-5f;
    c.hidden_act = SWIN_ACT_GELU;
    c.n_out = 4;
    for (int i = 0; i < 4; i++) c.out_stages[i] = i + 1;
    c.image_h = c.image_w = 384;
    return c;
}

int main(void) {
    swin_config_t cfg = swin_b();
    arena_t *pa = arena_create(DEVICE_CPU, 64 << 20);
    param_list_t params;
    param_list_init(&params, pa);
    swin_t *m = swin_random(&cfg, &params, 1, 0.02f);
    ctx_t *ctx = ctx_create(DEVICE_CPU, 256 << 20);
    ctx_set_grad(ctx, 0);
    rng_t r;
    rng_seed(&r, 2);
    printf("%-32s %10s %10s %12s\n", "# swin-b 384x384", "s/batch", "frames/s", "peak MiB");
    int batches[2] = {1, 5};
    for (int i = 0; i < 2; i++) {
        int64_t shape[4] = {batches[i], 3, 384, 384};
        tensor_t *x = tensor_new(pa, DTYPE_F32, 4, shape);
        for (int64_t j = 0; j < x->numel; j++) tensor_f32(x)[j] = (float)rng_normal(&r);
        tensor_t *feats[4];
        swin_forward(ctx, m, x, feats, NULL, NULL); /* warm-up */
        ctx_reset(ctx);
        ctx->arena->peak = 0;
        int runs = batches[i] == 1 ? 3 : 1;
        double t0 = now();
        for (int k = 0; k < runs; k++) {
            swin_forward(ctx, m, x, feats, NULL, NULL);
            ctx_reset(ctx);
        }
        double sec = (now() - t0) / runs;
        char name[64];
        snprintf(name, sizeof name, "swin_b.batch%d", batches[i]);
        printf("%-32s %10.3f %10.2f %12.1f\n", name, sec, batches[i] / sec, (double)ctx->arena->peak / (1 << 20));
        fflush(stdout);
    }
    ctx_destroy(ctx);
    swin_free(m);
    arena_destroy(pa);
    return 0;
}
