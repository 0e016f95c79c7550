#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int n_pass, n_fail, n_skip;

int check(int ok, const char *name, const char *fmt, ...) {
    if (ok) {
        n_pass++;
        printf("PASS %s\n", name);
    } else {
        n_fail++;
        printf("FAIL %s: ", name);
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    fflush(stdout);
    return ok;
}

void check_skip(const char *name, const char *fmt, ...) {
    n_skip++;
    printf("SKIP %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

int check_finish(const char *prog) {
    printf("%s: %d passed, %d failed, %d skipped\n", prog, n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}

double max_abs_diff(const float *got, const float *want, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (isnan(got[i]) != isnan(want[i])) d = INFINITY;
        else if (isnan(got[i])) d = 0.0;
        if (d > m) m = d;
    }
    return m;
}

double rel_error(const float *got, const float *want, int64_t n) {
    double scale = 1.0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    return max_abs_diff(got, want, n) / scale;
}

const char *shared_dir(void) {
    const char *env = getenv("STEPSTONE_SHARED");
    struct stat st;
    if (env && stat(env, &st) == 0) return env;
    if (stat("../shared", &st) == 0 && S_ISDIR(st.st_mode)) return "../shared";
    return NULL;
}
