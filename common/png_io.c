#include "png_io.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* libpng reports errors by calling our error function, which must not
 * return: it longjmps back to the setjmp in decode() or encode(). Locals of
 * the function that called setjmp and were changed after it are
 * indeterminate after the longjmp unless volatile, so those two functions
 * keep everything that must survive (libpng handles, our buffers, the FILE)
 * in a struct owned by their caller and reached through a pointer that they
 * never change; the caller frees it all on both paths. */

/* Shared by reading and writing: what libpng's callbacks need. */
typedef struct {
    const char *path;
    FILE *file;
    char message[256]; /* the first problem, from libpng or our I/O callbacks */
    char warning[160]; /* libpng's first warning: often the detail behind a
                          generic error ("Invalid IHDR data") */
    err_code_t code;   /* ERR_OK until a callback decides otherwise (else ERR_FORMAT) */
} png_io_ctx_t;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_io_ctx_t *ctx = png_get_error_ptr(png);
    if (!ctx->message[0]) snprintf(ctx->message, sizeof ctx->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    png_io_ctx_t *ctx = png_get_error_ptr(png);
    if (!ctx->warning[0]) snprintf(ctx->warning, sizeof ctx->warning, "%s", msg);
    log_debug("%s: libpng: %s", ctx->path, msg);
}

static void set_once(png_io_ctx_t *ctx, err_code_t code, const char *msg) {
    if (ctx->message[0]) return;
    ctx->code = code;
    snprintf(ctx->message, sizeof ctx->message, "%s", msg);
}

/* ---------------------------------------------------------------- reading */

static void read_data(png_structp png, png_bytep data, size_t length) {
    png_io_ctx_t *ctx = png_get_io_ptr(png);
    if (fread(data, 1, length, ctx->file) == length) return;
    if (ferror(ctx->file)) {
        char why[160];
        snprintf(why, sizeof why, "read failed: %s", strerror(errno));
        set_once(ctx, ERR_IO, why);
    } else {
        set_once(ctx, ERR_FORMAT, "the file ends early (truncated)");
    }
    png_error(png, ctx->message);
}

typedef enum { SOURCE_GRAY, SOURCE_RGB, SOURCE_INDEX } source_kind_t;

typedef struct {
    png_io_ctx_t ctx;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    uint8_t *pixels; /* as decoded: 1 byte (gray, index) or 3 (RGB) per pixel */
    int width, height, bit_depth;
    source_kind_t kind;
    int palette_size;
    uint8_t palette[256][3];
} png_reader_t;

/* Decodes into r->pixels with the conversions of png_io.h's table. Returns
 * nonzero after a libpng error; the message is in r->ctx. */
static int decode(png_reader_t *r) {
    if (setjmp(png_jmpbuf(r->png))) return 1;

    png_set_read_fn(r->png, &r->ctx, read_data);
    png_set_sig_bytes(r->png, 8); /* the caller checked the signature */
    png_set_user_limits(r->png, PNG_IO_MAX_SIDE, PNG_IO_MAX_SIDE);
    png_read_info(r->png, r->info);

    png_uint_32 width, height;
    int bit_depth, color_type;
    png_get_IHDR(r->png, r->info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    r->width = (int)width;
    r->height = (int)height;
    r->bit_depth = bit_depth;

    if (bit_depth == 16) {
#ifdef PNG_READ_SCALE_16_TO_8_SUPPORTED
        png_set_scale_16(r->png); /* rounds; strip_16 would truncate */
#else
        png_set_strip_16(r->png);
#endif
    }
    if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(r->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    if (color_type == PNG_COLOR_TYPE_PALETTE && bit_depth < 8) png_set_packing(r->png);
    png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);

    int channels;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp plte = NULL;
        int n = 0;
        if (!png_get_PLTE(r->png, r->info, &plte, &n) || n < 1 || n > 256)
            png_error(r->png, "palette image without a valid PLTE chunk");
        for (int i = 0; i < n; i++) {
            r->palette[i][0] = plte[i].red;
            r->palette[i][1] = plte[i].green;
            r->palette[i][2] = plte[i].blue;
        }
        r->palette_size = n;
        r->kind = SOURCE_INDEX;
        channels = 1;
    } else if (color_type & PNG_COLOR_MASK_COLOR) {
        r->kind = SOURCE_RGB;
        channels = 3;
    } else {
        r->kind = SOURCE_GRAY;
        channels = 1;
    }
    size_t row_bytes = (size_t)r->width * (size_t)channels;
    if (png_get_rowbytes(r->png, r->info) != row_bytes || png_get_channels(r->png, r->info) != channels)
        png_error(r->png, "unexpected row layout after conversion to 8 bits");

    r->pixels = malloc(row_bytes * (size_t)r->height);
    r->rows = malloc(sizeof *r->rows * (size_t)r->height);
    if (!r->pixels || !r->rows) {
        r->ctx.code = ERR_NOMEM;
        png_error(r->png, "out of memory for the pixels");
    }
    for (int y = 0; y < r->height; y++) r->rows[y] = r->pixels + (size_t)y * row_bytes;
    png_read_image(r->png, r->rows);
    /* Reading to IEND checks the CRCs of the chunks after the image data. */
    png_read_end(r->png, NULL);
    return 0;
}

