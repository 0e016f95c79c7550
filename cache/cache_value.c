/* cache_value.c - encoding and validating cache values (format in cache_value.h). */
#include "cache_value.h"

#include <inttypes.h>
#include <string.h>

#include "crc32c.h"

#define OFF_VERSION 8
#define OFF_NTENSORS 12
#define OFF_HEADER_BYTES 16
#define OFF_FLAGS 20
#define OFF_VALUE_BYTES 24
#define OFF_CRC 32

#define ENT_DTYPE 56
#define ENT_NDIM 60
#define ENT_SHAPE 64
#define ENT_OFFSET 112
#define ENT_NBYTES 120

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int cache_dtype_code(dtype_t dt) {
    switch (dt) {
    case DTYPE_F32: return 0;
    case DTYPE_F16: return 1;
    case DTYPE_BF16: return 2;
    default: return -1;
    }
}

int cache_dtype_from_code(uint32_t code, dtype_t *out) {
    static const dtype_t by_code[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16};
    if (code >= sizeof by_code / sizeof by_code[0]) return -1;
    *out = by_code[code];
    return 0;
}

static uint64_t next_placement(uint64_t at) {
    uint64_t off = at - at % CACHE_VALUE_ALIGN + CACHE_VALUE_PHASE;
    return off < at ? off + CACHE_VALUE_ALIGN : off;
}

err_code_t cache_value_layout(const cache_tensor_spec_t *specs, int n, uint64_t *offsets, uint64_t *value_bytes,
                              err_t *err) {
    if (n < 1 || n > CACHE_MAX_TENSORS)
        return err_set(err, ERR_ARG, "a cache value holds 1 to %d tensors, not %d", CACHE_MAX_TENSORS, n);
    uint64_t at = CACHE_VALUE_HEADER_BYTES + (uint64_t)n * CACHE_VALUE_ENTRY_BYTES;
    for (int i = 0; i < n; i++) {
        const cache_tensor_spec_t *s = &specs[i];
        const char *name = s->name ? s->name : "";
        size_t len = strlen(name);
        if (len == 0 || len >= CACHE_VALUE_NAME_BYTES)
            return err_set(err, ERR_ARG, "tensor %d: name \"%s\" must have 1 to %d bytes", i, name,
                           CACHE_VALUE_NAME_BYTES - 1);
        for (int j = 0; j < i; j++)
            if (strcmp(specs[j].name, name) == 0) return err_set(err, ERR_ARG, "tensor name \"%s\" appears twice", name);
        if (cache_dtype_code(s->dtype) < 0)
            return err_set(err, ERR_ARG, "tensor %s: dtype %s cannot be stored (F32, F16 or BF16)", name,
                           dtype_name(s->dtype));
        if (s->ndim < 0 || s->ndim > TENSOR_MAX_DIMS)
            return err_set(err, ERR_ARG, "tensor %s: %d dims (at most %d)", name, s->ndim, TENSOR_MAX_DIMS);
        uint64_t numel = 1;
        for (int d = 0; d < s->ndim; d++) {
            if (s->shape[d] < 0 || (s->shape[d] > 0 && numel > (UINT64_C(1) << 48) / (uint64_t)s->shape[d]))
                return err_set(err, ERR_ARG, "tensor %s: dim %d is %" PRId64, name, d, s->shape[d]);
            numel *= (uint64_t)s->shape[d];
        }
        offsets[i] = next_placement(at);
        at = offsets[i] + numel * dtype_size(s->dtype);
    }
    *value_bytes = at;
    return ERR_OK;
}

void cache_value_write_header(void *buf, const cache_tensor_spec_t *specs, int n, const uint64_t *offsets,
                              uint64_t value_bytes) {
    unsigned char *p = buf;
    uint32_t header_bytes = CACHE_VALUE_HEADER_BYTES + (uint32_t)n * CACHE_VALUE_ENTRY_BYTES;
    memset(p, 0, header_bytes);
    memcpy(p, CACHE_VALUE_MAGIC, 8);
    put_u32(p + OFF_VERSION, CACHE_VALUE_VERSION);
    put_u32(p + OFF_NTENSORS, (uint32_t)n);
    put_u32(p + OFF_HEADER_BYTES, header_bytes);
    put_u64(p + OFF_VALUE_BYTES, value_bytes);
    uint64_t end = header_bytes;
    for (int i = 0; i < n; i++) {
        unsigned char *e = p + CACHE_VALUE_HEADER_BYTES + (size_t)i * CACHE_VALUE_ENTRY_BYTES;
        const cache_tensor_spec_t *s = &specs[i];
        memcpy(e, s->name, strlen(s->name));
        put_u32(e + ENT_DTYPE, (uint32_t)cache_dtype_code(s->dtype));
        put_u32(e + ENT_NDIM, (uint32_t)s->ndim);
        uint64_t numel = 1;
        for (int d = 0; d < s->ndim; d++) {
            put_u64(e + ENT_SHAPE + 8 * d, (uint64_t)s->shape[d]);
            numel *= (uint64_t)s->shape[d];
        }
        uint64_t nbytes = numel * dtype_size(s->dtype);
        put_u64(e + ENT_OFFSET, offsets[i]);
        put_u64(e + ENT_NBYTES, nbytes);
        memset(p + end, 0, offsets[i] - end); /* padding before this tensor */
        end = offsets[i] + nbytes;
    }
}

uint32_t cache_value_checksum(const void *bytes, size_t size) {
    static const unsigned char zero[4];
    const unsigned char *p = bytes;
    if (size < OFF_CRC + 4) return crc32c(0, p, size);
    uint32_t crc = crc32c(0, p, OFF_CRC);
    crc = crc32c(crc, zero, 4);
    return crc32c(crc, p + OFF_CRC + 4, size - OFF_CRC - 4);
}

