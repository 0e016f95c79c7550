/* avs_tree.c - small AVSBench-semantic trees (avs_tree.h). */
#include "avs_tree.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* uniform in [0, 1) from (seed, i) */
static double noise(uint64_t seed, uint64_t i) { return (double)(mix(seed * 0x9E3779B97F4A7C15ull + i) >> 11) / 9007199254740992.0; }

static int make_dirs(const char *path) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) goto fail;
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) goto fail;
    return 0;
fail:
    fprintf(stderr, "avs_tree: cannot create %s: %s\n", p, strerror(errno));
    return -1;
}

static int write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "avs_tree: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t w = fwrite(bytes, 1, n, f);
    if (fclose(f) != 0 || w != n) {
        fprintf(stderr, "avs_tree: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int avs_tree_write_jpeg(const char *path, int width, int height, uint64_t seed, int frame) {
    unsigned char *rgb = malloc((size_t)width * height * 3);
    if (!rgb) return -1;
    double cx = 0.3 + 0.4 * noise(seed, 1) + 0.05 * frame, cy = 0.3 + 0.4 * noise(seed, 2);
    double radius = 0.15 + 0.1 * noise(seed, 3);
    double hue[3] = {noise(seed, 4), noise(seed, 5), noise(seed, 6)};
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            double u = (double)x / width, v = (double)y / height;
            int inside = (u - cx) * (u - cx) + (v - cy) * (v - cy) < radius * radius;
            for (int c = 0; c < 3; c++) {
                double base = 0.5 + 0.4 * sin(6.0 * (u * (c + 1) + v * hue[c]) + frame * 0.3 + hue[c] * 6.0);
                if (inside) base = hue[(c + 1) % 3];
                double px = 255.0 * base + 24.0 * (noise(seed ^ (uint64_t)frame << 32, ((uint64_t)y * width + x) * 3 + c) - 0.5);
                rgb[((size_t)y * width + x) * 3 + c] = (unsigned char)(px < 0 ? 0 : px > 255 ? 255 : px);
            }
        }
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    int rc = tj ? tjCompress2(tj, rgb, width, 0, height, TJPF_RGB, &jpeg, &size, TJSAMP_420, 90, 0) : -1;
    free(rgb);
    if (rc != 0) {
        fprintf(stderr, "avs_tree: %s: %s\n", path, tj ? tjGetErrorStr2(tj) : "tjInitCompress failed");
        if (tj) tjDestroy(tj);
        tjFree(jpeg);
        return -1;
    }
    rc = write_bytes(path, jpeg, size);
    tjFree(jpeg);
    tjDestroy(tj);
    return rc;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

int avs_tree_write_wav(const char *path, double seconds, int rate, int channels, uint64_t seed) {
    size_t frames = (size_t)(seconds * rate + 0.5);
    size_t data_bytes = frames * (size_t)channels * 2;
    unsigned char *buf = malloc(44 + data_bytes);
    if (!buf) return -1;
    memcpy(buf, "RIFF", 4);
    put_u32(buf + 4, (uint32_t)(36 + data_bytes));
    memcpy(buf + 8, "WAVEfmt ", 8);
    put_u32(buf + 16, 16);
    put_u16(buf + 20, 1); /* PCM */
    put_u16(buf + 22, (uint16_t)channels);
    put_u32(buf + 24, (uint32_t)rate);
    put_u32(buf + 28, (uint32_t)(rate * channels * 2));
    put_u16(buf + 32, (uint16_t)(channels * 2));
    put_u16(buf + 34, 16);
    memcpy(buf + 36, "data", 4);
    put_u32(buf + 40, (uint32_t)data_bytes);
    double f1 = 200.0 + 800.0 * noise(seed, 10), f2 = 1000.0 + 2000.0 * noise(seed, 11);
    for (size_t i = 0; i < frames; i++) {
        double t = (double)i / rate;
        double beat = 0.5 + 0.5 * sin(2.0 * M_PI * 2.0 * t);
        for (int c = 0; c < channels; c++) {
            double s = 0.3 * sin(2.0 * M_PI * f1 * t) * beat + 0.2 * sin(2.0 * M_PI * f2 * t + c) +
                       0.05 * (noise(seed + 7 + (uint64_t)c, i) - 0.5);
            long q = lround(s * 32767.0);
            put_u16(buf + 44 + (i * (size_t)channels + (size_t)c) * 2, (uint16_t)(int16_t)(q > 32767 ? 32767 : q < -32768 ? -32768 : q));
        }
    }
    int rc = write_bytes(path, buf, 44 + data_bytes);
    free(buf);
    return rc;
}

static const char *const class_names[71] = {
    "background", "accordion", "airplane", "axe", "baby", "bassoon", "bell", "bird", "boat", "boy", "bus", "car",
    "cat", "cello", "clarinet", "clipper", "clock", "dog", "donkey", "drum", "duck", "elephant", "emergency-car",
    "erhu", "flute", "frying-food", "girl", "goose", "guitar", "gun", "guzheng", "hair-dryer", "handpan",
    "harmonica", "harp", "helicopter", "hen", "horse", "keyboard", "leopard", "lion", "man", "marimba",
    "missile-rocket", "motorcycle", "mower", "parrot", "piano", "pig", "pipa", "saw", "saxophone", "sheep", "sitar",
    "sorna", "squirrel", "tabla", "tank", "tiger", "tractor", "train", "trombone", "truck", "trumpet", "tuba",
    "ukulele", "utv", "vacuum-cleaner", "violin", "wolf", "woman"};

static int write_label2idx(const char *root) {
    char path[4096], text[4096];
    size_t len = 0;
    len += (size_t)snprintf(text + len, sizeof text - len, "{");
    for (int i = 0; i < 71; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s\"%s\": %d", i ? ", " : "", class_names[i], i);
    len += (size_t)snprintf(text + len, sizeof text - len, "}\n");
    snprintf(path, sizeof path, "%s/label2idx.json", root);
    return write_bytes(path, text, len);
}

int avs_tree_write(const char *root, const avs_tree_video_t *videos, int n) {
    if (make_dirs(root) || write_label2idx(root)) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/metadata.csv", root);
    FILE *meta = fopen(path, "w");
    if (!meta) {
        fprintf(stderr, "avs_tree: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* the published header (vid,uid,s_min,s_sec,a_obj,split,label): readers use uid, split and label */
    fprintf(meta, "vid,uid,s_min,s_sec,a_obj,split,label\n");
    for (int i = 0; i < n; i++) {
        const avs_tree_video_t *v = &videos[i];
        fprintf(meta, "vid%d,%s,0,0,dog,%s,%s\n", i, v->uid, v->split, v->subset);
        snprintf(path, sizeof path, "%s/%s/%s/frames", root, v->subset, v->uid);
        if (make_dirs(path)) goto fail;
        for (int f = 0; f < v->n_frames; f++) {
            snprintf(path, sizeof path, "%s/%s/%s/frames/%d.jpg", root, v->subset, v->uid, f);
            if (avs_tree_write_jpeg(path, v->width, v->height, v->seed, f)) goto fail;
        }
        snprintf(path, sizeof path, "%s/%s/%s/audio.wav", root, v->subset, v->uid);
        if (avs_tree_write_wav(path, v->audio_seconds, v->sample_rate, v->channels, v->seed)) goto fail;
    }
    return fclose(meta) == 0 ? 0 : -1;
fail:
    fclose(meta);
    return -1;
}
