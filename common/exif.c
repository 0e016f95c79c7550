#include "exif.h"

#define EXIF_TAG_ORIENTATION 0x0112
#define EXIF_TYPE_SHORT 3

static unsigned read_u16(const uint8_t *p, int big_endian) {
    return big_endian ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[1] << 8 | p[0]);
}

static uint32_t read_u32(const uint8_t *p, int big_endian) {
    return big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                      : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* The orientation in a TIFF block (what follows "Exif\0\0"), or 0. */
static int tiff_orientation(const uint8_t *tiff, size_t size) {
    if (size < 8) return 0;
    int big_endian;
    if (tiff[0] == 'I' && tiff[1] == 'I') big_endian = 0;
    else if (tiff[0] == 'M' && tiff[1] == 'M') big_endian = 1;
    else return 0;
    if (read_u16(tiff + 2, big_endian) != 42) return 0;
    uint32_t ifd = read_u32(tiff + 4, big_endian);
    if (ifd > size - 2) return 0;
    unsigned n_entries = read_u16(tiff + ifd, big_endian);
    for (unsigned i = 0; i < n_entries; i++) {
        size_t entry = (size_t)ifd + 2 + (size_t)i * 12;
        if (entry + 12 > size) return 0;
        if (read_u16(tiff + entry, big_endian) != EXIF_TAG_ORIENTATION) continue;
        if (read_u16(tiff + entry + 2, big_endian) != EXIF_TYPE_SHORT) return 0;
        /* a single SHORT sits in the first two bytes of the value field */
        unsigned v = read_u16(tiff + entry + 8, big_endian);
        return v >= 1 && v <= 8 ? (int)v : 0;
    }
    return 0;
}

int exif_jpeg_orientation(const uint8_t *jpeg, size_t size) {
    if (size < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) return 1;
    size_t pos = 2;
    while (pos + 4 <= size) {
        if (jpeg[pos] != 0xFF) return 1;
        unsigned marker = jpeg[pos + 1];
        if (marker == 0xFF) { /* fill byte before a marker */
            pos++;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) return 1; /* SOS or EOI: no more metadata */
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { /* markers without a length */
            pos += 2;
            continue;
        }
        size_t length = (size_t)jpeg[pos + 2] << 8 | jpeg[pos + 3]; /* includes its own two bytes */
        if (length < 2 || pos + 2 + length > size) return 1;
        const uint8_t *body = jpeg + pos + 4;
        size_t body_size = length - 2;
        if (marker == 0xE1 && body_size >= 6 && body[0] == 'E' && body[1] == 'x' && body[2] == 'i' &&
            body[3] == 'f' && body[4] == 0 && body[5] == 0) {
            int o = tiff_orientation(body + 6, body_size - 6);
            return o ? o : 1;
        }
        pos += 2 + length;
    }
    return 1;
}
