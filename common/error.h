/* error.h - error codes and messages that callers can act on.
 *
 * Library functions that can fail on bad input (files, weights, configs)
 * return an err_code_t and, when given an err_t, write a message that names
 * the file and the problem. Programmer errors (shape mismatches between ops)
 * are not recoverable and go through fatal(), which prints and aborts. */
#ifndef STEPSTONE_ERROR_H
#define STEPSTONE_ERROR_H

#include <stddef.h>

typedef enum {
    ERR_OK = 0,
    ERR_IO = 1,       /* open/read/write/mmap failed */
    ERR_FORMAT = 2,   /* the bytes are not what the format says */
    ERR_NOMEM = 3,    /* an allocation failed */
    ERR_NOTFOUND = 4, /* a named thing (tensor, key, field) is missing */
    ERR_MISMATCH = 5, /* shape, dtype or metadata differs from what was asked */
    ERR_ARG = 6,      /* a bad argument from the caller or the command line */
    ERR_DEVICE = 7    /* the CUDA device failed or is absent */
} err_code_t;

typedef struct {
    err_code_t code;
    char msg[1024];
} err_t;

/* Sets err (when not NULL) and returns code, so callers can write
 * `return err_set(err, ERR_IO, "%s: %s", path, strerror(errno));` */
err_code_t err_set(err_t *err, err_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with more context ("loading x: " + msg). */
err_code_t err_prefix(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *err_code_name(err_code_t code);

/* Prints "fatal: <msg>" to stderr and aborts. For broken invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
