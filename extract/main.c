/* stepstone-extract - frozen-backbone features of every frame and VGGish
 * embeddings of every video of an AVSBench tree, into an LMDB feature cache
 * (cache/cache.h: "HOW stepstone-extract USES IT"). The parts are described
 * in extract.h; options.c has the --help text and the exit codes. */
#include <libavutil/log.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extract.h"
#include "feature_producer.h"
#include "log.h"
#include "progress.h"

/* The signal that asked us to stop (SIGINT, SIGTERM), or 0. The loop stops
 * after the video in progress, so the cache and the manifest stay whole; the
 * handler is reset by the first signal, so a second one ends the process at
 * once (the cache is still consistent: LMDB commits are atomic). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    static const char msg[] = "\nstepstone-extract: stopping after the video in progress "
                              "(again to stop now; the cache stays consistent)\n";
    stop_signal = sig;
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
}

static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int exit_code_for_cache_error(err_code_t code) {
    switch (code) {
    case ERR_IO: return EXTRACT_EXIT_CACHE_IO;
    case ERR_NOMEM:
    case ERR_DEVICE: return EXTRACT_EXIT_OTHER;
    default: return EXTRACT_EXIT_MISMATCH; /* another producer or dtype, not a cache, a folder in use */
    }
}

/* Everything one run holds; main() owns it and run_free releases it. */
typedef struct {
    extract_options_t options;
    avs_dataset_t ds;
    image_processor_t processor;
    networks_t nets;
    json_t *producer;
    cache_t *cache;
    extract_plan_t plan;
    int *todo; /* videos of the plan not in the cache yet (indices into ds.videos); owned */
    int n_todo;
    run_record_t record;
    double started_s;
    int manifest_ready; /* the networks and producer exist, so a manifest can be written */
    int cache_accepted; /* the cache holds (or will hold) our producer's features */
} run_t;

static void run_free(run_t *r) {
    cache_close(r->cache);
    json_decref(r->producer);
    networks_free(&r->nets);
    plan_free(&r->plan);
    free(r->todo);
    avs_close(&r->ds);
    run_record_free(&r->record);
}

static void video_name(const avs_video_t *v, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", avs_subset_name(v->subset), v->uid);
}

/* The inputs' sizes and SHA-256, for the manifest and the producer record. */
static err_code_t fingerprint_inputs(run_t *r, err_t *err) {
    const extract_options_t *o = &r->options;
    run_record_t *rec = &r->record;
    err_code_t rc = file_fingerprint(r->ds.meta_path, &rec->metadata, err);
    if (rc == ERR_OK) rc = file_fingerprint(o->config_path, &rec->config, err);
    if (rc == ERR_OK) rc = file_fingerprint(o->weights_path, &rec->weights, err);
    if (rc == ERR_OK) rc = file_fingerprint(o->audio_weights_path, &rec->audio_weights, err);
    if (rc == ERR_OK && o->processor_path) rc = file_fingerprint(o->processor_path, &rec->processor, err);
    return rc;
}

/* Reads the data set, the processor, the networks and the fingerprints.
 * Returns an exit code (0: go on). */
static int load_inputs(run_t *r) {
    extract_options_t *o = &r->options;
    err_t err = {0};
    err_code_t rc = avs_open(o->data_dir, o->layout, &r->ds, &err);
    r->processor = image_processor_official();
    if (rc == ERR_OK && o->processor_path) rc = image_processor_load(o->processor_path, &r->processor, &err);
    /* the networks before the fingerprints: an absent device or a wrong
     * weights file is reported before seconds of hashing */
    if (rc == ERR_OK) rc = networks_load(o, &r->nets, &err);
    if (rc == ERR_OK) rc = fingerprint_inputs(r, &err);
    if (rc != ERR_OK) {
        log_error("%s", err.msg);
        return rc == ERR_NOMEM ? EXTRACT_EXIT_OTHER : EXTRACT_EXIT_INPUT;
    }
    if (o->decode_threads == 0) o->decode_threads = o->device == DEVICE_CPU ? 1 : omp_get_num_procs();
    feature_producer_t fp = {.backbone = &r->nets.swin_config,
                             .backbone_weights = r->record.weights,
                             .processor = &r->processor,
                             .audio_embedding_size = vggish_embedding_size(r->nets.vggish),
                             .resampler = o->resampler,
                             .audio_weights = r->record.audio_weights,
                             .dtype = o->dtype};
    r->producer = feature_producer_json(&fp);
    if (!r->producer) {
        log_error("out of memory building the producer record");
        return EXTRACT_EXIT_OTHER;
    }
    r->manifest_ready = 1;
    return 0;
}