/* OpenCV's fixed-point RGB2GRAY (14-bit coefficients, rounded). */
static uint8_t gray_of(const uint8_t *rgb) {
    return (uint8_t)((rgb[0] * 4899u + rgb[1] * 9617u + rgb[2] * 1868u + 8192u) >> 14);
}

static const char *kind_name(const png_reader_t *r) {
    switch (r->kind) {
    case SOURCE_GRAY: return "gray";
    case SOURCE_RGB: return "RGB";
    case SOURCE_INDEX: return "palette";
    }
    return "?";
}

/* Fills img from the decoded r, converting as `want` asks; takes r->pixels
 * when no conversion is needed. */
static err_code_t convert(png_reader_t *r, png_io_want_t want, png_io_image_t *img, err_t *err) {
    size_t n = (size_t)r->width * (size_t)r->height;
    int out_channels;
    switch (want) {
    case PNG_IO_WANT_ASIS: out_channels = r->kind == SOURCE_RGB ? 3 : 1; break;
    case PNG_IO_WANT_GRAY: out_channels = 1; break;
    case PNG_IO_WANT_RGB: out_channels = 3; break;
    case PNG_IO_WANT_INDEX:
        if (r->kind == SOURCE_RGB || (r->kind == SOURCE_GRAY && r->bit_depth != 8))
            return err_set(err, ERR_MISMATCH,
                           "%s: wanted palette indices or 8-bit gray class ids, but the PNG is %d-bit %s",
                           r->ctx.path, r->bit_depth, kind_name(r));
        out_channels = 1;
        break;
    default: return err_set(err, ERR_ARG, "%s: unknown png_io_want_t %d", r->ctx.path, (int)want);
    }

    img->width = r->width;
    img->height = r->height;
    img->channels = out_channels;
    int keep_indices = r->kind == SOURCE_INDEX && (want == PNG_IO_WANT_ASIS || want == PNG_IO_WANT_INDEX);
    if (keep_indices) {
        img->palette_size = r->palette_size;
        memcpy(img->palette, r->palette, sizeof img->palette);
    }
    int same = (r->kind == SOURCE_RGB) == (out_channels == 3) && (r->kind != SOURCE_INDEX || keep_indices);
    if (same) {
        img->pixels = r->pixels;
        r->pixels = NULL;
        return ERR_OK;
    }

    uint8_t *out = malloc(n * (size_t)out_channels);
    if (!out) return err_set(err, ERR_NOMEM, "%s: out of memory converting the pixels", r->ctx.path);
    const uint8_t *src = r->pixels;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rgb;
        uint8_t gray3[3];
        if (r->kind == SOURCE_RGB) {
            rgb = src + 3 * i;
        } else if (r->kind == SOURCE_INDEX) {
            rgb = r->palette[src[i]]; /* 256 entries, so any index is in bounds */
        } else {
            gray3[0] = gray3[1] = gray3[2] = src[i];
            rgb = gray3;
        }
        if (out_channels == 3) memcpy(out + 3 * i, rgb, 3);
        else out[i] = r->kind == SOURCE_GRAY ? src[i] : gray_of(rgb);
    }
    img->pixels = out;
    return ERR_OK;
}

