#include "jpeg_decode.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "exif.h"
#include "file_read.h"

/* ISLOW IDCT (libjpeg's default, what OpenCV gets), fancy upsampling (no
 * TJFLAG_FASTUPSAMPLE), and stop at the first warning so that truncated or
 * corrupt data are reported instead of decoded into grey blocks. */
#define DECODE_FLAGS (TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING)

/* libturbojpeg takes sizes as unsigned long */
_Static_assert(sizeof(unsigned long) >= sizeof(size_t), "unsigned long must hold a size_t");

/* OpenCV's CMYK -> RGB for 8-bit JPEG (its icvCvt_CMYK2BGR): libjpeg hands
 * over the samples as stored (Adobe files store them inverted, and OpenCV
 * does not undo that either). */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n_pixels) {
    for (size_t i = 0; i < n_pixels; i++, cmyk += 4, rgb += 3) {
        int k = cmyk[3];
        rgb[0] = (uint8_t)(k - ((255 - cmyk[0]) * k >> 8));
        rgb[1] = (uint8_t)(k - ((255 - cmyk[1]) * k >> 8));
        rgb[2] = (uint8_t)(k - ((255 - cmyk[2]) * k >> 8));
    }
}

static err_code_t decode_error(tjhandle tj, const char *label, err_t *err) {
    const char *why = tjGetErrorStr2(tj);
    if (tjGetErrorCode(tj) == TJERR_WARNING)
        return err_set(err, ERR_FORMAT,
                       "%s: corrupt or truncated JPEG data (libjpeg-turbo: %s); refused rather than decoded "
                       "partly (OpenCV would return the image with grey where data are missing)",
                       label, why);
    return err_set(err, ERR_FORMAT, "%s: cannot decode JPEG: %s", label, why);
}

err_code_t jpeg_decode_memory(const uint8_t *bytes, size_t size, const char *label, rgb_image_t *img, err_t *err) {
    memset(img, 0, sizeof *img);
    if (size == 0) return err_set(err, ERR_FORMAT, "%s: empty file, not a JPEG", label);
    if (size < 3 || bytes[0] != 0xFF || bytes[1] != 0xD8 || bytes[2] != 0xFF)
        return err_set(err, ERR_FORMAT, "%s: not a JPEG (it does not start with the JPEG SOI marker FF D8 FF)", label);
    tjhandle tj = tjInitDecompress();
    if (!tj) return err_set(err, ERR_NOMEM, "%s: cannot create a libturbojpeg decoder", label);
    int width, height, subsampling, colorspace;
    err_code_t code = ERR_OK;
    uint8_t *cmyk = NULL;
    if (tjDecompressHeader3(tj, bytes, (unsigned long)size, &width, &height, &subsampling, &colorspace) != 0) {
        code = decode_error(tj, label, err);
        goto done;
    }
    code = rgb_image_alloc(img, width, height, label, err);
    if (code != ERR_OK) goto done;
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
        /* libjpeg-turbo converts YCCK to CMYK but not CMYK to RGB; OpenCV does
         * that last step itself. */
        cmyk = malloc((size_t)width * (size_t)height * 4);
        if (!cmyk) {
            code = err_set(err, ERR_NOMEM, "%s: out of memory for a %dx%d CMYK image", label, width, height);
            goto done;
        }
        if (tjDecompress2(tj, bytes, (unsigned long)size, cmyk, width, 0, height, TJPF_CMYK, DECODE_FLAGS) != 0) {
            code = decode_error(tj, label, err);
            goto done;
        }
        cmyk_to_rgb(cmyk, img->pixels, (size_t)width * (size_t)height);
    } else if (tjDecompress2(tj, bytes, (unsigned long)size, img->pixels, width, 0, height, TJPF_RGB, DECODE_FLAGS) !=
               0) {
        code = decode_error(tj, label, err);
        goto done;
    }
    code = rgb_image_orient(img, exif_jpeg_orientation(bytes, size), err);
    if (code != ERR_OK) err_prefix(err, "%s: ", label);
done:
    free(cmyk);
    tjDestroy(tj);
    if (code != ERR_OK) rgb_image_free(img);
    return code;
}

err_code_t jpeg_decode_file(const char *path, rgb_image_t *img, err_t *err) {
    memset(img, 0, sizeof *img);
    uint8_t *bytes;
    size_t size;
    err_code_t code = file_read_all(path, &bytes, &size, err);
    if (code != ERR_OK) return code;
    code = jpeg_decode_memory(bytes, size, path, img, err);
    free(bytes);
    return code;
}
