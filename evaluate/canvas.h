/* canvas.h - the little drawing the report needs: an RGB canvas, filled
 * rectangles, tiles, blending and a 3x5 pixel font for digits and a few
 * signs. Owned pixels; free with canvas_free. */
#ifndef STEPSTONE_EVALUATE_CANVAS_H
#define STEPSTONE_EVALUATE_CANVAS_H

#include <stdint.h>

#include "error.h"

typedef struct {
    int w, h;
    uint8_t *px; /* h rows of w * 3 bytes */
} canvas_t;

/* A w x h canvas filled with rgb; ERR_NOMEM. */
err_code_t canvas_new(canvas_t *c, int w, int h, const uint8_t rgb[3], err_t *err);
void canvas_free(canvas_t *c);

void canvas_fill(canvas_t *c, int x, int y, int w, int h, const uint8_t rgb[3]);
/* Copies an RGB image of tw x th to (x, y), clipped to the canvas. */
void canvas_blit(canvas_t *c, int x, int y, const uint8_t *rgb, int tw, int th);
/* Text of digits, '.', '-', '%' and spaces, 3x5 glyphs scaled by `scale`;
 * other characters draw as blanks. */
void canvas_text(canvas_t *c, int x, int y, const char *s, int scale, const uint8_t rgb[3]);
int canvas_text_width(const char *s, int scale);

err_code_t canvas_write_png(const canvas_t *c, const char *path, err_t *err);

/* Reads a frame (JPEG through libturbojpeg, or PNG) as RGB into *rgb (owned,
 * malloc), *w x *h. Errors name the file. */
err_code_t image_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, err_t *err);

#endif
