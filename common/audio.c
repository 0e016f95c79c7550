/* audio.c - channel mixing, resampling and the decode-mix-resample pipeline
 * (audio.h). Decoding itself is in audio_decode.c. */
#include "audio.h"

#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "resampy.h"

double *audio_mix_mono(const audio_decoded_t *a) {
    double *mono = malloc((size_t)(a->frames > 0 ? a->frames : 1) * sizeof(double));
    if (!mono) return NULL;
    /* numpy's mean over the channel axis: the channels summed in order, then
     * divided by their count (for stereo int16 / 32768 input this is exact) */
    for (int64_t i = 0; i < a->frames; i++) {
        const double *s = a->samples + i * a->channels;
        double sum = 0.0;
        for (int c = 0; c < a->channels; c++) sum += s[c];
        mono[i] = sum / (double)a->channels;
    }
    return mono;
}

int64_t audio_resampled_length(int64_t n, int from_rate, int to_rate, audio_resampler_t how) {
    return resampy_output_length(n, from_rate, to_rate, how == AUDIO_RESAMPLE_RESAMPY_V02 ? RESAMPY_V02 : RESAMPY_V04);
}

/* libswresample with its default filter, mono doubles in and out. */
static err_code_t swr_resample(const double *x, int64_t n, int from_rate, int to_rate, double *y, int64_t n_out,
                               err_t *err) {
    static int warned;
    if (!warned) {
        warned = 1; /* a race here only repeats the warning */
        log_warn("resampling with libswresample: faster, but not the official resampy kaiser_best "
                 "(VGGish embeddings differ by 0.1-0.7%%, mostly through the top mel band)");
    }
    SwrContext *swr = NULL;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int rc = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_DBL, to_rate, &mono, AV_SAMPLE_FMT_DBL, from_rate, 0, NULL);
    if (rc >= 0) rc = swr_init(swr);
    if (rc < 0) {
        swr_free(&swr);
        return err_set(err, ERR_ARG, "resample: libswresample refuses %d -> %d Hz: %s", from_rate, to_rate,
                       av_err2str(rc));
    }
    /* room for everything it may give, including what the flush adds */
    int64_t cap = swr_get_out_samples(swr, (int)(n > INT32_MAX / 2 ? INT32_MAX / 2 : n)) + 256;
    if (cap < n_out) cap = n_out;
    double *buf = malloc((size_t)cap * sizeof(double));
    if (!buf) {
        swr_free(&swr);
        return err_set(err, ERR_NOMEM, "resample: out of memory");
    }
    int64_t got = 0;
    const uint8_t *in = (const uint8_t *)x;
    for (int64_t done = 0; done < n && rc >= 0;) {
        int chunk = (int)(n - done > 65536 ? 65536 : n - done);
        const uint8_t *src = in + done * (int64_t)sizeof(double);
        uint8_t *dst = (uint8_t *)(buf + got);
        rc = swr_convert(swr, &dst, (int)(cap - got > INT32_MAX ? INT32_MAX : cap - got), &src, chunk);
        if (rc > 0) got += rc;
        done += chunk;
    }
    while (rc >= 0 && got < cap) { /* flush the samples still in the filter */
        uint8_t *dst = (uint8_t *)(buf + got);
        rc = swr_convert(swr, &dst, (int)(cap - got > INT32_MAX ? INT32_MAX : cap - got), NULL, 0);
        if (rc <= 0) break;
        got += rc;
    }
    swr_free(&swr);
    if (rc < 0) {
        free(buf);
        return err_set(err, ERR_ARG, "resample: libswresample failed: %s", av_err2str(rc));
    }
    /* the same length as resampy's, so the example count does not depend on the resampler */
    for (int64_t i = 0; i < n_out; i++) y[i] = i < got ? buf[i] : 0.0;
    free(buf);
    return ERR_OK;
}

err_code_t audio_resample(const double *x, int64_t n, int from_rate, int to_rate, audio_resampler_t how, double *y,
                          err_t *err) {
    if (from_rate <= 0 || to_rate <= 0)
        return err_set(err, ERR_ARG, "resample: invalid sample rates %d -> %d", from_rate, to_rate);
    if (from_rate == to_rate) {
        if (n > 0) memcpy(y, x, (size_t)n * sizeof(double));
        return ERR_OK;
    }
    if (how == AUDIO_RESAMPLE_SWR) {
        int64_t n_out = audio_resampled_length(n, from_rate, to_rate, how);
        if (n_out < 1)
            return err_set(err, ERR_ARG, "resample: %lld samples are too few to resample from %d to %d Hz",
                           (long long)n, from_rate, to_rate);
        return swr_resample(x, n, from_rate, to_rate, y, n_out, err);
    }
    return resampy_resample(x, n, from_rate, to_rate, how == AUDIO_RESAMPLE_RESAMPY_V02 ? RESAMPY_V02 : RESAMPY_V04, y,
                            err);
}

err_code_t audio_load_mono(const char *path, int target_rate, audio_resampler_t how, int64_t min_samples,
                           audio_mono_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    audio_decoded_t dec;
    err_code_t e = audio_decode(path, &dec, err);
    if (e != ERR_OK) return e;
    if (dec.frames == 0) {
        audio_decoded_free(&dec);
        return err_set(err, ERR_ARG, "%s: the file holds no audio samples", path);
    }
    double *mono = audio_mix_mono(&dec);
    int rate = dec.sample_rate;
    int64_t n = dec.frames;
    audio_decoded_free(&dec);
    if (!mono) return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    if (rate != target_rate) {
        int64_t n_out = audio_resampled_length(n, rate, target_rate, how);
        double *y = malloc((size_t)(n_out > 0 ? n_out : 1) * sizeof(double));
        if (!y) {
            free(mono);
            return err_set(err, ERR_NOMEM, "%s: out of memory", path);
        }
        e = audio_resample(mono, n, rate, target_rate, how, y, err);
        free(mono);
        if (e != ERR_OK) {
            free(y);
            err_prefix(err, "%s: ", path);
            return e;
        }
        mono = y;
        n = n_out;
    }
    if (n < min_samples) {
        free(mono);
        return err_set(err, ERR_ARG, "%s: too short: %lld samples at %d Hz (%.3f s), at least %lld (%.3f s) needed",
                       path, (long long)n, target_rate, (double)n / target_rate, (long long)min_samples,
                       (double)min_samples / target_rate);
    }
    out->samples = mono;
    out->n = n;
    out->sample_rate = target_rate;
    return ERR_OK;
}

void audio_mono_free(audio_mono_t *a) {
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}
