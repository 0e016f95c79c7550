/* avsbench.c - names, the palette and the ground-truth rules (avsbench.h).
 * The meta files, layouts and paths are in avsbench_meta.c. */
#include "avsbench.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "label_resize.h"
#include "png_io.h"

static const char *const subset_names[] = {"v1s", "v1m", "v2"};
static const char *const split_names[] = {"train", "val", "test"};
static const char *const layout_names[] = {"auto", "semantic", "s4", "ms3"};

const char *avs_subset_name(avs_subset_t s) { return (unsigned)s < 3 ? subset_names[s] : "?"; }
const char *avs_split_name(avs_split_t s) { return (unsigned)s < 3 ? split_names[s] : "?"; }
const char *avs_layout_name(avs_layout_t l) { return (unsigned)l < 4 ? layout_names[l] : "?"; }

int avs_parse_subset(const char *text, avs_subset_t *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(text, subset_names[i]) == 0) return *out = (avs_subset_t)i, 0;
    return -1;
}

int avs_parse_split(const char *text, avs_split_t *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(text, split_names[i]) == 0) return *out = (avs_split_t)i, 0;
    return -1;
}

int avs_parse_layout(const char *text, avs_layout_t *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(text, layout_names[i]) == 0) return *out = (avs_layout_t)i, 0;
    return -1;
}

/* ---- palette ---- */

static uint8_t palette[AVS_NUM_CLASSES][3];
static pthread_once_t palette_once = PTHREAD_ONCE_INIT;

static void palette_fill(void) {
    for (int j = 0; j < AVS_NUM_CLASSES; j++) {
        int lab = j, i = 0;
        uint8_t r = 0, g = 0, b = 0;
        while (lab > 0) {
            r |= (uint8_t)(((lab >> 0) & 1) << (7 - i));
            g |= (uint8_t)(((lab >> 1) & 1) << (7 - i));
            b |= (uint8_t)(((lab >> 2) & 1) << (7 - i));
            i++;
            lab >>= 3;
        }
        palette[j][0] = r;
        palette[j][1] = g;
        palette[j][2] = b;
    }
}

static void palette_init(void) { pthread_once(&palette_once, palette_fill); }

void avs_palette_color(int cls, uint8_t rgb[3]) {
    palette_init();
    if (cls < 0 || cls >= AVS_NUM_CLASSES) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    memcpy(rgb, palette[cls], 3);
}

const uint8_t (*avs_palette(void))[3] {
    palette_init();
    return (const uint8_t(*)[3])palette;
}

int avs_class_of_color(uint8_t r, uint8_t g, uint8_t b) {
    palette_init();
    /* the palette colours are distinct, so the first match is the official argmax */
    for (int j = 0; j < AVS_NUM_CLASSES; j++)
        if (palette[j][0] == r && palette[j][1] == g && palette[j][2] == b) return j;
    return -1;
}

void avs_rgb_to_classes(const uint8_t *rgb, size_t n, uint8_t *classes, int64_t *off_palette) {
    int64_t off = 0;
    /* labels are mostly runs of one colour: remember the last lookup */
    uint32_t last_key = 0xffffffffu;
    int last_cls = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb + 3 * i;
        uint32_t key = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        if (key != last_key) {
            last_key = key;
            last_cls = avs_class_of_color(p[0], p[1], p[2]);
        }
        if (last_cls < 0) {
            classes[i] = 0;
            off++;
        } else {
            classes[i] = (uint8_t)last_cls;
        }
    }
    if (off_palette) *off_palette = off;
}

/* ---- ground truth ---- */

void avs_class_map_from_rgb(const uint8_t *rgb, int w, int h, int size, uint8_t *out, int64_t *off_palette) {
    uint8_t *small = malloc((size_t)size * size * 3);
    if (!small) fatal("avs_class_map_from_rgb: out of memory");
    pil_resize_nearest_u8(rgb, w, h, 3, small, size, size);
    avs_rgb_to_classes(small, (size_t)size * size, out, off_palette);
    free(small);
}

void avs_binary_mask_from_rgb(const uint8_t *rgb, int w, int h, int size, uint8_t *out) {
    uint8_t *small = malloc((size_t)size * size * 3);
    if (!small) fatal("avs_binary_mask_from_rgb: out of memory");
    /* channel order does not change a per-channel resize; the gray weights
     * are applied to the right colours below */
    cv_resize_linear_u8(rgb, w, h, 3, small, size, size);
    for (size_t i = 0; i < (size_t)size * size; i++)
        out[i] = (uint8_t)cv_gray_positive(small[3 * i], small[3 * i + 1], small[3 * i + 2]);
    free(small);
}

err_code_t avs_load_class_map(const char *path, int size, uint8_t *out, int64_t *off_palette, err_t *err) {
    png_io_image_t img;
    err_code_t rc = png_io_read(path, &img, PNG_IO_WANT_RGB, err);
    if (rc) return rc;
    avs_class_map_from_rgb(img.pixels, img.width, img.height, size, out, off_palette);
    png_io_free(&img);
    return ERR_OK;
}

err_code_t avs_load_binary_mask(const char *path, int size, uint8_t *out, err_t *err) {
    png_io_image_t img;
    err_code_t rc = png_io_read(path, &img, PNG_IO_WANT_RGB, err);
    if (rc) return rc;
    avs_binary_mask_from_rgb(img.pixels, img.width, img.height, size, out);
    png_io_free(&img);
    return ERR_OK;
}
