/* test_frames.c - the frame input path against OpenCV, Pillow and
 * Mask2FormerImageProcessor, and its errors.
 *
 * Reference: tests/reference/frames_ref.py -> frames_ref.safetensors, on the
 * images in tests/fixtures/frames/ (JPEG 4:2:0, 4:2:2, 4:4:4, 4:4:0, 4:1:1,
 * grayscale, progressive, restart markers, CMYK, EXIF-rotated; one PNG;
 * sizes from 7x5 to 1001x563). For every image:
 *   decoded RGB        identical to cv2.imread + BGR2RGB (SHA-256 of all
 *                      bytes; stored rows count the differing bytes)
 *   resized uint8      identical to the processor's PIL resize (SHA-256)
 *   pixel_values       within 1e-6 of the processor on every element (its
 *                      own per-value table applied to the exact resized
 *                      image), on a stored row directly, and bit-exactness
 *                      reported by SHA-256
 * plus Pillow's other filters and sizes, the batch path, the config loader,
 * EXIF orientations, frames from a video made here with libavcodec, and bad
 * input: each an error naming the file, never a crash. Run from the
 * repository root. */
#include <dirent.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/sha.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "check.h"
#include "exif.h"
#include "file_read.h"
#include "frames.h"
#include "image_processor.h"
#include "jpeg_decode.h"
#include "pil_resample.h"
#include "safetensors.h"
#include "video_frames.h"

#define REF_PATH "tests/reference/frames_ref.safetensors"
#define FIXTURE_DIR "tests/fixtures/frames"
#define PIXEL_TOLERANCE 1e-6

static char tmp_dir[] = "/tmp/stepstone-test-frames-XXXXXX";

static void tmp_path(const char *name, char *path, size_t size) { snprintf(path, size, "%s/%s", tmp_dir, name); }

/* lowercase hex SHA-256, as Python's hashlib hexdigest */
static void sha256_hex(const void *data, size_t size, char hex[65]) {
    struct AVSHA *sha = av_sha_alloc();
    uint8_t digest[32];
    av_sha_init(sha, 256);
    av_sha_update(sha, data, size);
    av_sha_final(sha, digest);
    av_free(sha);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static int sha_matches(const safetensors_t *ref, const char *key, const void *data, size_t size) {
    const char *want = safetensors_meta(ref, key);
    char got[65];
    sha256_hex(data, size, got);
    return want && strcmp(want, got) == 0;
}

static void write_bytes(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
}

/* Bytes that differ between rows 0, H/2, H-1 of an HWC image and the
 * stored [3, W, 3] rows; -1 when the reference has no such tensor. */
static long differing_row_bytes(const safetensors_t *ref, const char *key, const uint8_t *hwc, int w, int h) {
    const st_entry_t *e = safetensors_find(ref, key);
    if (!e || e->dtype != DTYPE_U8 || e->numel != 3LL * w * 3) return -1;
    const uint8_t *want = e->data;
    int rows[3] = {0, h / 2, h - 1};
    long n = 0;
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < w * 3; i++) n += hwc[(size_t)rows[r] * w * 3 + i] != want[(size_t)r * w * 3 + i];
    return n;
}

typedef struct {
    long rgb_bytes_differing, resized_bytes_differing; /* summed over images, from the stored rows */
    double max_pixel_diff;
    int n_images, n_exact;
} parity_t;

/* The fixture file of a stem: <stem>.jpg or <stem>.png. */
static int fixture_path(const char *stem, char *path, size_t size) {
    const char *exts[2] = {".jpg", ".png"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, size, "%s/%.63s%s", FIXTURE_DIR, stem, exts[i]);
        if (access(path, R_OK) == 0) return 1;
    }
    return 0;
}

/* Pillow's other filters and sizes: the reference's Pillow (its pass order)
 * and, where that differs, Pillow <= 12's horizontal-first order. */
