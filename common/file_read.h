/* file_read.h - a whole (small) file into memory, with errors that name it. */
#ifndef STEPSTONE_FILE_READ_H
#define STEPSTONE_FILE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Reads the file at path into a new malloc'ed buffer: *bytes (the caller
 * frees it) and *size. An empty file gives *size 0 and a non-NULL buffer.
 * ERR_IO naming the file and the system's reason when it cannot be opened or
 * read (missing, a folder, no permission); ERR_NOMEM. On error *bytes is NULL. */
err_code_t file_read_all(const char *path, uint8_t **bytes, size_t *size, err_t *err);

#endif
