/* vggish_frontend.c - torchvggish's log-mel examples (vggish.h), in double
 * like its numpy code: the periodic Hann window, |rfft| of 512 points through
 * libavutil's av_tx, the HTK mel matrix built as mel_features builds it, and
 * log(mel + 0.01), rounded to float only at the end. */
#include <libavutil/mem.h>
#include <libavutil/tx.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vggish.h"

#define SPECTRUM_BINS (VGGISH_FFT / 2 + 1)

int64_t vggish_num_examples(int64_t n_samples) {
    if (n_samples < VGGISH_WINDOW) return 0;
    int64_t frames = 1 + (n_samples - VGGISH_WINDOW) / VGGISH_HOP;
    if (frames < VGGISH_EXAMPLE_FRAMES) return 0;
    return 1 + (frames - VGGISH_EXAMPLE_FRAMES) / VGGISH_EXAMPLE_FRAMES;
}

static double hertz_to_mel(double hz) { return 1127.0 * log(1.0 + hz / 700.0); }

/* np.linspace(start, stop, num)[i]: i * step + start, the last point exactly stop */
static double linspace_at(double start, double stop, int num, int i) {
    if (i == num - 1) return stop;
    double step = (stop - start) / (double)(num - 1);
    return (double)i * step + start;
}

/* mel_features.spectrogram_to_mel_matrix: weights [257][64]; band b is
 * nonzero only for bins first[b] <= k < end[b], which is all the product
 * visits: adding the zero terms in order would leave every sum as it is. */
static void mel_matrix(double weights[SPECTRUM_BINS][VGGISH_BANDS], int first[VGGISH_BANDS], int end[VGGISH_BANDS]) {
    double nyquist = VGGISH_SAMPLE_RATE / 2.0;
    double lo = hertz_to_mel(VGGISH_MEL_LOW_HZ), hi = hertz_to_mel(VGGISH_MEL_HIGH_HZ);
    double edges[VGGISH_BANDS + 2];
    for (int i = 0; i < VGGISH_BANDS + 2; i++) edges[i] = linspace_at(lo, hi, VGGISH_BANDS + 2, i);
    for (int k = 0; k < SPECTRUM_BINS; k++) {
        double bin_mel = hertz_to_mel(linspace_at(0.0, nyquist, SPECTRUM_BINS, k));
        for (int b = 0; b < VGGISH_BANDS; b++) {
            double lower = (bin_mel - edges[b]) / (edges[b + 1] - edges[b]);
            double upper = (edges[b + 2] - bin_mel) / (edges[b + 2] - edges[b + 1]);
            double w = lower < upper ? lower : upper;
            /* HTK leaves out the DC bin */
            weights[k][b] = (k == 0 || w < 0.0) ? 0.0 : w;
        }
    }
    for (int b = 0; b < VGGISH_BANDS; b++) {
        first[b] = SPECTRUM_BINS;
        end[b] = 0;
        for (int k = 0; k < SPECTRUM_BINS; k++) {
            if (weights[k][b] == 0.0) continue;
            if (k < first[b]) first[b] = k;
            end[b] = k + 1;
        }
    }
}

err_code_t vggish_log_mel_examples(const double *wave, int64_t n, float **examples, int64_t *count, err_t *err) {
    *examples = NULL;
    *count = 0;
    int64_t t = vggish_num_examples(n);
    int64_t frames = t * VGGISH_EXAMPLE_FRAMES; /* only the frames examples use: the rest are dropped */
    float *out = malloc((size_t)(t > 0 ? frames * VGGISH_BANDS : 1) * sizeof(float));
    double(*mel)[VGGISH_BANDS] = malloc(sizeof(double[SPECTRUM_BINS][VGGISH_BANDS]));
    double *window = malloc(VGGISH_WINDOW * sizeof(double));
    /* av_tx wants buffers aligned for SIMD */
    double *frame = av_malloc(VGGISH_FFT * sizeof(double));
    AVComplexDouble *spectrum = av_malloc(SPECTRUM_BINS * sizeof(AVComplexDouble));
    AVTXContext *tx = NULL;
    av_tx_fn fft = NULL;
    err_code_t e = ERR_OK;
    if (!out || !mel || !window || !frame || !spectrum) {
        e = err_set(err, ERR_NOMEM, "log-mel: out of memory");
        goto done;
    }
    if (t == 0) goto done;
    double scale = 1.0;
    int rc = av_tx_init(&tx, &fft, AV_TX_DOUBLE_RDFT, 0, VGGISH_FFT, &scale, 0);
    if (rc < 0) {
        e = err_set(err, ERR_FORMAT, "log-mel: cannot set up FFmpeg's FFT (av_tx_init: %d)", rc);
        goto done;
    }
    int band_first[VGGISH_BANDS], band_end[VGGISH_BANDS];
    mel_matrix(mel, band_first, band_end);
    /* mel_features.periodic_hann: 0.5 - 0.5 cos(2 pi / N * k) */
    for (int k = 0; k < VGGISH_WINDOW; k++) window[k] = 0.5 - 0.5 * cos(2.0 * M_PI / VGGISH_WINDOW * (double)k);
    for (int64_t f = 0; f < frames; f++) {
        const double *src = wave + f * VGGISH_HOP;
        for (int k = 0; k < VGGISH_WINDOW; k++) frame[k] = src[k] * window[k];
        memset(frame + VGGISH_WINDOW, 0, (VGGISH_FFT - VGGISH_WINDOW) * sizeof(double)); /* rfft's zero padding */
        fft(tx, spectrum, frame, sizeof(double));
        double magnitude[SPECTRUM_BINS];
        for (int k = 0; k < SPECTRUM_BINS; k++) magnitude[k] = hypot(spectrum[k].re, spectrum[k].im);
        float *row = out + f * VGGISH_BANDS;
        for (int b = 0; b < VGGISH_BANDS; b++) {
            double sum = 0.0;
            for (int k = band_first[b]; k < band_end[b]; k++) sum += magnitude[k] * mel[k][b];
            row[b] = (float)log(sum + VGGISH_LOG_OFFSET);
        }
    }
    *count = t;
done:
    av_tx_uninit(&tx);
    av_free(spectrum);
    av_free(frame);
    free(window);
    free(mel);
    if (e != ERR_OK) {
        free(out);
        return e;
    }
    *examples = out;
    return ERR_OK;
}

err_code_t vggish_examples_from_file(const char *path, audio_resampler_t how, float **examples, int64_t *count,
                                     err_t *err) {
    *examples = NULL;
    *count = 0;
    audio_mono_t wave;
    err_code_t e = audio_load_mono(path, VGGISH_SAMPLE_RATE, how, VGGISH_MIN_SAMPLES, &wave, err);
    if (e != ERR_OK) return e;
    e = vggish_log_mel_examples(wave.samples, wave.n, examples, count, err);
    audio_mono_free(&wave);
    if (e != ERR_OK) err_prefix(err, "%s: ", path);
    return e;
}
