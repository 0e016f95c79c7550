/* decode_video.c - one video from disk to the networks' inputs: every frame
 * read as OpenCV reads it and processed as Mask2FormerImageProcessor does
 * (frames.h), and the audio decoded, mixed to mono, resampled to 16 kHz and
 * turned into VGGish log-mel examples (vggish.h). Runs on the decode thread:
 * it touches only its own arena and the files. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "extract.h"
#include "frames.h"

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void decode_video(const decode_settings_t *s, int video, decoded_video_t *d) {
    double t0 = seconds_now();
    const avs_video_t *v = &s->ds->videos[video];
    d->video = video;
    d->status = ERR_OK;
    d->err.code = ERR_OK;
    d->err.msg[0] = '\0';
    d->pixel_values = NULL;
    d->audio_examples = NULL;
    d->n_examples = 0;
    d->n_frames = avs_video_frames(v);

    char paths[AVS_MAX_FRAMES][4096];
    const char *path_ptrs[AVS_MAX_FRAMES];
    for (int i = 0; i < d->n_frames && d->status == ERR_OK; i++) {
        if (avs_frame_path(s->ds, v, i, paths[i], sizeof paths[i]) != 0)
            d->status = err_set(&d->err, ERR_ARG, "%s: the path of frame %d is too long", s->ds->root, i);
        path_ptrs[i] = paths[i];
    }
    /* frames first: a corrupt frame is the commonest failure and the cheaper check */
    if (d->status == ERR_OK)
        d->status = frames_to_pixel_values(path_ptrs, d->n_frames, s->processor, d->arena, &d->pixel_values, &d->err);

    char audio_path[4096];
    if (d->status == ERR_OK && avs_audio_path(s->ds, v, audio_path, sizeof audio_path) != 0)
        d->status = err_set(&d->err, ERR_ARG, "%s: the audio path is too long", s->ds->root);
    if (d->status == ERR_OK)
        d->status = vggish_examples_from_file(audio_path, s->resampler, &d->audio_examples, &d->n_examples, &d->err);
    if (d->status != ERR_OK) {
        free(d->audio_examples);
        d->audio_examples = NULL;
        d->n_examples = 0;
        d->pixel_values = NULL;
    }
    d->seconds = seconds_now() - t0;
}

void decoded_video_clear(decoded_video_t *d) {
    free(d->audio_examples);
    d->audio_examples = NULL;
    d->n_examples = 0;
    d->pixel_values = NULL;
    if (d->arena) arena_reset(d->arena);
}
