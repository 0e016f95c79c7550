/* progress.h - progress of a long job (videos extracted, epochs trained).
 *
 *   progress_t p;
 *   progress_start(&p, "extract", n_videos, "videos");
 *   for (...) { ...; progress_update(&p, videos_done, frames_done); }
 *   progress_finish(&p);
 *
 * On a terminal (the log stream, stderr by default, is a TTY) it keeps one
 * self-overwriting line, redrawn at most 10 times a second:
 *   extract: 20/100 videos (20.0%), 2.00 videos/s, 50.0 frames/s, elapsed 10s, ETA 40s
 * Elsewhere (a log file, CI) it writes that text as an info log line at most
 * every line_interval_s seconds (10 by default), so a batch log shows a
 * heartbeat without a flood. progress_finish writes a summary line:
 *   extract: finished 100/100 videos in 50s, 2.00 videos/s, 50.0 frames/s (2500 frames)
 * Rates are averages since the start; the ETA is the remaining count over the
 * item rate. Nothing is written when the log level is below info (log.h).
 *
 * A progress_t is used from one thread; it owns no memory. */
#ifndef STEPSTONE_PROGRESS_H
#define STEPSTONE_PROGRESS_H

#include <stdint.h>

/* Seconds on a monotonic clock; tests pass a fake one. */
typedef double (*progress_clock_fn)(void *ctx);

typedef enum {
    PROGRESS_AUTO = 0, /* TTY line when the log stream is a terminal, else plain lines */
    PROGRESS_TTY,
    PROGRESS_PLAIN
} progress_mode_t;

typedef struct {
    const char *extra_unit;  /* names the extra count ("frames"); NULL: no extra rate shown */
    double line_interval_s;  /* plain mode: least seconds between lines; <= 0 means 10 */
    progress_mode_t mode;
    progress_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
    void *clock_ctx;
} progress_options_t;

typedef struct {
    char name[32];
    char unit[32];
    char extra_unit[32]; /* "" when there is no extra count */
    int64_t total;       /* <= 0: unknown, so no percentage and no ETA */
    int64_t done;
    int64_t extra;
    int tty;
    double line_interval_s;
    double start_s, last_draw_s, last_line_s;
    progress_clock_fn clock;
    void *clock_ctx;
} progress_t;

/* Starts the clock. name, unit and options->extra_unit are copied (cut to 31
 * bytes). progress_start uses the default options. */
void progress_start(progress_t *p, const char *name, int64_t total, const char *unit);
void progress_start_with(progress_t *p, const char *name, int64_t total, const char *unit,
                         const progress_options_t *options);

/* Records the totals so far (not increments): `done` items and `extra` of the
 * extra unit (pass 0 when there is none). Draws or logs when due. */
void progress_update(progress_t *p, int64_t done, int64_t extra);

/* Writes the final line (ends the TTY line with a newline). */
void progress_finish(progress_t *p);

/* The CLOCK_MONOTONIC clock that progress_start uses; ctx is ignored. */
double progress_monotonic_clock(void *ctx);

#endif
