/* stepstone-cache - look inside, check and merge feature caches (cache.h).
 * Argument handling and printing only; the work is in the cache library. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache.h"
#include "feature_image.h"
#include "dtype.h"
#include "log.h"
#include "npy.h"
#include "png_io.h"

/* Exit codes: one per kind of failure, so scripts can tell them apart. */
enum {
    EXIT_BAD_VALUES = 1, /* verify found problems */
    EXIT_USAGE = 2,
    EXIT_NOTFOUND = 3,
    EXIT_FORMAT = 4,
    EXIT_MISMATCH = 5,
    EXIT_IO = 6,
    EXIT_OTHER = 7
};

static const char *usage_main =
    "usage: stepstone-cache COMMAND CACHE [ARGS] [OPTIONS]\n"
    "\n"
    "Looks inside, checks and merges stepstone feature caches (LMDB folders written by\n"
    "stepstone-extract). `stepstone-cache COMMAND --help` describes each command.\n"
    "\n"
    "commands:\n"
    "  ls CACHE [PREFIX]        list the keys (database, key, bytes), optionally those starting with PREFIX\n"
    "  stat CACHE               entries, bytes, dtype, map use, and what produced the cache\n"
    "  show CACHE KEY           the tensors of one value: names, shapes, min/max/mean/std\n"
    "  dump CACHE KEY --out F   one tensor as NumPy .npy, or as a picture .png\n"
    "  verify CACHE             check every checksum and index record; name the bad keys\n"
    "  merge OUT IN...          join shard caches into OUT, refusing mismatched metadata\n"
    "\n"
    "keys: visual <subset>/<uid>/<frame> (the backbone levels of a frame), audio <subset>/<uid>\n"
    "(tensor \"audio\"), videos <subset>/<uid> (the index record), meta <name> (JSON).\n"
    "A key may name its database, as in audio:v2/abc or meta:producer.\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  1  verify found bad values\n"
    "  2  bad command line\n"
    "  3  not found: the cache folder, a key or a tensor does not exist\n"
    "  4  bad format: not a stepstone cache, a newer format, a corrupt value\n"
    "  5  mismatch: merge refused (dtype or producer metadata differ, or a video differs)\n"
    "  6  i/o: LMDB or file system failure, map or disk full\n"
    "  7  other failure (out of memory)\n";

static const char *usage_ls =
    "usage: stepstone-cache ls CACHE [PREFIX] [--db visual|audio|videos|meta]\n"
    "\n"
    "Lists every key (or those starting with PREFIX) in key order, one per line:\n"
    "database, key, value size in bytes. --db lists one database only.\n";

static const char *usage_stat =
    "usage: stepstone-cache stat CACHE\n"
    "\n"
    "Prints the number of videos, frames and audio tracks, their bytes, the storage dtype,\n"
    "the map size and how much of it is used, and the producer record (what made the cache).\n";

static const char *usage_show =
    "usage: stepstone-cache show CACHE KEY [--no-verify]\n"
    "\n"
    "Prints one value: its size and checksum, and for each tensor its name, dtype, shape,\n"
    "min, max, mean and standard deviation (and counts of NaN/Inf when there are any).\n"
    "A videos or meta key prints its JSON. --no-verify shows a value whose checksum is bad.\n";

static const char *usage_dump =
    "usage: stepstone-cache dump CACHE KEY [--tensor NAME] --out FILE [--f32] [--grid] [--scale N] [--no-verify]\n"
    "\n"
    "Writes one tensor of a value (--tensor may be left out when the value has only one).\n"
    "  --out F.npy   NumPy format 1.0 in the stored dtype (F16 as float16; BF16, which numpy\n"
    "                lacks, as float32); --f32 converts to float32 always.\n"
    "  --out F.png   the feature map [.., C, H, W] as a picture: the first three principal\n"
    "                components over channels as RGB, or with --grid every channel side by\n"
    "                side in gray. A 2-D tensor (audio [T, 128]) is one channel. --scale N\n"
    "                enlarges by N (default: enough to make the picture about 256 pixels).\n";

