/* bench_train.c - one training step of the full-size AAVS head on CPU:
 * forward from cached backbone features, the Mask2Former loss (every
 * auxiliary prediction, random points), backward and AdamW, in seconds per
 * step and peak memory. tests/bench/bench_train_torch.py runs the same
 * architecture in PyTorch (HuggingFace's Mask2Former modules plus the AAVS
 * additions) on the same threads and prints the same rows.
 *
 * The head is Mask2Former swin-base ADE's (feature_size = hidden_dim =
 * mask_feature_size 256, 6 encoder layers FFN 1024, 8 heads, 10 decoder layers
 * FFN 2048, 12544 loss points) on the Swin-B feature maps of 5 frames at 384x384
 * (128x96x96, 256x48x48, 512x24x24, 1024x12x12), random weights. Rows:
 *   avss: 71 labels, 100 queries, a 224x224 stage-1 mask (audio_boost_mask);
 *   avs:  2 labels, 30 queries;
 * each with the official phase-1 parameters trainable and with every head
 * parameter trainable.
 *
 * The avs rows run when STEPSTONE_BENCH_AVS=1 (PyTorch takes about a minute
 * a step on 2 cores: four rows would keep its side busy for a quarter hour).
 *
 * Columns: seconds per step (the mean of STEPSTONE_BENCH_STEPS steps after one
 * warm-up step; default 2 here, 1 on the PyTorch side), the process's max RSS
 * growth over building the head and training (parameters, optimizer state,
 * activations, workspace: what PyTorch's column measures too), the arenas'
 * share of it (step arena peak + parameters + gradients and moments), and the
 * trainable parameter count in millions (the two sides must agree on it).
 *
 * Each row runs in a process of its own (the program re-executes itself) so
 * that max RSS, a high-water mark, is the row's own. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aavs.h"
#include "adamw.h"
#include "rng.h"

#define FRAMES 5
#define IMAGE 384 /* the image processor's size: the targets' size */
#define BOOST 224 /* the stage-1 mask as the dataset gives it (label size) */
#define N_FEATURES 4

static const int feat_channels[N_FEATURES] = {128, 256, 512, 1024};
static const int feat_size[N_FEATURES] = {96, 48, 24, 12};

typedef struct {
    const char *name;
    m2f_variant_t variant;
    aavs_trainable_t preset;
} row_t;

static const row_t rows[] = {
    {"train.avss.phase1", M2F_VARIANT_AVSS, AAVS_TRAIN_PHASE1},
    {"train.avss.all_head", M2F_VARIANT_AVSS, AAVS_TRAIN_ALL_HEAD},
    {"train.avs.phase1", M2F_VARIANT_AVS, AAVS_TRAIN_PHASE1},
    {"train.avs.all_head", M2F_VARIANT_AVS, AAVS_TRAIN_ALL_HEAD},
};
#define N_ROWS ((int)(sizeof rows / sizeof *rows))

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double max_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* The full-size config as a HuggingFace config.json would give it: every
 * field the modules read has Mask2FormerConfig's default (= the ADE config)
 * except the backbone's, the labels and the queries. */
static aavs_head_config_t full_size_config(m2f_variant_t variant) {
    int labels = variant == M2F_VARIANT_AVSS ? 71 : 2, queries = variant == M2F_VARIANT_AVSS ? 100 : 30;
    json_t *root = json_pack("{s:{s:s, s:i, s:[i,i,i,i], s:[i,i,i,i], s:i, s:i, s:[s,s,s,s]},"
                             " s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f}",
                             "backbone_config", "model_type", "swin", "embed_dim", 128, "depths", 2, 2, 18, 2,
                             "num_heads", 4, 8, 16, 32, "window_size", 12, "image_size", IMAGE, "out_features",
                             "stage1", "stage2", "stage3", "stage4", "feature_size", 256, "hidden_dim", 256,
                             "mask_feature_size", 256, "encoder_layers", 6, "encoder_feedforward_dim", 1024,
                             "decoder_layers", 10, "num_attention_heads", 8, "dim_feedforward", 2048, "num_queries",
                             queries, "num_labels", labels, "train_num_points", 12544, "oversample_ratio", 3.0,
                             "importance_sample_ratio", 0.75);
    if (!root) fatal("bench_train: json_pack failed");
    config_t cfg;
    aavs_head_config_t hc;
    err_t err = {0};
    err_code_t rc = config_from_json(&cfg, root, "bench_train full-size config", &err);
    json_decref(root);
    if (rc == ERR_OK) rc = aavs_head_config_from_json(&cfg, variant, &hc, &err);
    config_free(&cfg);
    if (rc != ERR_OK) fatal("bench_train: %s", err.msg);
    return hc;
}

