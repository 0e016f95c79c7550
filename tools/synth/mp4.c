/* mp4.c - the synthetic clip as an MP4 through the FFmpeg libraries (synth.h):
 * MPEG-4 part 2 video at --fps (yuv420p, BT.601 limited range, converted here
 * with integer arithmetic) and AAC audio (FFmpeg's native encoder, 16 kHz
 * mono). Encoders run single-threaded with AV_CODEC_FLAG_BITEXACT and the
 * muxer with AVFMT_FLAG_BITEXACT, so the bytes depend only on the input and
 * the FFmpeg version. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

typedef struct {
    AVFormatContext *fmt;
    AVCodecContext *venc, *aenc;
    AVStream *vst, *ast;
    AVFrame *frame;
    AVPacket *pkt;
    const char *path;
} mp4_t;

static err_code_t av_fail(err_t *err, const char *path, const char *what, int code) {
    char msg[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, msg, sizeof msg);
    return err_set(err, ERR_IO, "%s: %s: %s", path, what, msg);
}

static err_code_t drain(mp4_t *m, AVCodecContext *enc, AVStream *st, err_t *err) {
    for (;;) {
        int rc = avcodec_receive_packet(enc, m->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return ERR_OK;
        if (rc < 0) return av_fail(err, m->path, "encoding", rc);
        if (enc == m->venc) m->pkt->duration = 1; /* one frame, so the clip lasts its full length */
        av_packet_rescale_ts(m->pkt, enc->time_base, st->time_base);
        m->pkt->stream_index = st->index;
        rc = av_interleaved_write_frame(m->fmt, m->pkt);
        if (rc < 0) return av_fail(err, m->path, "writing a packet", rc);
    }
}

static err_code_t open_encoders(mp4_t *m, const synth_options_t *o, err_t *err) {
    const AVCodec *vc = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    const AVCodec *ac = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!vc || !ac) return err_set(err, ERR_IO, "%s: this FFmpeg has no MPEG-4 or AAC encoder", m->path);
    m->vst = avformat_new_stream(m->fmt, NULL);
    m->ast = avformat_new_stream(m->fmt, NULL);
    m->venc = avcodec_alloc_context3(vc);
    m->aenc = avcodec_alloc_context3(ac);
    if (!m->vst || !m->ast || !m->venc || !m->aenc) return err_set(err, ERR_NOMEM, "%s: out of memory", m->path);
    AVCodecContext *v = m->venc;
    v->width = o->size;
    v->height = o->size;
    v->pix_fmt = AV_PIX_FMT_YUV420P;
    v->time_base = (AVRational){1, o->fps};
    v->framerate = (AVRational){o->fps, 1};
    v->gop_size = 5 * o->fps;
    v->flags |= AV_CODEC_FLAG_QSCALE | AV_CODEC_FLAG_BITEXACT;
    v->global_quality = FF_QP2LAMBDA * 5;
    v->thread_count = 1;
    v->color_range = AVCOL_RANGE_MPEG;
    v->colorspace = AVCOL_SPC_BT470BG;
    AVCodecContext *a = m->aenc;
    a->sample_fmt = AV_SAMPLE_FMT_FLTP;
    a->sample_rate = SYNTH_RATE;
    av_channel_layout_default(&a->ch_layout, 1);
    a->bit_rate = 48000;
    a->time_base = (AVRational){1, SYNTH_RATE};
    a->flags |= AV_CODEC_FLAG_BITEXACT;
    a->thread_count = 1;
    if (m->fmt->oformat->flags & AVFMT_GLOBALHEADER) {
        v->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        a->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    int rc;
    if ((rc = avcodec_open2(v, vc, NULL)) < 0) return av_fail(err, m->path, "opening the video encoder", rc);
    if ((rc = avcodec_open2(a, ac, NULL)) < 0) return av_fail(err, m->path, "opening the audio encoder", rc);
    if ((rc = avcodec_parameters_from_context(m->vst->codecpar, v)) < 0 ||
        (rc = avcodec_parameters_from_context(m->ast->codecpar, a)) < 0)
        return av_fail(err, m->path, "stream parameters", rc);
    m->vst->time_base = v->time_base;
    m->ast->time_base = a->time_base;
    return ERR_OK;
}

/* BT.601 limited range, chroma from the 2x2 average */
static void rgb_to_yuv420(const uint8_t *rgb, int n, AVFrame *f) {
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            const uint8_t *p = rgb + 3 * ((size_t)y * n + x);
            f->data[0][y * f->linesize[0] + x] = (uint8_t)(((66 * p[0] + 129 * p[1] + 25 * p[2] + 128) >> 8) + 16);
        }
    for (int y = 0; y < n / 2; y++)
        for (int x = 0; x < n / 2; x++) {
            int r = 0, g = 0, b = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    const uint8_t *p = rgb + 3 * ((size_t)(2 * y + dy) * n + 2 * x + dx);
                    r += p[0], g += p[1], b += p[2];
                }
            r = (r + 2) >> 2, g = (g + 2) >> 2, b = (b + 2) >> 2;
            f->data[1][y * f->linesize[1] + x] = (uint8_t)(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
            f->data[2][y * f->linesize[2] + x] = (uint8_t)(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
        }
}

