/* audio.h - audio files to the mono waveform the official VGGish path sees.
 *
 * The official AAVS loader decodes with towhee's audio_decode.ffmpeg and hands
 * the samples to the VGGish op, which (as torchvggish's waveform_to_examples)
 * averages the channels in double precision and resamples to 16 kHz with
 * resampy's kaiser_best when the file has another rate. Here:
 *
 *   audio_decode      any file FFmpeg reads -> samples per channel as doubles
 *                     in the file's own scale: integer formats divided by their
 *                     full scale (16-bit: int16 / 32768, 32-bit: / 2^31, 8-bit
 *                     unsigned: (u8 - 128) / 128), float formats as stored.
 *                     (FFmpeg's own "-ac 1" downmix scales stereo by 0.707
 *                     instead of averaging, which moves embeddings by ~10%:
 *                     it is not used.)
 *   audio_mix_mono    the mean of the channels, in double.
 *   audio_resample    to another rate: resampy's kaiser_best (resampy.h; the
 *                     exact official numbers), or libswresample, faster but
 *                     not the official resampler (embeddings move by ~0.5%,
 *                     mostly in the top mel band); it logs a warning once.
 *   audio_load_mono   all three, with a minimum length check.
 *
 * Errors name the file: ERR_IO (missing or unreadable), ERR_FORMAT (not an
 * audio file FFmpeg can decode, or a decoding error), ERR_ARG (no samples, or
 * fewer than the caller's minimum), ERR_NOMEM. */
#ifndef STEPSTONE_AUDIO_H
#define STEPSTONE_AUDIO_H

#include <stdint.h>

#include "error.h"

/* Decoded audio, interleaved: samples[i * channels + c] is sample i of channel c. */
typedef struct {
    double *samples;   /* owned (malloc); frames * channels values */
    int64_t frames;    /* samples per channel */
    int channels;
    int sample_rate;
    char format[16];   /* FFmpeg's name of the decoded sample format ("s16", "fltp", ...) */
} audio_decoded_t;

/* A mono waveform. */
typedef struct {
    double *samples;   /* owned (malloc) */
    int64_t n;
    int sample_rate;
} audio_mono_t;

typedef enum {
    AUDIO_RESAMPLE_RESAMPY = 0,     /* resampy >= 0.4.1 kaiser_best: the official path */
    AUDIO_RESAMPLE_RESAMPY_V02 = 1, /* resampy <= 0.2.2 kaiser_best (older installs) */
    AUDIO_RESAMPLE_SWR = 2          /* libswresample: faster, not exact */
} audio_resampler_t;

/* Decodes the first audio stream of path. A file without samples is not an
 * error here (frames = 0). On error *out is zeroed. */
err_code_t audio_decode(const char *path, audio_decoded_t *out, err_t *err);
void audio_decoded_free(audio_decoded_t *a);

/* The channel mean of a into a new malloc'd array of a->frames doubles (NULL
 * when out of memory; a->frames == 0 gives a 1-element allocation). */
double *audio_mix_mono(const audio_decoded_t *a);

/* The number of samples audio_resample gives for n samples (floor(n * to / from)
 * for resampy >= 0.4.1 and libswresample, resampy 0.2's rounding for V02). */
int64_t audio_resampled_length(int64_t n, int from_rate, int to_rate, audio_resampler_t how);

/* Resamples x[0..n) from from_rate to to_rate into y (audio_resampled_length
 * samples); equal rates copy. libswresample's output is cut or zero-padded at
 * the end to the same length as resampy's, so the example count is the same. */
err_code_t audio_resample(const double *x, int64_t n, int from_rate, int to_rate, audio_resampler_t how, double *y,
                          err_t *err);

/* Decodes path, mixes to mono and resamples to target_rate when the file's rate
 * differs. ERR_ARG naming the file when it holds no samples or, after
 * resampling, fewer than min_samples (0 = no minimum). On error *out is zeroed. */
err_code_t audio_load_mono(const char *path, int target_rate, audio_resampler_t how, int64_t min_samples,
                           audio_mono_t *out, err_t *err);
void audio_mono_free(audio_mono_t *a);

#endif
