/* frames.h - frame files to the model's pixel_values [F, 3, H, W].
 *
 * The official AVSS loader reads each frame with cv2.imread + BGR2RGB and
 * passes the list to Mask2FormerImageProcessor.preprocess. This module does
 * the same in C: frame_read_rgb (JPEG through libjpeg-turbo as OpenCV does,
 * PNG through libpng; the format is taken from the file's first bytes, not
 * its name), then image_processor_apply on each frame.
 *
 * Frames are read and processed in parallel (OpenMP, one frame per thread).
 * When the frames' output sizes differ (only possible with a shortest_edge
 * config or do_resize false), each is placed top-left in the largest and the
 * rest is 0, as the processor pads a batch; its pixel_mask is not made.
 *
 * Errors name the file: ERR_IO (missing, unreadable), ERR_FORMAT (empty,
 * not JPEG or PNG, corrupt or truncated: see jpeg_decode.h and png_io.h),
 * ERR_ARG, ERR_NOMEM. With several bad frames the first in order is reported. */
#ifndef STEPSTONE_FRAMES_H
#define STEPSTONE_FRAMES_H

#include "arena.h"
#include "error.h"
#include "image_processor.h"
#include "rgb_image.h"
#include "tensor.h"

/* Reads one frame as RGB8, as cv2.imread(path) + cvtColor(BGR2RGB) gives it.
 * JPEG: bit-identical to OpenCV (jpeg_decode.h). PNG: png_io_read's RGB,
 * identical to OpenCV for 8-bit files; 16-bit samples differ by at most 1
 * (png_io rounds v * 255 / 65535, OpenCV keeps the high byte) and an eXIf
 * orientation chunk is not applied. On error *img is zeroed. */
err_code_t frame_read_rgb(const char *path, rgb_image_t *img, err_t *err);

/* images[0..n) through the processor (NULL: image_processor_official) into a
 * new F32 tensor [n, 3, H, W] allocated from arena a (on its device). */
err_code_t images_to_pixel_values(const rgb_image_t *images, int n, const image_processor_t *proc, arena_t *a,
                                  tensor_t **out, err_t *err);

/* Reads the n frame files and runs them through the processor (NULL: the
 * official one) into a new F32 tensor [n, 3, H, W] on arena a. */
err_code_t frames_to_pixel_values(const char *const *paths, int n, const image_processor_t *proc, arena_t *a,
                                  tensor_t **out, err_t *err);

/* The same for n frames taken at times[] (seconds) from a video file
 * (video_frames.h: not bit-exact with any official path). */
err_code_t video_to_pixel_values(const char *path, const double *times, int n, const image_processor_t *proc,
                                 arena_t *a, tensor_t **out, err_t *err);

#endif