static err_code_t write_video(mp4_t *m, const synth_options_t *o, const synth_class_t *classes,
                              const synth_video_t *vid, err_t *err) {
    AVFrame *f = m->frame;
    f->format = AV_PIX_FMT_YUV420P;
    f->width = f->height = o->size;
    int rc = av_frame_get_buffer(f, 0);
    if (rc < 0) return av_fail(err, m->path, "allocating a frame", rc);
    uint8_t *rgb = malloc((size_t)o->size * o->size * 3);
    if (!rgb) return err_set(err, ERR_NOMEM, "%s: out of memory", m->path);
    err_code_t ec = ERR_OK;
    int frames = vid->seconds * o->fps;
    for (int i = 0; i < frames && !ec; i++) {
        if ((rc = av_frame_make_writable(f)) < 0) {
            ec = av_fail(err, m->path, "frame buffer", rc);
            break;
        }
        synth_render(o, classes, vid, (double)i / o->fps, rgb, NULL);
        rgb_to_yuv420(rgb, o->size, f);
        f->pts = i;
        f->quality = m->venc->global_quality;
        if ((rc = avcodec_send_frame(m->venc, f)) < 0) ec = av_fail(err, m->path, "encoding video", rc);
        if (!ec) ec = drain(m, m->venc, m->vst, err);
    }
    free(rgb);
    av_frame_unref(f);
    if (ec) return ec;
    if ((rc = avcodec_send_frame(m->venc, NULL)) < 0) return av_fail(err, m->path, "flushing video", rc);
    return drain(m, m->venc, m->vst, err);
}

static err_code_t write_audio(mp4_t *m, const float *audio, int n, err_t *err) {
    AVFrame *f = m->frame;
    int fs = m->aenc->frame_size > 0 ? m->aenc->frame_size : 1024;
    int rc;
    for (int start = 0; start < n; start += fs) {
        int len = n - start < fs ? n - start : fs;
        f->format = AV_SAMPLE_FMT_FLTP;
        f->nb_samples = len;
        f->sample_rate = SYNTH_RATE;
        if ((rc = av_channel_layout_copy(&f->ch_layout, &m->aenc->ch_layout)) < 0 ||
            (rc = av_frame_get_buffer(f, 0)) < 0)
            return av_fail(err, m->path, "allocating audio", rc);
        memcpy(f->data[0], audio + start, (size_t)len * sizeof(float));
        f->pts = start;
        rc = avcodec_send_frame(m->aenc, f);
        av_frame_unref(f);
        if (rc < 0) return av_fail(err, m->path, "encoding audio", rc);
        err_code_t ec = drain(m, m->aenc, m->ast, err);
        if (ec) return ec;
    }
    if ((rc = avcodec_send_frame(m->aenc, NULL)) < 0) return av_fail(err, m->path, "flushing audio", rc);
    return drain(m, m->aenc, m->ast, err);
}

err_code_t synth_write_mp4(const char *path, const synth_options_t *o, const synth_class_t *classes,
                           const synth_video_t *v, const float *audio, err_t *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    mp4_t m = {.path = path};
    err_code_t ec = ERR_OK;
    int rc = avformat_alloc_output_context2(&m.fmt, NULL, "mp4", tmp);
    if (rc < 0 || !m.fmt) return av_fail(err, path, "creating the MP4 muxer", rc);
    m.fmt->flags |= AVFMT_FLAG_BITEXACT;
    m.frame = av_frame_alloc();
    m.pkt = av_packet_alloc();
    if (!m.frame || !m.pkt) {
        ec = err_set(err, ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((ec = open_encoders(&m, o, err))) goto done;
    if ((rc = avio_open(&m.fmt->pb, tmp, AVIO_FLAG_WRITE)) < 0) {
        ec = av_fail(err, tmp, "cannot create", rc);
        goto done;
    }
    if ((rc = avformat_write_header(m.fmt, NULL)) < 0) {
        ec = av_fail(err, path, "writing the MP4 header", rc);
        goto done;
    }
    if ((ec = write_video(&m, o, classes, v, err))) goto done;
    if ((ec = write_audio(&m, audio, v->seconds * SYNTH_RATE, err))) goto done;
    if ((rc = av_write_trailer(m.fmt)) < 0) ec = av_fail(err, path, "finishing the MP4", rc);
done:
    if (m.fmt && m.fmt->pb) avio_closep(&m.fmt->pb);
    avcodec_free_context(&m.venc);
    avcodec_free_context(&m.aenc);
    av_frame_free(&m.frame);
    av_packet_free(&m.pkt);
    avformat_free_context(m.fmt);
    if (ec) {
        remove(tmp);
        return ec;
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return err_set(err, ERR_IO, "%s: cannot rename the finished file into place", path);
    }
    return ERR_OK;
}
