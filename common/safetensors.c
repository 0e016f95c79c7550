#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reading ---- */

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const st_entry_t *)a)->name, ((const st_entry_t *)b)->name);
}

static int cmp_entry_begin(const void *a, const void *b) {
    const st_entry_t *x = *(const st_entry_t *const *)a, *y = *(const st_entry_t *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void free_parsed(safetensors_t *st) {
    for (int i = 0; i < st->n_entries; i++) free(st->entries[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->entries);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->path);
}

/* Reads one tensor's description; returns ERR_OK or an error naming it. */
static err_code_t parse_entry(const char *label, const char *name, json_t *v, uint64_t data_size, st_entry_t *e,
                              err_t *err) {
    if (!json_is_object(v)) return err_set(err, ERR_FORMAT, "%s: tensor '%s': description is not a JSON object", label, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"), *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd)) return err_set(err, ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", label, name);
    if (dtype_parse(json_string_value(jd), &e->dtype) != 0)
        return err_set(err, ERR_FORMAT, "%s: tensor '%s': unsupported dtype \"%s\"", label, name, json_string_value(jd));
    if (!json_is_array(js)) return err_set(err, ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", label, name);
    size_t nd = json_array_size(js);
    if (nd > SAFETENSORS_MAX_DIMS) return err_set(err, ERR_FORMAT, "%s: tensor '%s': %zu dims (at most %d)", label, name, nd, SAFETENSORS_MAX_DIMS);
    e->ndim = (int)nd;
    /* numel * dtype size must fit the file, so any product above data_size is an error already */
    uint64_t numel = 1;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return err_set(err, ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", label, name, i);
        uint64_t dim = (uint64_t)json_integer_value(d);
        e->shape[i] = (int64_t)dim;
        if (dim != 0 && numel > UINT64_MAX / 16 / dim) overflow = 1;
        else numel *= dim;
    }
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return err_set(err, ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" is not [begin, end]", label, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0)), en = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || en < b)
        return err_set(err, ERR_FORMAT, "%s: tensor '%s': bad data_offsets [%lld, %lld]", label, name, (long long)b, (long long)en);
    if ((uint64_t)en > data_size)
        return err_set(err, ERR_FORMAT, "%s: tensor '%s': data_offsets end %lld beyond the data section (%llu bytes)",
                       label, name, (long long)en, (unsigned long long)data_size);
    if (overflow || numel * dtype_size(e->dtype) != (uint64_t)(en - b))
        return err_set(err, ERR_FORMAT, "%s: tensor '%s': %lld bytes for a %s tensor of %llu elements", label, name,
                       (long long)(en - b), dtype_name(e->dtype), (unsigned long long)numel);
    e->numel = (int64_t)numel;
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    return ERR_OK;
}

err_code_t safetensors_parse(const uint8_t *bytes, size_t size, const char *label, safetensors_t *st, err_t *err) {
    memset(st, 0, sizeof *st);
    if (size < 8) return err_set(err, ERR_FORMAT, "%s: %zu bytes, too short for a safetensors header", label, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | bytes[i];
    if (n > SAFETENSORS_MAX_HEADER || n > size - 8)
        return err_set(err, ERR_FORMAT, "%s: header length %llu does not fit the file (%zu bytes)", label, (unsigned long long)n, size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)bytes + 8, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
    if (!root) return err_set(err, ERR_FORMAT, "%s: header JSON: %s (at byte %d)", label, jerr.text, jerr.position);
    /* the header may be padded with spaces after the object, nothing else */
    for (size_t i = jerr.position; i < n; i++) {
        char c = (char)bytes[8 + i];
        if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            json_decref(root);
            return err_set(err, ERR_FORMAT, "%s: header has bytes after the JSON object", label);
        }
    }
    err_code_t rc = ERR_OK;
    if (!json_is_object(root)) {
        rc = err_set(err, ERR_FORMAT, "%s: header is not a JSON object", label);
        goto done;
    }
    st->data = bytes + 8 + n;
    st->data_size = size - 8 - n;
    st->path = dup_str(label);
    size_t count = json_object_size(root);
    st->entries = calloc(count ? count : 1, sizeof *st->entries);
    if (!st->path || !st->entries) {
        rc = err_set(err, ERR_NOMEM, "%s: out of memory reading the header", label);
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(value)) {
                rc = err_set(err, ERR_FORMAT, "%s: __metadata__ is not an object", label);
                goto done;
            }
            size_t m = json_object_size(value);
            st->meta_keys = calloc(m ? m : 1, sizeof(char *));
            st->meta_values = calloc(m ? m : 1, sizeof(char *));
            if (!st->meta_keys || !st->meta_values) {
                rc = err_set(err, ERR_NOMEM, "%s: out of memory", label);
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(value, mk, mv) {
                if (!json_is_string(mv)) {
                    rc = err_set(err, ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", label, mk);
                    goto done;
                }
                st->meta_keys[st->n_meta] = dup_str(mk);
                st->meta_values[st->n_meta] = dup_str(json_string_value(mv));
                st->n_meta++;
                if (!st->meta_keys[st->n_meta - 1] || !st->meta_values[st->n_meta - 1]) {
                    rc = err_set(err, ERR_NOMEM, "%s: out of memory", label);
                    goto done;
                }
            }
            continue;
        }
        st_entry_t *e = &st->entries[st->n_entries];
        rc = parse_entry(label, key, value, st->data_size, e, err);
        if (rc != ERR_OK) goto done;
        e->name = dup_str(key);
        if (!e->name) {
            rc = err_set(err, ERR_NOMEM, "%s: out of memory", label);
            goto done;
        }
        e->data = st->data + e->begin;
        st->n_entries++;
    }
    /* ranges: sorted by begin they must tile the data section exactly */
    if (st->n_entries > 0) {
        st_entry_t **order = malloc((size_t)st->n_entries * sizeof *order);
        if (!order) {
            rc = err_set(err, ERR_NOMEM, "%s: out of memory", label);
            goto done;
        }
        for (int i = 0; i < st->n_entries; i++) order[i] = &st->entries[i];
        qsort(order, (size_t)st->n_entries, sizeof *order, cmp_entry_begin);
        uint64_t pos = 0;
        for (int i = 0; i < st->n_entries && rc == ERR_OK; i++) {
            if (order[i]->begin < pos)
                rc = err_set(err, ERR_FORMAT, "%s: tensor '%s' overlaps tensor '%s'", label, order[i]->name, order[i - 1]->name);
            else if (order[i]->begin > pos)
                rc = err_set(err, ERR_FORMAT, "%s: %llu unused bytes before tensor '%s'", label,
                             (unsigned long long)(order[i]->begin - pos), order[i]->name);
            pos = order[i]->end;
        }
        free(order);
        if (rc != ERR_OK) goto done;
        if (pos != st->data_size) {
            rc = err_set(err, ERR_FORMAT, "%s: %llu bytes after the last tensor", label, (unsigned long long)(st->data_size - pos));
            goto done;
        }
        qsort(st->entries, (size_t)st->n_entries, sizeof *st->entries, cmp_entry_name);
    } else if (st->data_size != 0) {
        rc = err_set(err, ERR_FORMAT, "%s: %llu data bytes but no tensors", label, (unsigned long long)st->data_size);
    }
done:
    json_decref(root);
    if (rc != ERR_OK) {
        free_parsed(st);
        memset(st, 0, sizeof *st);
    }
    return rc;
}

err_code_t safetensors_open(const char *path, safetensors_t *st, err_t *err) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return err_set(err, ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return err_set(err, ERR_FORMAT, "%s: %zu bytes, too short for a safetensors header", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return err_set(err, ERR_IO, "%s: mmap: %s", path, strerror(errno));
    err_code_t rc = safetensors_parse(map, size, path, st, err);
    if (rc != ERR_OK) {
        munmap(map, size);
        return rc;
    }
    st->map = map;
    st->map_size = size;
    return ERR_OK;
}

void safetensors_close(safetensors_t *st) {
    if (!st) return;
    if (st->map) munmap(st->map, st->map_size);
    free_parsed(st);
    memset(st, 0, sizeof *st);
}

const st_entry_t *safetensors_find(const safetensors_t *st, const char *name) {
    st_entry_t key;
    key.name = (char *)name;
    return bsearch(&key, st->entries, (size_t)st->n_entries, sizeof key, cmp_entry_name);
}

const char *safetensors_meta(const safetensors_t *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

static int is_float(dtype_t d) { return d == DTYPE_F32 || d == DTYPE_F16 || d == DTYPE_BF16; }

err_code_t safetensors_load(const safetensors_t *st, const char *name, arena_t *a, dtype_t want, int ndim,
                            const int64_t *expect_shape, tensor_t **out, err_t *err) {
    *out = NULL;
    const st_entry_t *e = safetensors_find(st, name);
    if (!e) return err_set(err, ERR_NOTFOUND, "%s: tensor '%s' not found", st->path, name);
    char want_s[128], got_s[128];
    if (expect_shape) {
        int same = e->ndim == ndim;
        for (int i = 0; same && i < ndim; i++) same = e->shape[i] == expect_shape[i];
        if (!same)
            return err_set(err, ERR_MISMATCH, "%s: tensor '%s': expected shape %s, found %s", st->path, name,
                           shape_str(ndim, expect_shape, want_s, sizeof want_s), shape_str(e->ndim, e->shape, got_s, sizeof got_s));
    }
    if (e->ndim > TENSOR_MAX_DIMS)
        return err_set(err, ERR_MISMATCH, "%s: tensor '%s' has %d dims (at most %d)", st->path, name, e->ndim, TENSOR_MAX_DIMS);
    int ok = want == e->dtype || (is_float(want) && (is_float(e->dtype) || want == DTYPE_F32));
    if (!ok)
        return err_set(err, ERR_MISMATCH, "%s: tensor '%s': dtype %s cannot be read as %s", st->path, name,
                       dtype_name(e->dtype), dtype_name(want));
    size_t bytes = (size_t)e->numel * dtype_size(want);
    void *host = malloc(bytes ? bytes : 1);
    if (!host) return err_set(err, ERR_NOMEM, "%s: tensor '%s': out of memory (%zu bytes)", st->path, name, bytes);
    if (want == e->dtype) {
        memcpy(host, e->data, bytes);
    } else {
        /* the mapping may be unaligned for the source dtype: convert from an aligned copy */
        size_t src_bytes = (size_t)e->numel * dtype_size(e->dtype);
        void *src = malloc(src_bytes ? src_bytes : 1);
        if (!src) {
            free(host);
            return err_set(err, ERR_NOMEM, "%s: tensor '%s': out of memory", st->path, name);
        }
        memcpy(src, e->data, src_bytes);
        dtype_convert_host(host, want, src, e->dtype, e->numel);
        free(src);
    }
    *out = tensor_from_host(a, want, e->ndim, e->shape, host);
    size_t name_len = strlen(e->name) + 1; /* the entry's name dies with the mapping */
    char *copy = arena_alloc_host(a, name_len);
    memcpy(copy, e->name, name_len);
    (*out)->name = copy;
    free(host);
    return ERR_OK;
}

/* ---- writing ---- */

typedef struct {
    char *name;
    dtype_t dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    void *bytes;
    size_t size;
} st_pending_t;

struct st_writer {
    st_pending_t *items;
    int n, cap;
    json_t *meta;
};

st_writer_t *safetensors_writer_new(void) {
    st_writer_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->meta = json_object();
    return w;
}

void safetensors_writer_free(st_writer_t *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->items[i].name);
        free(w->items[i].bytes);
    }
    free(w->items);
    json_decref(w->meta);
    free(w);
}

err_code_t safetensors_writer_add(st_writer_t *w, const char *name, dtype_t dtype, int ndim, const int64_t *shape,
                                  const void *host_bytes, err_t *err) {
    if (ndim > SAFETENSORS_MAX_DIMS) return err_set(err, ERR_ARG, "safetensors: tensor '%s' has %d dims", name, ndim);
    if (strcmp(name, "__metadata__") == 0) return err_set(err, ERR_ARG, "safetensors: reserved tensor name '%s'", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->items[i].name, name) == 0) return err_set(err, ERR_ARG, "safetensors: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 32;
        st_pending_t *items = realloc(w->items, (size_t)cap * sizeof *items);
        if (!items) return err_set(err, ERR_NOMEM, "safetensors: out of memory");
        w->items = items;
        w->cap = cap;
    }
    st_pending_t *p = &w->items[w->n];
    p->size = (size_t)shape_numel(ndim, shape) * dtype_size(dtype);
    p->name = dup_str(name);
    p->bytes = malloc(p->size ? p->size : 1);
    if (!p->name || !p->bytes) {
        free(p->name);
        free(p->bytes);
        return err_set(err, ERR_NOMEM, "safetensors: out of memory for '%s'", name);
    }
    memcpy(p->bytes, host_bytes, p->size);
    p->dtype = dtype;
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
    w->n++;
    return ERR_OK;
}

