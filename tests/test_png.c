/* test_png.c - PNG reading and writing: round trips of gray, RGB and palette
 * images, the conversions (16-bit, alpha, low bit depths, interlacing,
 * palette expansion, colour to gray), and bad input: missing, empty, non-PNG,
 * truncated and corrupted files, and writes that fail half-way. */
#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "png_io.h"
#include "rng.h"

static char tmp_dir[] = "/tmp/stepstone-test-png-XXXXXX";

static void tmp_path(const char *name, char *path, size_t size) { snprintf(path, size, "%s/%s", tmp_dir, name); }

static int contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

/* The test's own files: failing to read one is a broken test, so exit. */
static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) exit(2);
    *size = fread(buf, 1, n > 0 ? (size_t)n : 0, f);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fwrite(data, 1, size, f);
    fclose(f);
}

/* Writes a PNG of any colour type and bit depth straight through libpng, for
 * inputs our writer does not produce. samples: h * w * channels values. */
static int write_samples_png(const char *path, int w, int h, int color_type, int bit_depth, int interlace,
                             const uint16_t *samples, const png_color *plte, int n_plte, const png_byte *trns,
                             int n_trns) {
    int channels = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
                   : color_type == PNG_COLOR_TYPE_GRAY_ALPHA                                 ? 2
                   : color_type == PNG_COLOR_TYPE_RGB                                        ? 3
                                                                                             : 4;
    size_t row_bytes = ((size_t)w * channels * bit_depth + 7) / 8;
    uint8_t *data = calloc((size_t)h, row_bytes);
    if (!data) exit(2);
    for (int y = 0; y < h; y++) {
        uint8_t *row = data + (size_t)y * row_bytes;
        for (int i = 0; i < w * channels; i++) {
            uint16_t v = samples[(size_t)y * w * channels + i];
            if (bit_depth == 16) {
                row[2 * i] = (uint8_t)(v >> 8);
                row[2 * i + 1] = (uint8_t)v;
            } else if (bit_depth == 8) {
                row[i] = (uint8_t)v;
            } else {
                int bit = i * bit_depth;
                row[bit / 8] |= (uint8_t)(v << (8 - bit_depth - bit % 8));
            }
        }
    }
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    volatile int ok = 0; /* changed after setjmp, read after a longjmp */
    /* f, png, info and data are set before setjmp and not changed after. */
    if (f && png && info && setjmp(png_jmpbuf(png)) == 0) {
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type, interlace,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        if (plte) png_set_PLTE(png, info, plte, n_plte);
        if (trns) png_set_tRNS(png, info, trns, n_trns, NULL);
        png_write_info(png, info);
        int passes = png_set_interlace_handling(png);
        for (int pass = 0; pass < passes; pass++)
            for (int y = 0; y < h; y++) png_write_row(png, data + (size_t)y * row_bytes);
        png_write_end(png, NULL);
        ok = 1;
    }
    png_destroy_write_struct(&png, &info);
    if (f) fclose(f);
    free(data);
    return ok;
}

static uint8_t opencv_gray(int r, int g, int b) { return (uint8_t)((r * 4899 + g * 9617 + b * 1868 + 8192) >> 14); }

/* -------------------------------------------------------------- round trips */

static void test_gray_roundtrip(void) {
    char path[512];
    tmp_path("gray.png", path, sizeof path);
    uint8_t pixels[5 * 7];
    for (int i = 0; i < 35; i++) pixels[i] = (uint8_t)(i * 7);
    err_t err = {0};
    check(png_io_write_gray(path, 7, 5, pixels, &err) == ERR_OK, "png/write_gray", "%s", err.msg);

    png_io_image_t img;
    err_code_t code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    check(code == ERR_OK && img.width == 7 && img.height == 5 && img.channels == 1 && img.palette_size == 0 &&
              memcmp(img.pixels, pixels, sizeof pixels) == 0,
          "png/gray_roundtrip", "code %d %s", code, err.msg);
    png_io_free(&img);

    code = png_io_read(path, &img, PNG_IO_WANT_RGB, &err);
    int ok = code == ERR_OK && img.channels == 3;
    for (int i = 0; ok && i < 35; i++)
        ok = img.pixels[3 * i] == pixels[i] && img.pixels[3 * i + 1] == pixels[i] && img.pixels[3 * i + 2] == pixels[i];
    check(ok, "png/gray_as_rgb_replicates", "code %d %s", code, err.msg);
    png_io_free(&img);

    code = png_io_read(path, &img, PNG_IO_WANT_INDEX, &err);
    check(code == ERR_OK && img.channels == 1 && img.palette_size == 0 && memcmp(img.pixels, pixels, 35) == 0,
          "png/gray8_as_index", "code %d %s", code, err.msg);
    png_io_free(&img);
}