err_code_t png_io_read(const char *path, png_io_image_t *img, png_io_want_t want, err_t *err) {
    memset(img, 0, sizeof *img);
    if (want < PNG_IO_WANT_ASIS || want > PNG_IO_WANT_INDEX)
        return err_set(err, ERR_ARG, "%s: unknown png_io_want_t %d", path, (int)want);
    png_reader_t r;
    memset(&r, 0, sizeof r);
    r.ctx.path = path;

    r.ctx.file = fopen(path, "rb");
    if (!r.ctx.file) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));

    err_code_t code = ERR_OK;
    png_byte signature[8];
    size_t got = fread(signature, 1, sizeof signature, r.ctx.file);
    if (got < sizeof signature && ferror(r.ctx.file)) {
        code = err_set(err, ERR_IO, "%s: read failed: %s", path, strerror(errno));
        goto done;
    }
    if (got < sizeof signature || png_sig_cmp(signature, 0, sizeof signature) != 0) {
        code = err_set(err, ERR_FORMAT, "%s: not a PNG file (%s)", path,
                       got == 0 ? "empty" : got < sizeof signature ? "too short" : "no PNG signature");
        goto done;
    }

    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.ctx, on_png_error, on_png_warning);
    if (r.png) r.info = png_create_info_struct(r.png);
    if (!r.png || !r.info) {
        code = err_set(err, ERR_NOMEM, "%s: out of memory starting libpng", path);
        goto done;
    }
    if (decode(&r) != 0) {
        code = r.ctx.code != ERR_OK ? r.ctx.code : ERR_FORMAT;
        err_set(err, code, "%s: %s%s%s%s%s", path, code == ERR_FORMAT ? "bad PNG: " : "", r.ctx.message,
                r.ctx.warning[0] ? " (" : "", r.ctx.warning, r.ctx.warning[0] ? ")" : "");
        goto done;
    }
    code = convert(&r, want, img, err);

done:
    if (code != ERR_OK) png_io_free(img);
    png_destroy_read_struct(r.png ? &r.png : NULL, r.info ? &r.info : NULL, NULL);
    free(r.rows);
    free(r.pixels);
    fclose(r.ctx.file);
    return code;
}

void png_io_free(png_io_image_t *img) {
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* ---------------------------------------------------------------- writing */

static void write_data(png_structp png, png_bytep data, size_t length) {
    png_io_ctx_t *ctx = png_get_io_ptr(png);
    if (fwrite(data, 1, length, ctx->file) == length) return;
    set_once(ctx, ERR_IO, strerror(errno));
    png_error(png, ctx->message);
}

static void flush_data(png_structp png) { (void)png; /* the FILE is flushed once, at the end */ }

typedef struct {
    png_io_ctx_t ctx;
    png_structp png;
    png_infop info;
    int width, height, color_type, channels;
    const uint8_t *pixels;
    const uint8_t (*palette)[3];
    int palette_size;
} png_writer_t;

static int encode(png_writer_t *w) {
    if (setjmp(png_jmpbuf(w->png))) return 1;
    png_set_write_fn(w->png, &w->ctx, write_data, flush_data);
    png_set_IHDR(w->png, w->info, (png_uint_32)w->width, (png_uint_32)w->height, 8, w->color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (w->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color plte[256];
        for (int i = 0; i < w->palette_size; i++) {
            plte[i].red = w->palette[i][0];
            plte[i].green = w->palette[i][1];
            plte[i].blue = w->palette[i][2];
        }
        png_set_PLTE(w->png, w->info, plte, w->palette_size);
    }
    png_write_info(w->png, w->info);
    size_t row_bytes = (size_t)w->width * (size_t)w->channels;
    for (int y = 0; y < w->height; y++) png_write_row(w->png, w->pixels + (size_t)y * row_bytes);
    png_write_end(w->png, NULL);
    return 0;
}

/* Creates "<path>.tmp.<pid>.<n>" exclusively; mode 0666 less the umask, as
 * fopen would give the final file. */
static FILE *create_temp(const char *path, char *tmp, size_t tmp_size) {
    static atomic_uint counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&counter, 1);
        if ((size_t)snprintf(tmp, tmp_size, "%s.tmp.%ld.%u", path, (long)getpid(), n) >= tmp_size) {
            errno = ENAMETOOLONG;
            return NULL;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
            if (errno == EEXIST) continue; /* a leftover from a crashed run with our pid */
            return NULL;
        }
        FILE *f = fdopen(fd, "wb");
        if (!f) {
            int saved = errno;
            close(fd);
            unlink(tmp);
            errno = saved;
        }
        return f;
    }
    errno = EEXIST;
    return NULL;
}

