/* npy.h - writing one array as a NumPy .npy file (format version 1.0), so
 * that cached features can be looked at with numpy.load.
 *
 * Layout: "\x93NUMPY", version bytes 1 0, a little-endian uint16 header
 * length, then a Python dict literal
 *   {'descr': '<f2', 'fortran_order': False, 'shape': (128, 96, 96), }
 * padded with spaces and ended by '\n' so the data start at a multiple of 64
 * bytes, then the data in C order. Descriptors: F32 '<f4', F16 '<f2', I64
 * '<i8', I32 '<i4', U8 '|u1', BOOL '|b1'; numpy has no bfloat16, so BF16 is
 * refused (ERR_ARG: convert it to F32 first).
 *
 * The file is written as "<path>.tmp.<pid>" and renamed over path when
 * complete. ERR_IO names the path and the reason. */
#ifndef STEPSTONE_NPY_H
#define STEPSTONE_NPY_H

#include <stdint.h>

#include "dtype.h"
#include "error.h"

err_code_t npy_write(const char *path, dtype_t dtype, int ndim, const int64_t *shape, const void *data, err_t *err);

/* The header npy_write puts before the data, into buf; returns its length
 * (a multiple of 64), or -1 when buf is too small or dtype has no descriptor. */
int npy_header(char *buf, int size, dtype_t dtype, int ndim, const int64_t *shape);

#endif
