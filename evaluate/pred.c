/* pred.c - finding and reading prediction PNGs (eval.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval.h"
#include "label_resize.h"
#include "png_io.h"

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

void pred_path(const eval_options_t *o, const avs_dataset_t *ds, const avs_video_t *v, int i, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s/%s/%d.png", o->pred, avs_subset_name(v->subset), v->uid, i);
    if (exists(buf) || ds->layout == AVS_LAYOUT_SEMANTIC) return;
    char alt[4096];
    if (ds->layout == AVS_LAYOUT_S4)
        snprintf(alt, sizeof alt, "%s/%s/%s/%s_%d.png", o->pred, v->category, v->uid, v->uid, i);
    else
        snprintf(alt, sizeof alt, "%s/%s/%s_%d.png", o->pred, v->uid, v->uid, i);
    if (exists(alt)) snprintf(buf, n, "%s", alt);
}

err_code_t pred_read_classes(const char *path, int size, uint8_t *out, int64_t *off_palette, err_t *err) {
    *off_palette = 0;
    png_io_image_t img;
    err_code_t rc = png_io_read(path, &img, PNG_IO_WANT_ASIS, err);
    if (rc) return rc;
    size_t n = (size_t)img.width * img.height;
    if (img.channels == 1 && img.palette_size == 0) {
        for (size_t i = 0; i < n; i++)
            if (img.pixels[i] >= AVS_NUM_CLASSES) {
                int x = (int)(i % (size_t)img.width), y = (int)(i / (size_t)img.width);
                rc = err_set(err, ERR_FORMAT,
                             "%s: gray value %d at (%d, %d) is not a class id (0..%d); a gray prediction holds class ids",
                             path, img.pixels[i], x, y, AVS_NUM_CLASSES - 1);
                png_io_free(&img);
                return rc;
            }
        pil_resize_nearest_u8(img.pixels, img.width, img.height, 1, out, size, size);
        png_io_free(&img);
        return ERR_OK;
    }
    uint8_t *rgb = img.pixels;
    uint8_t *expanded = NULL;
    if (img.channels == 1) { /* palette: look the colours up */
        expanded = malloc(n * 3);
        if (!expanded) {
            png_io_free(&img);
            return err_set(err, ERR_NOMEM, "%s: out of memory", path);
        }
        for (size_t i = 0; i < n; i++) memcpy(expanded + 3 * i, img.palette[img.pixels[i]], 3);
        rgb = expanded;
    }
    avs_class_map_from_rgb(rgb, img.width, img.height, size, out, off_palette);
    free(expanded);
    png_io_free(&img);
    return ERR_OK;
}

err_code_t pred_read_prob(const char *path, int size, uint8_t *out, err_t *err) {
    png_io_image_t img;
    err_code_t rc = png_io_read(path, &img, PNG_IO_WANT_ASIS, err);
    if (rc) return rc;
    size_t n = (size_t)img.width * img.height;
    if (img.channels == 3 || img.palette_size > 0) {
        /* a colour map: the binary ground-truth rule, object = 255 */
        uint8_t *rgb = img.pixels;
        uint8_t *expanded = NULL;
        if (img.channels == 1) {
            expanded = malloc(n * 3);
            if (!expanded) {
                png_io_free(&img);
                return err_set(err, ERR_NOMEM, "%s: out of memory", path);
            }
            for (size_t i = 0; i < n; i++) memcpy(expanded + 3 * i, img.palette[img.pixels[i]], 3);
            rgb = expanded;
        }
        avs_binary_mask_from_rgb(rgb, img.width, img.height, size, out);
        for (size_t i = 0; i < (size_t)size * size; i++) out[i] = out[i] ? 255 : 0;
        free(expanded);
        png_io_free(&img);
        return ERR_OK;
    }
    uint8_t maxv = 0;
    for (size_t i = 0; i < n; i++)
        if (img.pixels[i] > maxv) maxv = img.pixels[i];
    if (maxv == 1)
        for (size_t i = 0; i < n; i++) img.pixels[i] = img.pixels[i] ? 255 : 0;
    cv_resize_linear_u8(img.pixels, img.width, img.height, 1, out, size, size);
    png_io_free(&img);
    return ERR_OK;
}
