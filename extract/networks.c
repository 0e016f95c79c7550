/* networks.c - loading the frozen backbone and VGGish for extraction. */
#include <string.h>

#include "config.h"
#include "extract.h"
#include "feature_producer.h"
#include "log.h"

static err_code_t load_backbone(const extract_options_t *o, networks_t *n, err_t *err) {
    config_t cfg;
    err_code_t rc = config_load(o->config_path, &cfg, err);
    if (rc != ERR_OK) return rc;
    rc = swin_config_from_json(&cfg, &n->swin_config, err);
    config_free(&cfg);
    if (rc != ERR_OK) return err_prefix(err, "%s: ", o->config_path);
    weights_t w;
    if ((rc = weights_open(o->weights_path, &w, err)) != ERR_OK) return rc;
    param_list_init(&n->swin_params, n->param_arena);
    rc = swin_load(&n->swin_config, &w, &n->swin_params, "", &n->swin, err);
    weights_close(&w);
    if (rc != ERR_OK) return rc;
    n->n_levels = n->swin_config.n_out;
    for (int i = 0; i < n->n_levels; i++)
        n->level_name_ptrs[i] = feature_level_name(n->swin_config.out_stages[i], n->level_names[i]);
    return ERR_OK;
}

err_code_t networks_load(const extract_options_t *o, networks_t *n, err_t *err) {
    memset(n, 0, sizeof *n);
    n->device = o->device;
    n->ctx = ctx_create(o->device, 64 << 20);
    n->param_arena = arena_create(o->device, 64 << 20);
    if (!n->ctx || !n->param_arena) {
        networks_free(n);
        return err_set(err, ERR_DEVICE, "device %s is not available%s", device_name(o->device),
                       backend_cuda_built() ? "" : " (this build has no CUDA: make CUDA=1)");
    }
    ctx_set_grad(n->ctx, 0);
    err_code_t rc = load_backbone(o, n, err);
    if (rc == ERR_OK) rc = vggish_load(o->audio_weights_path, o->device, NULL, &n->vggish, err);
    if (rc != ERR_OK) {
        networks_free(n);
        return rc;
    }
    const swin_config_t *c = &n->swin_config;
    log_info("backbone: %d stages (depths %d,%d,%d,%d...), embed %d, window %d, %d output levels; VGGish: %lld-d "
             "embeddings; on %s",
             c->n_stages, c->depths[0], c->n_stages > 1 ? c->depths[1] : 0, c->n_stages > 2 ? c->depths[2] : 0,
             c->n_stages > 3 ? c->depths[3] : 0, c->embed_dim, c->window_size, c->n_out,
             (long long)vggish_embedding_size(n->vggish), device_name(o->device));
    return ERR_OK;
}

void networks_free(networks_t *n) {
    swin_free(n->swin);
    if (n->param_arena) param_list_free(&n->swin_params);
    vggish_free(n->vggish);
    ctx_destroy(n->ctx);
    arena_destroy(n->param_arena);
    memset(n, 0, sizeof *n);
}