void cache_value_seal(void *buf, uint64_t value_bytes) {
    put_u32((unsigned char *)buf + OFF_CRC, cache_value_checksum(buf, value_bytes));
}

err_code_t cache_value_parse(const void *bytes, size_t size, int verify_checksum, cache_entry_t *out, err_t *err) {
    const unsigned char *p = bytes;
    memset(out, 0, sizeof *out);
    if (size < CACHE_VALUE_HEADER_BYTES)
        return err_set(err, ERR_FORMAT, "value of %zu bytes is shorter than the %d-byte header", size,
                       CACHE_VALUE_HEADER_BYTES);
    if (memcmp(p, CACHE_VALUE_MAGIC, 8) != 0)
        return err_set(err, ERR_FORMAT, "not a stepstone cache value (bad magic)");
    uint32_t version = get_u32(p + OFF_VERSION);
    if (version != CACHE_VALUE_VERSION)
        return err_set(err, ERR_FORMAT, "value format version %u%s (this program reads version %d)", version,
                       version > CACHE_VALUE_VERSION ? " is newer than this program" : " is unknown",
                       CACHE_VALUE_VERSION);
    uint32_t n = get_u32(p + OFF_NTENSORS);
    uint32_t header_bytes = get_u32(p + OFF_HEADER_BYTES);
    uint32_t flags = get_u32(p + OFF_FLAGS);
    uint64_t value_bytes = get_u64(p + OFF_VALUE_BYTES);
    if (n < 1 || n > CACHE_MAX_TENSORS)
        return err_set(err, ERR_FORMAT, "header says %u tensors (1 to %d allowed)", n, CACHE_MAX_TENSORS);
    if (header_bytes != CACHE_VALUE_HEADER_BYTES + n * CACHE_VALUE_ENTRY_BYTES || header_bytes > size)
        return err_set(err, ERR_FORMAT, "header size %u does not fit %u tensors in a %zu-byte value", header_bytes, n,
                       size);
    if (flags != 0) return err_set(err, ERR_FORMAT, "unknown flags 0x%x", flags);
    if (value_bytes != size)
        return err_set(err, ERR_FORMAT, "header says %" PRIu64 " bytes but the value has %zu (truncated?)",
                       value_bytes, size);
    out->crc = get_u32(p + OFF_CRC);
    if (verify_checksum) {
        uint32_t crc = cache_value_checksum(p, size);
        if (crc != out->crc)
            return err_set(err, ERR_FORMAT, "checksum mismatch (stored %08x, computed %08x): the value is corrupt",
                           out->crc, crc);
    }
    uint64_t prev_end = header_bytes;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *e = p + CACHE_VALUE_HEADER_BYTES + (size_t)i * CACHE_VALUE_ENTRY_BYTES;
        cache_view_t *v = &out->tensors[i];
        if (memchr(e, 0, CACHE_VALUE_NAME_BYTES) == NULL || e[0] == 0)
            return err_set(err, ERR_FORMAT, "tensor %u: name is empty or not NUL-terminated", i);
        memcpy(v->name, e, CACHE_VALUE_NAME_BYTES);
        if (cache_dtype_from_code(get_u32(e + ENT_DTYPE), &v->dtype) != 0)
            return err_set(err, ERR_FORMAT, "tensor %s: unknown dtype code %u", v->name, get_u32(e + ENT_DTYPE));
        uint32_t ndim = get_u32(e + ENT_NDIM);
        if (ndim > TENSOR_MAX_DIMS) return err_set(err, ERR_FORMAT, "tensor %s: %u dims", v->name, ndim);
        v->ndim = (int)ndim;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            uint64_t dim = get_u64(e + ENT_SHAPE + 8 * d);
            if (dim > (UINT64_C(1) << 48) || (dim > 0 && numel > (UINT64_C(1) << 48) / dim))
                return err_set(err, ERR_FORMAT, "tensor %s: dim %u is %" PRIu64, v->name, d, dim);
            v->shape[d] = (int64_t)dim;
            numel *= dim;
        }
        v->numel = (int64_t)numel;
        v->offset = get_u64(e + ENT_OFFSET);
        v->nbytes = get_u64(e + ENT_NBYTES);
        if (v->nbytes != numel * dtype_size(v->dtype))
            return err_set(err, ERR_FORMAT, "tensor %s: %" PRIu64 " bytes for %" PRIu64 " %s elements", v->name,
                           v->nbytes, numel, dtype_name(v->dtype));
        if (v->offset < prev_end || v->offset > size || v->nbytes > size - v->offset)
            return err_set(err, ERR_FORMAT,
                           "tensor %s: bytes %" PRIu64 "..%" PRIu64 " overlap the header or another tensor, or lie "
                           "outside the %zu-byte value",
                           v->name, v->offset, v->offset + v->nbytes, size);
        prev_end = v->offset + v->nbytes;
        v->data = p + v->offset;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(out->tensors[j].name, v->name) == 0)
                return err_set(err, ERR_FORMAT, "tensor name %s appears twice", v->name);
    }
    out->n_tensors = (int)n;
    out->value_bytes = value_bytes;
    out->zero_copy = 1;
    return ERR_OK;
}

const cache_view_t *cache_entry_find(const cache_entry_t *e, const char *name) {
    for (int i = 0; i < e->n_tensors; i++)
        if (strcmp(e->tensors[i].name, name) == 0) return &e->tensors[i];
    return NULL;
}
