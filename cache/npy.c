/* npy.c - the .npy writer (format in npy.h). */
#include "npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *descr(dtype_t dt) {
    switch (dt) {
    case DTYPE_F32: return "<f4";
    case DTYPE_F16: return "<f2";
    case DTYPE_I64: return "<i8";
    case DTYPE_I32: return "<i4";
    case DTYPE_U8: return "|u1";
    case DTYPE_BOOL: return "|b1";
    default: return NULL;
    }
}

int npy_header(char *buf, int size, dtype_t dtype, int ndim, const int64_t *shape) {
    const char *d = descr(dtype);
    if (!d || size < 128) return -1;
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", d);
    for (int i = 0; i < ndim && n < (int)sizeof dict; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%" PRId64 "%s", shape[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    if (n < (int)sizeof dict) n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    if (n >= (int)sizeof dict - 70) return -1;
    /* 10 bytes of preamble + dict + padding + '\n' = a multiple of 64 */
    int total = (10 + n + 1 + 63) / 64 * 64;
    if (total > size || total - 10 > 65535) return -1;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    int header_len = total - 10;
    buf[8] = (char)(header_len & 0xff);
    buf[9] = (char)(header_len >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', (size_t)(total - 10 - n - 1));
    buf[total - 1] = '\n';
    return total;
}

err_code_t npy_write(const char *path, dtype_t dtype, int ndim, const int64_t *shape, const void *data, err_t *err) {
    char header[640];
    int hlen = npy_header(header, sizeof header, dtype, ndim, shape);
    if (hlen < 0)
        return err_set(err, ERR_ARG, "%s: numpy has no type for %s (convert to F32 first)", path, dtype_name(dtype));
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    size_t bytes = (size_t)numel * dtype_size(dtype);
    int ok = fwrite(header, 1, (size_t)hlen, f) == (size_t)hlen && fwrite(data, 1, bytes, f) == bytes;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        return err_set(err, ERR_IO, "%s: write failed: %s", path, strerror(saved));
    }
    return ERR_OK;
}
