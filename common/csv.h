/* csv.h - reading small comma-separated tables (metadata.csv and friends).
 *
 * The whole file is read into memory. The first row is the header. Fields
 * follow RFC 4180: a field may be quoted with '"', a quoted field may hold
 * commas, newlines and doubled quotes (""), and lines may end in \n or \r\n.
 * A UTF-8 byte-order mark before the header is skipped. Blank lines (nothing
 * but the line ending) are skipped, as pandas does. Rows may have more fields
 * than the header (the extra ones are kept but have no name) or fewer (a
 * caller asking for a missing field gets NULL from csv_field and can say so).
 *
 *   csv_t t;
 *   if (csv_read("metadata.csv", &t, &err)) return err.code;
 *   int uid = csv_column(&t, "uid");          // -1 when the header lacks it
 *   for (int r = 0; r < t.n_rows; r++) {
 *       const char *u = csv_field(&t, r, uid); // NULL when row r is too short
 *       ... t.rows[r].line is the 1-based line where row r starts ...
 *   }
 *   csv_free(&t);
 *
 * Errors name the file and line: ERR_IO (cannot open or read), ERR_FORMAT (an
 * unterminated quoted field, a quote inside an unquoted field, text after a
 * closing quote, an empty file, a NUL byte), ERR_NOMEM. */
#ifndef STEPSTONE_CSV_H
#define STEPSTONE_CSV_H

#include "error.h"

typedef struct {
    char **fields; /* n_fields strings, each NUL-terminated; point into csv_t storage */
    int n_fields;
    int line;      /* 1-based line of the file where the row starts */
} csv_row_t;

typedef struct {
    char *path;        /* owned copy, for messages */
    char **header;     /* n_header names */
    int n_header;
    int header_line;
    csv_row_t *rows;   /* the data rows (header excluded) */
    int n_rows;
    char *storage;     /* owned: all field text */
    char **field_ptrs; /* owned: all field pointers */
} csv_t;

/* Reads and parses path. On error *t is zeroed (csv_free is safe on it). */
err_code_t csv_read(const char *path, csv_t *t, err_t *err);

/* Parses text of length n; `name` stands for the file in messages. */
err_code_t csv_parse(const char *text, size_t n, const char *name, csv_t *t, err_t *err);

/* Index of the header column named `name` (exact match after trimming
 * surrounding spaces in the header), or -1. */
int csv_column(const csv_t *t, const char *name);

/* Field `col` of data row `row`, or NULL when col < 0 or the row has fewer
 * fields. */
const char *csv_field(const csv_t *t, int row, int col);

void csv_free(csv_t *t);

#endif