static const char *usage_verify =
    "usage: stepstone-cache verify CACHE\n"
    "\n"
    "Reads every value and checks its checksum and structure, that each video's index record\n"
    "has all its frames and its audio, and that no frame or audio lacks one. Prints one line\n"
    "per problem, \"bad <database> <key>: <problem>\", then a summary. Exits 1 when any.\n";

static const char *usage_merge =
    "usage: stepstone-cache merge OUT IN... [--map-size SIZE] [--no-sync]\n"
    "\n"
    "Copies every video of each IN cache that OUT lacks into OUT (created when absent), one\n"
    "transaction per video, checking each value's checksum on the way; running it again after\n"
    "an interruption finishes the job. All caches must store the same dtype and have equal\n"
    "producer records, checked before anything is copied; a video already in OUT must be\n"
    "byte-equal. SIZE takes K, M, G, T suffixes (the initial map; it grows as needed).\n"
    "--no-sync skips fsync at each commit (faster; a machine crash may lose recent videos).\n";

static int exit_code_of(err_code_t code) {
    switch (code) {
    case ERR_OK: return 0;
    case ERR_ARG: return EXIT_USAGE;
    case ERR_NOTFOUND: return EXIT_NOTFOUND;
    case ERR_FORMAT: return EXIT_FORMAT;
    case ERR_MISMATCH: return EXIT_MISMATCH;
    case ERR_IO: return EXIT_IO;
    default: return EXIT_OTHER;
    }
}

static int fail(const err_t *err) {
    log_error("%s", err->msg);
    return exit_code_of(err->code);
}

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "stepstone-cache: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return EXIT_USAGE;
}

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

static int parse_size(const char *text, size_t *out) {
    char *end;
    double v = strtod(text, &end);
    double mult = 1;
    if (*end && end[1] == '\0') {
        switch (*end) {
        case 'k': case 'K': mult = 1024.0; break;
        case 'm': case 'M': mult = 1024.0 * 1024; break;
        case 'g': case 'G': mult = 1024.0 * 1024 * 1024; break;
        case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; break;
        default: return -1;
        }
    } else if (*end) {
        return -1;
    }
    if (end == text || !(v > 0) || v * mult > 1e15) return -1;
    *out = (size_t)(v * mult);
    return 0;
}

static void human_bytes(uint64_t b, char *buf, size_t size) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, size, "%" PRIu64 " B", b);
    else snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* Splits "db:key" or infers the database from the number of '/' in key. */
static int resolve_key(const char *arg, cache_db_t *db, const char **key) {
    const char *colon = strchr(arg, ':');
    if (colon) {
        char name[16];
        size_t n = (size_t)(colon - arg);
        if (n < sizeof name) {
            memcpy(name, arg, n);
            name[n] = '\0';
            if (cache_db_parse(name, db) == 0) {
                *key = colon + 1;
                return 0;
            }
        }
    }
    int slashes = 0;
    for (const char *p = arg; *p; p++) slashes += *p == '/';
    *key = arg;
    *db = slashes >= 2 ? CACHE_DB_VISUAL : slashes == 1 ? CACHE_DB_AUDIO : CACHE_DB_META;
    return 0;
}

/* ---- ls ---- */

static int print_entry(void *ctx, cache_db_t db, const char *key, const void *value, size_t size) {
    (void)ctx;
    (void)value;
    printf("%-6s  %s  %zu\n", cache_db_name(db), key, size);
    return 0;
}

