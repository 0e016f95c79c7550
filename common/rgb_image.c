#include "rgb_image.h"

#include <stdlib.h>
#include <string.h>

err_code_t rgb_image_alloc(rgb_image_t *img, int width, int height, const char *what, err_t *err) {
    memset(img, 0, sizeof *img);
    if (width < 1 || height < 1)
        return err_set(err, ERR_FORMAT, "%s: image size %dx%d is empty", what, width, height);
    if ((long long)width * height > RGB_IMAGE_MAX_PIXELS)
        return err_set(err, ERR_FORMAT, "%s: image size %dx%d exceeds the limit of %lld pixels", what, width, height,
                       (long long)RGB_IMAGE_MAX_PIXELS);
    img->pixels = malloc((size_t)width * (size_t)height * 3);
    if (!img->pixels) return err_set(err, ERR_NOMEM, "%s: out of memory for a %dx%d image", what, width, height);
    img->width = width;
    img->height = height;
    return ERR_OK;
}

void rgb_image_free(rgb_image_t *img) {
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* Where output pixel (ox, oy) comes from in a w x h source, for each
 * orientation (the output is h x w for 5..8). */
static void source_of(int orientation, int w, int h, int ox, int oy, int *sx, int *sy) {
    switch (orientation) {
    case 2: *sx = w - 1 - ox; *sy = oy; break;
    case 3: *sx = w - 1 - ox; *sy = h - 1 - oy; break;
    case 4: *sx = ox; *sy = h - 1 - oy; break;
    case 5: *sx = oy; *sy = ox; break;
    case 6: *sx = oy; *sy = h - 1 - ox; break;
    case 7: *sx = w - 1 - oy; *sy = h - 1 - ox; break;
    case 8: *sx = w - 1 - oy; *sy = ox; break;
    default: *sx = ox; *sy = oy; break;
    }
}

err_code_t rgb_image_orient(rgb_image_t *img, int exif_orientation, err_t *err) {
    if (exif_orientation < 2 || exif_orientation > 8) return ERR_OK;
    int w = img->width, h = img->height;
    int swap = exif_orientation >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *out = malloc((size_t)ow * (size_t)oh * 3);
    if (!out) return err_set(err, ERR_NOMEM, "out of memory orienting a %dx%d image", w, h);
    for (int oy = 0; oy < oh; oy++) {
        uint8_t *dst = out + (size_t)oy * ow * 3;
        for (int ox = 0; ox < ow; ox++) {
            int sx, sy;
            source_of(exif_orientation, w, h, ox, oy, &sx, &sy);
            memcpy(dst + (size_t)ox * 3, img->pixels + ((size_t)sy * w + sx) * 3, 3);
        }
    }
    free(img->pixels);
    img->pixels = out;
    img->width = ow;
    img->height = oh;
    return ERR_OK;
}
