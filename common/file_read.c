#include "file_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

err_code_t file_read_all(const char *path, uint8_t **bytes, size_t *size, err_t *err) {
    *bytes = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return err_set(err, ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return err_set(err, ERR_IO, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a folder, not a file" : "not a regular file");
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return err_set(err, ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    errno = 0;
    size_t got = n ? fread(buf, 1, n, f) : 0;
    int read_failed = got != n || ferror(f);
    int e = errno;
    fclose(f);
    if (read_failed) {
        free(buf);
        return err_set(err, ERR_IO, "%s: read %zu of %zu bytes: %s", path, got, n, e ? strerror(e) : "file shrank");
    }
    *bytes = buf;
    *size = n;
    return ERR_OK;
}