static int cmd_ls(int argc, char **argv) {
    const char *dir = NULL, *prefix = NULL;
    int only = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            cache_db_t db;
            if (cache_db_parse(argv[++i], &db) != 0) return usage_error(usage_ls, "unknown database \"%s\"", argv[i]);
            only = (int)db;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error(usage_ls, "unknown option %s", argv[i]);
        } else if (!dir) {
            dir = argv[i];
        } else if (!prefix) {
            prefix = argv[i];
        } else {
            return usage_error(usage_ls, "unexpected argument %s", argv[i]);
        }
    }
    if (!dir) return usage_error(usage_ls, "%s", "no cache folder given");
    err_t err;
    cache_t *c;
    if (cache_open(dir, CACHE_READ, NULL, &c, &err) != ERR_OK) return fail(&err);
    cache_reader_t *r;
    err_code_t ec = cache_reader_begin(c, &r, &err);
    for (int db = 0; db < CACHE_DB_COUNT && ec == ERR_OK; db++)
        if (only < 0 || only == db) ec = cache_foreach(r, (cache_db_t)db, prefix, print_entry, NULL, &err);
    cache_reader_end(r);
    cache_close(c);
    return ec == ERR_OK ? 0 : fail(&err);
}

/* ---- stat ---- */

static int print_meta_key(void *ctx, cache_db_t db, const char *key, const void *value, size_t size) {
    (void)db;
    (void)value;
    if (strcmp(key, CACHE_META_FORMAT) != 0 && strcmp(key, CACHE_META_PRODUCER) != 0) {
        int *n = ctx;
        printf("%s%s (%zu bytes)", (*n)++ ? ", " : "other meta   ", key, size);
    }
    return 0;
}

static int count_audio_videos(void *ctx, cache_db_t db, const char *key, const void *value, size_t size) {
    (void)db;
    (void)key;
    int64_t *n = ctx;
    if (size >= 12 && memmem(value, size, "\"audio\":true", 12)) (*n)++;
    return 0;
}

static int cmd_stat(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) return usage_error(usage_stat, "unknown option %s", argv[i]);
        if (dir) return usage_error(usage_stat, "unexpected argument %s", argv[i]);
        dir = argv[i];
    }
    if (!dir) return usage_error(usage_stat, "%s", "no cache folder given");
    err_t err;
    cache_t *c;
    if (cache_open(dir, CACHE_READ, NULL, &c, &err) != ERR_OK) return fail(&err);
    cache_stat_t st;
    err_code_t ec = cache_stat(c, &st, &err);
    int64_t with_audio = 0;
    cache_reader_t *r = NULL;
    if (ec == ERR_OK) ec = cache_reader_begin(c, &r, &err);
    if (ec == ERR_OK) ec = cache_foreach(r, CACHE_DB_VIDEOS, NULL, count_audio_videos, &with_audio, &err);
    if (ec != ERR_OK) {
        cache_reader_end(r);
        cache_close(c);
        return fail(&err);
    }
    char a[32], b[32], f[32];
    printf("cache        %s\n", dir);
    printf("format       %s version %d, dtype %s\n", CACHE_FORMAT_NAME, CACHE_FORMAT_VERSION, dtype_name(st.dtype));
    printf("videos       %" PRId64 " (%" PRId64 " with audio)\n", st.entries[CACHE_DB_VIDEOS], with_audio);
    human_bytes(st.value_bytes[CACHE_DB_VISUAL], a, sizeof a);
    printf("frames       %" PRId64 " visual values, %s", st.entries[CACHE_DB_VISUAL], a);
    if (st.entries[CACHE_DB_VISUAL]) {
        human_bytes(st.value_bytes[CACHE_DB_VISUAL] / (uint64_t)st.entries[CACHE_DB_VISUAL], b, sizeof b);
        printf(" (%s each on average)", b);
    }
    human_bytes(st.value_bytes[CACHE_DB_AUDIO], a, sizeof a);
    printf("\naudio        %" PRId64 " values, %s\n", st.entries[CACHE_DB_AUDIO], a);
    printf("meta         %" PRId64 " records\n", st.entries[CACHE_DB_META]);
    human_bytes(st.map_used, a, sizeof a);
    human_bytes(st.map_size, b, sizeof b);
    human_bytes(st.file_bytes, f, sizeof f);
    printf("map          %s used of %s (%.1f%%), page %" PRIu64 " B, data.mdb %s\n", a, b,
           st.map_size ? 100.0 * (double)st.map_used / (double)st.map_size : 0.0, st.page_size, f);
    int n_other = 0;
    cache_foreach(r, CACHE_DB_META, NULL, print_meta_key, &n_other, NULL);
    if (n_other) printf("\n");
    cache_reader_end(r);
    char *producer = NULL;
    ec = cache_meta_get(c, CACHE_META_PRODUCER, &producer, &err);
    if (ec == ERR_OK) {
        json_t *root = json_loads(producer, JSON_DECODE_ANY, NULL);
        char *pretty = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        printf("producer     %s\n", pretty ? pretty : producer);
        free(pretty);
        json_decref(root);
    } else if (ec == ERR_NOTFOUND) {
        printf("producer     (none recorded)\n");
        ec = ERR_OK;
    }
    free(producer);
    cache_close(c);
    return ec == ERR_OK ? 0 : fail(&err);
}

