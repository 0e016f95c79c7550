#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* -1 until the level is known: set explicitly or read from STEPSTONE_LOG. */
static atomic_int current_level = -1;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static char program_name[64] = "stepstone";
static FILE *_Atomic out_stream; /* NULL means stderr */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *log_level_name(log_level_t level) {
    if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG) return "?";
    return level_names[level];
}

int log_parse_level(const char *text, log_level_t *level) {
    if (!text) return -1;
    for (int i = LOG_LEVEL_ERROR; i <= LOG_LEVEL_DEBUG; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *level = (log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *level = LOG_LEVEL_WARN;
        return 0;
    }
    return -1;
}

void log_set_program(const char *name) {
    snprintf(program_name, sizeof program_name, "%s", name ? name : "stepstone");
}

const char *log_program(void) { return program_name; }

void log_set_stream(FILE *stream) { atomic_store(&out_stream, stream); }

FILE *log_stream(void) {
    FILE *s = atomic_load(&out_stream);
    return s ? s : stderr;
}

/* Writes the line without looking at the level; used by the env reader too,
 * which must not go through log_level() (it runs inside pthread_once). */
static void write_line(log_level_t level, const char *fmt, va_list ap) {
    int saved_errno = errno; /* callers may log and then still look at errno */
    FILE *stream = log_stream();

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm local;
    localtime_r(&now.tv_sec, &local);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &local);

    /* One lock around the pieces so concurrent lines stay whole. */
    flockfile(stream);
    if (isatty(fileno(stream))) fputs("\r\033[K", stream); /* erase a progress bar */
    fprintf(stream, "%s.%03ld %s %s: ", stamp, now.tv_nsec / 1000000L, program_name,
            log_level_name(level));
    vfprintf(stream, fmt, ap);
    size_t len = strlen(fmt);
    if (len == 0 || fmt[len - 1] != '\n') fputc('\n', stream);
    fflush(stream);
    funlockfile(stream);
    errno = saved_errno;
}

static void warn_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn_line(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    write_line(LOG_LEVEL_WARN, fmt, ap);
    va_end(ap);
}

static void read_env_level(void) {
    const char *text = getenv("STEPSTONE_LOG");
    log_level_t level = LOG_LEVEL_INFO;
    if (text && *text && log_parse_level(text, &level) != 0) {
        warn_line("STEPSTONE_LOG=\"%s\" is not a level (error, warn, info, debug); using info", text);
        level = LOG_LEVEL_INFO;
    }
    /* An explicit log_set_level that raced ahead of us wins. */
    int unset = -1;
    atomic_compare_exchange_strong(&current_level, &unset, (int)level);
}

void log_set_level(log_level_t level) { atomic_store(&current_level, (int)level); }

log_level_t log_level(void) {
    int level = atomic_load(&current_level);
    if (level < 0) {
        pthread_once(&env_once, read_env_level);
        level = atomic_load(&current_level);
    }
    return (log_level_t)level;
}

int log_enabled(log_level_t level) { return level <= log_level(); }

void log_vmsg(log_level_t level, const char *fmt, va_list ap) {
    if (!log_enabled(level)) return;
    write_line(level, fmt, ap);
}

void log_msg(log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LEVEL_WARN, fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LEVEL_INFO, fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LEVEL_DEBUG, fmt, ap);
    va_end(ap);
}