static err_code_t write_png(const char *path, int width, int height, int color_type, const uint8_t *pixels,
                            const uint8_t palette[][3], int palette_size, err_t *err) {
    if (!path || !pixels)
        return err_set(err, ERR_ARG, "%s: writing a PNG: NULL %s", path ? path : "(null path)",
                       path ? "pixels" : "path");
    if (width < 1 || height < 1 || width > PNG_IO_MAX_SIDE || height > PNG_IO_MAX_SIDE)
        return err_set(err, ERR_ARG, "%s: cannot write a %dx%d PNG (sides must be 1..%d)", path, width, height,
                       PNG_IO_MAX_SIDE);

    png_writer_t w;
    memset(&w, 0, sizeof w);
    w.ctx.path = path;
    w.width = width;
    w.height = height;
    w.color_type = color_type;
    w.channels = color_type == PNG_COLOR_TYPE_RGB ? 3 : 1;
    w.pixels = pixels;
    w.palette = palette;
    w.palette_size = palette_size;

    char tmp[4096];
    w.ctx.file = create_temp(path, tmp, sizeof tmp);
    if (!w.ctx.file) return err_set(err, ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));

    err_code_t code = ERR_OK;
    w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w.ctx, on_png_error, on_png_warning);
    if (w.png) w.info = png_create_info_struct(w.png);
    if (!w.png || !w.info) {
        code = err_set(err, ERR_NOMEM, "%s: out of memory starting libpng", path);
    } else if (encode(&w) != 0) {
        code = w.ctx.code != ERR_OK ? w.ctx.code : ERR_FORMAT;
        err_set(err, code, "%s: writing the PNG failed: %s%s%s%s", path, w.ctx.message, w.ctx.warning[0] ? " (" : "",
                w.ctx.warning, w.ctx.warning[0] ? ")" : "");
    }
    png_destroy_write_struct(w.png ? &w.png : NULL, w.info ? &w.info : NULL);

    /* fclose reports what the kernel refused late (a full disk, a quota). */
    if (fflush(w.ctx.file) != 0 && code == ERR_OK)
        code = err_set(err, ERR_IO, "%s: writing failed: %s", path, strerror(errno));
    if (fclose(w.ctx.file) != 0 && code == ERR_OK)
        code = err_set(err, ERR_IO, "%s: writing failed: %s", path, strerror(errno));
    if (code == ERR_OK && rename(tmp, path) != 0)
        code = err_set(err, ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (code != ERR_OK) unlink(tmp);
    return code;
}

err_code_t png_io_write_gray(const char *path, int width, int height, const uint8_t *pixels, err_t *err) {
    return write_png(path, width, height, PNG_COLOR_TYPE_GRAY, pixels, NULL, 0, err);
}

err_code_t png_io_write_rgb(const char *path, int width, int height, const uint8_t *pixels, err_t *err) {
    return write_png(path, width, height, PNG_COLOR_TYPE_RGB, pixels, NULL, 0, err);
}

err_code_t png_io_write_palette(const char *path, int width, int height, const uint8_t *indices,
                                const uint8_t palette[][3], int palette_size, err_t *err) {
    if (!palette || palette_size < 1 || palette_size > 256)
        return err_set(err, ERR_ARG, "%s: a palette PNG needs 1..256 palette entries, got %d", path,
                       palette ? palette_size : 0);
    if (indices && width > 0 && height > 0 && width <= PNG_IO_MAX_SIDE && height <= PNG_IO_MAX_SIDE) {
        size_t n = (size_t)width * (size_t)height;
        for (size_t i = 0; i < n; i++)
            if (indices[i] >= palette_size)
                return err_set(err, ERR_ARG, "%s: index %d at (x %zu, y %zu) is past the %d-entry palette", path,
                               indices[i], i % (size_t)width, i / (size_t)width, palette_size);
    }
    return write_png(path, width, height, PNG_COLOR_TYPE_PALETTE, indices, palette, palette_size, err);
}
