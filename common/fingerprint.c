#include "fingerprint.h"

#include <errno.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

err_code_t file_fingerprint(const char *path, file_fingerprint_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    struct AVSHA *sha = av_sha_alloc();
    if (!buf || !sha) {
        free(buf);
        av_free(sha);
        fclose(f);
        return err_set(err, ERR_NOMEM, "%s: out of memory for the fingerprint", path);
    }
    av_sha_init(sha, 256);
    size_t got;
    uint64_t total = 0;
    while ((got = fread(buf, 1, CHUNK, f)) > 0) {
        av_sha_update(sha, buf, got);
        total += got;
    }
    int failed = ferror(f);
    int saved_errno = errno;
    free(buf);
    fclose(f);
    uint8_t digest[32];
    av_sha_final(sha, digest);
    av_free(sha);
    if (failed) return err_set(err, ERR_IO, "%s: read error: %s", path, strerror(saved_errno));
    out->bytes = total;
    for (int i = 0; i < 32; i++) snprintf(out->sha256 + 2 * i, 3, "%02x", digest[i]);
    return ERR_OK;
}