static void check_other_filters(const safetensors_t *ref, const char *stem, const rgb_image_t *img,
                                pil_pass_order_t reference_order) {
    static const char *names[] = {"lanczos", "bilinear", "bicubic", "box", "hamming"};
    int sizes[][2] = {{384, 384}, {101, 67}, {700, 410}, {1, 1}, {5, 700}, {64, 100}};
    struct {
        const char *suffix;
        pil_pass_order_t order;
    } kinds[2] = {{"sha256", reference_order}, {"hfirst_sha256", PIL_ORDER_HORIZONTAL_FIRST}};
    int n_checked = 0, n_ok = 0;
    char failures[512] = "";
    for (int f = PIL_FILTER_LANCZOS; f <= PIL_FILTER_HAMMING; f++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int k = 0; k < 2; k++) {
                int w = sizes[s][0], h = sizes[s][1];
                char key[160];
                snprintf(key, sizeof key, "%.63s.%s_%dx%d_%s", stem, names[f - 1], w, h, kinds[k].suffix);
                if (!safetensors_meta(ref, key)) continue;
                uint8_t *out = malloc((size_t)w * h * 3);
                err_t err = {0};
                int ok = pil_resample_u8(img->pixels, img->width, img->height, 3, out, w, h, (pil_filter_t)f,
                                         kinds[k].order, &err) == ERR_OK &&
                         sha_matches(ref, key, out, (size_t)w * h * 3);
                n_checked++;
                n_ok += ok;
                if (!ok && strlen(failures) < sizeof failures - 64)
                    snprintf(failures + strlen(failures), sizeof failures - strlen(failures), " %s_%dx%d_%s",
                             names[f - 1], w, h, kinds[k].suffix);
                free(out);
            }
    if (n_checked == 0) return;
    char name[128];
    snprintf(name, sizeof name, "frames/%.63s/pillow_filters_and_sizes", stem);
    check(n_ok == n_checked, name, "%d of %d resizes differ from Pillow:%s", n_checked - n_ok, n_checked, failures);
}

/* max |pixel_values - table[resized]| over every element */
static double max_diff_to_table(const float *chw, const uint8_t *resized, size_t plane, const float table[3][256]) {
    double max_diff = 0;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) {
            double d = fabs((double)chw[c * plane + i] - table[c][resized[i * 3 + c]]);
            if (d > max_diff) max_diff = d;
        }
    return max_diff;
}

/* Resizes img as proc does and compares with the reference checksum `key`
 * (and, when rows_key is given, counts differing bytes in its stored rows).
 * Returns the resized image (caller frees) and whether it matched. */
static uint8_t *resize_and_compare(const safetensors_t *ref, const rgb_image_t *img, const image_processor_t *proc,
                                   const char *key, const char *rows_key, int *same, long *rows_differing) {
    int ow, oh;
    err_t err = {0};
    image_processor_output_size(proc, img->width, img->height, &ow, &oh, &err);
    uint8_t *resized = malloc((size_t)ow * oh * 3);
    pil_resample_u8(img->pixels, img->width, img->height, 3, resized, ow, oh, proc->resample, proc->pil_order, &err);
    *same = sha_matches(ref, key, resized, (size_t)ow * oh * 3);
    *rows_differing = rows_key ? differing_row_bytes(ref, rows_key, resized, ow, oh) : 0;
    return resized;
}

/* proc: the processor as the reference's Python ran it (its Pillow's pass
 * order); the official horizontal-first order is checked besides. */
