/* bench_frames.c - the frame input path on a 640x360 JPEG (4:2:0, quality
 * 90, textured content made here with libturbojpeg): milliseconds per frame
 * for each stage on one thread, and frames per second for the whole path
 * (file -> pixel_values [F, 3, 384, 384]) on one thread and on all of them. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "frames.h"
#include "image_processor.h"
#include "jpeg_decode.h"
#include "pil_resample.h"

#define WIDTH 640
#define HEIGHT 360
#define BATCH 10

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A JPEG of smooth gradients, stripes and noise, like a video frame. */
static unsigned char *make_jpeg(unsigned long *size) {
    unsigned char *rgb = malloc((size_t)WIDTH * HEIGHT * 3);
    unsigned int seed = 1;
    for (int y = 0; y < HEIGHT; y++)
        for (int x = 0; x < WIDTH; x++)
            for (int c = 0; c < 3; c++) {
                seed = seed * 1103515245u + 12345u;
                double v = 128 + 60 * sin(0.05 * x * (c + 1) + 0.03 * y) + 30 * cos(0.02 * y * (3 - c)) +
                           (double)((seed >> 16) % 11) - 5;
                rgb[((size_t)y * WIDTH + x) * 3 + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    *size = 0;
    int rc = tjCompress2(tj, rgb, WIDTH, 0, HEIGHT, TJPF_RGB, &jpeg, size, TJSAMP_420, 90, TJFLAG_ACCURATEDCT);
    tjDestroy(tj);
    free(rgb);
    return rc == 0 ? jpeg : NULL;
}

typedef void (*stage_fn_t)(void *state);

/* Milliseconds per call: repeats until 0.5 s have passed (at least 5 calls,
 * after one warm-up). */
static double time_ms(stage_fn_t fn, void *state) {
    fn(state);
    int calls = 0;
    double start = now(), t = start;
    while (calls < 5 || t - start < 0.5) {
        fn(state);
        calls++;
        t = now();
    }
    return 1e3 * (t - start) / calls;
}

typedef struct {
    const unsigned char *jpeg;
    unsigned long jpeg_size;
    const char *path;
    rgb_image_t decoded;
    uint8_t *resized;
    float *chw;
    image_processor_t proc;
    const char *paths[BATCH];
    arena_t *arena;
} state_t;

static void stage_decode(void *p) {
    state_t *s = p;
    rgb_image_t img;
    jpeg_decode_memory(s->jpeg, s->jpeg_size, "bench", &img, NULL);
    rgb_image_free(&img);
}

static void stage_resize(void *p) {
    state_t *s = p;
    pil_resample_u8(s->decoded.pixels, WIDTH, HEIGHT, 3, s->resized, 384, 384, s->proc.resample, s->proc.pil_order,
                    NULL);
}

static void stage_processor(void *p) { /* resize + rescale + normalize */
    state_t *s = p;
    image_processor_apply(&s->proc, &s->decoded, s->chw, NULL);
}

static void stage_whole_frame(void *p) { /* file -> CHW float */
    state_t *s = p;
    rgb_image_t img;
    if (frame_read_rgb(s->path, &img, NULL) == ERR_OK) image_processor_apply(&s->proc, &img, s->chw, NULL);
    rgb_image_free(&img);
}

static void stage_batch(void *p) { /* BATCH files -> [BATCH, 3, 384, 384] */
    state_t *s = p;
    tensor_t *t;
    arena_reset(s->arena);
    frames_to_pixel_values(s->paths, BATCH, &s->proc, s->arena, &t, NULL);
}

int main(void) {
    state_t s = {0};
    s.jpeg = make_jpeg(&s.jpeg_size);
    if (!s.jpeg) {
        fprintf(stderr, "bench_frames: cannot encode the test JPEG\n");
        return 1;
    }
    char path[] = "/tmp/stepstone-bench-frame-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, s.jpeg, s.jpeg_size) != (ssize_t)s.jpeg_size) {
        fprintf(stderr, "bench_frames: cannot write %s\n", path);
        return 1;
    }
    close(fd);
    s.path = path;
    for (int i = 0; i < BATCH; i++) s.paths[i] = path;
    s.proc = image_processor_official();
    err_t err = {0};
    if (jpeg_decode_memory(s.jpeg, s.jpeg_size, "bench", &s.decoded, &err) != ERR_OK) {
        fprintf(stderr, "bench_frames: %s\n", err.msg);
        return 1;
    }
    s.resized = malloc(384 * 384 * 3);
    s.chw = malloc(sizeof(float) * 3 * 384 * 384);
    s.arena = arena_create(DEVICE_CPU, (size_t)BATCH * 3 * 384 * 384 * sizeof(float) + (1 << 20));

    int threads = omp_get_max_threads();
    printf("frame input path, %dx%d JPEG (4:2:0, q90, %lu bytes) -> pixel_values 3x384x384:\n", WIDTH, HEIGHT,
           s.jpeg_size);
    omp_set_num_threads(1);
    double decode = time_ms(stage_decode, &s), resize = time_ms(stage_resize, &s);
    double processor = time_ms(stage_processor, &s), whole = time_ms(stage_whole_frame, &s);
    double batch1 = time_ms(stage_batch, &s);
    omp_set_num_threads(threads);
    double batch_all = time_ms(stage_batch, &s);
    printf("  %-44s %8.3f ms\n", "JPEG decode (libturbojpeg, ISLOW)", decode);
    printf("  %-44s %8.3f ms\n", "Pillow bilinear resize to 384x384", resize);
    printf("  %-44s %8.3f ms\n", "processor: resize + rescale + normalize", processor);
    printf("  %-44s %8.3f ms  %7.1f frames/s\n", "file -> pixel_values, 1 thread", whole, 1e3 / whole);
    printf("  %-44s %8.3f ms  %7.1f frames/s\n", "batch of 10 files, 1 thread", batch1, BATCH * 1e3 / batch1);
    char label[64];
    snprintf(label, sizeof label, "batch of 10 files, %d threads", threads);
    printf("  %-44s %8.3f ms  %7.1f frames/s\n", label, batch_all, BATCH * 1e3 / batch_all);
    arena_destroy(s.arena);
    free(s.chw);
    free(s.resized);
    rgb_image_free(&s.decoded);
    tjFree((unsigned char *)s.jpeg);
    unlink(path);
    return 0;
}