static void test_rgb_roundtrip(void) {
    char path[512];
    tmp_path("rgb.png", path, sizeof path);
    enum { W = 6, H = 4 };
    uint8_t pixels[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) pixels[i] = (uint8_t)(i * 11 + 3);
    /* Known conversions of OpenCV's cvtColor(RGB2GRAY) on the first pixels. */
    const uint8_t primaries[5][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {10, 200, 30}};
    const uint8_t cv2_gray[5] = {76, 150, 29, 255, 124};
    memcpy(pixels, primaries, sizeof primaries);
    err_t err = {0};
    check(png_io_write_rgb(path, W, H, pixels, &err) == ERR_OK, "png/write_rgb", "%s", err.msg);

    png_io_image_t img;
    err_code_t code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    check(code == ERR_OK && img.width == W && img.height == H && img.channels == 3 &&
              memcmp(img.pixels, pixels, sizeof pixels) == 0,
          "png/rgb_roundtrip", "code %d %s", code, err.msg);
    png_io_free(&img);

    code = png_io_read(path, &img, PNG_IO_WANT_GRAY, &err);
    int ok = code == ERR_OK && img.channels == 1;
    for (int i = 0; ok && i < 5; i++) ok = img.pixels[i] == cv2_gray[i];
    for (int i = 0; ok && i < W * H; i++)
        ok = img.pixels[i] == opencv_gray(pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]);
    check(ok, "png/rgb_as_gray_matches_opencv", "code %d %s; first %d %d %d", code, err.msg, img.pixels ? img.pixels[0] : -1,
          img.pixels ? img.pixels[1] : -1, img.pixels ? img.pixels[2] : -1);
    png_io_free(&img);

    memset(&err, 0, sizeof err);
    code = png_io_read(path, &img, PNG_IO_WANT_INDEX, &err);
    check(code == ERR_MISMATCH && contains(err.msg, path) && img.pixels == NULL, "png/rgb_as_index_is_mismatch",
          "code %d, msg \"%s\"", code, err.msg);
}

static void test_palette_roundtrip(void) {
    char path[512];
    tmp_path("palette.png", path, sizeof path);
    enum { W = 9, H = 3, N = 5 };
    const uint8_t palette[N][3] = {{0, 0, 0}, {128, 0, 0}, {0, 128, 0}, {128, 128, 0}, {0, 0, 128}};
    uint8_t indices[W * H];
    for (int i = 0; i < W * H; i++) indices[i] = (uint8_t)((i * 3) % N);
    err_t err = {0};
    check(png_io_write_palette(path, W, H, indices, palette, N, &err) == ERR_OK, "png/write_palette", "%s", err.msg);

    png_io_image_t img;
    err_code_t code = png_io_read(path, &img, PNG_IO_WANT_INDEX, &err);
    check(code == ERR_OK && img.channels == 1 && img.palette_size == N &&
              memcmp(img.palette, palette, sizeof palette) == 0 && memcmp(img.pixels, indices, sizeof indices) == 0,
          "png/palette_roundtrip_index", "code %d %s, palette_size %d", code, err.msg, img.palette_size);
    int zero_tail = 1;
    for (int i = N; i < 256; i++) zero_tail &= !img.palette[i][0] && !img.palette[i][1] && !img.palette[i][2];
    check(zero_tail, "png/palette_tail_zero", "entries past palette_size are not zero");
    png_io_free(&img);

    code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    check(code == ERR_OK && img.palette_size == N && memcmp(img.pixels, indices, sizeof indices) == 0,
          "png/palette_asis_is_index", "code %d %s", code, err.msg);
    png_io_free(&img);

    code = png_io_read(path, &img, PNG_IO_WANT_RGB, &err);
    int ok = code == ERR_OK && img.channels == 3 && img.palette_size == 0;
    for (int i = 0; ok && i < W * H; i++) ok = memcmp(img.pixels + 3 * i, palette[indices[i]], 3) == 0;
    check(ok, "png/palette_as_rgb_expands", "code %d %s", code, err.msg);
    png_io_free(&img);

    code = png_io_read(path, &img, PNG_IO_WANT_GRAY, &err);
    ok = code == ERR_OK && img.channels == 1 && img.palette_size == 0;
    for (int i = 0; ok && i < W * H; i++) {
        const uint8_t *c = palette[indices[i]];
        ok = img.pixels[i] == opencv_gray(c[0], c[1], c[2]);
    }
    check(ok, "png/palette_as_gray", "code %d %s", code, err.msg);
    png_io_free(&img);
}

