#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

err_code_t err_set(err_t *err, err_code_t code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

err_code_t err_prefix(err_t *err, const char *fmt, ...) {
    if (!err) return ERR_OK;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t np = strlen(prefix), nm = strlen(err->msg);
    if (np >= sizeof err->msg) np = sizeof err->msg - 1;
    if (np + nm >= sizeof err->msg) nm = sizeof err->msg - 1 - np;
    memmove(err->msg + np, err->msg, nm);
    memcpy(err->msg, prefix, np);
    err->msg[np + nm] = '\0';
    return err->code;
}

const char *err_code_name(err_code_t code) {
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_IO: return "i/o error";
    case ERR_FORMAT: return "bad format";
    case ERR_NOMEM: return "out of memory";
    case ERR_NOTFOUND: return "not found";
    case ERR_MISMATCH: return "mismatch";
    case ERR_ARG: return "bad argument";
    case ERR_DEVICE: return "device error";
    }
    return "unknown error";
}

void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}
