/* check.h - the test suite's reporting.
 *
 * Each test binary reports one line per check, "PASS name", "FAIL name: why"
 * or "SKIP name: why", and ends with check_finish(), which prints its counts
 * and returns the exit code. tests/run.sh runs every binary and sums the lines
 * into the suite's closing line "N passed, N failed, N skipped". */
#ifndef STEPSTONE_CHECK_H
#define STEPSTONE_CHECK_H

#include <stdint.h>

/* Records a result; fmt explains a failure (ignored when ok). Returns ok. */
int check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void check_skip(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "<prog>: N passed, N failed, N skipped"; returns 0 when nothing failed. */
int check_finish(const char *prog);

/* max |got - want| / max(1, max |want|): the relative error the parity tests use */
double rel_error(const float *got, const float *want, int64_t n);
double max_abs_diff(const float *got, const float *want, int64_t n);

/* The folder of shared test data (../shared from the repo root), or NULL;
 * $STEPSTONE_SHARED overrides. */
const char *shared_dir(void);

#endif
