#include "image_processor.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

image_processor_t image_processor_official(void) {
    image_processor_t p = {
        .do_resize = true,
        .height = 384,
        .width = 384,
        .size_divisor = 32,
        .resample = PIL_FILTER_BILINEAR,
        .pil_order = PIL_ORDER_HORIZONTAL_FIRST,
        .do_rescale = true,
        .rescale_factor = 0.00392156862745098, /* 1/255 as the config writes it */
        .do_normalize = true,
        /* the config's numbers, rounded to float32 as numpy does; they are
         * not all the float32 nearest to 0.485 ... (0.2239999920129776 is one
         * float32 below 0.224f), so they are written as the config has them */
        .mean = {(float)0.48500001430511475, (float)0.4560000002384186, (float)0.4059999883174896},
        .std = {(float)0.2290000021457672, (float)0.2239999920129776, (float)0.22499999403953552},
    };
    return p;
}

/* Mask2FormerImageProcessor's defaults, for fields a config leaves out. */
static image_processor_t processor_defaults(void) {
    image_processor_t p = image_processor_official();
    p.height = p.width = 0;
    p.shortest_edge = 800;
    p.longest_edge = 1333;
    p.rescale_factor = 1.0 / 255.0;
    /* IMAGENET_DEFAULT_MEAN / _STD */
    const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    for (int c = 0; c < 3; c++) {
        p.mean[c] = (float)mean[c];
        p.std[c] = (float)std[c];
    }
    return p;
}

static err_code_t read_size(const config_t *cfg, image_processor_t *p, err_t *err) {
    json_t *size = config_lookup(cfg, "size");
    if (!size || json_is_null(size)) return ERR_OK;
    err_code_t code;
    if (json_is_integer(size)) {
        /* get_size_dict(int, default_to_square=False, max_size) */
        p->height = p->width = 0;
        p->shortest_edge = (int)json_integer_value(size);
        return config_get_int_or(cfg, "max_size", 1333, &p->longest_edge, err);
    }
    if (!json_is_object(size))
        return err_set(err, ERR_MISMATCH, "%s: \"size\" must be an object or an integer", cfg->path);
    if (config_has(cfg, "size.height") || config_has(cfg, "size.width")) {
        if ((code = config_get_int(cfg, "size.height", &p->height, err)) != ERR_OK) return code;
        if ((code = config_get_int(cfg, "size.width", &p->width, err)) != ERR_OK) return code;
        p->shortest_edge = p->longest_edge = 0;
        return ERR_OK;
    }
    p->height = p->width = 0;
    if ((code = config_get_int(cfg, "size.shortest_edge", &p->shortest_edge, err)) != ERR_OK) return code;
    /* the processor's resize raises without longest_edge */
    return config_get_int(cfg, "size.longest_edge", &p->longest_edge, err);
}

static err_code_t read_triple(const config_t *cfg, const char *key, float out[3], err_t *err) {
    json_t *v = config_lookup(cfg, key);
    if (!v || json_is_null(v)) return ERR_OK;
    if (!json_is_array(v) || json_array_size(v) != 3)
        return err_set(err, ERR_MISMATCH, "%s: \"%s\" must be a list of 3 numbers (one per RGB channel)", cfg->path, key);
    for (int c = 0; c < 3; c++) {
        char item[64];
        snprintf(item, sizeof item, "%s.%d", key, c);
        double d;
        err_code_t code = config_get_double(cfg, item, &d, err);
        if (code != ERR_OK) return code;
        out[c] = (float)d;
    }
    return ERR_OK;
}

static err_code_t read_config(const config_t *cfg, image_processor_t *p, err_t *err) {
    err_code_t code;
    int resample = (int)p->resample;
    if ((code = config_get_bool_or(cfg, "do_resize", p->do_resize, &p->do_resize, err)) != ERR_OK) return code;
    if ((code = read_size(cfg, p, err)) != ERR_OK) return code;
    /* size_divisibility is the older name the processor still accepts */
    if ((code = config_get_int_or(cfg, "size_divisibility", p->size_divisor, &p->size_divisor, err)) != ERR_OK)
        return code;
    if ((code = config_get_int_or(cfg, "size_divisor", p->size_divisor, &p->size_divisor, err)) != ERR_OK) return code;
    if ((code = config_get_int_or(cfg, "resample", resample, &resample, err)) != ERR_OK) return code;
    if (!pil_filter_name(resample))
        return err_set(err, ERR_ARG, "%s: \"resample\": %d is not a supported Pillow filter (1..5%s)", cfg->path,
                       resample, resample == 0 ? "; nearest is not ported for frames" : "");
    p->resample = (pil_filter_t)resample;
    if ((code = config_get_bool_or(cfg, "do_rescale", p->do_rescale, &p->do_rescale, err)) != ERR_OK) return code;
    if ((code = config_get_double_or(cfg, "rescale_factor", p->rescale_factor, &p->rescale_factor, err)) != ERR_OK)
        return code;
    if ((code = config_get_bool_or(cfg, "do_normalize", p->do_normalize, &p->do_normalize, err)) != ERR_OK)
        return code;
    if ((code = read_triple(cfg, "image_mean", p->mean, err)) != ERR_OK) return code;
    if ((code = read_triple(cfg, "image_std", p->std, err)) != ERR_OK) return code;
    if (p->do_normalize && !p->do_rescale)
        return err_set(err, ERR_ARG,
                       "%s: do_normalize without do_rescale is not supported (the processor would cast the mean "
                       "and std to uint8)",
                       cfg->path);
    for (int c = 0; c < 3; c++)
        if (p->do_normalize && p->std[c] == 0.0f)
            return err_set(err, ERR_ARG, "%s: image_std[%d] is 0", cfg->path, c);
    int ow, oh;
    code = image_processor_output_size(p, 640, 360, &ow, &oh, err); /* checks the size settings */
    if (code != ERR_OK) err_prefix(err, "%s: ", cfg->path);
    return code;
}

