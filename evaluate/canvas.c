/* canvas.c - drawing for the report (canvas.h). */
#include "canvas.h"

#include <stdlib.h>
#include <string.h>

#include "jpeg_decode.h"
#include "png_io.h"

err_code_t canvas_new(canvas_t *c, int w, int h, const uint8_t rgb[3], err_t *err) {
    c->w = w;
    c->h = h;
    c->px = malloc((size_t)w * h * 3);
    if (!c->px) return err_set(err, ERR_NOMEM, "out of memory for a %dx%d picture", w, h);
    for (size_t i = 0; i < (size_t)w * h; i++) memcpy(c->px + 3 * i, rgb, 3);
    return ERR_OK;
}

void canvas_free(canvas_t *c) {
    free(c->px);
    memset(c, 0, sizeof *c);
}

void canvas_fill(canvas_t *c, int x, int y, int w, int h, const uint8_t rgb[3]) {
    for (int yy = y < 0 ? 0 : y; yy < y + h && yy < c->h; yy++)
        for (int xx = x < 0 ? 0 : x; xx < x + w && xx < c->w; xx++) memcpy(c->px + 3 * ((size_t)yy * c->w + xx), rgb, 3);
}

void canvas_blit(canvas_t *c, int x, int y, const uint8_t *rgb, int tw, int th) {
    for (int j = 0; j < th; j++) {
        int yy = y + j;
        if (yy < 0 || yy >= c->h) continue;
        for (int i = 0; i < tw; i++) {
            int xx = x + i;
            if (xx < 0 || xx >= c->w) continue;
            memcpy(c->px + 3 * ((size_t)yy * c->w + xx), rgb + 3 * ((size_t)j * tw + i), 3);
        }
    }
}

/* 3x5 glyphs, one row per entry, bit 2 = left column */
static const struct {
    char ch;
    uint8_t rows[5];
} glyphs[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 1, 1}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}},
    {'%', {5, 1, 2, 4, 5}},
};

int canvas_text_width(const char *s, int scale) {
    int n = (int)strlen(s);
    return n ? (4 * n - 1) * scale : 0;
}

void canvas_text(canvas_t *c, int x, int y, const char *s, int scale, const uint8_t rgb[3]) {
    for (; *s; s++, x += 4 * scale) {
        const uint8_t *rows = NULL;
        for (size_t g = 0; g < sizeof glyphs / sizeof glyphs[0]; g++)
            if (glyphs[g].ch == *s) rows = glyphs[g].rows;
        if (!rows) continue;
        for (int r = 0; r < 5; r++)
            for (int b = 0; b < 3; b++)
                if (rows[r] & (4 >> b)) canvas_fill(c, x + b * scale, y + r * scale, scale, scale, rgb);
    }
}

err_code_t canvas_write_png(const canvas_t *c, const char *path, err_t *err) {
    return png_io_write_rgb(path, c->w, c->h, c->px, err);
}

err_code_t image_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, err_t *err) {
    *rgb = NULL;
    size_t n = strlen(path);
    if (n > 4 && strcmp(path + n - 4, ".png") == 0) {
        png_io_image_t img;
        err_code_t rc = png_io_read(path, &img, PNG_IO_WANT_RGB, err);
        if (rc) return rc;
        *rgb = img.pixels;
        *w = img.width;
        *h = img.height;
        return ERR_OK;
    }
    rgb_image_t img = {0};
    err_code_t rc = jpeg_decode_file(path, &img, err);
    if (rc) return rc;
    *rgb = img.pixels;
    *w = img.width;
    *h = img.height;
    return ERR_OK;
}
