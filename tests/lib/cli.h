/* cli.h - helpers for tests that drive the programs and use scratch folders.
 *
 * Tests run from the repository root (tests/run.sh); a test binary lives in
 * <BUILD>/tests/, the programs in <BUILD>/bin/. */
#ifndef STEPSTONE_TESTS_CLI_H
#define STEPSTONE_TESTS_CLI_H

#include <stddef.h>

/* <BUILD>/bin/<program> for the test binary at argv0; 0, or -1 when absent. */
int cli_program(const char *argv0, const char *program, char *buf, size_t n);

/* Runs a shell command line with stdout and stderr appended to log_path (or
 * discarded when NULL). Returns the exit status, or -1 when it did not exit. */
int cli_run(const char *command, const char *log_path);

/* A new empty folder under $TMPDIR (or /tmp) into buf; 0 or -1. */
int cli_tmpdir(char *buf, size_t n);
/* Removes a folder tree made by cli_tmpdir. */
void cli_rmtree(const char *path);

/* The whole file as a NUL-terminated string (malloc), or NULL. */
char *cli_read_text(const char *path);
/* Writes bytes to path (replacing it); 0 or -1. */
int cli_write_file(const char *path, const void *bytes, size_t n);
/* Nonzero when the two files have the same bytes. */
int cli_same_file(const char *a, const char *b);

#endif
