/* test_log_progress.c - the logger's line format, levels and locking, and
 * the progress reporter's lines, rates and ETA under a fake clock. */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "progress.h"

/* ------------------------------------------------------------- capturing */

static char *capture_buf;
static size_t capture_len;
static FILE *capture_stream;

static void capture_begin(void) {
    capture_stream = open_memstream(&capture_buf, &capture_len);
    if (!capture_stream) {
        perror("open_memstream");
        exit(2);
    }
    log_set_stream(capture_stream);
}

/* Returns what was logged since capture_begin (caller frees). */
static char *capture_end(void) {
    log_set_stream(NULL);
    fclose(capture_stream);
    return capture_buf;
}

static int count_char(const char *s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

/* Copies the message parts (after "<level>: ") of the captured lines into
 * msgs, one per line. Returns the number of lines. */
static int messages(const char *text, char msgs[][256], int max) {
    int n = 0;
    const char *line = text;
    while (*line && n < max) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *colon = strstr(line, ": ");
        const char *msg = colon && colon < line + len ? colon + 2 : line;
        snprintf(msgs[n++], 256, "%.*s", (int)(line + len - msg), msg);
        line += len + (end ? 1 : 0);
    }
    return n;
}

/* ------------------------------------------------------------------- log */

static const char *LINE_RE =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} stepstone-test (error|warn|info|debug): ";

static int all_lines_match(const char *text, int *n_lines) {
    regex_t re;
    if (regcomp(&re, LINE_RE, REG_EXTENDED | REG_NOSUB) != 0) return 0;
    int ok = 1;
    *n_lines = 0;
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        (*n_lines)++;
        if (regexec(&re, line, 0, NULL, 0) != 0) ok = 0;
    }
    free(copy);
    regfree(&re);
    return ok;
}

static void test_log_env_level(void) {
    /* Runs first: the environment is read once, on first use. */
    setenv("STEPSTONE_LOG", "debug", 1);
    check(log_level() == LOG_LEVEL_DEBUG, "log/level_from_env", "level %d", (int)log_level());
    log_set_level(LOG_LEVEL_INFO);
    check(log_level() == LOG_LEVEL_INFO, "log/setter_overrides_env", "level %d", (int)log_level());
}

static void test_log_format_and_levels(void) {
    log_set_program("stepstone-test");
    capture_begin();
    log_info("hello %d", 42);
    log_debug("hidden at info");
    log_set_level(LOG_LEVEL_WARN);
    log_info("hidden at warn");
    log_warn("careful\n"); /* a trailing newline is not doubled */
    log_error("broken: %s", "x.png");
    log_set_level(LOG_LEVEL_DEBUG);
    errno = ENOENT;
    log_debug("visible at debug");
    int errno_kept = errno == ENOENT;
    log_set_level(LOG_LEVEL_INFO);
    char *out = capture_end();

    int n_lines = 0;
    check(all_lines_match(out, &n_lines) && n_lines == 4, "log/line_format", "%d lines:\n%s", n_lines, out);
    char msgs[8][256];
    int n = messages(out, msgs, 8);
    check(n == 4 && strcmp(msgs[0], "hello 42") == 0 && strcmp(msgs[1], "careful") == 0 &&
              strcmp(msgs[2], "broken: x.png") == 0 && strcmp(msgs[3], "visible at debug") == 0,
          "log/levels_filter", "got:\n%s", out);
    check(strstr(out, " info: hello 42\n") && strstr(out, " warn: careful\n") && strstr(out, " error: broken") &&
              strstr(out, " debug: visible"),
          "log/level_names", "got:\n%s", out);
    check(errno_kept, "log/keeps_errno", "errno changed by logging");
    free(out);

    log_level_t level = LOG_LEVEL_ERROR;
    check(log_parse_level("WARNING", &level) == 0 && level == LOG_LEVEL_WARN && log_parse_level("Debug", &level) == 0 &&
              level == LOG_LEVEL_DEBUG && log_parse_level("loud", &level) != 0 && log_parse_level(NULL, &level) != 0,
          "log/parse_level", "parsing disagrees");
    check(!log_enabled(LOG_LEVEL_DEBUG) && log_enabled(LOG_LEVEL_INFO) && log_enabled(LOG_LEVEL_ERROR),
          "log/enabled", "log_enabled disagrees at info");
}

static void *log_from_thread(void *arg) {
    int id = (int)(long)arg;
    for (int i = 0; i < 200; i++) log_info("thread %d line %d with some text to make it long enough", id, i);
    return NULL;
}

static void test_log_threads(void) {
    capture_begin();
    pthread_t threads[4];
    for (long t = 0; t < 4; t++) pthread_create(&threads[t], NULL, log_from_thread, (void *)t);
    for (int t = 0; t < 4; t++) pthread_join(threads[t], NULL);
    char *out = capture_end();
    int n_lines = 0;
    check(all_lines_match(out, &n_lines) && n_lines == 800, "log/threads_do_not_interleave", "%d lines", n_lines);
    free(out);
}

/* -------------------------------------------------------------- progress */

typedef struct {
    double t;
} fake_clock_t;

static double fake_now(void *ctx) { return ((fake_clock_t *)ctx)->t; }