/* ---- show ---- */

typedef struct {
    double min, max, mean, std;
    int64_t nan, inf;
} stats_t;

static int view_stats(const cache_view_t *v, stats_t *s) {
    memset(s, 0, sizeof *s);
    float *x = malloc((size_t)(v->numel ? v->numel : 1) * sizeof *x);
    if (!x) return -1;
    dtype_convert_host(x, DTYPE_F32, v->data, v->dtype, v->numel);
    double sum = 0, sq = 0;
    int64_t n = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
    for (int64_t i = 0; i < v->numel; i++) {
        double d = x[i];
        if (isnan(d)) {
            s->nan++;
            continue;
        }
        if (isinf(d)) {
            s->inf++;
            continue;
        }
        if (d < s->min) s->min = d;
        if (d > s->max) s->max = d;
        sum += d;
        n++;
    }
    s->mean = n ? sum / (double)n : NAN;
    for (int64_t i = 0; i < v->numel; i++)
        if (isfinite(x[i])) sq += (x[i] - s->mean) * (x[i] - s->mean);
    s->std = n ? sqrt(sq / (double)n) : NAN;
    if (!n) s->min = s->max = NAN;
    free(x);
    return 0;
}

typedef struct {
    const char *key;
    int found;
} json_lookup_t;

/* cache_foreach starts at the first key >= the wanted one: it is either that key or absent. */
static int print_json_value(void *ctx, cache_db_t db, const char *key, const void *value, size_t size) {
    json_lookup_t *want = ctx;
    if (strcmp(key, want->key) == 0) {
        printf("%s %s: %.*s\n", cache_db_name(db), key, (int)size, (const char *)value);
        want->found = 1;
    }
    return 1;
}

static err_code_t show_json(cache_t *c, cache_db_t db, const char *key, err_t *err) {
    json_lookup_t want = {key, 0};
    cache_reader_t *r;
    err_code_t ec = cache_reader_begin(c, &r, err);
    if (ec != ERR_OK) return ec;
    ec = cache_foreach(r, db, key, print_json_value, &want, err);
    cache_reader_end(r);
    if (ec == ERR_OK && !want.found)
        ec = err_set(err, ERR_NOTFOUND, "cache %s: no %s entry \"%s\"", cache_dir(c), cache_db_name(db), key);
    return ec;
}

