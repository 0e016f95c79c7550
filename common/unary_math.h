/* unary_math.h - the elementwise activations and their derivatives, written
 * once for both backends: cpu_core.c includes it as C, the CUDA kernels as
 * device code (UNARY_MATH_FN marks the functions for both). */
#ifndef STEPSTONE_UNARY_MATH_H
#define STEPSTONE_UNARY_MATH_H

#include <math.h>

#include "backend.h"

#ifdef __CUDACC__
#define UNARY_MATH_FN __host__ __device__ static inline
#else
#define UNARY_MATH_FN static inline
#endif

/* erf-form GELU, as torch.nn.GELU() */
UNARY_MATH_FN float unary_apply(unary_op_t op, float x) {
    switch (op) {
    case UNARY_RELU: return x > 0.0f ? x : 0.0f;
    case UNARY_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case UNARY_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case UNARY_EXP: return expf(x);
    case UNARY_LOG: return logf(x);
    case UNARY_SQRT: return sqrtf(x);
    case UNARY_TANH: return tanhf(x);
    }
    return 0.0f;
}

/* d f(x) / dx, given x and y = f(x) */
UNARY_MATH_FN float unary_derivative(unary_op_t op, float x, float y) {
    switch (op) {
    case UNARY_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case UNARY_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
        float pdf = expf(-0.5f * x * x) * 0.3989422804014327f; /* 1/sqrt(2 pi) */
        return cdf + x * pdf;
    }
    case UNARY_SIGMOID: return y * (1.0f - y);
    case UNARY_EXP: return y;
    case UNARY_LOG: return 1.0f / x;
    case UNARY_SQRT: return 0.5f / y;
    case UNARY_TANH: return 1.0f - y * y;
    }
    return 0.0f;
}

#endif