static void check_one_image(const safetensors_t *ref, const char *stem, const image_processor_t *proc,
                            const float table[3][256], parity_t *parity) {
    char path[512], key[160], rows_key[160], name[160];
    if (!fixture_path(stem, path, sizeof path)) {
        snprintf(name, sizeof name, "frames/%.63s/fixture", stem);
        check(0, name, "no %s/%s.jpg or .png", FIXTURE_DIR, stem);
        return;
    }
    parity->n_images++;
    /* decoding */
    rgb_image_t img;
    err_t err = {0};
    snprintf(name, sizeof name, "frames/%.63s/reads", stem);
    if (!check(frame_read_rgb(path, &img, &err) == ERR_OK, name, "%s", err.msg)) return;
    snprintf(key, sizeof key, "%.63s.shape", stem);
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%d", img.height, img.width);
    const char *want_shape = safetensors_meta(ref, key);
    snprintf(key, sizeof key, "%.63s.rgb_rows", stem);
    long rgb_diff = differing_row_bytes(ref, key, img.pixels, img.width, img.height);
    snprintf(key, sizeof key, "%.63s.rgb_sha256", stem);
    int rgb_same = want_shape && strcmp(want_shape, shape) == 0 &&
                   sha_matches(ref, key, img.pixels, (size_t)img.width * img.height * 3);
    if (rgb_diff > 0) parity->rgb_bytes_differing += rgb_diff;
    snprintf(name, sizeof name, "frames/%.63s/decoded_rgb_equals_opencv", stem);
    check(rgb_same, name, "shape %s (OpenCV %s), %ld differing bytes in the 3 stored rows, SHA-256 differs", shape,
          want_shape ? want_shape : "?", rgb_diff);

    /* Pillow resize as the reference's processor ran it */
    int same;
    long resized_diff;
    snprintf(key, sizeof key, "%.63s.resized_sha256", stem);
    snprintf(rows_key, sizeof rows_key, "%.63s.resized_rows", stem);
    uint8_t *resized = resize_and_compare(ref, &img, proc, key, rows_key, &same, &resized_diff);
    if (resized_diff > 0) parity->resized_bytes_differing += resized_diff;
    snprintf(name, sizeof name, "frames/%.63s/resized_equals_pillow", stem);
    check(same, name, "%ld differing bytes in the 3 stored rows, SHA-256 differs", resized_diff);

    /* the processor */
    int ow, oh;
    image_processor_output_size(proc, img.width, img.height, &ow, &oh, &err);
    size_t plane = (size_t)ow * oh;
    float *pixel_values = malloc(sizeof(float) * 3 * plane);
    snprintf(name, sizeof name, "frames/%.63s/pixel_values_match_processor", stem);
    if (image_processor_apply(proc, &img, pixel_values, &err) == ERR_OK) {
        /* every element: the processor's value for the (exact) resized byte */
        double max_diff = max_diff_to_table(pixel_values, resized, plane, table);
        /* row 300 straight from the processor */
        snprintf(key, sizeof key, "%.63s.pixel_row", stem);
        const st_entry_t *e = safetensors_find(ref, key);
        double row_diff = INFINITY;
        if (e && e->dtype == DTYPE_F32 && e->numel == 3LL * ow && oh > 300) {
            row_diff = 0;
            for (int c = 0; c < 3; c++)
                for (int x = 0; x < ow; x++) {
                    float want;
                    memcpy(&want, (const uint8_t *)e->data + sizeof(float) * ((size_t)c * ow + x), sizeof want);
                    double d = fabs((double)pixel_values[c * plane + 300 * (size_t)ow + x] - want);
                    if (d > row_diff) row_diff = d;
                }
        }
        if (row_diff > max_diff) max_diff = row_diff;
        snprintf(key, sizeof key, "%.63s.pixel_sha256", stem);
        int exact = sha_matches(ref, key, pixel_values, sizeof(float) * 3 * plane);
        parity->n_exact += exact;
        if (max_diff > parity->max_pixel_diff) parity->max_pixel_diff = max_diff;
        check(same && max_diff <= PIXEL_TOLERANCE, name,
              "max |diff| %.3g over all elements (tolerance %g), %.3g on the stored row%s", max_diff, PIXEL_TOLERANCE,
              row_diff, same ? "" : "; the resized image already differs");
    } else {
        check(0, name, "%s", err.msg);
    }
    free(resized);

    /* the official environment's order (Pillow <= 12): horizontal first */
    image_processor_t official_order = *proc;
    official_order.pil_order = PIL_ORDER_HORIZONTAL_FIRST;
    snprintf(key, sizeof key, "%.63s.resized_hfirst_sha256", stem);
    resized = resize_and_compare(ref, &img, &official_order, key, NULL, &same, &resized_diff);
    snprintf(name, sizeof name, "frames/%.63s/pillow12_order", stem);
    if (image_processor_apply(&official_order, &img, pixel_values, &err) == ERR_OK) {
        double max_diff = max_diff_to_table(pixel_values, resized, plane, table);
        check(same && max_diff <= PIXEL_TOLERANCE, name, "resized %s Pillow <= 12, pixel_values max |diff| %.3g",
              same ? "equals" : "differs from", max_diff);
    } else {
        check(0, name, "%s", err.msg);
    }
    free(resized);
    check_other_filters(ref, stem, &img, proc->pil_order);
    free(pixel_values);
    rgb_image_free(&img);
}

/* The stems of the reference, from its "<stem>.shape" metadata, sorted. */
static int reference_stems(const safetensors_t *ref, char stems[][64], int capacity) {
    int n = 0;
    for (int i = 0; i < ref->n_meta && n < capacity; i++) {
        const char *k = ref->meta_keys[i];
        size_t len = strlen(k);
        if (len > 6 && len - 6 < 64 && strcmp(k + len - 6, ".shape") == 0) {
            memcpy(stems[n], k, len - 6);
            stems[n][len - 6] = '\0';
            n++;
        }
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(stems[j - 1], stems[j]) > 0; j--) {
            char t[64];
            memcpy(t, stems[j], 64);
            memcpy(stems[j], stems[j - 1], 64);
            memcpy(stems[j - 1], t, 64);
        }
    return n;
}