/* Norm weights near 1 (as torch initialises them) rather than N(0, std^2):
 * activations then have the scale they have in training. Norms are the 1-d
 * weights named *norm* and the GroupNorms (".1.weight" of a conv + norm pair). */
static void norms_to_one(param_list_t *params) {
    for (int i = 0; i < params->count; i++) {
        tensor_t *t = params->tensors[i];
        const char *n = params->names[i];
        size_t len = strlen(n);
        int weight = len > 7 && strcmp(n + len - 7, ".weight") == 0;
        int gn = len > 9 && strcmp(n + len - 9, ".1.weight") == 0 && (strstr(n, "input_projections") ||
                 strstr(n, "adapter_") || strstr(n, "layer_"));
        if (t->ndim == 1 && weight && (strstr(n, "norm") || gn)) {
            float *d = tensor_f32(t);
            for (int64_t k = 0; k < t->numel; k++) d[k] += 1.0f;
        }
    }
}

/* The targets of frame f as the image processor makes them: one binary mask
 * per class present at 384x384, background first. Two objects, a disc and a
 * rectangle that move with f; avss gives them their own classes, avs (binary)
 * one "sounding" class for both. bench_train_torch.py draws the same. */
static int object_at(int f, int y, int x) {
    int dy = y - (120 + 20 * f), dx = x - 150;
    if (dy * dy + dx * dx < 60 * 60) return 1;
    if (y >= 200 && y < 330 && x >= 40 + 10 * f && x < 200 + 10 * f) return 2;
    return 0;
}

static void make_targets(arena_t *a, m2f_variant_t variant, tensor_t **masks, tensor_t **classes) {
    int n = variant == M2F_VARIANT_AVSS ? 3 : 2;
    float *m = malloc((size_t)n * IMAGE * IMAGE * sizeof *m);
    if (!m) fatal("bench_train: out of memory");
    for (int f = 0; f < FRAMES; f++) {
        int64_t cls[3];
        for (int y = 0; y < IMAGE; y++)
            for (int x = 0; x < IMAGE; x++) {
                int o = object_at(f, y, x);
                for (int k = 0; k < n; k++) {
                    int on = variant == M2F_VARIANT_AVSS ? o == k : (k == 0 ? o == 0 : o != 0);
                    m[((size_t)k * IMAGE + y) * IMAGE + x] = (float)on;
                }
            }
        cls[0] = 0;
        if (variant == M2F_VARIANT_AVSS) {
            cls[1] = 3 + f;
            cls[2] = 20 + 5 * f;
        } else {
            cls[1] = 1;
        }
        masks[f] = tensor_from_host(a, DTYPE_F32, 3, (int64_t[]){n, IMAGE, IMAGE}, m);
        classes[f] = tensor_from_host(a, DTYPE_I64, 1, (int64_t[]){n}, cls);
    }
    free(m);
}

/* The stage-1 mask: 1 on the objects, 0 elsewhere, at the label size. */
static tensor_t *make_boost(arena_t *a) {
    float *b = malloc((size_t)FRAMES * BOOST * BOOST * sizeof *b);
    if (!b) fatal("bench_train: out of memory");
    for (int f = 0; f < FRAMES; f++)
        for (int y = 0; y < BOOST; y++)
            for (int x = 0; x < BOOST; x++)
                b[((size_t)f * BOOST + y) * BOOST + x] = (float)(object_at(f, y * IMAGE / BOOST, x * IMAGE / BOOST) != 0);
    tensor_t *t = tensor_from_host(a, DTYPE_F32, 3, (int64_t[]){FRAMES, BOOST, BOOST}, b);
    free(b);
    return t;
}

static tensor_t *random_tensor(arena_t *a, rng_t *r, int ndim, const int64_t *shape) {
    tensor_t *t = tensor_new(a, DTYPE_F32, ndim, shape);
    float *d = tensor_f32(t);
    for (int64_t i = 0; i < t->numel; i++) d[i] = (float)rng_normal(r);
    return t;
}

/* One training step; returns the loss. */
static float train_step(ctx_t *ctx, const aavs_head_t *head, adamw_t *opt, tensor_t *const *features,
                        tensor_t *audio, tensor_t *boost, const m2f_targets_t *targets, uint64_t point_seed) {
    int old = ctx_set_grad(ctx, 1);
    aavs_head_output_t out;
    aavs_head_forward(ctx, head, features, audio, boost, &out, NULL, NULL);
    rng_t rng;
    rng_seed(&rng, point_seed);
    m2f_point_source_t points = {.kind = M2F_POINTS_RANDOM, .rng = &rng};
    tensor_t *total;
    err_t err = {0};
    if (aavs_head_loss(ctx, head, &out, targets, &points, NULL, &total, NULL, &err) != ERR_OK)
        fatal("bench_train: loss: %s", err.msg);
    float loss;
    tensor_to_host(total, &loss);
    ctx_backward(ctx, total, NULL);
    adamw_note_backward(opt, ctx);
    adamw_step(opt);
    adamw_zero_grad(opt);
    ctx_reset(ctx);
    ctx_set_grad(ctx, old);
    return loss;
}