/* Opens (or creates) the cache and checks that it holds our kind of
 * features. Returns an exit code. */
static int open_cache(run_t *r) {
    const extract_options_t *o = &r->options;
    err_t err = {0};
    cache_options_t co = cache_default_options();
    co.dtype = o->dtype;
    co.no_sync = o->no_sync;
    if (o->map_size) co.map_size = o->map_size;
    err_code_t rc = cache_open(o->cache_dir, CACHE_WRITE, &co, &r->cache, &err);
    char *text = NULL;
    if (rc == ERR_OK) {
        text = json_dumps(r->producer, JSON_COMPACT | JSON_SORT_KEYS);
        rc = text ? cache_meta_ensure(r->cache, text, &err) : err_set(&err, ERR_NOMEM, "out of memory");
        free(text);
    }
    if (rc != ERR_OK) {
        log_error("%s", err.msg);
        return exit_code_for_cache_error(rc);
    }
    r->cache_accepted = 1;
    return 0;
}

/* The plan, then which of its videos are still to do. Returns an exit code. */
static int plan_work(run_t *r) {
    err_t err = {0};
    err_code_t rc = plan_make(&r->ds, &r->options, &r->plan, &err);
    r->todo = malloc(sizeof(int) * (size_t)(r->plan.n_videos > 0 ? r->plan.n_videos : 1));
    if (rc != ERR_OK || !r->todo) {
        log_error("%s", rc != ERR_OK ? err.msg : "out of memory");
        return EXTRACT_EXIT_OTHER;
    }
    run_record_t *rec = &r->record;
    rec->videos_in_data = r->ds.n_videos;
    rec->videos_selected = r->plan.n_selected;
    rec->videos_in_shard = r->plan.n_videos;
    for (int i = 0; i < r->plan.n_videos; i++) {
        const avs_video_t *v = &r->ds.videos[r->plan.videos[i]];
        int present = 0;
        rc = cache_has_video(r->cache, avs_subset_name(v->subset), v->uid, &present, &err);
        if (rc == ERR_ARG) {
            /* a uid the cache cannot name (a '/' or a space in it): this video fails, the rest go on */
            char name[512];
            video_name(v, name, sizeof name);
            log_error("video %s: %s", name, err.msg);
            if (run_record_fail(rec, name, err.msg, &err) != ERR_OK) return EXTRACT_EXIT_OTHER;
            continue;
        }
        if (rc != ERR_OK) {
            log_error("%s", err.msg);
            return exit_code_for_cache_error(rc);
        }
        if (present) rec->videos_present_before++;
        else r->todo[r->n_todo++] = r->plan.videos[i];
    }
    log_info("%s: %d videos, %d selected (subsets and splits), %d in shard %d/%d; %d already in %s, %d to extract",
             r->ds.meta_path, r->ds.n_videos, r->plan.n_selected, r->plan.n_videos, r->options.shard_k,
             r->options.shard_n, rec->videos_present_before, r->options.cache_dir, r->n_todo);
    return 0;
}

static void write_manifest(run_t *r) {
    if (!r->manifest_ready) return;
    err_t err = {0};
    run_record_t *rec = &r->record;
    rec->wall_s = seconds_now() - r->started_s;
    utc_now(rec->finished);
    rec->have_cache_stat = r->cache && cache_stat(r->cache, &rec->cache_stat, &err) == ERR_OK;
    if (manifest_write(&r->options, &r->ds, &r->nets, &r->processor, r->producer, rec, &err) != ERR_OK)
        log_error("%s", err.msg);
}

/* The loop over the videos to do. Returns an exit code (0: every video was
 * handled, failed ones included). */