static void test_parity(const safetensors_t *ref, const image_processor_t *official) {
    /* the reference's processor: the official config in its Pillow's pass order */
    image_processor_t reference_proc = *official;
    const image_processor_t *proc = &reference_proc;
    const char *order = safetensors_meta(ref, "pillow_pass_order");
    reference_proc.pil_order = order && strcmp(order, "pillow13") == 0 ? PIL_ORDER_PILLOW13 : PIL_ORDER_HORIZONTAL_FIRST;
    printf("reference: OpenCV %s, Pillow %s (pass order %s), transformers %s\n", safetensors_meta(ref, "opencv"),
           safetensors_meta(ref, "pillow"), order ? order : "?", safetensors_meta(ref, "transformers"));
    const st_entry_t *t = safetensors_find(ref, "norm_table");
    if (!check(t && t->dtype == DTYPE_F32 && t->numel == 3 * 256, "frames/reference_norm_table", "missing or malformed"))
        return;
    float table[3][256];
    memcpy(table, t->data, sizeof table);
    /* our own table: the processor on every value */
    rgb_image_t probe;
    err_t err = {0};
    rgb_image_alloc(&probe, 384, 384, "probe", &err);
    for (int y = 0; y < 384; y++)
        for (int x = 0; x < 384; x++)
            for (int c = 0; c < 3; c++) probe.pixels[((size_t)y * 384 + x) * 3 + c] = (uint8_t)((x + 3 * y + 7 * c) % 256);
    float *out = malloc(sizeof(float) * 3 * 384 * 384);
    image_processor_apply(proc, &probe, out, &err);
    double table_diff = 0;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < 384 * 384; i++) {
            double d = fabs((double)out[c * 384 * 384 + i] - table[c][probe.pixels[i * 3 + c]]);
            if (d > table_diff) table_diff = d;
        }
    check(table_diff == 0, "frames/rescale_normalize_exact_for_every_value", "max |diff| %.3g", table_diff);
    free(out);
    rgb_image_free(&probe);

    char stems[64][64];
    int n = reference_stems(ref, stems, 64);
    parity_t parity = {0};
    for (int i = 0; i < n; i++) check_one_image(ref, stems[i], proc, (const float(*)[256])table, &parity);
    printf("frame parity over %d images: %ld bytes of decoded RGB and %ld of resized uint8 differ in the stored rows "
           "(SHA-256 checks cover the rest), pixel_values max |diff| %.3g, bit-exact in %d of %d\n",
           parity.n_images, parity.rgb_bytes_differing, parity.resized_bytes_differing, parity.max_pixel_diff,
           parity.n_exact, parity.n_images);
    check(n >= 10, "frames/reference_has_images", "%d images in %s", n, REF_PATH);

    /* the batch path: all frames at once, each slice as the processor */
    const char *paths[64];
    char path_store[64][512];
    for (int i = 0; i < n; i++) {
        fixture_path(stems[i], path_store[i], sizeof path_store[i]);
        paths[i] = path_store[i];
    }
    arena_t *a = arena_create(DEVICE_CPU, 64 << 20);
    tensor_t *pv = NULL;
    int ok = frames_to_pixel_values(paths, n, proc, a, &pv, &err) == ERR_OK;
    int n_same = 0;
    if (ok) {
        ok = pv->ndim == 4 && pv->shape[0] == n && pv->shape[1] == 3 && pv->shape[2] == 384 && pv->shape[3] == 384;
        for (int i = 0; ok && i < n; i++) {
            char key[160];
            snprintf(key, sizeof key, "%.63s.pixel_sha256", stems[i]);
            n_same += sha_matches(ref, key, tensor_f32(pv) + (size_t)i * 3 * 384 * 384, sizeof(float) * 3 * 384 * 384);
        }
    }
    check(ok && n_same == parity.n_exact, "frames/batch_equals_single_frames", "%s; %d of %d frames as alone",
          ok ? "" : err.msg, n_same, parity.n_exact);
    arena_destroy(a);
}

/* The decoding check is sensitive: libjpeg-turbo's fast upsampling or fast
 * IDCT (what a careless decoder setting gives) already differ from OpenCV. */
static void test_decoder_settings_matter(const safetensors_t *ref) {
    uint8_t *jpeg;
    size_t size;
    err_t err = {0};
    if (file_read_all(FIXTURE_DIR "/a_640x360_420.jpg", &jpeg, &size, &err) != ERR_OK) {
        check(0, "frames/decoder_settings_matter", "%s", err.msg);
        return;
    }
    int flags[2] = {TJFLAG_ACCURATEDCT | TJFLAG_FASTUPSAMPLE, TJFLAG_FASTDCT};
    int n_differ = 0;
    uint8_t *rgb = malloc(640 * 360 * 3);
    for (int i = 0; i < 2; i++) {
        tjhandle tj = tjInitDecompress();
        if (tjDecompress2(tj, jpeg, (unsigned long)size, rgb, 640, 0, 360, TJPF_RGB, flags[i]) == 0)
            n_differ += !sha_matches(ref, "a_640x360_420.rgb_sha256", rgb, 640 * 360 * 3);
        tjDestroy(tj);
    }
    check(n_differ == 2, "frames/decoder_settings_matter", "%d of 2 other decoder settings differ from OpenCV",
          n_differ);
    free(rgb);
    free(jpeg);
}