/* ----------------------------------------------------- conversions on read */

static void test_conversions(void) {
    char path[512];
    err_t err = {0};
    png_io_image_t img;
    err_code_t code;

    /* 16-bit gray: scaled with rounding (0x10FF -> 16.93 -> 17; truncation would give 16). */
    tmp_path("gray16.png", path, sizeof path);
    const uint16_t g16[4] = {0x0000, 0x10FF, 0x8000, 0xFFFF};
    write_samples_png(path, 4, 1, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, g16, NULL, 0, NULL, 0);
    code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    check(code == ERR_OK && img.channels == 1 && img.pixels[0] == 0 && img.pixels[1] == 17 && img.pixels[2] == 128 &&
              img.pixels[3] == 255,
          "png/gray16_scaled_to_8", "code %d %s; %d %d %d %d", code, err.msg, img.pixels ? img.pixels[0] : -1,
          img.pixels ? img.pixels[1] : -1, img.pixels ? img.pixels[2] : -1, img.pixels ? img.pixels[3] : -1);
    png_io_free(&img);
    code = png_io_read(path, &img, PNG_IO_WANT_INDEX, &err);
    check(code == ERR_MISMATCH && contains(err.msg, "16-bit"), "png/gray16_as_index_is_mismatch", "code %d, msg \"%s\"",
          code, err.msg);

    /* 16-bit RGBA: alpha dropped, samples scaled. */
    tmp_path("rgba16.png", path, sizeof path);
    const uint16_t rgba16[2 * 4] = {0xFFFF, 0x0000, 0x8000, 0x0000, 0x1234, 0x5678, 0x9ABC, 0xFFFF};
    write_samples_png(path, 2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_NONE, rgba16, NULL, 0, NULL, 0);
    code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    /* v * 255 / 65535 = v / 257: 0x1234 -> 18.1, 0x5678 -> 86.1, 0x9ABC -> 154.1 */
    const uint8_t want_rgb16[6] = {255, 0, 128, 18, 86, 154};
    check(code == ERR_OK && img.channels == 3 && memcmp(img.pixels, want_rgb16, 6) == 0, "png/rgba16_to_rgb8",
          "code %d %s", code, err.msg);
    png_io_free(&img);

    /* 8-bit RGBA and gray+alpha: alpha dropped, colour kept as stored. */
    tmp_path("rgba8.png", path, sizeof path);
    const uint16_t rgba8[3 * 4] = {10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255};
    write_samples_png(path, 3, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE, rgba8, NULL, 0, NULL, 0);
    code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    const uint8_t want_rgb8[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};
    check(code == ERR_OK && img.channels == 3 && memcmp(img.pixels, want_rgb8, 9) == 0, "png/rgba8_strips_alpha",
          "code %d %s", code, err.msg);
    png_io_free(&img);

    tmp_path("ga8.png", path, sizeof path);
    const uint16_t ga8[2 * 2] = {200, 0, 100, 255};
    write_samples_png(path, 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, ga8, NULL, 0, NULL, 0);
    code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    check(code == ERR_OK && img.channels == 1 && img.pixels[0] == 200 && img.pixels[1] == 100,
          "png/gray_alpha_strips_alpha", "code %d %s", code, err.msg);
    png_io_free(&img);

    /* 1-bit gray: 1 is white (255), not 1. */
    tmp_path("gray1.png", path, sizeof path);
    const uint16_t g1[11] = {0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0};
    write_samples_png(path, 11, 1, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, g1, NULL, 0, NULL, 0);
    code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    int ok = code == ERR_OK && img.width == 11;
    for (int i = 0; ok && i < 11; i++) ok = img.pixels[i] == (g1[i] ? 255 : 0);
    check(ok, "png/gray1_expands_to_0_255", "code %d %s", code, err.msg);
    png_io_free(&img);
    code = png_io_read(path, &img, PNG_IO_WANT_INDEX, &err);
    check(code == ERR_MISMATCH && contains(err.msg, path), "png/gray1_as_index_is_mismatch", "code %d, msg \"%s\"",
          code, err.msg);

    /* 4-bit palette, odd width, with tRNS (ignored): one index per byte. */
    tmp_path("pal4.png", path, sizeof path);
    png_color plte[16];
    for (int i = 0; i < 16; i++) plte[i] = (png_color){(png_byte)(i * 16), (png_byte)(255 - i * 16), (png_byte)i};
    const png_byte trns[2] = {0, 128};
    uint16_t p4[5 * 3];
    for (int i = 0; i < 15; i++) p4[i] = (uint16_t)(i % 16);
    write_samples_png(path, 5, 3, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, p4, plte, 16, trns, 2);
    code = png_io_read(path, &img, PNG_IO_WANT_INDEX, &err);
    ok = code == ERR_OK && img.width == 5 && img.height == 3 && img.palette_size == 16;
    for (int i = 0; ok && i < 15; i++) ok = img.pixels[i] == p4[i];
    check(ok, "png/palette4_unpacks", "code %d %s", code, err.msg);
    png_io_free(&img);
    code = png_io_read(path, &img, PNG_IO_WANT_RGB, &err);
    ok = code == ERR_OK && img.channels == 3;
    for (int i = 0; ok && i < 15; i++)
        ok = img.pixels[3 * i] == plte[p4[i]].red && img.pixels[3 * i + 1] == plte[p4[i]].green &&
             img.pixels[3 * i + 2] == plte[p4[i]].blue;
    check(ok, "png/palette4_as_rgb", "code %d %s", code, err.msg);
    png_io_free(&img);

    /* Interlaced (Adam7) RGB with a size that leaves some passes empty. */
    tmp_path("interlaced.png", path, sizeof path);
    enum { W = 13, H = 11 };
    uint16_t rgb[W * H * 3];
    uint8_t rgb8[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) rgb8[i] = (uint8_t)(rgb[i] = (uint16_t)((i * 37) & 255));
    write_samples_png(path, W, H, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, rgb, NULL, 0, NULL, 0);
    code = png_io_read(path, &img, PNG_IO_WANT_ASIS, &err);
    check(code == ERR_OK && img.width == W && img.height == H && memcmp(img.pixels, rgb8, sizeof rgb8) == 0,
          "png/interlaced_reads", "code %d %s", code, err.msg);
    png_io_free(&img);

    code = png_io_read(path, &img, (png_io_want_t)42, &err);
    check(code == ERR_ARG, "png/bad_want_is_arg_error", "code %d", code);
}

