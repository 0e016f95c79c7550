/* cache_value.h - the bytes of one cache value: a self-describing, versioned,
 * checksummed record of named tensors. Pure functions over memory, no LMDB:
 * cache.c stores these records, stepstone-cache and the tests read them.
 *
 * Layout (format version 1; every integer little-endian):
 *
 *   offset  bytes  field
 *   0       8      magic "STPCACHE"
 *   8       4      format version (1)
 *   12      4      n_tensors (1..CACHE_MAX_TENSORS)
 *   16      4      header_bytes = 48 + 128 * n_tensors (where the table ends)
 *   20      4      flags (0; a reader refuses other values)
 *   24      8      value_bytes: the length of the whole value
 *   32      4      CRC-32C of the whole value, computed with these 4 bytes as zero
 *   36      12     zero
 *   48      128*n  the tensor table, one entry per tensor, in data order:
 *                    +0   56  name, UTF-8, NUL-padded (at most 55 bytes)
 *                    +56  4   dtype: 0 = F32, 1 = F16, 2 = BF16
 *                    +60  4   ndim (0..6)
 *                    +64  48  shape, 6 x int64 (unused dims 0)
 *                    +112 8   offset of the data from the value's start
 *                    +120 8   nbytes = numel * element size
 *   ...            the tensors, row-major, in table order; zero bytes between
 *
 * Placement: each tensor's offset is the smallest one after the previous
 * tensor with offset % 64 == 48 (CACHE_VALUE_PHASE). LMDB puts every value
 * larger than about 2 KB (every frame and audio track of real size) on
 * overflow pages, 16 bytes after a page boundary (LMDB 0.9's page header), so
 * phase 48 makes each tensor 64-byte aligned in the memory map itself, where
 * plain "64-aligned within the value" would give only 16. Smaller values sit
 * inside a B-tree page at any byte address (LMDB aligns nodes to 2 bytes and
 * the value follows the key, so an odd-length key makes it odd): a reader must
 * not assume alignment, and cache.c copies a tensor whose address is not a
 * multiple of its element size (cache_entry_t.copied counts them).
 *
 * The padding is zero, so the same tensors always give the same bytes: two
 * extractions of one video, or a video before and after a merge, compare
 * equal byte for byte. */
#ifndef STEPSTONE_CACHE_VALUE_H
#define STEPSTONE_CACHE_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the cache stores tensors little-endian and reads them in place: a big-endian host needs byte swapping here"
#endif

#define CACHE_VALUE_MAGIC "STPCACHE"
#define CACHE_VALUE_VERSION 1
#define CACHE_VALUE_HEADER_BYTES 48
#define CACHE_VALUE_ENTRY_BYTES 128
#define CACHE_VALUE_NAME_BYTES 56
#define CACHE_VALUE_ALIGN 64
#define CACHE_VALUE_PHASE 48
#define CACHE_MAX_TENSORS 16

/* What a writer wants stored: one tensor's name, storage dtype and shape. */
typedef struct {
    const char *name;
    dtype_t dtype; /* F32, F16 or BF16 */
    int ndim;
    const int64_t *shape;
} cache_tensor_spec_t;

/* One tensor of a parsed value. data points into the value's bytes (or, from
 * cache.h's readers, into an aligned copy); it is valid as long as they are. */
typedef struct {
    char name[CACHE_VALUE_NAME_BYTES];
    dtype_t dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t numel;
    uint64_t offset, nbytes;
    const void *data;
} cache_view_t;

/* A parsed value. */
typedef struct {
    int n_tensors;
    cache_view_t tensors[CACHE_MAX_TENSORS];
    uint64_t value_bytes;
    uint32_t crc;    /* the stored checksum */
    int copied;      /* tensors the reader copied because the map's bytes were misaligned */
    int zero_copy;   /* nonzero when every tensor's data points into the memory map */
} cache_entry_t;

/* Plans a value: fills offsets[n] and *value_bytes. ERR_ARG naming the tensor
 * for a bad name (empty, too long), dtype (not F32/F16/BF16), ndim or shape,
 * or more than CACHE_MAX_TENSORS tensors. */
err_code_t cache_value_layout(const cache_tensor_spec_t *specs, int n, uint64_t *offsets, uint64_t *value_bytes,
                              err_t *err);

/* Writes the header, the table and zero padding into buf[value_bytes] (as
 * planned by cache_value_layout); the tensor bytes are left for the caller,
 * who then calls cache_value_seal to store the checksum. */
void cache_value_write_header(void *buf, const cache_tensor_spec_t *specs, int n, const uint64_t *offsets,
                              uint64_t value_bytes);
void cache_value_seal(void *buf, uint64_t value_bytes);

/* The checksum of a value as stored in it (bytes 32..35 taken as zero). */
uint32_t cache_value_checksum(const void *bytes, size_t size);

/* Parses and validates a value: magic, version (a newer one is refused with
 * a message saying so), sizes, every table entry, the ranges inside the value
 * and not overlapping, and with verify_checksum the CRC. ERR_FORMAT with a
 * message about the bytes (the caller prefixes which key it was). */
err_code_t cache_value_parse(const void *bytes, size_t size, int verify_checksum, cache_entry_t *out, err_t *err);

/* The tensor named `name`, or NULL. */
const cache_view_t *cache_entry_find(const cache_entry_t *e, const char *name);

/* On-disk dtype codes (stable across changes to dtype_t). */
int cache_dtype_code(dtype_t dt);                 /* -1 when not storable */
int cache_dtype_from_code(uint32_t code, dtype_t *out); /* 0, or -1 */

#endif
