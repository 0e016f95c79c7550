/* video_frames.h - frames taken at given times from a video file, through
 * the FFmpeg libraries (libavformat, libavcodec, libswscale), as RGB8.
 *
 * Not bit-exact with anything official: the AVSBench frames were extracted
 * to JPEG files beforehand, and the official loader reads those (use
 * frames.h / jpeg_decode.h on them for parity). Decoding a video directly
 * gives the codec's pixels; the YUV -> RGB step is swscale with accurate
 * rounding and full chroma interpolation (SWS_ACCURATE_RND |
 * SWS_FULL_CHR_H_INT | SWS_BILINEAR), honouring the frame's colour matrix
 * (BT.601 when unspecified) and range (full for yuvj formats), which differs
 * from a JPEG round trip of the same frame by the JPEG's own loss and by a
 * level or so of conversion rounding. Rotation metadata (display matrix) is
 * not applied, unlike OpenCV's VideoCapture.
 *
 * Which frame "the frame at time t" is: the last frame, in presentation
 * order, whose timestamp is <= t (+1 microsecond for rounding), with time 0
 * at the video stream's first timestamp; a t before the first frame gives
 * the first frame. t at or past the stream's duration (plus one frame
 * interval, as some containers end the duration at the last frame's start)
 * is an error, so is t < 0.
 * Each time seeks to the keyframe at or before t and decodes forward, so
 * any order of times works; a seek that lands late is retried from the start.
 * Frames without timestamps count as later than any time (such a stream
 * always gives its first frame).
 *
 * Errors name the file: ERR_IO (cannot open), ERR_FORMAT (no video stream,
 * no decoder, corrupt data, nothing decodable at t), ERR_ARG (bad time),
 * ERR_NOMEM. */
#ifndef STEPSTONE_VIDEO_FRAMES_H
#define STEPSTONE_VIDEO_FRAMES_H

#include "error.h"
#include "rgb_image.h"

typedef struct video_reader video_reader_t;

/* Opens path and its best video stream. *out is NULL on error. */
err_code_t video_open(const char *path, video_reader_t **out, err_t *err);

/* The video stream's duration in seconds (0 when the file does not say),
 * and its frame size. */
double video_duration(const video_reader_t *v);
void video_frame_size(const video_reader_t *v, int *width, int *height);

/* The frame at `seconds` into *img (allocated here; rgb_image_free it).
 * On error *img is zeroed. */
err_code_t video_frame_at(video_reader_t *v, double seconds, rgb_image_t *img, err_t *err);

void video_close(video_reader_t *v);

/* Opens, takes n frames at times[0..n) into imgs[0..n), closes. On error
 * every image is zeroed (none is left allocated). */
err_code_t video_frames_at(const char *path, const double *times, int n, rgb_image_t *imgs, err_t *err);

#endif