static void test_config(const image_processor_t *loaded) {
    image_processor_t official = image_processor_official();
    int same = loaded->do_resize == official.do_resize && loaded->height == official.height &&
               loaded->width == official.width && loaded->size_divisor == official.size_divisor &&
               loaded->resample == official.resample && loaded->do_rescale == official.do_rescale &&
               loaded->rescale_factor == official.rescale_factor && loaded->do_normalize == official.do_normalize &&
               memcmp(loaded->mean, official.mean, sizeof official.mean) == 0 &&
               memcmp(loaded->std, official.std, sizeof official.std) == 0;
    check(same, "frames/config_official_loads_as_built_in", "preprocessor_config.json differs from image_processor_official");

    struct {
        const char *name, *json, *needle;
    } bad[] = {
        {"nearest", "{\"resample\": 0}", "resample"},
        {"normalize_without_rescale", "{\"do_rescale\": false}", "do_normalize"},
        {"mean_length", "{\"image_mean\": [0.5, 0.5]}", "image_mean"},
        {"size_type", "{\"size\": \"big\"}", "size"},
        {"longest_not_above_shortest", "{\"size\": {\"shortest_edge\": 800, \"longest_edge\": 800}}", "longest_edge"},
        {"syntax", "{\"size\": ", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[512], name[128];
        tmp_path("bad_config.json", path, sizeof path);
        write_bytes(path, bad[i].json, strlen(bad[i].json));
        image_processor_t p;
        err_t err = {0};
        err_code_t rc = image_processor_load(path, &p, &err);
        snprintf(name, sizeof name, "frames/config_error_%s", bad[i].name);
        check(rc != ERR_OK && strstr(err.msg, path) && strstr(err.msg, bad[i].needle), name, "rc %d: %s", rc, err.msg);
    }
    /* shortest_edge sizing as transformers computes it: 640x360 -> short 800,
     * long int(800 * 640 / 360) = 1422 capped to 1333 -> short int(1333 * 800
     * / 1422) = 749; then rounded up to 32: 1344 x 768 */
    image_processor_t p = image_processor_official();
    p.height = p.width = 0;
    p.shortest_edge = 800;
    p.longest_edge = 1333;
    int w = 0, h = 0;
    err_t err = {0};
    image_processor_output_size(&p, 640, 360, &w, &h, &err);
    check(w == 1344 && h == 768, "frames/shortest_edge_size", "got %dx%d, want 1344x768", w, h);
}

static void test_orientation(void) {
    /* a 3x2 image whose pixel value is its index; each orientation checked
     * against the transform OpenCV applies */
    static const int want[9][6] = {
        {0},
        {0, 1, 2, 3, 4, 5}, /* 1: as stored (3 wide, 2 tall) */
        {2, 1, 0, 5, 4, 3}, /* 2: mirrored left-right */
        {5, 4, 3, 2, 1, 0}, /* 3: rotated 180 */
        {3, 4, 5, 0, 1, 2}, /* 4: mirrored top-bottom */
        {0, 3, 1, 4, 2, 5}, /* 5: transposed (2 wide, 3 tall) */
        {3, 0, 4, 1, 5, 2}, /* 6: rotated 90 clockwise */
        {5, 2, 4, 1, 3, 0}, /* 7: transverse */
        {2, 5, 1, 4, 0, 3}, /* 8: rotated 90 counter-clockwise */
    };
    int all_ok = 1;
    for (int o = 1; o <= 8; o++) {
        rgb_image_t img;
        err_t err = {0};
        rgb_image_alloc(&img, 3, 2, "orientation", &err);
        for (int i = 0; i < 6; i++) memset(img.pixels + i * 3, i, 3);
        rgb_image_orient(&img, o, &err);
        int ok = o >= 5 ? img.width == 2 && img.height == 3 : img.width == 3 && img.height == 2;
        for (int i = 0; ok && i < 6; i++) ok = img.pixels[i * 3] == want[o][i];
        if (!ok) {
            all_ok = 0;
            printf("  orientation %d wrong\n", o);
        }
        rgb_image_free(&img);
    }
    check(all_ok, "frames/exif_orientations", "see above");
    uint8_t *bytes;
    size_t size;
    err_t err = {0};
    if (file_read_all(FIXTURE_DIR "/h_257x129_exif6.jpg", &bytes, &size, &err) == ERR_OK) {
        check(exif_jpeg_orientation(bytes, size) == 6, "frames/exif_tag_read", "orientation %d, want 6",
              exif_jpeg_orientation(bytes, size));
        /* cut inside the EXIF block: ignored, not a crash */
        check(exif_jpeg_orientation(bytes, 40) == 1, "frames/exif_truncated_ignored", "orientation %d",
              exif_jpeg_orientation(bytes, 40));
        free(bytes);
    } else {
        check(0, "frames/exif_tag_read", "%s", err.msg);
    }
}

/* Each bad input: the expected code and a message naming the file. */
static void expect_error(const char *name, const char *path, err_code_t want) {
    rgb_image_t img;
    err_t err = {0};
    err_code_t rc = frame_read_rgb(path, &img, &err);
    check(rc == want && strstr(err.msg, path) && img.pixels == NULL, name, "rc %d (want %d): %s", rc, want, err.msg);
    rgb_image_free(&img);
}

static void test_bad_input(void) {
    char path[512];
    uint8_t *jpeg;
    size_t size;
    err_t err = {0};
    if (!check(file_read_all(FIXTURE_DIR "/a_640x360_420.jpg", &jpeg, &size, &err) == ERR_OK,
               "frames/bad/fixture_readable", "%s", err.msg))
        return;
    tmp_path("truncated_half.jpg", path, sizeof path);
    write_bytes(path, jpeg, size / 2);
    expect_error("frames/bad/truncated_half", path, ERR_FORMAT);
    rgb_image_t img;
    frame_read_rgb(path, &img, &err);
    check(strstr(err.msg, "Premature end") != NULL, "frames/bad/truncated_says_why", "%s", err.msg);
    tmp_path("truncated_header.jpg", path, sizeof path);
    write_bytes(path, jpeg, 100);
    expect_error("frames/bad/truncated_in_header", path, ERR_FORMAT);
    tmp_path("soi_only.jpg", path, sizeof path);
    write_bytes(path, jpeg, 3);
    expect_error("frames/bad/only_the_start_marker", path, ERR_FORMAT);
    tmp_path("no_eoi.jpg", path, sizeof path);
    write_bytes(path, jpeg, size - 2);
    expect_error("frames/bad/missing_end_marker", path, ERR_FORMAT);
    free(jpeg);
    tmp_path("empty.jpg", path, sizeof path);
    write_bytes(path, "", 0);
    expect_error("frames/bad/zero_bytes", path, ERR_FORMAT);
    tmp_path("text.jpg", path, sizeof path);
    const char *text = "this is not a picture\n";
    write_bytes(path, text, strlen(text));
    expect_error("frames/bad/text_named_jpg", path, ERR_FORMAT);
    tmp_path("missing.jpg", path, sizeof path);
    expect_error("frames/bad/missing_file", path, ERR_IO);
    expect_error("frames/bad/folder", tmp_dir, ERR_IO);
    /* a text file straight to the JPEG decoder, and a PNG signature with
     * nothing after it */
    tmp_path("text.jpg", path, sizeof path);
    int rc = jpeg_decode_file(path, &img, &err);
    check(rc == ERR_FORMAT && strstr(err.msg, path), "frames/bad/jpeg_decoder_on_text", "rc %d: %s", rc, err.msg);
    tmp_path("cut.png", path, sizeof path);
    const uint8_t png_head[12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13};
    write_bytes(path, png_head, sizeof png_head);
    expect_error("frames/bad/truncated_png", path, ERR_FORMAT);
    /* one bad frame in a batch: the error names it */
    const char *paths[3] = {FIXTURE_DIR "/b_333x257_420.jpg", NULL, FIXTURE_DIR "/c_200x150_422.jpg"};
    char missing[512];
    tmp_path("missing.jpg", missing, sizeof missing);
    paths[1] = missing;
    arena_t *a = arena_create(DEVICE_CPU, 8 << 20);
    tensor_t *t = NULL;
    rc = frames_to_pixel_values(paths, 3, NULL, a, &t, &err);
    check(rc == ERR_IO && t == NULL && strstr(err.msg, missing), "frames/bad/batch_names_the_bad_frame", "rc %d: %s",
          rc, err.msg);
    arena_destroy(a);
}

/* Corrupted and cut copies of a JPEG: each decodes or fails naming its
 * label, never crashes (under SANITIZE=1 this also catches bad reads), and
 * the EXIF reader survives every prefix of an EXIF-carrying file. */
static void test_corruption(void) {
    uint8_t *jpeg, *exif_jpeg;
    size_t size, exif_size;
    err_t err = {0};
    if (file_read_all(FIXTURE_DIR "/b_333x257_420.jpg", &jpeg, &size, &err) != ERR_OK ||
        file_read_all(FIXTURE_DIR "/h_257x129_exif6.jpg", &exif_jpeg, &exif_size, &err) != ERR_OK) {
        check(0, "frames/corruption/fixtures", "%s", err.msg);
        return;
    }
    uint8_t *copy = malloc(size);
    uint32_t seed = 12345;
    int n_ok = 0, n_refused = 0, n_bad = 0;
    for (int trial = 0; trial < 150; trial++) {
        memcpy(copy, jpeg, size);
        size_t n = size;
        if (trial % 3 == 2) {
            seed = seed * 1664525u + 1013904223u;
            n = 2 + seed % (size - 2); /* cut anywhere */
        } else {
            for (int k = 0; k < 1 + trial % 8; k++) {
                seed = seed * 1664525u + 1013904223u;
                size_t at = 2 + (seed >> 8) % (size - 2);
                copy[at] ^= (uint8_t)(1 + (seed & 0xFE));
            }
        }
        rgb_image_t img;
        err_code_t rc = jpeg_decode_memory(copy, n, "corrupt.jpg", &img, &err);
        if (rc == ERR_OK) n_ok += img.width > 0 && img.height > 0 && img.pixels != NULL;
        else if (strstr(err.msg, "corrupt.jpg") && img.pixels == NULL) n_refused++;
        else n_bad++;
        rgb_image_free(&img);
    }
    check(n_bad == 0, "frames/corruption/jpeg_decodes_or_refuses", "%d results neither a picture nor a named error",
          n_bad);
    printf("corrupted JPEGs: %d decoded (damage libjpeg cannot see), %d refused\n", n_ok, n_refused);
    int exif_ok = 1;
    for (size_t n = 0; n <= exif_size && n < 400; n++) {
        int o = exif_jpeg_orientation(exif_jpeg, n);
        if (o < 1 || o > 8) exif_ok = 0;
    }
    check(exif_ok, "frames/corruption/exif_every_prefix", "an orientation outside 1..8");
    free(copy);
    free(jpeg);
    free(exif_jpeg);
}

/* ---- video: written here with libavcodec's mpeg4 encoder ---- */

#define VIDEO_FRAMES 30
#define VIDEO_FPS 10

/* luma of frame i: gray levels 8 apart */
static int video_luma(int i) { return 16 + 7 * i; }

static int write_video(const char *path, char *why, size_t why_size) {
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!codec) {
        snprintf(why, why_size, "libavcodec has no mpeg4 encoder");
        return 0;
    }
    AVFormatContext *oc = NULL;
    AVCodecContext *c = NULL;
    AVFrame *frame = NULL;
    AVPacket *pkt = av_packet_alloc();
    int ok = 0;
    if (avformat_alloc_output_context2(&oc, NULL, "matroska", path) < 0 || !oc) {
        snprintf(why, why_size, "no matroska muxer");
        goto done;
    }
    AVStream *st = avformat_new_stream(oc, NULL);
    c = avcodec_alloc_context3(codec);
    c->width = 64;
    c->height = 48;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){1, VIDEO_FPS};
    c->framerate = (AVRational){VIDEO_FPS, 1};
    c->gop_size = 5;     /* keyframes every 0.5 s: seeking lands before most targets */
    c->max_b_frames = 2; /* decode order differs from presentation order */
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * 2;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (avcodec_open2(c, codec, NULL) < 0 || avcodec_parameters_from_context(st->codecpar, c) < 0) {
        snprintf(why, why_size, "cannot open the mpeg4 encoder");
        goto done;
    }
    st->time_base = c->time_base;
    if (avio_open(&oc->pb, path, AVIO_FLAG_WRITE) < 0 || avformat_write_header(oc, NULL) < 0) {
        snprintf(why, why_size, "cannot write %.200s", path);
        goto done;
    }
    frame = av_frame_alloc();
    frame->format = c->pix_fmt;
    frame->width = c->width;
    frame->height = c->height;
    av_frame_get_buffer(frame, 0);
    for (int i = 0; i <= VIDEO_FRAMES; i++) {
        AVFrame *send = NULL;
        if (i < VIDEO_FRAMES) {
            av_frame_make_writable(frame);
            for (int y = 0; y < c->height; y++) memset(frame->data[0] + y * frame->linesize[0], video_luma(i), c->width);
            for (int p = 1; p < 3; p++)
                for (int y = 0; y < c->height / 2; y++) memset(frame->data[p] + y * frame->linesize[p], 128, c->width / 2);
            frame->pts = i;
            send = frame;
        }
        avcodec_send_frame(c, send);
        while (avcodec_receive_packet(c, pkt) == 0) {
            pkt->duration = 1; /* one frame: the container's duration then covers the last frame */
            av_packet_rescale_ts(pkt, c->time_base, st->time_base);
            pkt->stream_index = st->index;
            av_interleaved_write_frame(oc, pkt);
        }
    }
    ok = av_write_trailer(oc) == 0;
    if (!ok) snprintf(why, why_size, "cannot finish %.200s", path);
