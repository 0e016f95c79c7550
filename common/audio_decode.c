/* audio_decode.c - any audio file FFmpeg reads to interleaved doubles in the
 * file's own scale (audio.h). The codec's native sample format is read as it
 * is (no libswresample), so 16-bit samples become exactly int16 / 32768, as
 * the official loader's decode does. */
#include "audio.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/samplefmt.h>
#include <stdlib.h>
#include <string.h>

/* A growable interleaved buffer. */
typedef struct {
    double *data;
    int64_t frames, capacity; /* in frames of `channels` values */
    int channels;
} sample_buffer_t;

static int buffer_reserve(sample_buffer_t *b, int64_t more) {
    if (b->frames + more <= b->capacity) return 0;
    int64_t cap = b->capacity ? b->capacity : 16384;
    while (cap < b->frames + more) cap *= 2;
    double *d = realloc(b->data, (size_t)cap * (size_t)b->channels * sizeof(double));
    if (!d) return -1;
    b->data = d;
    b->capacity = cap;
    return 0;
}

/* Sample i of channel c of the frame, scaled to the format's full scale. */
static double frame_sample(const AVFrame *f, enum AVSampleFormat fmt, int channels, int64_t i, int c) {
    int planar = av_sample_fmt_is_planar(fmt);
    const uint8_t *base = planar ? f->extended_data[c] : f->extended_data[0];
    int64_t k = planar ? i : i * channels + c;
    switch (av_get_packed_sample_fmt(fmt)) {
    case AV_SAMPLE_FMT_U8: return ((double)((const uint8_t *)base)[k] - 128.0) / 128.0;
    case AV_SAMPLE_FMT_S16: return (double)((const int16_t *)base)[k] / 32768.0;
    case AV_SAMPLE_FMT_S32: return (double)((const int32_t *)base)[k] / 2147483648.0;
    case AV_SAMPLE_FMT_S64: return (double)((const int64_t *)base)[k] / 9223372036854775808.0;
    case AV_SAMPLE_FMT_FLT: return (double)((const float *)base)[k];
    case AV_SAMPLE_FMT_DBL: return ((const double *)base)[k];
    default: return 0.0; /* refused before decoding starts */
    }
}

static int format_supported(enum AVSampleFormat fmt) {
    switch (av_get_packed_sample_fmt(fmt)) {
    case AV_SAMPLE_FMT_U8:
    case AV_SAMPLE_FMT_S16:
    case AV_SAMPLE_FMT_S32:
    case AV_SAMPLE_FMT_S64:
    case AV_SAMPLE_FMT_FLT:
    case AV_SAMPLE_FMT_DBL: return 1;
    default: return 0;
    }
}

static err_code_t append_frame(const char *path, sample_buffer_t *b, const AVFrame *f, err_t *err) {
    enum AVSampleFormat fmt = (enum AVSampleFormat)f->format;
    if (f->ch_layout.nb_channels != b->channels)
        return err_set(err, ERR_FORMAT, "%s: the channel count changes within the stream (%d, then %d)", path,
                       b->channels, f->ch_layout.nb_channels);
    if (!format_supported(fmt))
        return err_set(err, ERR_FORMAT, "%s: unsupported decoded sample format %s", path,
                       av_get_sample_fmt_name(fmt) ? av_get_sample_fmt_name(fmt) : "?");
    if (buffer_reserve(b, f->nb_samples) != 0) return err_set(err, ERR_NOMEM, "%s: out of memory decoding", path);
    double *dst = b->data + b->frames * b->channels;
    for (int64_t i = 0; i < f->nb_samples; i++)
        for (int c = 0; c < b->channels; c++) dst[i * b->channels + c] = frame_sample(f, fmt, b->channels, i, c);
    b->frames += f->nb_samples;
    return ERR_OK;
}

