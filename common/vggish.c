/* vggish.c - the VGGish network: weights, forward, torchvggish's
 * post-processing and the frame-count fit (vggish.h). */
#include "vggish.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#define VGGISH_CONVS 6
#define VGGISH_LINEARS 3

/* torchvggish's make_layers numbers its Sequential: conv i sits at index
 * conv_index[i], and a max-pool follows the convs marked in pool_after. */
static const int conv_index[VGGISH_CONVS] = {0, 3, 6, 8, 11, 13};
static const int pool_after[VGGISH_CONVS] = {1, 1, 0, 1, 0, 1};
static const int linear_index[VGGISH_LINEARS] = {0, 2, 4};

struct vggish {
    device_t device;
    arena_t *arena; /* owned: the parameters */
    param_list_t params;
    vggish_options_t options;
    tensor_t *conv_w[VGGISH_CONVS], *conv_b[VGGISH_CONVS];
    tensor_t *linear_w[VGGISH_LINEARS], *linear_b[VGGISH_LINEARS];
    float *pca_vectors, *pca_means; /* host copies [E, E] and [E] when options.pca */
    int64_t embedding_size;
};

/* The shape the file stores under prefix + name, which must have ndim dims;
 * errors name the tensor. */
static err_code_t stored_shape(const weights_t *w, const char *name, int ndim, int64_t *shape, err_t *err) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", w->prefix, name);
    const st_entry_t *e = safetensors_find(&w->st, full);
    if (!e) return err_set(err, ERR_NOTFOUND, "%s: tensor '%s' is missing", w->st.path, full);
    if (e->ndim != ndim) {
        char got[128];
        return err_set(err, ERR_MISMATCH, "%s: tensor '%s': expected %d dims, found shape %s", w->st.path, full, ndim,
                       shape_str(e->ndim, e->shape, got, sizeof got));
    }
    memcpy(shape, e->shape, (size_t)ndim * sizeof(int64_t));
    return ERR_OK;
}

/* Conv i: weight [o, c_in, 3, 3] with o read from the file, bias [o]. */
static err_code_t load_conv(vggish_t *m, weights_t *w, int i, int64_t c_in, int64_t *c_out, err_t *err) {
    char name[64];
    int64_t shape[4];
    snprintf(name, sizeof name, "features.%d.weight", conv_index[i]);
    err_code_t e = stored_shape(w, name, 4, shape, err);
    if (e != ERR_OK) return e;
    int64_t want[4] = {shape[0], c_in, 3, 3};
    e = weights_load(w, name, 4, want, &m->params, NULL, &m->conv_w[i], err);
    if (e != ERR_OK) return e;
    snprintf(name, sizeof name, "features.%d.bias", conv_index[i]);
    e = weights_load(w, name, 1, want, &m->params, NULL, &m->conv_b[i], err);
    *c_out = shape[0];
    return e;
}

/* Linear i: weight [out, in] with out read from the file, bias [out]. */
static err_code_t load_linear(vggish_t *m, weights_t *w, int i, int64_t in, int64_t *out, err_t *err) {
    char name[64];
    int64_t shape[2];
    snprintf(name, sizeof name, "embeddings.%d.weight", linear_index[i]);
    err_code_t e = stored_shape(w, name, 2, shape, err);
    if (e != ERR_OK) return e;
    int64_t want[2] = {shape[0], in};
    e = weights_load(w, name, 2, want, &m->params, NULL, &m->linear_w[i], err);
    if (e != ERR_OK) return e;
    snprintf(name, sizeof name, "embeddings.%d.bias", linear_index[i]);
    e = weights_load(w, name, 1, want, &m->params, NULL, &m->linear_b[i], err);
    *out = shape[0];
    return e;
}