err_code_t safetensors_writer_add_tensor(st_writer_t *w, const char *name, const tensor_t *t, err_t *err) {
    size_t bytes = (size_t)t->numel * dtype_size(t->dtype);
    void *host = malloc(bytes ? bytes : 1);
    if (!host) return err_set(err, ERR_NOMEM, "safetensors: out of memory for '%s'", name);
    tensor_to_host(t, host);
    err_code_t rc = safetensors_writer_add(w, name, t->dtype, t->ndim, t->shape, host, err);
    free(host);
    return rc;
}

err_code_t safetensors_writer_meta(st_writer_t *w, const char *key, const char *value, err_t *err) {
    if (json_object_set_new(w->meta, key, json_string(value)) != 0)
        return err_set(err, ERR_ARG, "safetensors: bad metadata '%s'", key);
    return ERR_OK;
}

err_code_t safetensors_writer_save(st_writer_t *w, const char *path, err_t *err) {
    json_t *root = json_object();
    uint64_t offset = 0;
    if (json_object_size(w->meta) > 0) json_object_set(root, "__metadata__", w->meta);
    for (int i = 0; i < w->n; i++) {
        st_pending_t *p = &w->items[i];
        json_t *shape = json_array();
        for (int d = 0; d < p->ndim; d++) json_array_append_new(shape, json_integer(p->shape[d]));
        json_t *desc = json_object();
        json_object_set_new(desc, "dtype", json_string(dtype_name(p->dtype)));
        json_object_set_new(desc, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)offset));
        json_array_append_new(offs, json_integer((json_int_t)(offset + p->size)));
        json_object_set_new(desc, "data_offsets", offs);
        json_object_set_new(root, p->name, desc);
        offset += p->size;
    }
    char *header = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!header) return err_set(err, ERR_NOMEM, "%s: out of memory building the header", path);
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) / 8 * 8; /* the data section starts 8-byte aligned */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(header);
        return err_set(err, ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < w->n; i++) ok = fwrite(w->items[i].bytes, 1, w->items[i].size, f) == w->items[i].size;
    free(header);
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        int e = errno;
        unlink(tmp);
        return err_set(err, ERR_IO, "%s: write failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, ERR_IO, "%s: rename: %s", path, strerror(e));
    }
    return ERR_OK;
}