/* Receives every frame the decoder has ready. */
static err_code_t drain_decoder(const char *path, AVCodecContext *dec, AVFrame *frame, sample_buffer_t *b, err_t *err) {
    for (;;) {
        int rc = avcodec_receive_frame(dec, frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return ERR_OK;
        if (rc < 0) return err_set(err, ERR_FORMAT, "%s: decoding failed: %s", path, av_err2str(rc));
        err_code_t e = append_frame(path, b, frame, err);
        av_frame_unref(frame);
        if (e != ERR_OK) return e;
    }
}

typedef struct {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
} decoder_t;

static void decoder_close(decoder_t *d) {
    av_frame_free(&d->frame);
    av_packet_free(&d->pkt);
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
}

/* Opens path and the decoder of its best audio stream; returns the stream index. */
static err_code_t decoder_open(const char *path, decoder_t *d, int *stream, err_t *err) {
    int rc = avformat_open_input(&d->fmt, path, NULL, NULL);
    if (rc < 0) {
        if (rc == AVERROR(ENOENT) || rc == AVERROR(EACCES) || rc == AVERROR(EISDIR))
            return err_set(err, ERR_IO, "%s: cannot open: %s", path, av_err2str(rc));
        return err_set(err, ERR_FORMAT, "%s: not an audio file FFmpeg can read: %s", path, av_err2str(rc));
    }
    rc = avformat_find_stream_info(d->fmt, NULL);
    if (rc < 0) return err_set(err, ERR_FORMAT, "%s: not an audio file FFmpeg can read: %s", path, av_err2str(rc));
    const AVCodec *codec = NULL;
    *stream = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (*stream < 0 || !codec)
        return err_set(err, ERR_FORMAT, "%s: not an audio file: %s", path,
                       *stream == AVERROR_DECODER_NOT_FOUND ? "no decoder for its audio stream" : "no audio stream");
    d->dec = avcodec_alloc_context3(codec);
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->dec || !d->pkt || !d->frame) return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    rc = avcodec_parameters_to_context(d->dec, d->fmt->streams[*stream]->codecpar);
    if (rc >= 0) rc = avcodec_open2(d->dec, codec, NULL);
    if (rc < 0) return err_set(err, ERR_FORMAT, "%s: cannot open the %s decoder: %s", path, codec->name, av_err2str(rc));
    if (d->dec->ch_layout.nb_channels < 1 || d->dec->sample_rate < 1)
        return err_set(err, ERR_FORMAT, "%s: the audio stream has %d channels at %d Hz", path,
                       d->dec->ch_layout.nb_channels, d->dec->sample_rate);
    return ERR_OK;
}

static err_code_t decode_stream(const char *path, decoder_t *d, int stream, sample_buffer_t *b, err_t *err) {
    for (;;) {
        int rc = av_read_frame(d->fmt, d->pkt);
        if (rc == AVERROR_EOF) break;
        if (rc < 0) return err_set(err, ERR_FORMAT, "%s: reading failed: %s", path, av_err2str(rc));
        if (d->pkt->stream_index == stream) {
            rc = avcodec_send_packet(d->dec, d->pkt);
            av_packet_unref(d->pkt);
            if (rc < 0 && rc != AVERROR(EAGAIN))
                return err_set(err, ERR_FORMAT, "%s: decoding failed: %s", path, av_err2str(rc));
            err_code_t e = drain_decoder(path, d->dec, d->frame, b, err);
            if (e != ERR_OK) return e;
        } else {
            av_packet_unref(d->pkt);
        }
    }
    avcodec_send_packet(d->dec, NULL); /* flush: the decoder's delayed frames */
    return drain_decoder(path, d->dec, d->frame, b, err);
}

err_code_t audio_decode(const char *path, audio_decoded_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    decoder_t d = {0};
    int stream = -1;
    err_code_t e = decoder_open(path, &d, &stream, err);
    sample_buffer_t b = {0};
    if (e == ERR_OK) {
        b.channels = d.dec->ch_layout.nb_channels;
        e = decode_stream(path, &d, stream, &b, err);
    }
    if (e == ERR_OK) {
        out->samples = b.data ? b.data : calloc((size_t)b.channels, sizeof(double));
        if (!out->samples) e = err_set(err, ERR_NOMEM, "%s: out of memory", path);
    }
    if (e == ERR_OK) {
        out->frames = b.frames;
        out->channels = b.channels;
        out->sample_rate = d.dec->sample_rate;
        const char *name = av_get_sample_fmt_name(d.dec->sample_fmt);
        snprintf(out->format, sizeof out->format, "%s", name ? name : "?");
    } else {
        free(b.data);
        memset(out, 0, sizeof *out);
    }
    decoder_close(&d);
    return e;
}

void audio_decoded_free(audio_decoded_t *a) {
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}