/* ---------------------------------------------------------------- bad input */

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Expects ERR_FORMAT (or `want`) naming the file, and a zeroed image. */
static void expect_error(const char *name, const char *path, err_code_t want, const char *words) {
    png_io_image_t img;
    err_t err = {0};
    err_code_t code = png_io_read(path, &img, PNG_IO_WANT_RGB, &err);
    check(code == want && err.code == want && contains(err.msg, path) && (!words || contains(err.msg, words)) &&
              img.pixels == NULL && img.width == 0,
          name, "code %d (want %d), msg \"%s\"", code, want, err.msg);
    png_io_free(&img);
}

static void test_bad_files(void) {
    char path[512], bad[512];

    tmp_path("does-not-exist.png", path, sizeof path);
    expect_error("png/missing_file", path, ERR_IO, "No such file");

    tmp_path("text.png", path, sizeof path);
    const char *text = "this is not a PNG, just some text that is long enough\n";
    write_all(path, (const uint8_t *)text, strlen(text));
    expect_error("png/not_a_png", path, ERR_FORMAT, "not a PNG");

    tmp_path("empty.png", path, sizeof path);
    write_all(path, (const uint8_t *)"", 0);
    expect_error("png/empty_file", path, ERR_FORMAT, "empty");

    expect_error("png/folder", tmp_dir, ERR_IO, NULL);

    /* A valid noisy RGB image to cut and corrupt. */
    tmp_path("good.png", path, sizeof path);
    enum { W = 64, H = 48 };
    static uint8_t pixels[W * H * 3];
    rng_t r;
    rng_seed(&r, 5);
    for (int i = 0; i < W * H * 3; i++) pixels[i] = (uint8_t)(rng_below(&r, 8) * 30);
    err_t err = {0};
    png_io_write_rgb(path, W, H, pixels, &err);
    size_t size = 0;
    uint8_t *good = read_all(path, &size);

    /* Truncated: in the signature, in IHDR, at the first IDAT, mid-data,
     * without IEND. */
    const size_t cuts[] = {4, 8, 20, 33, 41, size / 2, size - 13, size - 12, size - 1};
    tmp_path("truncated.png", bad, sizeof bad);
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(bad, good, cuts[i]);
        char name[64];
        snprintf(name, sizeof name, "png/truncated_at_%zu", cuts[i]);
        expect_error(name, bad, ERR_FORMAT, cuts[i] < 8 ? "not a PNG" : "truncated");
    }

    /* A damaged CRC field of the first IDAT chunk: the data decode but the
     * checksum does not match. */
    uint8_t *copy = malloc(size);
    if (!copy) exit(2);
    memcpy(copy, good, size);
    size_t idat = 8 + 25 + 8; /* data start: after the signature, the IHDR chunk, IDAT length + type */
    uint32_t idat_len = (uint32_t)copy[33] << 24 | (uint32_t)copy[34] << 16 | (uint32_t)copy[35] << 8 | copy[36];
    copy[idat + idat_len + 3] ^= 0x55;
    tmp_path("crc.png", bad, sizeof bad);
    write_all(bad, copy, size);
    expect_error("png/bad_crc", bad, ERR_FORMAT, "CRC");

    /* A broken zlib header with a correct CRC: the damage is in the data. */
    memcpy(copy, good, size);
    copy[idat + 1] ^= 0x01; /* FLG: (CMF * 256 + FLG) is no longer a multiple of 31 */
    put_be32(copy + idat + idat_len, crc32_of(copy + idat - 4, 4 + idat_len)); /* over type + data */
    tmp_path("zlib.png", bad, sizeof bad);
    write_all(bad, copy, size);
    expect_error("png/corrupt_image_data", bad, ERR_FORMAT, "bad PNG");

    /* A header claiming 100000 x 100000 pixels: refused before allocating. */
    memcpy(copy, good, size);
    put_be32(copy + 16, 100000);
    put_be32(copy + 20, 100000);
    put_be32(copy + 29, crc32_of(copy + 12, 17));
    tmp_path("huge.png", bad, sizeof bad);
    write_all(bad, copy, size);
    expect_error("png/huge_dimensions", bad, ERR_FORMAT, "bad PNG");

    /* Random damage: every outcome is a clean image or ERR_FORMAT, never a
     * crash or a leak (the sanitizer build checks the latter). */
    tmp_path("fuzz.png", bad, sizeof bad);
    int survived = 1, n_ok = 0, n_format = 0;
    err_code_t other = ERR_OK;
    for (int trial = 0; trial < 300; trial++) {
        memcpy(copy, good, size);
        int flips = 1 + (int)rng_below(&r, 4);
        for (int k = 0; k < flips; k++) copy[8 + rng_below(&r, size - 8)] ^= (uint8_t)(1 + rng_below(&r, 255));
        size_t len = rng_below(&r, 4) == 0 ? 8 + (size_t)rng_below(&r, size - 8) : size;
        write_all(bad, copy, len);
        png_io_image_t img;
        err_code_t code = png_io_read(bad, &img, PNG_IO_WANT_RGB, &err);
        if (code == ERR_OK) {
            n_ok++;
            survived &= img.width == W && img.height == H && img.channels == 3;
        } else if (code == ERR_FORMAT && contains(err.msg, bad)) {
            n_format++;
        } else {
            survived = 0;
            other = code;
        }
        png_io_free(&img);
    }
    check(survived, "png/random_damage", "%d ok, %d ERR_FORMAT, other code %d (%s)", n_ok, n_format, other, err.msg);
    free(copy);
    free(good);
}

