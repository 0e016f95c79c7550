/* image_processor.h - the pixel path of HuggingFace's
 * Mask2FormerImageProcessor (transformers 4.35.2, and the copy vendored in
 * the official AAVS code), from an RGB8 frame to a CHW float32 image.
 *
 * For each frame the processor
 *   1. resizes the uint8 image with PIL (pil_resample.h) to the output size:
 *      size {"height", "width"}, or {"shortest_edge", "longest_edge"} as
 *      torchvision's Resize computes it, then each side rounded up to a
 *      multiple of size_divisor (384 stays 384 with the official 32);
 *   2. rescales: x = float32(v * rescale_factor), the product in double (numpy
 *      multiplies the uint8 array by a Python float in float64, then casts);
 *   3. normalizes: (x - mean[c]) / std[c] in float32, mean and std rounded to
 *      float32 first (numpy casts them to the image's dtype).
 * Every step is reproduced in the same arithmetic, so the output is the
 * processor's bit for bit (tests/test_frames.c checks it to 1e-6 on every
 * element and reports whether it is exact).
 *
 * The official config (avss/.models/preprocessor_config.json) is 384x384,
 * size_divisor 32, resample 2 (bilinear), rescale 1/255, mean (0.485, 0.456,
 * 0.406), std (0.229, 0.224, 0.225) written as float32 values in decimal
 * (std 0.2239999920129776 is one float32 step below 0.224f: the built-in
 * copy keeps the config's numbers): image_processor_official. It resizes
 * in the pass order of the Pillow versions the official code ran with
 * (horizontal first, Pillow <= 12); set pil_order to PIL_ORDER_PILLOW13 to
 * match a Python environment with Pillow 13 or later (they differ on frames
 * whose height shrinks much more than their width: portrait frames). */
#ifndef STEPSTONE_IMAGE_PROCESSOR_H
#define STEPSTONE_IMAGE_PROCESSOR_H

#include <stdbool.h>

#include "error.h"
#include "pil_resample.h"
#include "rgb_image.h"

typedef struct {
    bool do_resize;
    int height, width;               /* a fixed output size when both > 0 ... */
    int shortest_edge, longest_edge; /* ... else this (longest_edge 0: no cap) */
    int size_divisor;                /* round output sides up to a multiple; 0 or 1: no rounding */
    pil_filter_t resample;
    pil_pass_order_t pil_order;      /* which Pillow's pass order (pil_resample.h) */
    bool do_rescale;
    double rescale_factor;
    bool do_normalize;
    float mean[3], std[3];
} image_processor_t;

/* The official AAVS preprocessor_config.json. */
image_processor_t image_processor_official(void);

/* Reads a HuggingFace preprocessor_config.json. Fields read (the others are
 * label settings or names and are ignored): do_resize, size (an object with
 * height + width or shortest_edge + longest_edge, or an integer: the
 * shortest edge, capped by "max_size" / "_max_size" or 1333), size_divisor
 * (default 32), resample (1..5; 0 = nearest is refused), do_rescale,
 * rescale_factor, do_normalize, image_mean, image_std (3 numbers each).
 * Absent fields take the processor's defaults; pil_order is always
 * PIL_ORDER_HORIZONTAL_FIRST (the JSON cannot say which Pillow runs it). Errors name the file and the
 * field: ERR_IO / ERR_FORMAT for the file, ERR_NOTFOUND / ERR_MISMATCH for a
 * field, ERR_ARG for settings the processor would reject or mangle
 * (do_normalize without do_rescale: numpy casts the mean to uint8).
 * On error *p holds the official config. */
err_code_t image_processor_load(const char *path, image_processor_t *p, err_t *err);

/* The output size for an in_w x in_h frame (the frame itself when do_resize
 * is false). ERR_ARG when the settings are unusable (longest_edge <=
 * shortest_edge, non-positive sizes), as the processor raises ValueError. */
err_code_t image_processor_output_size(const image_processor_t *p, int in_w, int in_h, int *out_w, int *out_h,
                                       err_t *err);

/* Runs the processor on one frame: chw receives 3 * out_h * out_w floats
 * (planes R, G, B; rows top first), with out_w/out_h from
 * image_processor_output_size. ERR_NOMEM, or the errors above. */
err_code_t image_processor_apply(const image_processor_t *p, const rgb_image_t *img, float *chw, err_t *err);

#endif