static int cmd_show(int argc, char **argv) {
    const char *dir = NULL, *arg = NULL;
    cache_options_t opt = cache_default_options();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-verify") == 0) opt.verify_reads = 0;
        else if (argv[i][0] == '-' && argv[i][1]) return usage_error(usage_show, "unknown option %s", argv[i]);
        else if (!dir) dir = argv[i];
        else if (!arg) arg = argv[i];
        else return usage_error(usage_show, "unexpected argument %s", argv[i]);
    }
    if (!dir || !arg) return usage_error(usage_show, "%s", "give a cache folder and a key");
    cache_db_t db;
    const char *key;
    resolve_key(arg, &db, &key);
    err_t err;
    cache_t *c;
    if (cache_open(dir, CACHE_READ, &opt, &c, &err) != ERR_OK) return fail(&err);
    int rc = 0;
    if (db == CACHE_DB_META || db == CACHE_DB_VIDEOS) {
        if (show_json(c, db, key, &err) != ERR_OK) rc = fail(&err);
        cache_close(c);
        return rc;
    }
    cache_reader_t *r;
    cache_entry_t e;
    if (cache_reader_begin(c, &r, &err) != ERR_OK) {
        cache_close(c);
        return fail(&err);
    }
    if (cache_get_key(r, db, key, &e, &err) != ERR_OK) {
        rc = fail(&err);
    } else {
        printf("%s %s: %" PRIu64 " bytes, %d tensor%s, crc32c %08x%s%s\n", cache_db_name(db), key, e.value_bytes,
               e.n_tensors, e.n_tensors == 1 ? "" : "s", e.crc, opt.verify_reads ? " (checked)" : " (not checked)",
               e.zero_copy ? ", read in place" : ", copied for alignment");
        for (int i = 0; i < e.n_tensors; i++) {
            const cache_view_t *v = &e.tensors[i];
            char shape[128];
            stats_t s;
            shape_str(v->ndim, v->shape, shape, sizeof shape);
            if (view_stats(v, &s) != 0) {
                err_set(&err, ERR_NOMEM, "out of memory");
                rc = fail(&err);
                break;
            }
            printf("  %-12s %-4s %-18s min %.6g  max %.6g  mean %.6g  std %.6g", v->name, dtype_name(v->dtype), shape,
                   s.min, s.max, s.mean, s.std);
            if (s.nan || s.inf) printf("  nan %" PRId64 "  inf %" PRId64, s.nan, s.inf);
            printf("\n");
        }
        if (rc == 0 && db == CACHE_DB_AUDIO) show_json(c, CACHE_DB_VIDEOS, key, &err);
    }
    cache_reader_end(r);
    cache_close(c);
    return rc;
}

