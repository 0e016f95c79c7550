/* log.h - leveled diagnostics on stderr, one line per message.
 *
 * A line reads "2025-11-25 14:38:02.123 stepstone-extract info: <message>"
 * (local time, milliseconds). Messages above the current level are dropped.
 * The level comes from log_set_level(), or else from the environment
 * variable STEPSTONE_LOG ("error", "warn", "info", "debug"; read once, on
 * first use), or else is info.
 *
 * Lines are written with the stream locked, so lines from several threads do
 * not interleave. When the stream is a terminal each line first erases the
 * current screen line, so a log line printed while a progress bar
 * (progress.h) is on screen replaces the bar instead of running into it; the
 * bar is redrawn on its next update. */
#ifndef STEPSTONE_LOG_H
#define STEPSTONE_LOG_H

#include <stdarg.h>
#include <stdio.h>

/* The LOG_LEVEL_ prefix keeps these clear of syslog.h's LOG_INFO/LOG_DEBUG. */
typedef enum {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3
} log_level_t;

/* Names the program in every line ("stepstone-extract"); copied, cut to 63
 * bytes. The default is "stepstone". Call it at start-up, before threads log. */
void log_set_program(const char *name);
const char *log_program(void);

/* Sets the level; overrides STEPSTONE_LOG from then on. */
void log_set_level(log_level_t level);
log_level_t log_level(void);
/* Nonzero when a message at `level` would be written. */
int log_enabled(log_level_t level);

/* Parses "error", "warn" (or "warning"), "info", "debug", any case.
 * Returns 0 and sets *level, or -1 for anything else. */
int log_parse_level(const char *text, log_level_t *level);
const char *log_level_name(log_level_t level);

/* Where lines go: stderr unless set (tests pass a memory stream). Not owned. */
void log_set_stream(FILE *stream);
FILE *log_stream(void);

/* Writes one line at `level`; a trailing newline in fmt is not needed. */
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(log_level_t level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