done:
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    if (oc) {
        avio_closep(&oc->pb);
        avformat_free_context(oc);
    }
    return ok;
}

/* Which frame an image is, from its mean red level (limited-range luma
 * expanded to full range by the RGB conversion). */
static int video_frame_index(const rgb_image_t *img) {
    double sum = 0;
    for (size_t i = 0; i < (size_t)img->width * img->height; i++) sum += img->pixels[i * 3];
    double mean = sum / ((double)img->width * img->height);
    int best = -1;
    double best_d = 1e9;
    for (int i = 0; i < VIDEO_FRAMES; i++) {
        double d = fabs(mean - (video_luma(i) - 16) * 255.0 / 219.0);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    return best_d < 2.0 ? best : -1;
}

static void test_video(void) {
    char path[512], why[256] = "";
    tmp_path("frames.mkv", path, sizeof path);
    if (!write_video(path, why, sizeof why)) {
        check_skip("frames/video", "%s", why);
        return;
    }
    video_reader_t *v;
    err_t err = {0};
    if (!check(video_open(path, &v, &err) == ERR_OK, "frames/video/open", "%s", err.msg)) return;
    int w, h;
    video_frame_size(v, &w, &h);
    check(w == 64 && h == 48 && fabs(video_duration(v) - 3.0) < 0.11, "frames/video/size_and_duration",
          "%dx%d, %.3f s", w, h, video_duration(v));
    /* times in any order; frame i is shown from i/10 s to (i+1)/10 s */
    struct {
        double t;
        int frame;
    } cases[] = {{0.0, 0}, {0.05, 0}, {0.1, 1}, {1.26, 12}, {2.95, 29}, {0.35, 3}, {0.7, 7}, {1.99999, 19}};
    int all_ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rgb_image_t img;
        int got = -2;
        if (video_frame_at(v, cases[i].t, &img, &err) == ERR_OK) {
            got = img.width == 64 && img.height == 48 ? video_frame_index(&img) : -3;
            rgb_image_free(&img);
        } else {
            printf("  t=%g: %s\n", cases[i].t, err.msg);
        }
        if (got != cases[i].frame) {
            all_ok = 0;
            printf("  t=%g: frame %d, want %d\n", cases[i].t, got, cases[i].frame);
        }
    }
    check(all_ok, "frames/video/frame_at_time", "see above");
    rgb_image_t img;
    err_code_t rc = video_frame_at(v, 3.5, &img, &err);
    check(rc == ERR_ARG && strstr(err.msg, path) && strstr(err.msg, "past the end"), "frames/video/past_the_end",
          "rc %d: %s", rc, err.msg);
    rc = video_frame_at(v, -0.5, &img, &err);
    check(rc == ERR_ARG && strstr(err.msg, path), "frames/video/negative_time", "rc %d: %s", rc, err.msg);
    video_close(v);

    double times[3] = {0.0, 1.0, 2.0};
    arena_t *a = arena_create(DEVICE_CPU, 8 << 20);
    tensor_t *pv = NULL;
    rc = video_to_pixel_values(path, times, 3, NULL, a, &pv, &err);
    check(rc == ERR_OK && pv->shape[0] == 3 && pv->shape[2] == 384 && pv->shape[3] == 384,
          "frames/video/pixel_values", "rc %d: %s", rc, err.msg);
    arena_destroy(a);

    /* not a video (FFmpeg's own complaints are silenced) */
    av_log_set_level(AV_LOG_QUIET);
    tmp_path("text.jpg", path, sizeof path);
    rc = video_open(path, &v, &err);
    check(rc != ERR_OK && v == NULL && strstr(err.msg, path), "frames/video/not_a_video", "rc %d: %s", rc, err.msg);
    tmp_path("missing.mp4", path, sizeof path);
    rc = video_open(path, &v, &err);
    check(rc == ERR_IO && strstr(err.msg, path), "frames/video/missing_file", "rc %d: %s", rc, err.msg);
    av_log_set_level(AV_LOG_INFO);
}

static void remove_tmp_dir(void) {
    DIR *d = opendir(tmp_dir);
    if (!d) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            tmp_path(e->d_name, path, sizeof path);
            unlink(path);
        }
    closedir(d);
    rmdir(tmp_dir);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    image_processor_t proc;
    err_t err = {0};
    if (check(image_processor_load(FIXTURE_DIR "/preprocessor_config.json", &proc, &err) == ERR_OK,
              "frames/config_official_loads", "%s", err.msg))
        test_config(&proc);
    safetensors_t ref;
    if (check(safetensors_open(REF_PATH, &ref, &err) == ERR_OK, "frames/reference", "%s", err.msg)) {
        test_parity(&ref, &proc);
        test_decoder_settings_matter(&ref);
        safetensors_close(&ref);
    }
    test_orientation();
    test_bad_input();
    test_corruption();
    test_video();
    remove_tmp_dir();
    return check_finish("test_frames");
}
