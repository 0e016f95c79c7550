/* cuda_convert.cu - dtype conversion on the device, bit for bit as dtype.c
 * does it on the host: f16/bf16 round to nearest even (the _rn intrinsics),
 * overflow goes to infinity, and NaN becomes the same quiet NaN pattern the
 * host code writes (the intrinsics would give 0x7fff). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_kernels.h"

__device__ static uint16_t dev_f32_to_f16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(((u >> 16) & 0x8000u) | 0x7e00u);
    return __half_as_ushort(__float2half_rn(f));
}

__device__ static uint16_t dev_f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

__device__ static float dev_load_f32(const void *src, dtype_t dt, int64_t i) {
    switch (dt) {
    case DTYPE_F32: return ((const float *)src)[i];
    case DTYPE_F16: return __half2float(__ushort_as_half(((const uint16_t *)src)[i]));
    case DTYPE_BF16: return __uint_as_float((uint32_t)((const uint16_t *)src)[i] << 16);
    case DTYPE_I64: return (float)((const int64_t *)src)[i];
    case DTYPE_I32: return (float)((const int32_t *)src)[i];
    case DTYPE_U8: return (float)((const uint8_t *)src)[i];
    case DTYPE_BOOL: return ((const uint8_t *)src)[i] ? 1.0f : 0.0f;
    }
    return 0.0f;
}

__global__ static void convert_kernel(void *dst, dtype_t dst_dtype, const void *src, dtype_t src_dtype,
                                      int64_t n) {
    for (int64_t i = grid_start(); i < n; i += grid_step()) {
        float v = dev_load_f32(src, src_dtype, i);
        switch (dst_dtype) {
        case DTYPE_F32: ((float *)dst)[i] = v; break;
        case DTYPE_F16: ((uint16_t *)dst)[i] = dev_f32_to_f16(v); break;
        case DTYPE_BF16: ((uint16_t *)dst)[i] = dev_f32_to_bf16(v); break;
        default: break; /* refused on the host before the launch */
        }
    }
}

static int is_known(dtype_t dt) { return dt >= DTYPE_F32 && dt <= DTYPE_BOOL; }

static void cuda_convert(void *dst, dtype_t dst_dtype, const void *src, dtype_t src_dtype, int64_t n) {
    if (n <= 0) return;
    if (!is_known(src_dtype) || !is_known(dst_dtype))
        fatal("cuda convert: unknown dtype %d -> %d", (int)src_dtype, (int)dst_dtype);
    if (dst_dtype == src_dtype) {
        /* as dtype_convert_host: a plain copy of the bytes */
        if (dst != src)
            CUDA_CHECK(cudaMemcpy(dst, src, (size_t)n * dtype_size(dst_dtype), cudaMemcpyDeviceToDevice));
        return;
    }
    if (dst_dtype != DTYPE_F32 && dst_dtype != DTYPE_F16 && dst_dtype != DTYPE_BF16)
        fatal("cuda convert: %s -> %s is not supported", dtype_name(src_dtype), dtype_name(dst_dtype));
    convert_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dst, dst_dtype, src, src_dtype, n);
    CUDA_CHECK_LAUNCH("convert_kernel");
}

void cuda_register_convert(backend_t *be) { be->convert = cuda_convert; }
