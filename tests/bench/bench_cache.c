/* bench_cache.c - feature cache throughput at full Swin-B size.
 *
 * Writes N videos (default 12) of F frames (default 10, as AVSBench v2) with
 * the four Swin-B levels per frame at f16 (128x96x96, 256x48x48, 512x24x24,
 * 1024x12x12: 4.4 MB a frame) and the audio [F, 128], then reads every frame
 * back in a random video order (frames in order within a video, as a data
 * loader takes a clip):
 *   cold   after evicting data.mdb from the page cache (posix_fadvise), so
 *          the pages come from the disk: views with the checksum checked
 *   warm   the same from the page cache: views with the checksum checked
 *          (what a reader gets by default); frames converted to f32 tensors
 *          in an arena (CPU) and, when a GPU is present, uploaded as f16 and
 *          converted to f32 on it (checksums checked too); and views summed
 *          without the check (the memory map's raw speed).
 * GB/s counts stored bytes (1 GB = 1e9 bytes) over wall time. Usage:
 *   bench_cache [N_VIDEOS [FRAMES]]     folder: $STEPSTONE_BENCH_DIR or /tmp */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "crc32c.h"
#include "rng.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void die(const err_t *err) {
    fprintf(stderr, "bench_cache: %s\n", err->msg);
    exit(1);
}

typedef enum { READ_VIEWS, READ_SUM, READ_F32, READ_CUDA } read_mode_t;

/* Reads every frame of every video in `order`; returns stored bytes read. */
static uint64_t read_all(cache_t *c, const int *order, int n_videos, int n_frames, read_mode_t mode, arena_t *a,
                         uint64_t *sink) {
    cache_reader_t *r;
    err_t err;
    if (cache_reader_begin(c, &r, &err) != ERR_OK) die(&err);
    uint64_t bytes = 0;
    for (int i = 0; i < n_videos; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "bench%04d", order[i]);
        for (int f = 0; f < n_frames; f++) {
            cache_entry_t e;
            if (cache_get_frame(r, "v2", uid, f, &e, &err) != ERR_OK) die(&err);
            bytes += e.value_bytes;
            for (int l = 0; l < e.n_tensors; l++) {
                const cache_view_t *v = &e.tensors[l];
                if (mode == READ_SUM) {
                    const uint64_t *w = v->data; /* 64-byte aligned in the map */
                    uint64_t s = 0;
                    for (uint64_t k = 0; k < v->nbytes / 8; k++) s += w[k];
                    *sink += s;
                } else if (mode == READ_F32 || mode == READ_CUDA) {
                    tensor_t *t;
                    if (cache_view_to_tensor(v, a, DTYPE_F32, &t, &err) != ERR_OK) die(&err);
                }
            }
            if (a) arena_reset(a);
        }
    }
    cache_reader_end(r);
    return bytes;
}

