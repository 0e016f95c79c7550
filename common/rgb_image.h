/* rgb_image.h - an 8-bit RGB picture in host memory, the currency of the
 * frame readers (jpeg_decode.h, frames.h, video_frames.h) and of the
 * image processor (image_processor.h).
 *
 * Pixels are interleaved R, G, B bytes, rows top to bottom with no padding:
 * the layout of cv2.imread(path)[..., ::-1] and of numpy.asarray(PIL image).
 * The pixel buffer is owned by the image (malloc) and released by
 * rgb_image_free; a zeroed rgb_image_t is a valid empty image. */
#ifndef STEPSTONE_RGB_IMAGE_H
#define STEPSTONE_RGB_IMAGE_H

#include <stdint.h>

#include "error.h"

/* The largest picture a reader accepts (width * height), checked before any
 * pixel memory is allocated, so a corrupt header cannot ask for terabytes.
 * OpenCV's own limit (CV_IO_MAX_IMAGE_PIXELS) is 2^30; frames are far smaller. */
#define RGB_IMAGE_MAX_PIXELS (1LL << 28)

typedef struct {
    int width, height;
    uint8_t *pixels; /* height * width * 3 bytes; owned */
} rgb_image_t;

/* Allocates an uninitialised width x height image into *img (which must not
 * own pixels). ERR_FORMAT when a side is < 1 or the area exceeds
 * RGB_IMAGE_MAX_PIXELS (what names the image in the message), ERR_NOMEM. */
err_code_t rgb_image_alloc(rgb_image_t *img, int width, int height, const char *what, err_t *err);

/* Frees the pixels and zeroes *img. Safe on a zeroed image. */
void rgb_image_free(rgb_image_t *img);

/* Turns the image upright by its EXIF orientation (TIFF tag 0x0112), the way
 * OpenCV's imread does unless told IMREAD_IGNORE_ORIENTATION:
 *   1 as stored            5 transpose
 *   2 mirror left-right    6 rotate 90 degrees clockwise
 *   3 rotate 180           7 transverse (transpose, then rotate 180)
 *   4 mirror top-bottom    8 rotate 90 degrees counter-clockwise
 * Orientations 5..8 swap width and height. Any other value leaves the image
 * as stored (as OpenCV does). ERR_NOMEM leaves the image unchanged. */
err_code_t rgb_image_orient(rgb_image_t *img, int exif_orientation, err_t *err);

#endif
