#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int64_t shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

tensor_t *tensor_new(arena_t *a, dtype_t dtype, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) fatal("tensor_new: %d dims (at most %d)", ndim, TENSOR_MAX_DIMS);
    tensor_t *t = arena_alloc_host(a, sizeof *t);
    t->dtype = dtype;
    t->device = a->device;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) fatal("tensor_new: negative dimension %lld", (long long)shape[i]);
        t->shape[i] = shape[i];
    }
    t->numel = shape_numel(ndim, shape);
    t->data = arena_alloc(a, (size_t)t->numel * dtype_size(dtype));
    return t;
}

tensor_t *tensor_zeros(arena_t *a, dtype_t dtype, int ndim, const int64_t *shape) {
    tensor_t *t = tensor_new(a, dtype, ndim, shape);
    a->backend->memset_zero(t->data, (size_t)t->numel * dtype_size(dtype));
    return t;
}

tensor_t *tensor_new_like(arena_t *a, const tensor_t *like) {
    return tensor_new(a, DTYPE_F32, like->ndim, like->shape);
}

tensor_t *tensor_from_host(arena_t *a, dtype_t dtype, int ndim, const int64_t *shape, const void *host) {
    tensor_t *t = tensor_new(a, dtype, ndim, shape);
    a->backend->copy_from_host(t->data, host, (size_t)t->numel * dtype_size(dtype));
    return t;
}

void tensor_to_host(const tensor_t *t, void *host) {
    backend_get(t->device)->copy_to_host(host, t->data, (size_t)t->numel * dtype_size(t->dtype));
}

tensor_t *tensor_copy_to(arena_t *a, const tensor_t *t) {
    tensor_t *out = tensor_new(a, t->dtype, t->ndim, t->shape);
    size_t bytes = (size_t)t->numel * dtype_size(t->dtype);
    if (t->device == a->device) {
        a->backend->copy(out->data, t->data, bytes);
    } else if (t->device == DEVICE_CPU) {
        a->backend->copy_from_host(out->data, t->data, bytes);
    } else if (a->device == DEVICE_CPU) {
        backend_get(t->device)->copy_to_host(out->data, t->data, bytes);
    } else {
        fatal("tensor_copy_to: no path from %s to %s", device_name(t->device), device_name(a->device));
    }
    out->name = t->name;
    return out;
}

tensor_t *tensor_convert(arena_t *a, const tensor_t *t, dtype_t dtype) {
    if (t->device != a->device) fatal("tensor_convert: tensor and arena on different devices");
    if (dtype != DTYPE_F32 && dtype != DTYPE_F16 && dtype != DTYPE_BF16)
        fatal("tensor_convert: cannot convert to %s", dtype_name(dtype));
    tensor_t *out = tensor_new(a, dtype, t->ndim, t->shape);
    a->backend->convert(out->data, dtype, t->data, t->dtype, t->numel);
    out->name = t->name;
    return out;
}

float *tensor_alloc_grad(arena_t *a, tensor_t *t) {
    if (!t->grad) {
        if (t->device != a->device) fatal("tensor_alloc_grad: arena on another device");
        t->grad = arena_alloc(a, (size_t)t->numel * sizeof(float));
        a->backend->memset_zero(t->grad, (size_t)t->numel * sizeof(float));
    }
    return t->grad;
}

void tensor_zero_grad(tensor_t *t) {
    if (t->grad) backend_get(t->device)->memset_zero(t->grad, (size_t)t->numel * sizeof(float));
}

float *tensor_f32(const tensor_t *t) {
    if (t->dtype != DTYPE_F32) fatal("expected an F32 tensor%s%s, got %s", t->name ? " " : "", t->name ? t->name : "", dtype_name(t->dtype));
    return (float *)t->data;
}

int tensor_same_shape(const tensor_t *a, const tensor_t *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *shape_str(int ndim, const int64_t *shape, char *buf, int size) {
    int n = snprintf(buf, (size_t)size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += snprintf(buf + n, (size_t)(size - n), i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < size) snprintf(buf + n, (size_t)(size - n), "]");
    return buf;
}

const char *tensor_shape_str(const tensor_t *t, char *buf, int size) {
    return shape_str(t->ndim, t->shape, buf, size);
}