static int run_row(const row_t *row, int steps) {
    /* inputs first, outside the measurement: they are the cache's data */
    arena_t *inputs = arena_create(DEVICE_CPU, 64 << 20);
    rng_t r;
    rng_seed(&r, 2);
    tensor_t *features[N_FEATURES];
    for (int k = 0; k < N_FEATURES; k++)
        features[k] = random_tensor(inputs, &r, 4, (int64_t[]){FRAMES, feat_channels[k], feat_size[k], feat_size[k]});
    tensor_t *audio = random_tensor(inputs, &r, 2, (int64_t[]){FRAMES, 128});
    tensor_t *boost = row->variant == M2F_VARIANT_AVSS ? make_boost(inputs) : NULL;
    tensor_t *masks[FRAMES], *classes[FRAMES];
    make_targets(inputs, row->variant, masks, classes);
    m2f_targets_t targets = {.n_frames = FRAMES, .mask_labels = masks, .class_labels = classes};
    double rss0 = max_rss_mib();

    aavs_head_config_t hc = full_size_config(row->variant);
    arena_t *param_arena = arena_create(DEVICE_CPU, 64 << 20), *state_arena = arena_create(DEVICE_CPU, 64 << 20);
    param_list_t params;
    param_list_init(&params, param_arena);
    aavs_head_t *head = aavs_head_random(&hc, &params, 1, 0.02f);
    norms_to_one(&params);
    /* the recipe's optimizer (train.py: lr 1e-3, weight decay 0.05) */
    adamw_config_t ac = adamw_config_default();
    ac.weight_decay = 0.05;
    adamw_t *opt = adamw_create(state_arena, &ac);
    int n_pat;
    const char *const *pat = aavs_trainable_patterns(row->variant, row->preset, &n_pat);
    adamw_add_params(opt, params.tensors, params.names, params.count, pat, n_pat);
    int64_t trainable = 0;
    for (int i = 0; i < adamw_n_params(opt); i++) trainable += adamw_param(opt, i, NULL)->numel;

    ctx_t *ctx = ctx_create(DEVICE_CPU, 256 << 20);
    float loss = train_step(ctx, head, opt, features, audio, boost, &targets, 100); /* warm-up */
    double t0 = now();
    for (int s = 0; s < steps; s++) loss = train_step(ctx, head, opt, features, audio, boost, &targets, 101 + s);
    double sec = (now() - t0) / steps;
    double arenas = (double)(ctx->arena->peak + param_arena->used + state_arena->used) / (1 << 20);
    printf("%-28s %10.3f %10.1f %10.1f %10.3f   # loss %.4g\n", row->name, sec, max_rss_mib() - rss0, arenas,
           (double)trainable / 1e6, loss);
    fflush(stdout);

    ctx_destroy(ctx);
    adamw_destroy(opt);
    aavs_head_free(head);
    param_list_free(&params);
    arena_destroy(state_arena);
    arena_destroy(param_arena);
    arena_destroy(inputs);
    return 0;
}

int main(int argc, char **argv) {
    const char *env = getenv("STEPSTONE_BENCH_STEPS");
    int steps = env && atoi(env) > 0 ? atoi(env) : 2;
    const char *avs = getenv("STEPSTONE_BENCH_AVS");
    int n_rows = avs && strcmp(avs, "1") == 0 ? N_ROWS : 2; /* the avss rows come first */
    if (argc == 3 && strcmp(argv[1], "--row") == 0) {
        int i = atoi(argv[2]);
        if (i < 0 || i >= N_ROWS) fatal("bench_train: no row %d", i);
        return run_row(&rows[i], steps);
    }
    printf("%-28s %10s %10s %10s %10s\n", "# aavs head, 5x384x384", "s/step", "peak MiB", "arenas MiB",
           "trained M");
    fflush(stdout);
    int status = 0;
    for (int i = 0; i < n_rows; i++) {
        /* a fresh process per row: max RSS is a high-water mark. The parent
         * has run no OpenMP region, so forking is safe; exec makes it certain. */
        char arg[16];
        snprintf(arg, sizeof arg, "%d", i);
        pid_t pid = fork();
        if (pid < 0) fatal("bench_train: fork failed");
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "--row", arg, (char *)NULL);
            _exit(127);
        }
        int ws;
        if (waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            fprintf(stderr, "bench_train: row %s failed\n", rows[i].name);
            status = 1;
        }
    }
    return status;
}
