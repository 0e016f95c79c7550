#include "frames.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeg_decode.h"
#include "png_io.h"
#include "video_frames.h"

static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

err_code_t frame_read_rgb(const char *path, rgb_image_t *img, err_t *err) {
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t head[8] = {0};
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) return jpeg_decode_file(path, img, err);
    if (n == sizeof head && memcmp(head, PNG_SIGNATURE, sizeof head) == 0) {
        png_io_image_t png;
        err_code_t code = png_io_read(path, &png, PNG_IO_WANT_RGB, err);
        if (code != ERR_OK) return code;
        /* the pixels are malloc'ed RGB rows: the image takes them over */
        img->width = png.width;
        img->height = png.height;
        img->pixels = png.pixels;
        png.pixels = NULL;
        png_io_free(&png);
        return ERR_OK;
    }
    if (n == 0) return jpeg_decode_file(path, img, err); /* reports the folder, the empty file, ... */
    return err_set(err, ERR_FORMAT, "%s: unsupported image format (not JPEG or PNG; first bytes %02x %02x %02x %02x)",
                   path, head[0], head[1], head[2], head[3]);
}

/* The largest output size of the batch, or an error naming the frame. */
static err_code_t batch_size(const rgb_image_t *images, int n, const image_processor_t *proc, const char *const *names,
                             int *max_w, int *max_h, err_t *err) {
    *max_w = *max_h = 0;
    for (int i = 0; i < n; i++) {
        int w, h;
        err_code_t code = image_processor_output_size(proc, images[i].width, images[i].height, &w, &h, err);
        if (code != ERR_OK) {
            if (names) err_prefix(err, "%s: ", names[i]);
            return code;
        }
        if (w > *max_w) *max_w = w;
        if (h > *max_h) *max_h = h;
    }
    return ERR_OK;
}

/* Processes every image into host memory laid out [n, 3, H, W]; names (or
 * NULL) prefix errors. */
static err_code_t process_batch(const rgb_image_t *images, int n, const image_processor_t *proc,
                                const char *const *names, int W, int H, float *host, err_t *err) {
    size_t frame_floats = (size_t)3 * H * W;
    err_t *errs = calloc((size_t)n, sizeof *errs);
    if (!errs) return err_set(err, ERR_NOMEM, "out of memory for %d frames", n);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
        int w = 0, h = 0;
        float *dst = host + (size_t)i * frame_floats;
        if (image_processor_output_size(proc, images[i].width, images[i].height, &w, &h, &errs[i]) != ERR_OK) continue;
        if (w == W && h == H) {
            image_processor_apply(proc, &images[i], dst, &errs[i]);
            continue;
        }
        /* a smaller frame goes top-left into the zero-padded batch size */
        float *one = malloc(sizeof(float) * 3 * (size_t)w * h);
        if (!one) {
            err_set(&errs[i], ERR_NOMEM, "out of memory for a %dx%d frame", w, h);
            continue;
        }
        if (image_processor_apply(proc, &images[i], one, &errs[i]) == ERR_OK) {
            memset(dst, 0, sizeof(float) * frame_floats);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < h; y++)
                    memcpy(dst + ((size_t)c * H + y) * W, one + ((size_t)c * h + y) * w, sizeof(float) * w);
        }
        free(one);
    }
    err_code_t code = ERR_OK;
    for (int i = 0; i < n && code == ERR_OK; i++)
        if (errs[i].code != ERR_OK) {
            *err = errs[i];
            code = errs[i].code;
            if (names) err_prefix(err, "%s: ", names[i]);
        }
    free(errs);
    return code;
}

/* The tensor for the batch: filled in place on the CPU, or through a host
 * buffer for another device. */
static err_code_t batch_to_tensor(const rgb_image_t *images, int n, const image_processor_t *proc,
                                  const char *const *names, arena_t *a, tensor_t **out, err_t *err) {
    *out = NULL;
    if (n < 1) return err_set(err, ERR_ARG, "no frames to process (n = %d)", n);
    image_processor_t official = image_processor_official();
    if (!proc) proc = &official;
    int W, H;
    err_code_t code = batch_size(images, n, proc, names, &W, &H, err);
    if (code != ERR_OK) return code;
    int64_t shape[4] = {n, 3, H, W};
    if (a->device == DEVICE_CPU) {
        tensor_t *t = tensor_new(a, DTYPE_F32, 4, shape);
        code = process_batch(images, n, proc, names, W, H, tensor_f32(t), err);
        if (code == ERR_OK) *out = t;
        return code;
    }
    size_t floats = (size_t)n * 3 * H * W;
    float *host = malloc(sizeof(float) * floats);
    if (!host) return err_set(err, ERR_NOMEM, "out of memory for %d frames of %dx%d", n, W, H);
    code = process_batch(images, n, proc, names, W, H, host, err);
    if (code == ERR_OK) *out = tensor_from_host(a, DTYPE_F32, 4, shape, host);
    free(host);
    return code;
}

err_code_t images_to_pixel_values(const rgb_image_t *images, int n, const image_processor_t *proc, arena_t *a,
                                  tensor_t **out, err_t *err) {
    return batch_to_tensor(images, n, proc, NULL, a, out, err);
}

static void free_images(rgb_image_t *images, int n) {
    for (int i = 0; i < n; i++) rgb_image_free(&images[i]);
    free(images);
}

err_code_t frames_to_pixel_values(const char *const *paths, int n, const image_processor_t *proc, arena_t *a,
                                  tensor_t **out, err_t *err) {
    *out = NULL;
    if (n < 1) return err_set(err, ERR_ARG, "no frames to process (n = %d)", n);
    rgb_image_t *images = calloc((size_t)n, sizeof *images);
    err_t *errs = calloc((size_t)n, sizeof *errs);
    if (!images || !errs) {
        free(images);
        free(errs);
        return err_set(err, ERR_NOMEM, "out of memory for %d frames", n);
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) frame_read_rgb(paths[i], &images[i], &errs[i]);
    err_code_t code = ERR_OK;
    for (int i = 0; i < n && code == ERR_OK; i++)
        if (errs[i].code != ERR_OK) {
            *err = errs[i];
            code = errs[i].code;
        }
    free(errs);
    /* errors from here on are not about reading: name the frame's file */
    if (code == ERR_OK) code = batch_to_tensor(images, n, proc, paths, a, out, err);
    free_images(images, n);
    return code;
}

err_code_t video_to_pixel_values(const char *path, const double *times, int n, const image_processor_t *proc,
                                 arena_t *a, tensor_t **out, err_t *err) {
    *out = NULL;
    if (n < 1) return err_set(err, ERR_ARG, "%s: no frame times (n = %d)", path, n);
    rgb_image_t *images = calloc((size_t)n, sizeof *images);
    if (!images) return err_set(err, ERR_NOMEM, "out of memory for %d frames", n);
    err_code_t code = video_frames_at(path, times, n, images, err); /* its errors name the file */
    if (code == ERR_OK) {
        code = images_to_pixel_values(images, n, proc, a, out, err);
        if (code != ERR_OK) err_prefix(err, "%s: ", path);
    }
    free_images(images, n);
    return code;
}
