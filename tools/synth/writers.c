/* writers.c - WAV and JPEG files for stepstone-synth (synth.h). Both are
 * written to "<path>.tmp" and renamed, so a half-written file never has the
 * final name. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "synth.h"

static err_code_t finish(FILE *f, const char *tmp, const char *path, err_t *err) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return err_set(err, ERR_IO, "%s: write failed", path);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return err_set(err, ERR_IO, "%s: cannot rename the finished file into place: %s", path, strerror(errno));
    }
    return ERR_OK;
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }

err_code_t synth_write_wav(const char *path, const float *samples, int n, int rate, err_t *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set(err, ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    uint8_t h[44];
    uint32_t data = (uint32_t)n * 2;
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);          /* fmt chunk size */
    put16(h + 20, 1);           /* PCM */
    put16(h + 22, 1);           /* mono */
    put32(h + 24, (uint32_t)rate);
    put32(h + 28, (uint32_t)rate * 2);
    put16(h + 32, 2);           /* block align */
    put16(h + 34, 16);          /* bits */
    memcpy(h + 36, "data", 4);
    put32(h + 40, data);
    fwrite(h, 1, sizeof h, f);
    uint8_t buf[4096];
    int k = 0;
    for (int i = 0; i < n; i++) {
        float x = samples[i] * 32767.0f;
        long q = lrintf(x < -32768.f ? -32768.f : x > 32767.f ? 32767.f : x);
        put16(buf + k, (unsigned)(q & 0xffff));
        k += 2;
        if (k == (int)sizeof buf) fwrite(buf, 1, (size_t)k, f), k = 0;
    }
    if (k) fwrite(buf, 1, (size_t)k, f);
    return finish(f, tmp, path, err);
}

err_code_t synth_write_jpeg(const char *path, const uint8_t *rgb, int w, int h, err_t *err) {
    tjhandle tj = tjInitCompress();
    if (!tj) return err_set(err, ERR_NOMEM, "%s: cannot start the JPEG encoder", path);
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    if (tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpg, &size, TJSAMP_420, 92, TJFLAG_ACCURATEDCT) != 0) {
        err_code_t rc = err_set(err, ERR_FORMAT, "%s: JPEG encoding failed: %s", path, tjGetErrorStr2(tj));
        tjDestroy(tj);
        return rc;
    }
    tjDestroy(tj);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        tjFree(jpg);
        return err_set(err, ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    fwrite(jpg, 1, size, f);
    tjFree(jpg);
    return finish(f, tmp, path, err);
}
