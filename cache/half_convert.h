/* half_convert.h - fast F32 <-> F16 conversion for the cache's hot paths.
 *
 * half_convert gives exactly the bits dtype_convert_host gives (dtype.h:
 * round to nearest even, overflow to infinity, NaN to the canonical quiet
 * NaN), for every pair dtype_convert_host takes. F32 -> F16 and F16 -> F32
 * run on the F16C instructions (8 elements at a time) when the CPU has them,
 * about 10x the scalar code: that is the difference between a writer that
 * keeps up with a GPU extractor and one that does not. A block of 8 holding a
 * NaN goes through the scalar code, because F16C keeps NaN payloads where
 * dtype.c makes them canonical. Other pairs call dtype_convert_host.
 * dst and src must be aligned for their element types, as for
 * dtype_convert_host. */
#ifndef STEPSTONE_HALF_CONVERT_H
#define STEPSTONE_HALF_CONVERT_H

#include <stdint.h>

#include "dtype.h"

/* Returns 0, or -1 for a pair dtype_convert_host does not take. */
int half_convert(void *dst, dtype_t dst_dtype, const void *src, dtype_t src_dtype, int64_t n);

/* Nonzero when the F16C path is in use. */
int half_convert_hardware(void);

#endif
