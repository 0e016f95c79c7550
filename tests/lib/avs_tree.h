/* avs_tree.h - small AVSBench-semantic trees for tests and benchmarks that
 * read data sets (stepstone-extract and later stages): metadata.csv,
 * label2idx.json (71 classes) and, per video, <subset>/<uid>/frames/<i>.jpg
 * (written with libturbojpeg) and audio.wav (16-bit PCM). The pictures and
 * sounds are deterministic functions of the seed: smooth colour fields with
 * moving blobs and noise, and a few tones with noise, so that features are
 * neither constant nor trivial. Tests break single files afterwards to make
 * bad videos. */
#ifndef STEPSTONE_TESTS_AVS_TREE_H
#define STEPSTONE_TESTS_AVS_TREE_H

#include <stdint.h>

typedef struct {
    const char *subset; /* "v1s", "v1m" or "v2" */
    const char *split;  /* "train", "val" or "test" */
    const char *uid;
    int n_frames;       /* frames written: 0..n-1 */
    int width, height;  /* of every frame */
    double audio_seconds;
    int sample_rate, channels;
    uint64_t seed;
} avs_tree_video_t;

/* Creates root (and parents) and writes the tree for videos[0..n) in that
 * row order. Returns 0, or -1 after printing what failed to stderr. */
int avs_tree_write(const char *root, const avs_tree_video_t *videos, int n);

/* One frame as a JPEG (quality 90, 4:2:0). 0 or -1. */
int avs_tree_write_jpeg(const char *path, int width, int height, uint64_t seed, int frame);
/* A 16-bit PCM WAV file of `seconds` at `rate` with `channels` channels. 0 or -1. */
int avs_tree_write_wav(const char *path, double seconds, int rate, int channels, uint64_t seed);

#endif
