/* fingerprint.h - files named by their size and SHA-256 (libavutil's), so a
 * manifest or a cache's producer record names its inputs by content. The hex
 * digest is what `sha256sum` prints, so a user can check it from the shell. */
#ifndef STEPSTONE_FINGERPRINT_H
#define STEPSTONE_FINGERPRINT_H

#include <stdint.h>

#include "error.h"

#define SHA256_HEX_CHARS 64

typedef struct {
    uint64_t bytes;
    char sha256[SHA256_HEX_CHARS + 1]; /* lowercase hex */
} file_fingerprint_t;

/* Reads the whole file at path. ERR_IO naming the file when it cannot be
 * opened or read; on error *out is zeroed. */
err_code_t file_fingerprint(const char *path, file_fingerprint_t *out, err_t *err);

#endif
