/* feature_producer.c - the producer record of a feature cache (feature_producer.h). */
#include "feature_producer.h"

#include <stdio.h>
#include <string.h>

#include "version.h"

const char *feature_level_name(int stage_index, char buf[16]) {
    if (stage_index == 0) snprintf(buf, 16, "stem");
    else snprintf(buf, 16, "stage%d", stage_index);
    return buf;
}

const char *audio_resampler_name(audio_resampler_t how) {
    switch (how) {
    case AUDIO_RESAMPLE_RESAMPY: return "resampy";
    case AUDIO_RESAMPLE_RESAMPY_V02: return "resampy-0.2";
    case AUDIO_RESAMPLE_SWR: return "swr";
    }
    return "?";
}

int audio_resampler_parse(const char *text, audio_resampler_t *out) {
    static const audio_resampler_t all[3] = {AUDIO_RESAMPLE_RESAMPY, AUDIO_RESAMPLE_RESAMPY_V02, AUDIO_RESAMPLE_SWR};
    for (int i = 0; i < 3; i++)
        if (strcmp(text, audio_resampler_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

static const char *filter_name(pil_filter_t f) {
    switch (f) {
    case PIL_FILTER_LANCZOS: return "lanczos";
    case PIL_FILTER_BILINEAR: return "bilinear";
    case PIL_FILTER_BICUBIC: return "bicubic";
    case PIL_FILTER_BOX: return "box";
    case PIL_FILTER_HAMMING: return "hamming";
    }
    return "?";
}

static json_t *int_array(const int *v, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

static json_t *float_array(const float *v, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

json_t *image_processor_json(const image_processor_t *p) {
    /* every field that changes a pixel, whether or not its switch is on:
     * equal settings must give equal records */
    return json_pack("{s:b, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:b, s:f, s:b, s:o, s:o}", "do_resize", p->do_resize,
                     "height", p->height, "width", p->width, "shortest_edge", p->shortest_edge, "longest_edge",
                     p->longest_edge, "size_divisor", p->size_divisor, "resample", filter_name(p->resample),
                     "pil_order", p->pil_order == PIL_ORDER_PILLOW13 ? "pillow13" : "horizontal-first", "do_rescale",
                     p->do_rescale, "rescale_factor", p->rescale_factor, "do_normalize", p->do_normalize, "image_mean",
                     float_array(p->mean, 3), "image_std", float_array(p->std, 3));
}

json_t *swin_config_json(const swin_config_t *c) {
    json_t *out_features = json_array();
    for (int i = 0; out_features && i < c->n_out; i++) {
        char name[16];
        json_array_append_new(out_features, json_string(feature_level_name(c->out_stages[i], name)));
    }
    int patch[2] = {c->patch_h, c->patch_w};
    return json_pack("{s:s, s:i, s:o, s:i, s:o, s:o, s:i, s:o, s:b, s:f, s:s, s:o}", "model_type", "swin",
                     "num_channels", c->num_channels, "patch_size", int_array(patch, 2), "embed_dim", c->embed_dim,
                     "depths", int_array(c->depths, c->n_stages), "num_heads", int_array(c->num_heads, c->n_stages),
                     "window_size", c->window_size, "mlp_hidden", int_array(c->mlp_hidden, c->n_stages), "qkv_bias",
                     c->qkv_bias, "layer_norm_eps", (double)c->layer_norm_eps, "hidden_act",
                     c->hidden_act == SWIN_ACT_RELU ? "relu" : "gelu", "out_features", out_features);
}

static json_t *fingerprint_json(const file_fingerprint_t *f) {
    return json_pack("{s:I, s:s}", "bytes", (json_int_t)f->bytes, "sha256", f->sha256);
}

json_t *feature_producer_json(const feature_producer_t *p) {
    json_t *backbone = swin_config_json(p->backbone);
    if (backbone) json_object_set_new(backbone, "weights", fingerprint_json(&p->backbone_weights));
    /* the official loader pads short audio by repeating the last embedding;
     * longer audio keeps the first rows (vggish_fit_frames) */
    json_t *audio = json_pack("{s:s, s:I, s:s, s:s, s:o}", "vggish", "towhee", "embedding_size",
                              (json_int_t)p->audio_embedding_size, "resampler", audio_resampler_name(p->resampler),
                              "fit_to_frames", "repeat-last-or-cut", "weights", fingerprint_json(&p->audio_weights));
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "program", "stepstone-extract", "version", STEPSTONE_VERSION,
                     "dtype", dtype_name(p->dtype), "backbone", backbone, "image", image_processor_json(p->processor),
                     "audio", audio);
}