/* ------------------------------------------------------------------ writing */

static int count_temp_files(void) {
    DIR *d = opendir(tmp_dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static void test_write_errors(void) {
    char path[512];
    err_t err = {0};
    uint8_t pixels[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const uint8_t palette[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};

    snprintf(path, sizeof path, "%s/no-such-folder/mask.png", tmp_dir);
    err_code_t code = png_io_write_gray(path, 4, 4, pixels, &err);
    check(code == ERR_IO && contains(err.msg, path), "png/write_missing_folder", "code %d, msg \"%s\"", code, err.msg);

    tmp_path("bad-index.png", path, sizeof path);
    code = png_io_write_palette(path, 4, 4, pixels, palette, 4, &err);
    struct stat st;
    check(code == ERR_ARG && contains(err.msg, path) && contains(err.msg, "index 4") && stat(path, &st) != 0,
          "png/write_index_past_palette", "code %d, msg \"%s\"", code, err.msg);
    code = png_io_write_palette(path, 4, 4, pixels, palette, 0, &err);
    check(code == ERR_ARG, "png/write_empty_palette", "code %d", code);
    code = png_io_write_gray(path, 0, 4, pixels, &err);
    check(code == ERR_ARG && contains(err.msg, path), "png/write_zero_width", "code %d, msg \"%s\"", code, err.msg);
    code = png_io_write_rgb(path, 4, 4, NULL, &err);
    check(code == ERR_ARG, "png/write_null_pixels", "code %d", code);

    /* Overwriting replaces the file whole; the mode is what fopen gives. */
    tmp_path("overwrite.png", path, sizeof path);
    png_io_write_gray(path, 4, 4, pixels, &err);
    uint8_t second[16];
    for (int i = 0; i < 16; i++) second[i] = (uint8_t)(255 - i);
    code = png_io_write_gray(path, 4, 4, second, &err);
    png_io_image_t img;
    err_code_t read_code = png_io_read(path, &img, PNG_IO_WANT_GRAY, &err);
    check(code == ERR_OK && read_code == ERR_OK && memcmp(img.pixels, second, 16) == 0, "png/overwrite",
          "codes %d %d %s", code, read_code, err.msg);
    png_io_free(&img);
    mode_t mask = umask(022);
    umask(mask);
    check(stat(path, &st) == 0 && (st.st_mode & 0777) == (0666 & ~mask), "png/written_mode_follows_umask",
          "mode %o", (unsigned)(st.st_mode & 0777));

    /* A write that fails half-way (file size limit, as a full disk would):
     * ERR_IO, the old file intact, no temporary file left behind. */
    enum { W = 128, H = 128 };
    static uint8_t noise[W * H * 3];
    rng_t r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)rng_u64(&r);
    struct rlimit old_limit, small = {1000, 1000};
    getrlimit(RLIMIT_FSIZE, &old_limit);
    small.rlim_max = old_limit.rlim_max;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of being killed */
    setrlimit(RLIMIT_FSIZE, &small);
    code = png_io_write_rgb(path, W, H, noise, &err);
    setrlimit(RLIMIT_FSIZE, &old_limit);
    signal(SIGXFSZ, old_handler);
    read_code = png_io_read(path, &img, PNG_IO_WANT_GRAY, &err);
    check(code == ERR_IO && read_code == ERR_OK && img.width == 4 && memcmp(img.pixels, second, 16) == 0,
          "png/failed_write_keeps_old_file", "write code %d, read code %d", code, read_code);
    png_io_free(&img);
    check(count_temp_files() == 0, "png/no_temp_files_left", "%d temporary files in %s", count_temp_files(), tmp_dir);
}

static void remove_tmp_dir(void) {
    DIR *d = opendir(tmp_dir);
    char path[1024];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(tmp_dir);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_gray_roundtrip();
    test_rgb_roundtrip();
    test_palette_roundtrip();
    test_conversions();
    test_bad_files();
    test_write_errors();
    remove_tmp_dir();
    return check_finish("test_png");
}
