/* jpeg_decode.h - JPEG to RGB8 exactly as the official loader sees it:
 * cv2.imread(path) (IMREAD_COLOR) followed by cvtColor(BGR2RGB).
 *
 * OpenCV decodes JPEG with libjpeg-turbo: the accurate integer IDCT
 * (JDCT_ISLOW) and fancy (triangle) chroma upsampling, both libjpeg's
 * defaults. Decoding with Debian's libturbojpeg with TJFLAG_ACCURATEDCT and
 * without TJFLAG_FASTUPSAMPLE runs the same code, so the RGB bytes are
 * identical to OpenCV's (checked by tests/test_frames.c on 4:2:0, 4:2:2,
 * 4:4:4, 4:4:0, 4:1:1, grayscale, progressive, restart-marker, CMYK and
 * EXIF-rotated files). FFmpeg's mjpeg decoder is not bit-exact with it: do
 * not decode JPEG frames through libavcodec.
 *
 * What OpenCV does beyond plain decoding, reproduced here:
 *   grayscale JPEG   the gray value in all three channels
 *   CMYK / YCCK      decoded to CMYK by libjpeg-turbo, then OpenCV's integer
 *                    formula R = K - ((255 - C) * K >> 8) (same for G from M,
 *                    B from Y)
 *   EXIF orientation the image is turned upright (exif.h, rgb_image_orient)
 *
 * Errors name the file (or label) and the problem:
 *   ERR_IO      the file cannot be opened or read (missing, a folder, ...)
 *   ERR_FORMAT  empty file, not a JPEG, unsupported JPEG (12-bit, lossless),
 *               image too large (RGB_IMAGE_MAX_PIXELS), and corrupt or
 *               truncated data. Decision: any libjpeg warning is an error.
 *               OpenCV prints "Premature end of JPEG file" or "Corrupt JPEG
 *               data" and returns the partly decoded image, its missing part
 *               grey; a training or evaluation frame like that is silently
 *               wrong, so it is refused here, naming the file and libjpeg's
 *               message. (A file OpenCV would refuse outright is refused too.)
 *   ERR_NOMEM   out of memory
 * On error *img is zeroed; rgb_image_free is safe on it either way.
 * The functions are thread-safe (one libturbojpeg handle per call). */
#ifndef STEPSTONE_JPEG_DECODE_H
#define STEPSTONE_JPEG_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "rgb_image.h"

err_code_t jpeg_decode_file(const char *path, rgb_image_t *img, err_t *err);

/* The same from bytes in memory; label names them in messages. */
err_code_t jpeg_decode_memory(const uint8_t *bytes, size_t size, const char *label, rgb_image_t *img, err_t *err);

#endif