/* pproc.pca_eigen_vectors [E, E] and pproc.pca_means [E, 1] (or [E]), kept on the host. */
static err_code_t load_pca(vggish_t *m, weights_t *w, err_t *err) {
    int64_t e_size = m->embedding_size;
    arena_t *host = arena_create(DEVICE_CPU, 1 << 20);
    if (!host) return err_set(err, ERR_NOMEM, "%s: out of memory", w->st.path);
    param_list_t scratch;
    param_list_init(&scratch, host);
    tensor_t *vectors = NULL, *means = NULL;
    int64_t vshape[2] = {e_size, e_size}, mshape[2] = {e_size, 1};
    err_code_t e = weights_load(w, "pproc.pca_eigen_vectors", 2, vshape, &scratch, NULL, &vectors, err);
    if (e == ERR_OK) {
        char full[512];
        snprintf(full, sizeof full, "%spproc.pca_means", w->prefix);
        const st_entry_t *entry = safetensors_find(&w->st, full);
        int ndim = entry && entry->ndim == 1 ? 1 : 2;
        e = weights_load(w, "pproc.pca_means", ndim, mshape, &scratch, NULL, &means, err);
    }
    if (e == ERR_OK) {
        m->pca_vectors = malloc((size_t)(e_size * e_size) * sizeof(float));
        m->pca_means = malloc((size_t)e_size * sizeof(float));
        if (!m->pca_vectors || !m->pca_means) {
            e = err_set(err, ERR_NOMEM, "%s: out of memory", w->st.path);
        } else {
            tensor_to_host(vectors, m->pca_vectors);
            tensor_to_host(means, m->pca_means);
        }
    }
    param_list_free(&scratch);
    arena_destroy(host);
    return e;
}

static err_code_t load_all(vggish_t *m, weights_t *w, err_t *err) {
    static const char *const prefixes[] = {"", "vggish."};
    err_code_t e = weights_select_prefix(w, prefixes, 2, "features.0.weight", err);
    int64_t channels = 1;
    for (int i = 0; e == ERR_OK && i < VGGISH_CONVS; i++) e = load_conv(m, w, i, channels, &channels, err);
    /* four 2x2 pools take a 96 x 64 example to 6 x 4 */
    int64_t width = channels * (VGGISH_EXAMPLE_FRAMES / 16) * (VGGISH_BANDS / 16);
    for (int i = 0; e == ERR_OK && i < VGGISH_LINEARS; i++) e = load_linear(m, w, i, width, &width, err);
    m->embedding_size = width;
    if (e == ERR_OK && m->options.pca) e = load_pca(m, w, err);
    if (e != ERR_OK) return e;
    static const char *const pca_names[] = {"pproc.pca_eigen_vectors", "pproc.pca_means"};
    return weights_check_all_used(w, pca_names, m->options.pca ? 0 : 2, err);
}

err_code_t vggish_load(const char *path, device_t device, const vggish_options_t *options, vggish_t **out,
                       err_t *err) {
    *out = NULL;
    vggish_t *m = calloc(1, sizeof *m);
    if (!m) return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    m->device = device;
    if (options) m->options = *options;
    m->arena = arena_create(device, 64u << 20);
    if (!m->arena) {
        free(m);
        return err_set(err, ERR_DEVICE, "%s: no %s device for the VGGish weights", path, device_name(device));
    }
    param_list_init(&m->params, m->arena);
    weights_t w;
    err_code_t e = weights_open(path, &w, err);
    if (e != ERR_OK) {
        vggish_free(m);
        return e;
    }
    e = load_all(m, &w, err);
    weights_close(&w);
    if (e != ERR_OK) {
        vggish_free(m);
        return e;
    }
    *out = m;
    return ERR_OK;
}

void vggish_free(vggish_t *m) {
    if (!m) return;
    param_list_free(&m->params);
    arena_destroy(m->arena);
    free(m->pca_vectors);
    free(m->pca_means);
    free(m);
}

int64_t vggish_embedding_size(const vggish_t *m) { return m->embedding_size; }
const param_list_t *vggish_params(const vggish_t *m) { return &m->params; }

/* torchvggish's Postprocessor on host rows: PCA in double, rounded to float as
 * torch's float32 mm gives it, then clamp and quantize in float. */
static void pca_quantize(const vggish_t *m, float *emb, int64_t t) {
    int64_t e = m->embedding_size;
    float *centered = malloc((size_t)e * sizeof(float));
    if (!centered) fatal("vggish: out of memory");
    for (int64_t r = 0; r < t; r++) {
        float *row = emb + r * e;
        for (int64_t j = 0; j < e; j++) centered[j] = row[j] - m->pca_means[j];
        for (int64_t i = 0; i < e; i++) {
            double sum = 0.0;
            for (int64_t j = 0; j < e; j++) sum += (double)m->pca_vectors[i * e + j] * (double)centered[j];
            float v = (float)sum;
            v = v < -2.0f ? -2.0f : (v > 2.0f ? 2.0f : v);
            row[i] = rintf((v - -2.0f) * (255.0f / 4.0f));
        }
    }
    free(centered);
}

