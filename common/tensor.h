/* tensor.h - n-d arrays on a device, allocated from an arena.
 *
 * Data are contiguous and row-major. Ops compute in f32; F16/BF16 tensors
 * are storage and convert with tensor_convert. A tensor that requires grad
 * gets a `grad` buffer (f32, same shape and device) when backward reaches it
 * or, for parameters, when the caller asks with tensor_alloc_grad. */
#ifndef STEPSTONE_TENSOR_H
#define STEPSTONE_TENSOR_H

#include <stdint.h>

#include "arena.h"
#include "dtype.h"

#define TENSOR_MAX_DIMS 6

typedef struct tensor {
    dtype_t dtype;
    device_t device;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t numel;
    void *data;        /* device memory, numel * dtype_size(dtype) bytes */
    float *grad;       /* NULL until allocated */
    int requires_grad; /* a leaf the caller wants a gradient for, or an op output that depends on one */
    const char *name;  /* optional, for messages (not owned) */
} tensor_t;

/* A new uninitialised tensor whose header and data come from arena a. */
tensor_t *tensor_new(arena_t *a, dtype_t dtype, int ndim, const int64_t *shape);
tensor_t *tensor_zeros(arena_t *a, dtype_t dtype, int ndim, const int64_t *shape);
/* A tensor with the same shape as `like`, f32, uninitialised. */
tensor_t *tensor_new_like(arena_t *a, const tensor_t *like);
/* Copies host bytes (numel * dtype_size) into a new tensor. */
tensor_t *tensor_from_host(arena_t *a, dtype_t dtype, int ndim, const int64_t *shape, const void *host);
/* Copies the tensor's bytes to host memory. */
void tensor_to_host(const tensor_t *t, void *host);
/* A copy of t on arena a's device (and dtype unchanged). */
tensor_t *tensor_copy_to(arena_t *a, const tensor_t *t);
/* A copy of t converted to dtype (F32/F16/BF16, or integer/bool to F32). */
tensor_t *tensor_convert(arena_t *a, const tensor_t *t, dtype_t dtype);
/* Allocates t->grad from arena a (zeroed) if it has none; returns it. */
float *tensor_alloc_grad(arena_t *a, tensor_t *t);
/* Sets t->grad to zero when it has one. */
void tensor_zero_grad(tensor_t *t);

float *tensor_f32(const tensor_t *t); /* data as f32; fatal() if dtype is not F32 */
int tensor_same_shape(const tensor_t *a, const tensor_t *b);
/* Writes "[2, 3, 4]" into buf; returns buf. */
const char *tensor_shape_str(const tensor_t *t, char *buf, int size);
const char *shape_str(int ndim, const int64_t *shape, char *buf, int size);
int64_t shape_numel(int ndim, const int64_t *shape);

#endif
