#include "video_frames.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A frame counts as "at or before t" with this much slack, so that a time
 * written in decimal (0.1 s) selects the frame stamped exactly there. */
#define TIME_SLACK_SECONDS 1e-6

struct video_reader {
    char *path;
    AVFormatContext *format;
    AVCodecContext *decoder;
    int stream_index;
    AVRational time_base;
    int64_t start_pts; /* the stream's first timestamp: time 0 */
    double duration;   /* seconds; 0 when unknown */
    double frame_interval; /* seconds between frames by the nominal rate; 0 when unknown */
    AVPacket *packet;
    AVFrame *frame;    /* the frame being received */
    AVFrame *chosen;   /* the last frame at or before the target */
    struct SwsContext *scaler;
    int scaler_width, scaler_height, scaler_format;
};

static err_code_t av_error(err_t *err, err_code_t code, const char *path, const char *what, int averr) {
    char why[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(averr, why, sizeof why);
    return err_set(err, code, "%s: %s: %s", path, what, why);
}

void video_close(video_reader_t *v) {
    if (!v) return;
    sws_freeContext(v->scaler);
    av_frame_free(&v->frame);
    av_frame_free(&v->chosen);
    av_packet_free(&v->packet);
    avcodec_free_context(&v->decoder);
    avformat_close_input(&v->format);
    free(v->path);
    free(v);
}

err_code_t video_open(const char *path, video_reader_t **out, err_t *err) {
    *out = NULL;
    video_reader_t *v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(path))) {
        free(v);
        return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    }
    err_code_t code = ERR_OK;
    int rc = avformat_open_input(&v->format, path, NULL, NULL);
    if (rc < 0) {
        code = av_error(err, ERR_IO, path, "cannot open as a video", rc);
        goto fail;
    }
    rc = avformat_find_stream_info(v->format, NULL);
    if (rc < 0) {
        code = av_error(err, ERR_FORMAT, path, "cannot read the stream information", rc);
        goto fail;
    }
    const AVCodec *codec = NULL;
    rc = av_find_best_stream(v->format, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (rc < 0) {
        code = rc == AVERROR_DECODER_NOT_FOUND ? av_error(err, ERR_FORMAT, path, "no decoder for its video stream", rc)
                                               : err_set(err, ERR_FORMAT, "%s: no video stream", path);
        goto fail;
    }
    v->stream_index = rc;
    AVStream *stream = v->format->streams[rc];
    if (stream->codecpar->width < 1 || stream->codecpar->height < 1) {
        code = err_set(err, ERR_FORMAT, "%s: no decodable video stream (frame size unknown)", path);
        goto fail;
    }
    v->time_base = stream->time_base;
    v->start_pts = stream->start_time != AV_NOPTS_VALUE ? stream->start_time : 0;
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0)
        v->duration = (double)stream->duration * av_q2d(stream->time_base);
    else if (v->format->duration != AV_NOPTS_VALUE && v->format->duration > 0)
        v->duration = (double)v->format->duration / AV_TIME_BASE;
    AVRational rate = stream->avg_frame_rate.num > 0 ? stream->avg_frame_rate : stream->r_frame_rate;
    if (rate.num > 0 && rate.den > 0) v->frame_interval = av_q2d(av_inv_q(rate));
    v->decoder = avcodec_alloc_context3(codec);
    v->packet = av_packet_alloc();
    v->frame = av_frame_alloc();
    v->chosen = av_frame_alloc();
    if (!v->decoder || !v->packet || !v->frame || !v->chosen) {
        code = err_set(err, ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    rc = avcodec_parameters_to_context(v->decoder, stream->codecpar);
    if (rc >= 0) rc = avcodec_open2(v->decoder, codec, NULL);
    if (rc < 0) {
        code = av_error(err, ERR_FORMAT, path, "cannot open the video decoder", rc);
        goto fail;
    }
    *out = v;
    return ERR_OK;
fail:
    video_close(v);
    return code;
}

double video_duration(const video_reader_t *v) { return v->duration; }

void video_frame_size(const video_reader_t *v, int *width, int *height) {
    *width = v->decoder->width;
    *height = v->decoder->height;
}

static double frame_seconds(const video_reader_t *v, const AVFrame *f) {
    int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
    if (pts == AV_NOPTS_VALUE) return NAN;
    return (double)(pts - v->start_pts) * av_q2d(v->time_base);
}

/* Seeks to the keyframe at or before `seconds` (0: the start) and resets the
 * decoder. */
static err_code_t seek_to(video_reader_t *v, double seconds, err_t *err) {
    int64_t target = v->start_pts + (int64_t)floor(seconds / av_q2d(v->time_base));
    int rc = av_seek_frame(v->format, v->stream_index, target, AVSEEK_FLAG_BACKWARD);
    if (rc < 0 && seconds > 0) rc = av_seek_frame(v->format, v->stream_index, v->start_pts, AVSEEK_FLAG_BACKWARD);
    if (rc < 0) return av_error(err, ERR_FORMAT, v->path, "cannot seek", rc);
    avcodec_flush_buffers(v->decoder);
    return ERR_OK;
}

/* Decodes forward from the current position until the frame for `seconds`
 * is known: then v->chosen holds it (*have_chosen 1). *landed_late is set
 * when the first frame decoded is already later than `seconds` (the seek
 * went too far, or `seconds` precedes the first frame); v->chosen then holds
 * that first frame. */
static err_code_t decode_until(video_reader_t *v, double seconds, int *landed_late, int *have_chosen, err_t *err) {
    int first = 1, draining = 0;
    *landed_late = 0;
    *have_chosen = 0;
    for (;;) {
        int rc = avcodec_receive_frame(v->decoder, v->frame);
        if (rc == 0) {
            /* a frame without a timestamp counts as later than any time */
            int at_or_before = frame_seconds(v, v->frame) <= seconds + TIME_SLACK_SECONDS;
            if (!at_or_before && !first) {
                av_frame_unref(v->frame);
                return ERR_OK; /* this frame is later: the chosen one is the last before it */
            }
            av_frame_unref(v->chosen);
            av_frame_move_ref(v->chosen, v->frame);
            *have_chosen = 1;
            if (!at_or_before) {
                *landed_late = 1;
                return ERR_OK;
            }
            first = 0;
            continue;
        }
        if (rc == AVERROR_EOF) return ERR_OK;
        if (rc != AVERROR(EAGAIN)) return av_error(err, ERR_FORMAT, v->path, "cannot decode a video frame", rc);
        if (draining) return ERR_OK;
        rc = av_read_frame(v->format, v->packet);
        if (rc == AVERROR_EOF) {
            draining = 1;
            rc = avcodec_send_packet(v->decoder, NULL);
            if (rc < 0 && rc != AVERROR_EOF) return av_error(err, ERR_FORMAT, v->path, "cannot flush the decoder", rc);
            continue;
        }
        if (rc < 0) return av_error(err, ERR_FORMAT, v->path, "cannot read the video", rc);
        if (v->packet->stream_index == v->stream_index) {
            /* every frame the decoder had was received above, so it takes
             * the packet (no EAGAIN) */
            rc = avcodec_send_packet(v->decoder, v->packet);
            av_packet_unref(v->packet);
            if (rc < 0) return av_error(err, ERR_FORMAT, v->path, "corrupt video data", rc);
        } else {
            av_packet_unref(v->packet);
        }
    }
}

/* A yuvj format is its yuv twin in full range; swscale warns about the
 * deprecated names, so they are renamed and the range is passed explicitly. */
static enum AVPixelFormat undeprecated(enum AVPixelFormat f, int *full_range) {
    switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full_range = 1; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full_range = 1; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: *full_range = 1; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: *full_range = 1; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: *full_range = 1; return AV_PIX_FMT_YUV411P;
    default: return f;
    }
}