tensor_t *vggish_forward(const vggish_t *m, ctx_t *ctx, tensor_t *examples) {
    char sx[96];
    if (examples->ndim != 4 || examples->shape[1] != 1 || examples->shape[2] != VGGISH_EXAMPLE_FRAMES ||
        examples->shape[3] != VGGISH_BANDS)
        fatal("vggish_forward: examples %s, want [T, 1, %d, %d]", tensor_shape_str(examples, sx, 96),
              VGGISH_EXAMPLE_FRAMES, VGGISH_BANDS);
    if (ctx->device != m->device)
        fatal("vggish_forward: model on %s, context on %s", device_name(m->device), device_name(ctx->device));
    tensor_t *x = examples;
    for (int i = 0; i < VGGISH_CONVS; i++) {
        x = op_relu(ctx, op_conv2d(ctx, x, m->conv_w[i], m->conv_b[i], 1, 1, 1, 1));
        if (pool_after[i]) x = op_maxpool2d(ctx, x, 2, 2, 2, 2, 0, 0);
    }
    /* torchvggish transposes [T, C, 6, 4] to [T, 6, 4, C] before flattening */
    static const int channel_last[4] = {0, 2, 3, 1};
    x = op_permute(ctx, x, channel_last);
    int64_t flat[2] = {x->shape[0], -1};
    x = op_reshape(ctx, x, 2, flat);
    for (int i = 0; i < VGGISH_LINEARS; i++) {
        x = op_linear(ctx, x, m->linear_w[i], m->linear_b[i]);
        if (i < VGGISH_LINEARS - 1 || m->options.final_relu) x = op_relu(ctx, x);
    }
    if (!m->options.pca) return x;
    float *host = malloc((size_t)(x->numel > 0 ? x->numel : 1) * sizeof(float));
    if (!host) fatal("vggish: out of memory");
    tensor_to_host(x, host);
    pca_quantize(m, host, x->shape[0]);
    tensor_t *q = tensor_from_host(ctx->arena, DTYPE_F32, 2, x->shape, host);
    free(host);
    return q;
}

err_code_t vggish_embed(const vggish_t *m, const float *examples, int64_t count, int64_t batch, float **embeddings,
                        err_t *err) {
    *embeddings = NULL;
    if (batch <= 0) batch = 64;
    int64_t e = m->embedding_size;
    float *out = malloc((size_t)(count > 0 ? count * e : 1) * sizeof(float));
    if (!out) return err_set(err, ERR_NOMEM, "vggish: out of memory for %lld embeddings", (long long)count);
    ctx_t *ctx = count > 0 ? ctx_create(m->device, 64u << 20) : NULL;
    if (count > 0 && !ctx) {
        free(out);
        return err_set(err, ERR_DEVICE, "vggish: no %s device", device_name(m->device));
    }
    if (ctx) ctx_set_grad(ctx, 0);
    int64_t per_example = (int64_t)VGGISH_EXAMPLE_FRAMES * VGGISH_BANDS;
    for (int64_t start = 0; start < count; start += batch) {
        int64_t n = count - start < batch ? count - start : batch;
        int64_t shape[4] = {n, 1, VGGISH_EXAMPLE_FRAMES, VGGISH_BANDS};
        tensor_t *x = tensor_from_host(ctx->arena, DTYPE_F32, 4, shape, examples + start * per_example);
        tensor_t *y = vggish_forward(m, ctx, x);
        tensor_to_host(y, out + start * e);
        ctx_reset(ctx);
    }
    if (ctx) ctx_destroy(ctx);
    *embeddings = out;
    return ERR_OK;
}

float *vggish_fit_frames(const float *emb, int64_t t, int64_t e, int64_t frames) {
    if (t <= 0 || frames < 0) return NULL;
    float *out = malloc((size_t)(frames > 0 ? frames * e : 1) * sizeof(float));
    if (!out) return NULL;
    for (int64_t r = 0; r < frames; r++) {
        int64_t src = r < t ? r : t - 1;
        memcpy(out + r * e, emb + src * e, (size_t)e * sizeof(float));
    }
    return out;
}