err_code_t image_processor_load(const char *path, image_processor_t *p, err_t *err) {
    config_t cfg;
    err_code_t code = config_load(path, &cfg, err);
    if (code == ERR_OK) {
        *p = processor_defaults();
        code = read_config(&cfg, p, err);
    }
    config_free(&cfg);
    if (code != ERR_OK) *p = image_processor_official();
    return code;
}

static int round_up(int v, int divisor) { return divisor > 1 ? (v + divisor - 1) / divisor * divisor : v; }

err_code_t image_processor_output_size(const image_processor_t *p, int in_w, int in_h, int *out_w, int *out_h,
                                       err_t *err) {
    if (in_w < 1 || in_h < 1) return err_set(err, ERR_ARG, "image processor: empty %dx%d image", in_w, in_h);
    if (!p->do_resize) {
        *out_w = in_w;
        *out_h = in_h;
        return ERR_OK;
    }
    int h, w;
    if (p->height > 0 && p->width > 0) {
        h = p->height;
        w = p->width;
    } else {
        /* transformers get_resize_output_image_size(default_to_square=False) */
        int size = p->shortest_edge;
        if (size < 1) return err_set(err, ERR_ARG, "image processor: no usable size (shortest_edge %d)", size);
        int short_side = in_w <= in_h ? in_w : in_h, long_side = in_w <= in_h ? in_h : in_w;
        int new_short = size, new_long = (int)((double)size * long_side / short_side);
        if (p->longest_edge > 0) {
            if (p->longest_edge <= size)
                return err_set(err, ERR_ARG, "image processor: longest_edge %d must exceed shortest_edge %d",
                               p->longest_edge, size);
            if (new_long > p->longest_edge) {
                new_short = (int)((double)p->longest_edge * new_short / new_long);
                new_long = p->longest_edge;
            }
        }
        h = in_w <= in_h ? new_long : new_short;
        w = in_w <= in_h ? new_short : new_long;
    }
    *out_h = round_up(h, p->size_divisor);
    *out_w = round_up(w, p->size_divisor);
    if (*out_h < 1 || *out_w < 1 || (long long)*out_h * *out_w > RGB_IMAGE_MAX_PIXELS)
        return err_set(err, ERR_ARG, "image processor: unusable output size %dx%d", *out_w, *out_h);
    return ERR_OK;
}

err_code_t image_processor_apply(const image_processor_t *p, const rgb_image_t *img, float *chw, err_t *err) {
    int ow, oh;
    err_code_t code = image_processor_output_size(p, img->width, img->height, &ow, &oh, err);
    if (code != ERR_OK) return code;
    if (p->do_normalize && !p->do_rescale)
        return err_set(err, ERR_ARG, "image processor: do_normalize without do_rescale is not supported");
    const uint8_t *pixels = img->pixels;
    uint8_t *resized = NULL;
    if (ow != img->width || oh != img->height) {
        resized = malloc((size_t)ow * oh * 3);
        if (!resized) return err_set(err, ERR_NOMEM, "image processor: out of memory for a %dx%d image", ow, oh);
        code = pil_resample_u8(img->pixels, img->width, img->height, 3, resized, ow, oh, p->resample, p->pil_order,
                               err);
        if (code != ERR_OK) {
            free(resized);
            return code;
        }
        pixels = resized;
    }
    /* The output depends only on (channel, value): a table of the processor's
     * own arithmetic, applied to every pixel. */
    float table[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = p->do_rescale ? (float)((double)v * p->rescale_factor) : (float)v;
            if (p->do_normalize) {
                float centered = x - p->mean[c]; /* float32 subtraction, then float32 division */
                x = centered / p->std[c];
            }
            table[c][v] = x;
        }
    size_t plane = (size_t)ow * oh;
    for (size_t i = 0; i < plane; i++) {
        chw[i] = table[0][pixels[i * 3 + 0]];
        chw[plane + i] = table[1][pixels[i * 3 + 1]];
        chw[2 * plane + i] = table[2][pixels[i * 3 + 2]];
    }
    free(resized);
    return ERR_OK;
}