static err_code_t to_rgb(video_reader_t *v, const AVFrame *f, rgb_image_t *img, err_t *err) {
    err_code_t code = rgb_image_alloc(img, f->width, f->height, v->path, err);
    if (code != ERR_OK) return code;
    int full_range = f->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat format = undeprecated((enum AVPixelFormat)f->format, &full_range);
    if (!v->scaler || v->scaler_width != f->width || v->scaler_height != f->height || v->scaler_format != f->format) {
        sws_freeContext(v->scaler);
        v->scaler = sws_getContext(f->width, f->height, format, f->width, f->height, AV_PIX_FMT_RGB24,
                                   SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
        if (!v->scaler) {
            rgb_image_free(img);
            return err_set(err, ERR_FORMAT, "%s: cannot convert %s frames to RGB", v->path,
                           av_get_pix_fmt_name(format) ? av_get_pix_fmt_name(format) : "?");
        }
        v->scaler_width = f->width;
        v->scaler_height = f->height;
        v->scaler_format = f->format;
    }
    int colorspace = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : (int)f->colorspace;
    /* for RGB sources there is no matrix: the call fails harmlessly */
    sws_setColorspaceDetails(v->scaler, sws_getCoefficients(colorspace), full_range, sws_getCoefficients(SWS_CS_DEFAULT),
                             1, 0, 1 << 16, 1 << 16);
    uint8_t *dst[4] = {img->pixels, NULL, NULL, NULL};
    int dst_stride[4] = {img->width * 3, 0, 0, 0};
    int rows = sws_scale(v->scaler, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride);
    if (rows != f->height) {
        rgb_image_free(img);
        return err_set(err, ERR_FORMAT, "%s: RGB conversion of a frame failed", v->path);
    }
    return ERR_OK;
}

err_code_t video_frame_at(video_reader_t *v, double seconds, rgb_image_t *img, err_t *err) {
    memset(img, 0, sizeof *img);
    if (!(seconds >= 0)) return err_set(err, ERR_ARG, "%s: frame time %g s is negative", v->path, seconds);
    /* some containers state the duration up to the last frame's start: one
     * frame interval of grace keeps the last frame reachable */
    if (v->duration > 0 && seconds >= v->duration + v->frame_interval)
        return err_set(err, ERR_ARG, "%s: frame time %g s is past the end of the video (%g s)", v->path, seconds,
                       v->duration);
    err_code_t code = seek_to(v, seconds, err);
    if (code != ERR_OK) return code;
    int landed_late, have_chosen;
    code = decode_until(v, seconds, &landed_late, &have_chosen, err);
    if (code != ERR_OK) return code;
    if (landed_late && seconds > 0) {
        /* the seek went past the target: decode from the start instead (if
         * the target precedes the first frame, that gives the first frame) */
        if ((code = seek_to(v, 0, err)) != ERR_OK) return code;
        code = decode_until(v, seconds, &landed_late, &have_chosen, err);
        if (code != ERR_OK) return code;
    }
    if (!have_chosen) return err_set(err, ERR_FORMAT, "%s: no decodable video frame at %g s", v->path, seconds);
    code = to_rgb(v, v->chosen, img, err);
    av_frame_unref(v->chosen);
    return code;
}

err_code_t video_frames_at(const char *path, const double *times, int n, rgb_image_t *imgs, err_t *err) {
    for (int i = 0; i < n; i++) memset(&imgs[i], 0, sizeof imgs[i]);
    video_reader_t *v;
    err_code_t code = video_open(path, &v, err);
    for (int i = 0; code == ERR_OK && i < n; i++) code = video_frame_at(v, times[i], &imgs[i], err);
    video_close(v);
    if (code != ERR_OK)
        for (int i = 0; i < n; i++) rgb_image_free(&imgs[i]);
    return code;
}