/* ---- dump ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static err_code_t dump_png(const cache_view_t *v, const char *out, int grid, int scale, err_t *err) {
    if (v->ndim < 2)
        return err_set(err, ERR_ARG, "tensor %s is %d-D: a picture needs at least [H, W]", v->name, v->ndim);
    int64_t h = v->shape[v->ndim - 2], w = v->shape[v->ndim - 1], ch = h > 0 && w > 0 ? v->numel / (h * w) : 0;
    float *x = malloc((size_t)(v->numel ? v->numel : 1) * sizeof *x);
    if (!x) return err_set(err, ERR_NOMEM, "out of memory");
    dtype_convert_host(x, DTYPE_F32, v->data, v->dtype, v->numel);
    uint8_t *pixels = NULL;
    int W = 0, H = 0;
    err_code_t ec = grid ? feature_image_grid(x, ch, h, w, scale, &pixels, &W, &H, err)
                         : feature_image_pca(x, ch, h, w, scale, &pixels, &W, &H, err);
    free(x);
    if (ec == ERR_OK) ec = grid ? png_io_write_gray(out, W, H, pixels, err) : png_io_write_rgb(out, W, H, pixels, err);
    free(pixels);
    return ec;
}

static err_code_t dump_npy(const cache_view_t *v, const char *out, int to_f32, err_t *err) {
    if (!to_f32 && v->dtype != DTYPE_BF16) return npy_write(out, v->dtype, v->ndim, v->shape, v->data, err);
    float *x = malloc((size_t)(v->numel ? v->numel : 1) * sizeof *x);
    if (!x) return err_set(err, ERR_NOMEM, "out of memory");
    dtype_convert_host(x, DTYPE_F32, v->data, v->dtype, v->numel);
    err_code_t ec = npy_write(out, DTYPE_F32, v->ndim, v->shape, x, err);
    free(x);
    return ec;
}

static int cmd_dump(int argc, char **argv) {
    const char *dir = NULL, *arg = NULL, *tensor = NULL, *out = NULL;
    int grid = 0, to_f32 = 0, scale = 0;
    cache_options_t opt = cache_default_options();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tensor") == 0 && i + 1 < argc) tensor = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(argv[i], "--grid") == 0) grid = 1;
        else if (strcmp(argv[i], "--f32") == 0) to_f32 = 1;
        else if (strcmp(argv[i], "--no-verify") == 0) opt.verify_reads = 0;
        else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            char *end;
            long s = strtol(argv[++i], &end, 10);
            if (*end || s < 1 || s > 64) return usage_error(usage_dump, "bad --scale %s (1 to 64)", argv[i]);
            scale = (int)s;
        } else if (argv[i][0] == '-' && argv[i][1]) return usage_error(usage_dump, "unknown or incomplete option %s", argv[i]);
        else if (!dir) dir = argv[i];
        else if (!arg) arg = argv[i];
        else return usage_error(usage_dump, "unexpected argument %s", argv[i]);
    }
    if (!dir || !arg) return usage_error(usage_dump, "%s", "give a cache folder and a key");
    if (!out) return usage_error(usage_dump, "%s", "--out F.npy or --out F.png is required");
    int png = ends_with(out, ".png");
    if (!png && !ends_with(out, ".npy")) return usage_error(usage_dump, "--out %s: give a .npy or .png file", out);
    cache_db_t db;
    const char *key;
    resolve_key(arg, &db, &key);
    if (db != CACHE_DB_VISUAL && db != CACHE_DB_AUDIO)
        return usage_error(usage_dump, "%s holds JSON, not tensors (use show)", arg);
    err_t err;
    cache_t *c;
    if (cache_open(dir, CACHE_READ, &opt, &c, &err) != ERR_OK) return fail(&err);
    cache_reader_t *r;
    if (cache_reader_begin(c, &r, &err) != ERR_OK) {
        cache_close(c);
        return fail(&err);
    }
    cache_entry_t e;
    err_code_t ec = cache_get_key(r, db, key, &e, &err);
    const cache_view_t *v = NULL;
    if (ec == ERR_OK) {
        if (tensor) {
            v = cache_entry_find(&e, tensor);
            if (!v) {
                char names[512] = "";
                for (int i = 0; i < e.n_tensors; i++)
                    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", e.tensors[i].name);
                ec = err_set(&err, ERR_NOTFOUND, "cache %s: %s %s has no tensor \"%s\" (it has %s)", dir,
                             cache_db_name(db), key, tensor, names);
            }
        } else if (e.n_tensors == 1) {
            v = &e.tensors[0];
        } else {
            ec = err_set(&err, ERR_ARG, "%s %s has %d tensors: name one with --tensor", cache_db_name(db), key, e.n_tensors);
        }
    }
    if (ec == ERR_OK) ec = png ? dump_png(v, out, grid, scale, &err) : dump_npy(v, out, to_f32, &err);
    if (ec == ERR_OK) {
        char shape[128];
        shape_str(v->ndim, v->shape, shape, sizeof shape);
        printf("wrote %s: %s %s of %s %s\n", out, v->name, shape, cache_db_name(db), key);
    }
    cache_reader_end(r);
    cache_close(c);
    return ec == ERR_OK ? 0 : fail(&err);
}

/* ---- verify ---- */

static void print_bad(void *ctx, cache_db_t db, const char *key, const char *problem) {
    (void)ctx;
    printf("bad %s %s: %s\n", cache_db_name(db), key, problem);
    fflush(stdout);
}

static int cmd_verify(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) return usage_error(usage_verify, "unknown option %s", argv[i]);
        if (dir) return usage_error(usage_verify, "unexpected argument %s", argv[i]);
        dir = argv[i];
    }
    if (!dir) return usage_error(usage_verify, "%s", "no cache folder given");
    err_t err;
    cache_t *c;
    if (cache_open(dir, CACHE_READ, NULL, &c, &err) != ERR_OK) return fail(&err);
    cache_verify_report_t rep;
    err_code_t ec = cache_verify(c, print_bad, NULL, &rep, &err);
    cache_close(c);
    if (ec != ERR_OK) return fail(&err);
    char b[32];
    human_bytes(rep.bytes, b, sizeof b);
    printf("verify %s: %" PRId64 " values checked, %s checksummed, %" PRId64 " problem%s\n", dir, rep.checked, b, rep.bad,
           rep.bad == 1 ? "" : "s");
    return rep.bad ? EXIT_BAD_VALUES : 0;
}