static void report(const char *what, uint64_t bytes, double seconds, int frames) {
    printf("cache %-40s %6.2f GB/s  (%d frames, %.2f GB, %.1f frames/s)\n", what, (double)bytes / seconds / 1e9, frames,
           (double)bytes / 1e9, frames / seconds);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int n_videos = argc > 1 ? atoi(argv[1]) : 12, n_frames = argc > 2 ? atoi(argv[2]) : 10;
    if (n_videos < 1 || n_frames < 1 || n_frames > 64) {
        fprintf(stderr, "usage: bench_cache [N_VIDEOS [FRAMES (1..64)]]\n");
        return 2;
    }
    const char *base = getenv("STEPSTONE_BENCH_DIR") ? getenv("STEPSTONE_BENCH_DIR") : "/tmp";
    char dir[512];
    snprintf(dir, sizeof dir, "%s/stepstone-bench-cache-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char cache_dir_path[600];
    snprintf(cache_dir_path, sizeof cache_dir_path, "%s/cache", dir);

    /* one video's frames in f32, reused for every video */
    static const int64_t dims[4][3] = {{128, 96, 96}, {256, 48, 48}, {512, 24, 24}, {1024, 12, 12}};
    static const char *names[4] = {"stage1", "stage2", "stage3", "stage4"};
    arena_t *a = arena_create(DEVICE_CPU, 64 << 20);
    tensor_t **levels = calloc((size_t)n_frames * 4, sizeof *levels);
    rng_t rng;
    rng_seed(&rng, 7);
    for (int f = 0; f < n_frames; f++)
        for (int l = 0; l < 4; l++) {
            tensor_t *t = tensor_new(a, DTYPE_F32, 3, dims[l]);
            for (int64_t i = 0; i < t->numel; i++) tensor_f32(t)[i] = (float)rng_normal(&rng);
            levels[f * 4 + l] = t;
        }
    int64_t ashape[2] = {n_frames, 128};
    tensor_t *audio = tensor_zeros(a, DTYPE_F32, 2, ashape);

    printf("stepstone cache benchmark: %d videos x %d frames, Swin-B levels at f16, crc32c %s\n", n_videos, n_frames,
           crc32c_hardware() ? "SSE4.2" : "portable");
    err_t err;
    cache_t *c;
    cache_options_t opt = cache_default_options(); /* f16, fsync at each commit */
    if (cache_open(cache_dir_path, CACHE_WRITE, &opt, &c, &err) != ERR_OK) die(&err);
    double t0 = now();
    for (int v = 0; v < n_videos; v++) {
        char uid[32];
        snprintf(uid, sizeof uid, "bench%04d", v);
        cache_video_t cv = {"v2", uid, n_frames, 4, names, (const tensor_t *const *)levels, audio};
        if (cache_put_video(c, &cv, &err) != ERR_OK) die(&err);
    }
    double write_s = now() - t0;
    cache_stat_t st;
    cache_stat(c, &st, &err);
    report("write (f32 -> f16, one txn a video)", st.value_bytes[CACHE_DB_VISUAL], write_s, n_videos * n_frames);
    cache_close(c);
    arena_destroy(a);
    free(levels);

    /* evict data.mdb so the first pass reads from the disk */
    char data_path[700];
    snprintf(data_path, sizeof data_path, "%s/data.mdb", cache_dir_path);
    int fd = open(data_path, O_RDONLY);
    int evicted = fd >= 0 && fdatasync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
    if (fd >= 0) close(fd);

    int *order = malloc((size_t)n_videos * sizeof *order);
    for (int i = 0; i < n_videos; i++) order[i] = i;
    for (int i = n_videos - 1; i > 0; i--) {
        int j = (int)rng_below(&rng, (uint64_t)i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    if (cache_open(cache_dir_path, CACHE_READ, NULL, &c, &err) != ERR_OK) die(&err);
    uint64_t sink = 0;
    int frames = n_videos * n_frames;
    t0 = now();
    uint64_t bytes = read_all(c, order, n_videos, n_frames, READ_VIEWS, NULL, &sink);
    report(evicted ? "read cold, views + crc32c" : "read (eviction failed), views + crc32c", bytes, now() - t0, frames);
    t0 = now();
    bytes = read_all(c, order, n_videos, n_frames, READ_VIEWS, NULL, &sink);
    report("read warm, views + crc32c", bytes, now() - t0, frames);
    arena_t *cpu = arena_create(DEVICE_CPU, 64 << 20);
    t0 = now();
    bytes = read_all(c, order, n_videos, n_frames, READ_F32, cpu, &sink);
    report("read warm, f32 tensors + crc32c (cpu)", bytes, now() - t0, frames);
    arena_destroy(cpu);
    if (backend_get(DEVICE_CUDA)) {
        arena_t *gpu = arena_create(DEVICE_CUDA, 64 << 20);
        read_all(c, order, 1, 1, READ_CUDA, gpu, &sink); /* warm-up: context and first allocations */
        t0 = now();
        bytes = read_all(c, order, n_videos, n_frames, READ_CUDA, gpu, &sink);
        report("read warm, f32 tensors + crc32c (cuda)", bytes, now() - t0, frames);
        arena_destroy(gpu);
    } else {
        printf("cache %-40s skipped: no GPU\n", "read warm, f32 tensors + crc32c (cuda)");
    }
    cache_close(c);

    /* the memory map's raw speed: no checksum, every byte summed in place */
    cache_options_t no_verify = cache_default_options();
    no_verify.verify_reads = 0;
    if (cache_open(cache_dir_path, CACHE_READ, &no_verify, &c, &err) != ERR_OK) die(&err);
    read_all(c, order, n_videos, n_frames, READ_SUM, NULL, &sink); /* map the pages into this open, as above */
    t0 = now();
    bytes = read_all(c, order, n_videos, n_frames, READ_SUM, NULL, &sink);
    report("read warm, views summed, no crc32c", bytes, now() - t0, frames);
    cache_close(c);
    printf("(checksum of the sums, so the reads are not optimised away: %llx)\n", (unsigned long long)sink);
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(order);
    return 0;
}
