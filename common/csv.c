#include "csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parsing builds, in one pass, the text of every field (NUL-terminated, one
 * after another in `storage`), the offset of each field's text, and for each
 * row the index of its first field. Pointers are made at the end, when the
 * buffers no longer move. */
typedef struct {
    char *text;
    size_t len, cap;
    size_t *field_off;
    size_t n_fields, cap_fields;
    size_t *row_first; /* index of the row's first field */
    int *row_line;
    size_t n_rows, cap_rows;
} builder_t;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int put_char(builder_t *b, char c) {
    if (grow((void **)&b->text, &b->cap, b->len + 1, 1)) return -1;
    b->text[b->len++] = c;
    return 0;
}

static int start_field(builder_t *b) {
    if (grow((void **)&b->field_off, &b->cap_fields, b->n_fields + 1, sizeof(size_t))) return -1;
    b->field_off[b->n_fields++] = b->len;
    return 0;
}

static int start_row(builder_t *b, int line) {
    if (grow((void **)&b->row_first, &b->cap_rows, b->n_rows + 1, sizeof(size_t))) return -1;
    size_t cap = b->cap_rows;
    /* row_line grows with row_first: same capacity */
    int *rl = realloc(b->row_line, cap * sizeof(int));
    if (!rl) return -1;
    b->row_line = rl;
    b->row_first[b->n_rows] = b->n_fields;
    b->row_line[b->n_rows] = line;
    b->n_rows++;
    return 0;
}

static void builder_free(builder_t *b) {
    free(b->text);
    free(b->field_off);
    free(b->row_first);
    free(b->row_line);
    memset(b, 0, sizeof *b);
}

static err_code_t oom(err_t *err, const char *name) {
    return err_set(err, ERR_NOMEM, "%s: out of memory while reading the table", name);
}

err_code_t csv_parse(const char *s, size_t n, const char *name, csv_t *t, err_t *err) {
    memset(t, 0, sizeof *t);
    builder_t b = {0};
    size_t i = 0;
    int line = 1;
    if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        i = 3;
    while (i < n) {
        /* a blank line is skipped */
        if (s[i] == '\n' || (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')) {
            i += s[i] == '\r' ? 2 : 1;
            line++;
            continue;
        }
        if (start_row(&b, line)) goto nomem;
        int row_done = 0;
        while (!row_done) {
            if (start_field(&b)) goto nomem;
            if (i < n && s[i] == '"') {
                int open_line = line;
                i++;
                for (;;) {
                    if (i >= n) {
                        builder_free(&b);
                        return err_set(err, ERR_FORMAT, "%s:%d: quoted field never closed (it opens on line %d)",
                                       name, line, open_line);
                    }
                    if (s[i] == '"') {
                        if (i + 1 < n && s[i + 1] == '"') {
                            if (put_char(&b, '"')) goto nomem;
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (s[i] == '\0') goto nul;
                    if (s[i] == '\n') line++;
                    if (put_char(&b, s[i])) goto nomem;
                    i++;
                }
                if (i < n && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')) {
                    builder_free(&b);
                    return err_set(err, ERR_FORMAT, "%s:%d: text after the closing quote of a field", name, line);
                }
            } else {
                while (i < n && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')) {
                    if (s[i] == '"') {
                        builder_free(&b);
                        return err_set(err, ERR_FORMAT, "%s:%d: a quote inside an unquoted field", name, line);
                    }
                    if (s[i] == '\0') goto nul;
                    if (put_char(&b, s[i])) goto nomem;
                    i++;
                }
            }
            if (put_char(&b, '\0')) goto nomem;
            if (i < n && s[i] == ',') {
                i++;
                continue; /* a trailing comma gives one more (empty) field */
            }
            if (i < n) i += s[i] == '\r' ? 2 : 1;
            line++;
            row_done = 1;
        }
    }
    if (b.n_rows == 0) {
        builder_free(&b);
        return err_set(err, ERR_FORMAT, "%s: empty table (no header row)", name);
    }
    t->path = strdup(name);
    t->field_ptrs = malloc((b.n_fields ? b.n_fields : 1) * sizeof(char *));
    t->rows = malloc((b.n_rows > 1 ? b.n_rows - 1 : 1) * sizeof(csv_row_t));
    if (!t->path || !t->field_ptrs || !t->rows) {
        csv_free(t);
        goto nomem;
    }
    t->storage = b.text;
    b.text = NULL;
    for (size_t f = 0; f < b.n_fields; f++) t->field_ptrs[f] = t->storage + b.field_off[f];
    for (size_t r = 0; r < b.n_rows; r++) {
        size_t first = b.row_first[r];
        size_t end = r + 1 < b.n_rows ? b.row_first[r + 1] : b.n_fields;
        if (r == 0) {
            t->header = t->field_ptrs + first;
            t->n_header = (int)(end - first);
            t->header_line = b.row_line[r];
        } else {
            csv_row_t *row = &t->rows[r - 1];
            row->fields = t->field_ptrs + first;
            row->n_fields = (int)(end - first);
            row->line = b.row_line[r];
        }
    }
    t->n_rows = (int)b.n_rows - 1;
    /* header names: trim surrounding spaces */
    for (int c = 0; c < t->n_header; c++) {
        char *h = t->header[c];
        while (*h == ' ' || *h == '\t') h++;
        size_t len = strlen(h);
        while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t')) h[--len] = '\0';
        t->header[c] = h;
    }
    builder_free(&b);
    return ERR_OK;
nul:
    builder_free(&b);
    return err_set(err, ERR_FORMAT, "%s:%d: NUL byte in the text (not a CSV file?)", name, line);
nomem:
    builder_free(&b);
    return oom(err, name);
}

err_code_t csv_read(const char *path, csv_t *t, err_t *err) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return oom(err, path);
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return oom(err, path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return err_set(err, ERR_IO, "%s: read error", path);
    }
    err_code_t rc = csv_parse(buf, n, path, t, err);
    free(buf);
    return rc;
}

int csv_column(const csv_t *t, const char *name) {
    for (int c = 0; c < t->n_header; c++)
        if (strcmp(t->header[c], name) == 0) return c;
    return -1;
}

const char *csv_field(const csv_t *t, int row, int col) {
    if (row < 0 || row >= t->n_rows || col < 0 || col >= t->rows[row].n_fields) return NULL;
    return t->rows[row].fields[col];
}

void csv_free(csv_t *t) {
    free(t->path);
    free(t->storage);
    free(t->field_ptrs);
    free(t->rows);
    memset(t, 0, sizeof *t);
}
