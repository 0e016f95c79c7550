/* png_io.h - reading and writing 8-bit PNG images through libpng.
 *
 * Masks (0/255 gray), colour label maps (RGB or palette) and class-id maps
 * (palette) are PNG in the AVSBench layout. Reading keeps the stored values
 * exactly (no gamma or colour-profile handling), because they are labels.
 *
 * What reading accepts, and how it converts:
 *   16-bit samples   scaled to 8 bits with rounding (v * 255 / 65535)
 *   1/2/4-bit gray   expanded to 8 bits (1-bit 1 becomes 255)
 *   1/2/4-bit index  one index per byte
 *   alpha channel    dropped (tRNS transparency too): labels carry no alpha
 *   interlaced       de-interlaced
 * Images wider or taller than PNG_IO_MAX_SIDE are refused (ERR_FORMAT) before
 * any pixel memory is allocated, so a corrupt header cannot ask for terabytes.
 *
 * Errors (err names the file and the problem):
 *   ERR_IO        the file cannot be opened, read or written
 *   ERR_FORMAT    not a PNG, truncated, corrupt (bad CRC, bad zlib data), too big
 *   ERR_MISMATCH  the file cannot give what `want` asks (INDEX from an RGB PNG)
 *   ERR_ARG       bad arguments (sizes, NULL pixels, an index past the palette)
 *   ERR_NOMEM     out of memory
 * A failed read leaves *img zeroed; png_io_free is safe on it either way.
 *
 * Writing goes to "<path>.tmp.<pid>.<n>" in the same folder and is renamed
 * over path only when complete, so a reader (or a rerun after a crash) never
 * sees a half-written PNG; a failed write removes the temporary file. The
 * data are not fsync'ed: the rename protects against an interrupted process,
 * which is the failure that matters for regenerable outputs, and an fsync per
 * mask would cost more than writing it. */
#ifndef STEPSTONE_PNG_IO_H
#define STEPSTONE_PNG_IO_H

#include <stdint.h>

#include "error.h"

#define PNG_IO_MAX_SIDE 32768

typedef enum {
    PNG_IO_WANT_ASIS = 0, /* gray -> 1 channel; RGB -> 3; palette -> 1 channel of indices + the palette */
    PNG_IO_WANT_GRAY,     /* 1 channel; colour converts as OpenCV's cvtColor RGB2GRAY (see below) */
    PNG_IO_WANT_RGB,      /* 3 channels; gray is replicated, palette indices are looked up */
    PNG_IO_WANT_INDEX     /* 1 channel: indices of a palette PNG (+ the palette), or the values of
                             an 8-bit gray PNG (palette_size 0); anything else is ERR_MISMATCH */
} png_io_want_t;

/* Not named png_image: libpng owns that name (and png_image_free). */
typedef struct {
    int width, height;
    int channels;             /* 1 or 3 */
    uint8_t *pixels;          /* height rows of width * channels bytes, top row first; owned */
    int palette_size;         /* > 0 exactly when pixels are palette indices */
    uint8_t palette[256][3];  /* RGB; entries from palette_size on are zero */
} png_io_image_t;

/* Reads path into *img, converted as `want` says. To read any PNG as RGB8
 * (a colour label map, whatever its storage), pass PNG_IO_WANT_RGB.
 * Colour to gray is Y = (4899 R + 9617 G + 1868 B + 8192) >> 14, the integer
 * formula of OpenCV's cvtColor, so it matches cv2 on the same pixels. */
err_code_t png_io_read(const char *path, png_io_image_t *img, png_io_want_t want, err_t *err);

/* Writers: pixels are height rows of width (gray, indices) or width * 3 (RGB)
 * bytes. png_io_write_palette checks that every index is < palette_size
 * (1..256); the palette is written with exactly palette_size entries. */
err_code_t png_io_write_gray(const char *path, int width, int height, const uint8_t *pixels, err_t *err);
err_code_t png_io_write_rgb(const char *path, int width, int height, const uint8_t *pixels, err_t *err);
err_code_t png_io_write_palette(const char *path, int width, int height, const uint8_t *indices,
                                const uint8_t palette[][3], int palette_size, err_t *err);

/* Frees the pixels and zeroes *img. */
void png_io_free(png_io_image_t *img);

#endif
