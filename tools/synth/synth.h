/* synth.h - stepstone-synth's parts: the scene model, its pictures and
 * sounds, and the file writers.
 *
 * The data set is built so that sound decides the answer. There are K object
 * classes (--classes); each has its own look (shape, colour, texture, motion)
 * and its own sound (pitch, timbre, rhythm). A video shows a few objects; some
 * of them sound, the others (distractors, of other classes) are silent. The
 * label of a frame marks the pixels of the objects sounding at that moment
 * with their class; silent objects are background. So a model must hear which
 * of the visible objects are sounding:
 *   v1s  one sounding object (+ silent distractors), 5 s, sounding throughout
 *   v1m  two or three sounding objects (+ distractors), 5 s
 *   v2   one to three objects that start and stop sounding second by second
 *        (+ distractors), 10 s
 * Audio is the mix of the sounding objects plus noise (--noise).
 *
 * Everything about a video is drawn from its own generator, seeded from
 * (--seed, video index), so files do not depend on the thread count and the
 * same seed gives byte-identical files. Rendering is a pure function of the
 * video plan and the time, so frames/<i>.jpg are the pictures of the clip at
 * t = i + 0.5 s (before compression). */
#ifndef STEPSTONE_SYNTH_H
#define STEPSTONE_SYNTH_H

#include <stdint.h>

#include "avsbench.h"
#include "error.h"
#include "rng.h"

#define SYNTH_MAX_OBJECTS 8
#define SYNTH_MAX_CLASSES 24
#define SYNTH_RATE 16000 /* audio sample rate */

typedef struct {
    int classes;          /* K: object classes in use (2..SYNTH_MAX_CLASSES) */
    int size;             /* frame and label side in pixels */
    double object_size;   /* mean object radius as a fraction of the side */
    int distractors;      /* at most this many silent objects per video */
    double noise;         /* audio noise amplitude (the sources peak near 0.3 each) */
    int fps;              /* clip frame rate */
    int write_video;      /* 0: no <uid>.mp4 */
    uint64_t seed;
} synth_options_t;

/* One synthetic class: how it looks and how it sounds. */
typedef struct {
    int class_id;         /* AVSBench class id (1..70) it is labelled with */
    uint8_t rgb[3];
    int shape;            /* 0 disc, 1 square, 2 triangle, 3 diamond, 4 ring, 5 cross, 6 wide ellipse, 7 hexagon */
    int texture;          /* 0 solid, 1 stripes, 2 checker, 3 dots */
    int motion;           /* 0 jitter, 1 sway, 2 bob, 3 circle */
    double f0;            /* fundamental, Hz */
    int timbre;           /* 0 sine, 1 odd harmonics, 2 all harmonics, 3 bell (inharmonic) */
    double pulse_hz;      /* 0: continuous, else a decaying pulse at this rate */
} synth_class_t;

typedef struct {
    int cls;              /* index into the class table */
    double x, y, r;       /* centre and radius in pixels at t = 0 */
    double phase, amp;    /* motion */
    int sounding;         /* 0: a silent distractor */
    uint16_t active;      /* bit s: sounding during second s (v2 switches) */
} synth_object_t;

typedef struct {
    avs_subset_t subset;
    avs_split_t split;
    char uid[32];
    int seconds;          /* 5 or 10 */
    int n_objects;
    synth_object_t obj[SYNTH_MAX_OBJECTS]; /* drawn in order (later on top) */
    uint8_t bg[2][3];     /* background gradient colours */
    int bg_pattern;       /* 0 plain gradient, 1 soft blobs, 2 diagonal bands */
    uint64_t noise_seed;
} synth_video_t;

/* The class table for the options (deterministic in seed and classes). */
void synth_make_classes(const synth_options_t *o, synth_class_t *classes);

/* Plans video `index` of `total` (subset, split, objects). */
void synth_plan_video(const synth_options_t *o, const synth_class_t *classes, int index, int total,
                      synth_video_t *v);

/* Renders the picture at time t (seconds) into rgb (size*size*3) and, when
 * label is not NULL, the class ids of the sounding objects (size*size). */
void synth_render(const synth_options_t *o, const synth_class_t *classes, const synth_video_t *v, double t,
                  uint8_t *rgb, uint8_t *label);

/* Whether object k sounds at time t. */
int synth_sounding(const synth_video_t *v, int k, double t);

/* The mono sound track, seconds * SYNTH_RATE samples in [-1, 1]. */
void synth_audio(const synth_options_t *o, const synth_class_t *classes, const synth_video_t *v, float *out);

/* ---- writers (writers.c, mp4.c) ---- */

/* 16-bit PCM mono WAV, written directly (RIFF/WAVE, 44-byte header). */
err_code_t synth_write_wav(const char *path, const float *samples, int n, int rate, err_t *err);
/* Baseline JPEG through libturbojpeg (quality 92, 4:2:0). */
err_code_t synth_write_jpeg(const char *path, const uint8_t *rgb, int w, int h, err_t *err);
/* The clip: MPEG-4 part 2 video (yuv420p) and AAC audio in an MP4, with
 * FFmpeg's bit-exact flags so that the same input gives the same bytes. */
err_code_t synth_write_mp4(const char *path, const synth_options_t *o, const synth_class_t *classes,
                           const synth_video_t *v, const float *audio, err_t *err);

#endif
