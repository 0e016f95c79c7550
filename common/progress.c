#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TTY_REDRAW_S 0.1 /* at most 10 redraws a second: faster only costs CPU and flicker */
#define DEFAULT_LINE_INTERVAL_S 10.0

double progress_monotonic_clock(void *ctx) {
    (void)ctx;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now_s(const progress_t *p) { return p->clock(p->clock_ctx); }

/* "37s", "2m05s", "1h02m03s": short enough for a one-line bar. */
static void format_duration(double seconds, char *buf, size_t size) {
    if (!(seconds >= 0.0)) seconds = 0.0;
    long s = lround(seconds);
    if (s < 60) snprintf(buf, size, "%lds", s);
    else if (s < 3600) snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, size, "%ldh%02ldm%02lds", s / 3600, (s / 60) % 60, s % 60);
}

/* Three significant digits or so, without exponents. */
static void format_rate(double rate, char *buf, size_t size) {
    if (rate < 10.0) snprintf(buf, size, "%.2f", rate);
    else if (rate < 100.0) snprintf(buf, size, "%.1f", rate);
    else snprintf(buf, size, "%.0f", rate);
}

/* The rates part: ", 2.00 videos/s, 50.0 frames/s". */
static void format_rates(const progress_t *p, double elapsed, char *buf, size_t size) {
    char item_rate[32], extra_rate[32];
    double seconds = elapsed > 0.0 ? elapsed : 0.0;
    format_rate(seconds > 0.0 ? (double)p->done / seconds : 0.0, item_rate, sizeof item_rate);
    int n = snprintf(buf, size, ", %s %s/s", item_rate, p->unit);
    if (p->extra_unit[0] && n >= 0 && (size_t)n < size) {
        format_rate(seconds > 0.0 ? (double)p->extra / seconds : 0.0, extra_rate, sizeof extra_rate);
        snprintf(buf + n, size - (size_t)n, ", %s %s/s", extra_rate, p->extra_unit);
    }
}

/* "extract: 20/100 videos (20.0%), 2.00 videos/s, 50.0 frames/s, elapsed 10s, ETA 40s" */
static void format_status(const progress_t *p, double now, char *buf, size_t size) {
    double elapsed = now - p->start_s;
    char rates[128], elapsed_text[32], eta_text[32] = "?";
    format_rates(p, elapsed, rates, sizeof rates);
    format_duration(elapsed, elapsed_text, sizeof elapsed_text);
    if (p->total <= 0) {
        snprintf(buf, size, "%s: %lld %s%s, elapsed %s", p->name, (long long)p->done, p->unit, rates,
                 elapsed_text);
        return;
    }
    if (p->done >= p->total) {
        format_duration(0.0, eta_text, sizeof eta_text);
    } else if (p->done > 0 && elapsed > 0.0) {
        double rate = (double)p->done / elapsed;
        format_duration((double)(p->total - p->done) / rate, eta_text, sizeof eta_text);
    }
    snprintf(buf, size, "%s: %lld/%lld %s (%.1f%%)%s, elapsed %s, ETA %s", p->name, (long long)p->done,
             (long long)p->total, p->unit, 100.0 * (double)p->done / (double)p->total, rates,
             elapsed_text, eta_text);
}

/* "extract: finished 100/100 videos in 50s, 2.00 videos/s, 50.0 frames/s (2500 frames)" */
static void format_final(const progress_t *p, double now, char *buf, size_t size) {
    double elapsed = now - p->start_s;
    char rates[128], elapsed_text[32], count[64], extra[64] = "";
    format_rates(p, elapsed, rates, sizeof rates);
    format_duration(elapsed, elapsed_text, sizeof elapsed_text);
    if (p->total > 0) snprintf(count, sizeof count, "%lld/%lld", (long long)p->done, (long long)p->total);
    else snprintf(count, sizeof count, "%lld", (long long)p->done);
    if (p->extra_unit[0]) snprintf(extra, sizeof extra, " (%lld %s)", (long long)p->extra, p->extra_unit);
    snprintf(buf, size, "%s: finished %s %s in %s%s%s", p->name, count, p->unit, elapsed_text, rates, extra);
}

/* Redraws the terminal line in place, cut to the terminal's width so it never
 * wraps (a wrapped line cannot be overwritten with \r). */
static void draw_tty(const char *text, int final) {
    FILE *stream = log_stream();
    int width = (int)strlen(text);
    struct winsize ws;
    if (ioctl(fileno(stream), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && width > ws.ws_col - 1)
        width = ws.ws_col - 1;
    flockfile(stream);
    fprintf(stream, "\r%.*s\033[K%s", width, text, final ? "\n" : "");
    fflush(stream);
    funlockfile(stream);
}

static void copy_name(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : ""); }

void progress_start_with(progress_t *p, const char *name, int64_t total, const char *unit,
                         const progress_options_t *options) {
    progress_options_t defaults = {0};
    if (!options) options = &defaults;
    memset(p, 0, sizeof *p);
    copy_name(p->name, sizeof p->name, name);
    copy_name(p->unit, sizeof p->unit, unit ? unit : "items");
    copy_name(p->extra_unit, sizeof p->extra_unit, options->extra_unit);
    p->total = total;
    p->line_interval_s = options->line_interval_s > 0.0 ? options->line_interval_s : DEFAULT_LINE_INTERVAL_S;
    p->clock = options->clock ? options->clock : progress_monotonic_clock;
    p->clock_ctx = options->clock_ctx;
    if (options->mode == PROGRESS_AUTO) p->tty = isatty(fileno(log_stream()));
    else p->tty = options->mode == PROGRESS_TTY;
    p->start_s = now_s(p);
    p->last_line_s = p->start_s;
    p->last_draw_s = -INFINITY; /* the first update draws at once */
}

void progress_start(progress_t *p, const char *name, int64_t total, const char *unit) {
    progress_start_with(p, name, total, unit, NULL);
}

void progress_update(progress_t *p, int64_t done, int64_t extra) {
    p->done = done;
    p->extra = extra;
    if (!log_enabled(LOG_LEVEL_INFO)) return;
    double now = now_s(p);
    char text[512];
    if (p->tty) {
        if (now - p->last_draw_s < TTY_REDRAW_S) return;
        p->last_draw_s = now;
        format_status(p, now, text, sizeof text);
        draw_tty(text, 0);
    } else {
        if (now - p->last_line_s < p->line_interval_s) return;
        p->last_line_s = now;
        format_status(p, now, text, sizeof text);
        log_info("%s", text);
    }
}

void progress_finish(progress_t *p) {
    if (!log_enabled(LOG_LEVEL_INFO)) return;
    char text[512];
    format_final(p, now_s(p), text, sizeof text);
    if (p->tty) draw_tty(text, 1);
    else log_info("%s", text);
}