static void test_progress_plain(void) {
    fake_clock_t clock = {100.0}; /* not zero: elapsed must count from the start */
    progress_options_t opts = {
        .extra_unit = "frames", .line_interval_s = 10, .mode = PROGRESS_PLAIN, .clock = fake_now, .clock_ctx = &clock};
    progress_t p;
    capture_begin();
    progress_start_with(&p, "extract", 100, "videos", &opts);
    clock.t = 101;
    progress_update(&p, 2, 50); /* too soon: no line */
    clock.t = 110;
    progress_update(&p, 20, 500);
    clock.t = 115;
    progress_update(&p, 30, 750); /* 5 s after the last line: none */
    clock.t = 120;
    progress_update(&p, 40, 1000);
    clock.t = 250;
    progress_update(&p, 99, 2475);
    clock.t = 300;
    progress_update(&p, 100, 2500); /* 50 s later, due */
    progress_finish(&p);
    char *out = capture_end();

    const char *want[] = {
        "extract: 20/100 videos (20.0%), 2.00 videos/s, 50.0 frames/s, elapsed 10s, ETA 40s",
        "extract: 40/100 videos (40.0%), 2.00 videos/s, 50.0 frames/s, elapsed 20s, ETA 30s",
        /* 99 in 150 s: 0.66/s, 1 left -> 1.5 s, rounded to 2 */
        "extract: 99/100 videos (99.0%), 0.66 videos/s, 16.5 frames/s, elapsed 2m30s, ETA 2s",
        "extract: 100/100 videos (100.0%), 0.50 videos/s, 12.5 frames/s, elapsed 3m20s, ETA 0s",
        "extract: finished 100/100 videos in 3m20s, 0.50 videos/s, 12.5 frames/s (2500 frames)",
    };
    char msgs[16][256];
    int n = messages(out, msgs, 16);
    int ok = n == 5;
    for (int i = 0; ok && i < 5; i++) ok = strcmp(msgs[i], want[i]) == 0;
    check(ok, "progress/plain_lines_rates_eta", "got %d lines:\n%s", n, out);
    check(strstr(out, " info: extract: ") != NULL && strchr(out, '\r') == NULL, "progress/plain_lines_are_log_lines",
          "got:\n%s", out);
    free(out);
}

static void test_progress_plain_details(void) {
    /* Default interval (10 s), no extra unit, nothing done yet: ETA unknown. */
    fake_clock_t clock = {0.0};
    progress_options_t opts = {.mode = PROGRESS_PLAIN, .clock = fake_now, .clock_ctx = &clock};
    progress_t p;
    capture_begin();
    progress_start_with(&p, "cache", 50, "shards", &opts);
    clock.t = 9.9;
    progress_update(&p, 0, 0);
    clock.t = 10.0;
    progress_update(&p, 0, 0);
    char *out = capture_end();
    char msgs[4][256];
    int n = messages(out, msgs, 4);
    check(n == 1 && strcmp(msgs[0], "cache: 0/50 shards (0.0%), 0.00 shards/s, elapsed 10s, ETA ?") == 0,
          "progress/default_interval_unknown_eta", "got %d lines:\n%s", n, out);
    free(out);

    /* An unknown total: no percentage, no ETA; hours in the elapsed time. */
    clock.t = 0.0;
    progress_start_with(&p, "train", 0, "steps", &opts);
    capture_begin();
    clock.t = 3725.0;
    progress_update(&p, 7450, 0);
    progress_finish(&p);
    out = capture_end();
    n = messages(out, msgs, 4);
    check(n == 2 && strcmp(msgs[0], "train: 7450 steps, 2.00 steps/s, elapsed 1h02m05s") == 0 &&
              strcmp(msgs[1], "train: finished 7450 steps in 1h02m05s, 2.00 steps/s") == 0,
          "progress/unknown_total", "got %d lines:\n%s", n, out);
    free(out);

    /* Below info level the reporter is silent. */
    log_set_level(LOG_LEVEL_WARN);
    capture_begin();
    progress_start_with(&p, "quiet", 10, "items", &opts);
    clock.t += 100;
    progress_update(&p, 5, 0);
    progress_finish(&p);
    out = capture_end();
    log_set_level(LOG_LEVEL_INFO);
    check(out[0] == '\0', "progress/silent_below_info", "got:\n%s", out);
    free(out);
}

static void test_progress_tty(void) {
    fake_clock_t clock = {0.0};
    progress_options_t opts = {
        .extra_unit = "frames", .mode = PROGRESS_TTY, .clock = fake_now, .clock_ctx = &clock};
    progress_t p;
    capture_begin();
    progress_start_with(&p, "extract", 1000, "videos", &opts);
    for (int i = 1; i <= 100; i++) { /* 100 updates over one second */
        clock.t = i / 100.0;
        progress_update(&p, i, 10 * i);
    }
    progress_finish(&p);
    char *out = capture_end();

    int draws = count_char(out, '\r');
    /* 10 a second at most: the first update draws, then one every 0.1 s. */
    check(draws >= 10 && draws <= 12, "progress/tty_redraw_rate", "%d redraws for 100 updates in 1 s", draws);
    check(count_char(out, '\n') == 1 && out[strlen(out) - 1] == '\n', "progress/tty_one_line",
          "%d newlines", count_char(out, '\n'));
    const char *last = strrchr(out, '\r');
    check(last && strcmp(last, "\rextract: finished 100/1000 videos in 1s, 100 videos/s, 1000 frames/s (1000 frames)"
                               "\033[K\n") == 0,
          "progress/tty_final_line", "last segment \"%s\"", last ? last + 1 : "(none)");
    check(strstr(out, "\rextract: 1/1000 videos (0.1%), ") != NULL && strstr(out, "\033[K\r") != NULL,
          "progress/tty_overwrites", "got \"%s\"", out);
    free(out);
}

int main(void) {
    test_log_env_level();
    test_log_format_and_levels();
    test_log_threads();
    test_progress_plain();
    test_progress_plain_details();
    test_progress_tty();
    return check_finish("test_log_progress");
}