static int extract_videos(run_t *r) {
    run_record_t *rec = &r->record;
    decode_settings_t settings = {&r->ds, &r->processor, r->options.resampler};
    decoder_t *decoder = NULL;
    err_t err = {0};
    if (decoder_start(&settings, r->todo, r->n_todo, r->options.decode_threads, &decoder, &err) != ERR_OK) {
        log_error("%s", err.msg);
        return EXTRACT_EXIT_OTHER;
    }
    progress_options_t po = {.extra_unit = "frames"};
    progress_t progress;
    progress_start_with(&progress, "extract", r->n_todo, "videos", &po);
    video_timings_t timings = {0};
    double loop_start = seconds_now();
    int exit_code = 0;
    for (int k = 0; k < r->n_todo && !stop_signal; k++) {
        double wait_start = seconds_now();
        decoded_video_t *d = decoder_next(decoder);
        rec->decode_wait_s += seconds_now() - wait_start;
        if (!d) break;
        const avs_video_t *v = &r->ds.videos[d->video];
        char name[512];
        video_name(v, name, sizeof name);
        if (d->status != ERR_OK) {
            log_error("video %s cannot be read: %s", name, d->err.msg);
            if (run_record_fail(rec, name, d->err.msg, &err) != ERR_OK) exit_code = EXTRACT_EXIT_OTHER;
        } else {
            err_code_t rc = store_video(&r->nets, r->cache, avs_subset_name(v->subset), v->uid, d, &timings, &err);
            if (rc == ERR_OK) {
                rec->videos_extracted++;
                rec->frames_extracted += d->n_frames;
            } else {
                /* the cache or the device failed: nothing later can succeed */
                log_error("video %s: %s", name, err.msg);
                snprintf(rec->error, sizeof rec->error, "video %s: %s", name, err.msg);
                exit_code = exit_code_for_cache_error(rc);
            }
        }
        decoder_release(decoder, d);
        progress_update(&progress, k + 1, rec->frames_extracted);
        if (exit_code) break;
    }
    rec->decode_s = decoder_seconds(decoder);
    decoder_stop(decoder);
    progress_finish(&progress);
    rec->loop_s = seconds_now() - loop_start;
    rec->backbone_s = timings.backbone_s;
    rec->audio_s = timings.audio_s;
    rec->write_s = timings.write_s;
    return exit_code;
}

static void log_summary(const run_t *r) {
    const run_record_t *rec = &r->record;
    log_info("extracted %d videos (%lld frames) in %.1f s: %.2f frames/s end to end (backbone %.1f s, audio %.1f s, "
             "write %.1f s, waiting for decode %.1f s of %.1f s decoding); %d were already there",
             rec->videos_extracted, (long long)rec->frames_extracted, rec->loop_s,
             rec->loop_s > 0 ? (double)rec->frames_extracted / rec->loop_s : 0.0, rec->backbone_s, rec->audio_s,
             rec->write_s, rec->decode_wait_s, rec->decode_s, rec->videos_present_before);
    if (rec->n_failed > 0) {
        log_error("%d video%s could not be read (listed in %s/manifest.json):", rec->n_failed,
                  rec->n_failed == 1 ? "" : "s", r->options.cache_dir);
        for (int i = 0; i < rec->n_failed; i++) log_error("  %s: %s", rec->failed[i].video, rec->failed[i].reason);
    }
}

int main(int argc, char **argv) {
    log_set_program("stepstone-extract");
    /* FFmpeg's own warnings ("Cannot check for SPDIF") name no file; our
     * messages about a bad audio file do */
    if (!log_enabled(LOG_LEVEL_DEBUG)) av_log_set_level(AV_LOG_ERROR);
    run_t r;
    memset(&r, 0, sizeof r);
    int code = extract_parse_args(argc, argv, &r.options);
    if (code == -1) return 0;
    if (code != 0) return code;
    r.started_s = seconds_now();
    r.record.status = "error"; /* until the loop says otherwise */
    utc_now(r.record.started);

    code = load_inputs(&r);
    if (code == 0) code = open_cache(&r);
    if (code == 0) code = plan_work(&r);
    if (code != 0) {
        /* a manifest only when the cache is ours: never write into a folder the cache refused */
        if (r.cache_accepted) {
            r.record.status = "error";
            write_manifest(&r);
        }
        run_free(&r);
        return code;
    }
    r.record.setup_s = seconds_now() - r.started_s;
    /* no manifest before the loop ends: the pipeline's Make rules take
     * manifest.json as the step's target, and a killed run must not leave
     * one that is newer than its inputs */
    catch_stop_signals();
    int loop_code = extract_videos(&r);
    run_record_t *rec = &r.record;
    int all_there = rec->videos_present_before + rec->videos_extracted == rec->videos_in_shard;
    /* a signal that came after the last video stopped nothing */
    int interrupted = stop_signal && !all_there;
    if (loop_code) rec->status = "error";
    else if (all_there) rec->status = "complete";
    else rec->status = interrupted ? "interrupted" : "incomplete";
    log_summary(&r);
    write_manifest(&r);
    if (loop_code) code = loop_code;
    else if (interrupted) code = 128 + stop_signal;
    else if (rec->n_failed > 0 && !r.options.keep_going) code = EXTRACT_EXIT_VIDEOS_FAILED;
    run_free(&r);
    return code;
}
