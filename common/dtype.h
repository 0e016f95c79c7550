/* dtype.h - element types. Compute is f32; f16 and bf16 are storage formats
 * converted on load or store; integer and bool types carry indices and masks. */
#ifndef STEPSTONE_DTYPE_H
#define STEPSTONE_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DTYPE_F32 = 0,
    DTYPE_F16 = 1,
    DTYPE_BF16 = 2,
    DTYPE_I64 = 3,
    DTYPE_I32 = 4,
    DTYPE_U8 = 5,
    DTYPE_BOOL = 6
} dtype_t;

size_t dtype_size(dtype_t dt);
/* The safetensors spelling: "F32", "F16", "BF16", "I64", "I32", "U8", "BOOL". */
const char *dtype_name(dtype_t dt);
/* Parses a safetensors dtype name; returns 0 on success, -1 if unknown. */
int dtype_parse(const char *name, dtype_t *out);

/* Scalar conversions: f16 is IEEE half; bf16 is the top half of an f32.
 * Both round to nearest even; NaN stays NaN, overflow goes to infinity. */
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);

/* Host-side conversion of n elements (F32 <-> F16 on the F16C instructions
 * when the CPU has them, with the scalar functions' bits) between any two of F32/F16/BF16 and, as
 * sources only, I64/I32/U8/BOOL (to F32). Returns 0, or -1 for an unsupported pair. */
int dtype_convert_host(void *dst, dtype_t dst_dtype, const void *src, dtype_t src_dtype, int64_t n);
/* Nonzero when dtype_convert_host uses F16C. */
int dtype_f16c_available(void);

#endif