/* ---- merge ---- */

static int cmd_merge(int argc, char **argv) {
    cache_options_t opt = cache_default_options();
    const char *out_dir = NULL;
    const char **ins = calloc((size_t)argc, sizeof *ins);
    int n_in = 0;
    if (!ins) return EXIT_OTHER;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--map-size") == 0 && i + 1 < argc) {
            if (parse_size(argv[++i], &opt.map_size) != 0) {
                free(ins);
                return usage_error(usage_merge, "bad --map-size %s", argv[i]);
            }
        } else if (strcmp(argv[i], "--no-sync") == 0) {
            opt.no_sync = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            free(ins);
            return usage_error(usage_merge, "unknown or incomplete option %s", argv[i]);
        } else if (!out_dir) {
            out_dir = argv[i];
        } else {
            ins[n_in++] = argv[i];
        }
    }
    if (!out_dir || n_in == 0) {
        free(ins);
        return usage_error(usage_merge, "%s", "give OUT and at least one IN cache");
    }
    err_t err;
    err_code_t ec = ERR_OK;
    cache_t **in = calloc((size_t)n_in, sizeof *in);
    cache_t *out = NULL;
    for (int i = 0; i < n_in && ec == ERR_OK; i++) ec = cache_open(ins[i], CACHE_READ, NULL, &in[i], &err);
    /* every pair must agree before anything is copied (or OUT is created) */
    for (int i = 1; i < n_in && ec == ERR_OK; i++) ec = cache_merge_check(in[0], in[i], &err);
    if (ec == ERR_OK) {
        opt.dtype = cache_dtype(in[0]); /* a new OUT stores what the shards store */
        ec = cache_open(out_dir, CACHE_WRITE, &opt, &out, &err);
    }
    for (int i = 0; i < n_in && ec == ERR_OK; i++) ec = cache_merge_check(out, in[i], &err);
    for (int i = 0; i < n_in && ec == ERR_OK; i++) {
        cache_merge_report_t rep;
        ec = cache_merge(out, in[i], &rep, &err);
        if (ec == ERR_OK) {
            char b[32];
            human_bytes(rep.bytes_copied, b, sizeof b);
            printf("merged %s into %s: %" PRId64 " videos copied (%s), %" PRId64 " already there\n", ins[i], out_dir,
                   rep.videos_copied, b, rep.videos_present);
        }
    }
    for (int i = 0; i < n_in; i++) cache_close(in[i]);
    cache_close(out);
    free(in);
    free(ins);
    return ec == ERR_OK ? 0 : fail(&err);
}

int main(int argc, char **argv) {
    log_set_program("stepstone-cache");
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
        const char **usage;
    } commands[] = {
        {"ls", cmd_ls, &usage_ls},       {"stat", cmd_stat, &usage_stat},       {"show", cmd_show, &usage_show},
        {"dump", cmd_dump, &usage_dump}, {"verify", cmd_verify, &usage_verify}, {"merge", cmd_merge, &usage_merge},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0) continue;
        if (wants_help(argc - 2, argv + 2)) {
            fputs(*commands[i].usage, stdout);
            fputs("\nexit codes: 0 success, 1 verify found bad values, 2 bad command line, 3 not found,\n"
                  "4 bad format or corrupt value, 5 mismatch, 6 i/o, 7 other (see stepstone-cache --help)\n",
                  stdout);
            return 0;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "stepstone-cache: unknown command \"%s\"\n\n%s", cmd, usage_main);
    return EXIT_USAGE;
}
