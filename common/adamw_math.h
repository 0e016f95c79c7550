/* adamw_math.h - one element of torch.optim.AdamW's update, written once for
 * the CPU and CUDA kernels (ADAMW_MATH_FN marks it for both). The scalars come
 * formed in double on the host (adamw_scalars_t, backend.h). */
#ifndef STEPSTONE_ADAMW_MATH_H
#define STEPSTONE_ADAMW_MATH_H

#include <math.h>

#include "backend.h"

#ifdef __CUDACC__
#define ADAMW_MATH_FN __host__ __device__ static inline
#else
#define ADAMW_MATH_FN static inline
#endif

/* p *= decay; m = lerp(m, g, 1 - b1); v = v b2 + ((1 - b2) g) g;
 * p += (-step_size m) / (sqrt(v) / bc2_sqrt + eps), in torch's order */
ADAMW_MATH_FN void adamw_element(float *p, float g, float *m, float *v, adamw_scalars_t s) {
    float pi = *p * s.decay;
    float w1 = s.one_minus_beta1;
    /* torch's lerp: from the nearer end, by the weight's size */
    float mi = w1 < 0.5f ? *m + w1 * (g - *m) : g - (g - *m) * (1.0f - w1);
    /* addcmul and addcdiv evaluate (value * t1) * t2 and (value * t1) / t2 */
    float vi = *v * s.beta2 + (s.one_minus_beta2 * g) * g;
    float denom = sqrtf(vi) / s.bc2_sqrt + s.eps;
    *p = pi + (-s.step_size * mi) / denom;
    *m = mi;
    *v = vi;
}

#endif
