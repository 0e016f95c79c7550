/* safetensors.h - reading (memory-mapped) and writing .safetensors files.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON, then the
 * data section. The JSON maps each tensor name to {"dtype", "shape",
 * "data_offsets": [begin, end]} (offsets relative to the data section) and may
 * hold "__metadata__": {string: string}. A file is accepted only when every
 * field is valid: the JSON parses with no duplicate keys, dtypes are among
 * F32/F16/BF16/I64/I32/U8/BOOL, shapes are arrays of non-negative integers,
 * each tensor's byte range matches its shape and dtype, lies inside the file,
 * and the ranges neither overlap nor leave holes (as the reference
 * implementation requires). Errors name the file, the tensor and the problem.
 *
 * Entries point into the mapping (no copy), which may be unaligned for the
 * dtype; safetensors_load copies into an arena with the dtype converted. */
#ifndef STEPSTONE_SAFETENSORS_H
#define STEPSTONE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

#define SAFETENSORS_MAX_DIMS 8
#define SAFETENSORS_MAX_HEADER (100u << 20)

typedef struct {
    char *name;
    dtype_t dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;  /* byte range within the data section */
    const void *data;     /* points into the file's bytes; possibly unaligned */
} st_entry_t;

typedef struct {
    char *path;           /* owned copy, for messages */
    void *map;            /* the mapping (NULL when parsed from caller memory) */
    size_t map_size;
    const uint8_t *data;  /* start of the data section */
    uint64_t data_size;
    st_entry_t *entries;  /* sorted by name */
    int n_entries;
    char **meta_keys, **meta_values;
    int n_meta;
} safetensors_t;

/* Maps and validates a file. On error nothing needs closing. */
err_code_t safetensors_open(const char *path, safetensors_t *st, err_t *err);
/* Validates bytes the caller owns and keeps alive (used by the fuzzer);
 * label names them in messages. */
err_code_t safetensors_parse(const uint8_t *bytes, size_t size, const char *label, safetensors_t *st, err_t *err);
void safetensors_close(safetensors_t *st);

const st_entry_t *safetensors_find(const safetensors_t *st, const char *name);
/* The __metadata__ value of key, or NULL. */
const char *safetensors_meta(const safetensors_t *st, const char *key);

/* Copies tensor `name` into a new tensor of arena a, converted to `want`
 * (F32/F16/BF16 from any float dtype; integer/bool to F32; or the file's own
 * dtype unchanged). With expect_shape non-NULL, the shape must equal it:
 * otherwise ERR_MISMATCH naming the tensor, the expected and the found shape.
 * A missing tensor is ERR_NOTFOUND naming it. */
err_code_t safetensors_load(const safetensors_t *st, const char *name, arena_t *a, dtype_t want, int ndim,
                            const int64_t *expect_shape, tensor_t **out, err_t *err);

/* ---- writing ---- */
typedef struct st_writer st_writer_t;
st_writer_t *safetensors_writer_new(void);
void safetensors_writer_free(st_writer_t *w);
/* Copies the host bytes (numel * dtype_size) of one tensor. */
err_code_t safetensors_writer_add(st_writer_t *w, const char *name, dtype_t dtype, int ndim, const int64_t *shape,
                                  const void *host_bytes, err_t *err);
/* Copies a tensor from any device. */
err_code_t safetensors_writer_add_tensor(st_writer_t *w, const char *name, const tensor_t *t, err_t *err);
err_code_t safetensors_writer_meta(st_writer_t *w, const char *key, const char *value, err_t *err);
/* Writes path.tmp then renames it to path, so a reader never sees half a file. */
err_code_t safetensors_writer_save(st_writer_t *w, const char *path, err_t *err);

#endif
