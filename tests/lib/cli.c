#include "cli.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int cli_program(const char *argv0, const char *program, char *buf, size_t n) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", argv0);
    char *slash = strrchr(dir, '/');
    if (!slash) return -1;
    *slash = '\0'; /* <BUILD>/tests */
    slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else snprintf(dir, sizeof dir, ".");
    if ((size_t)snprintf(buf, n, "%s/bin/%s", dir, program) >= n) return -1;
    return access(buf, X_OK) == 0 ? 0 : -1;
}

int cli_run(const char *command, const char *log_path) {
    char line[8192];
    if (log_path)
        snprintf(line, sizeof line, "( %s ) >>'%s' 2>&1", command, log_path);
    else
        snprintf(line, sizeof line, "( %s ) >/dev/null 2>&1", command);
    int st = system(line);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

int cli_tmpdir(char *buf, size_t n) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    if ((size_t)snprintf(buf, n, "%s/stepstone-test-XXXXXX", base) >= n) return -1;
    return mkdtemp(buf) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void cli_rmtree(const char *path) {
    if (path && *path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *cli_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    while (s) {
        size_t got = fread(s + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
        if (len + 1 == cap) {
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                s = NULL;
                break;
            }
            s = t;
            cap *= 2;
        }
    }
    fclose(f);
    if (s) s[len] = '\0';
    return s;
}

int cli_write_file(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(bytes, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

int cli_same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        char x[4096], y[4096];
        size_t na = fread(x, 1, sizeof x, fa), nb = fread(y, 1, sizeof y, fb);
        if (na != nb || memcmp(x, y, na) != 0) same = 0;
        if (na == 0) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}
