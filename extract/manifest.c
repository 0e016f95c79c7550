/* manifest.c - manifest.json in the cache folder (../shared/DESIGN.md): the
 * program and version, the resolved options, the inputs with their sizes
 * and SHA-256, the producer record stored in the cache, the counts, every
 * video that failed and why, and the timings. Written when a run ends
 * (status "complete": every selected video of the shard is in the cache;
 * "incomplete": some could not be read; "interrupted"; "error": the cache or
 * the device failed), so readers and Make rules must look at the status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extract.h"
#include "feature_producer.h"
#include "version.h"

err_code_t run_record_fail(run_record_t *r, const char *video, const char *reason, err_t *err) {
    if (r->n_failed == r->cap_failed) {
        int cap = r->cap_failed ? 2 * r->cap_failed : 16;
        failed_video_t *grown = realloc(r->failed, sizeof *grown * (size_t)cap);
        if (!grown) return err_set(err, ERR_NOMEM, "out of memory for the list of failed videos");
        r->failed = grown;
        r->cap_failed = cap;
    }
    failed_video_t *f = &r->failed[r->n_failed];
    f->video = strdup(video);
    f->reason = strdup(reason);
    if (!f->video || !f->reason) {
        free(f->video);
        free(f->reason);
        return err_set(err, ERR_NOMEM, "out of memory for the list of failed videos");
    }
    r->n_failed++;
    return ERR_OK;
}

void run_record_free(run_record_t *r) {
    for (int i = 0; i < r->n_failed; i++) {
        free(r->failed[i].video);
        free(r->failed[i].reason);
    }
    free(r->failed);
    r->failed = NULL;
    r->n_failed = r->cap_failed = 0;
}

void utc_now(char buf[32]) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *input_json(const char *path, const file_fingerprint_t *f) {
    if (!path) return json_null();
    return json_pack("{s:s, s:I, s:s}", "path", path, "bytes", (json_int_t)f->bytes, "sha256", f->sha256);
}

static json_t *names_json(const int *flags, const char *(*name)(int)) {
    json_t *a = json_array();
    for (int i = 0; a && i < 3; i++)
        if (flags[i]) json_array_append_new(a, json_string(name(i)));
    return a;
}

static const char *subset_name_of(int i) { return avs_subset_name((avs_subset_t)i); }
static const char *split_name_of(int i) { return avs_split_name((avs_split_t)i); }

static json_t *config_json(const extract_options_t *o, const avs_dataset_t *ds, const networks_t *n,
                           const image_processor_t *processor) {
    json_t *shard = json_pack("{s:i, s:i, s:s}", "k", o->shard_k, "n", o->shard_n, "rule",
                              "data row r of the meta file (from 0, before filters) when r mod n == k - 1");
    json_t *c = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:s, s:b, s:I, s:s, s:i, s:b}", "data", o->data_dir,
                          "layout", avs_layout_name(ds->layout), "cache", o->cache_dir, "subsets",
                          names_json(o->subsets, subset_name_of), "splits", names_json(o->splits, split_name_of),
                          "device", device_name(o->device), "shard", shard, "dtype", dtype_name(o->dtype),
                          "keep_going", o->keep_going, "map_size", (json_int_t)o->map_size, "resampler",
                          audio_resampler_name(o->resampler), "decode_threads", o->decode_threads, "no_sync",
                          o->no_sync);
    if (c) {
        json_object_set_new(c, "backbone", swin_config_json(&n->swin_config));
        json_object_set_new(c, "image", image_processor_json(processor));
    }
    return c;
}

static json_t *failed_json(const run_record_t *r) {
    json_t *a = json_array();
    for (int i = 0; a && i < r->n_failed; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "video", r->failed[i].video, "reason", r->failed[i].reason));
    return a;
}

static json_t *outputs_json(const extract_options_t *o, const run_record_t *r) {
    if (!r->have_cache_stat) return json_pack("{s:s}", "cache", o->cache_dir);
    const cache_stat_t *s = &r->cache_stat;
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "cache", o->cache_dir, "videos",
                     (json_int_t)s->entries[CACHE_DB_VIDEOS], "frames", (json_int_t)s->entries[CACHE_DB_VISUAL],
                     "audio", (json_int_t)s->entries[CACHE_DB_AUDIO], "value_bytes",
                     (json_int_t)(s->value_bytes[CACHE_DB_VISUAL] + s->value_bytes[CACHE_DB_AUDIO]), "file_bytes",
                     (json_int_t)s->file_bytes, "map_size", (json_int_t)s->map_size);
}

static json_t *counts_json(const run_record_t *r) {
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:I}", "videos_in_data", r->videos_in_data, "videos_selected",
                     r->videos_selected, "videos_in_shard", r->videos_in_shard, "videos_present_before",
                     r->videos_present_before, "videos_extracted", r->videos_extracted, "videos_failed", r->n_failed,
                     "frames_extracted", (json_int_t)r->frames_extracted);
}

static json_t *timings_json(const run_record_t *r) {
    double frames_per_s = r->loop_s > 0 ? (double)r->frames_extracted / r->loop_s : 0.0;
    return json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "started", r->started, "finished",
                     r->finished, "wall_s", r->wall_s, "setup_s", r->setup_s, "loop_s", r->loop_s, "decode_s",
                     r->decode_s, "decode_wait_s", r->decode_wait_s, "backbone_s", r->backbone_s, "audio_s",
                     r->audio_s, "write_s", r->write_s, "frames_per_s", frames_per_s);
}

static json_t *manifest_json(const extract_options_t *o, const avs_dataset_t *ds, const networks_t *n,
                             const image_processor_t *processor, json_t *producer, const run_record_t *r) {
    json_t *inputs = json_pack("{s:o, s:o, s:o, s:o, s:o}", "metadata", input_json(ds->meta_path, &r->metadata),
                               "config", input_json(o->config_path, &r->config), "weights",
                               input_json(o->weights_path, &r->weights), "audio_weights",
                               input_json(o->audio_weights_path, &r->audio_weights), "processor",
                               input_json(o->processor_path, &r->processor));
    json_t *m = json_pack("{s:s, s:s, s:s, s:o, s:O, s:o, s:o, s:o, s:o, s:o}", "program", "stepstone-extract",
                          "version", STEPSTONE_VERSION, "status", r->status, "config",
                          config_json(o, ds, n, processor), "producer", producer, "inputs", inputs, "outputs",
                          outputs_json(o, r), "counts", counts_json(r), "failed", failed_json(r), "timings",
                          timings_json(r));
    if (m && r->error[0]) json_object_set_new(m, "error", json_string(r->error));
    return m;
}

err_code_t manifest_write(const extract_options_t *o, const avs_dataset_t *ds, const networks_t *n,
                          const image_processor_t *processor, json_t *producer, const run_record_t *r, err_t *err) {
    char path[4096], tmp[4200];
    if (snprintf(path, sizeof path, "%s/manifest.json", o->cache_dir) >= (int)sizeof path)
        return err_set(err, ERR_ARG, "%s: the cache path is too long", o->cache_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    json_t *m = manifest_json(o, ds, n, processor, producer, r);
    char *text = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
    json_decref(m);
    if (!text) return err_set(err, ERR_NOMEM, "%s: out of memory building the manifest", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(text);
        return err_set(err, ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fflush(f) == 0 && ok;
    if (ok && !o->no_sync) ok = fsync(fileno(f)) == 0;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        if (ok) saved = errno;
        unlink(tmp);
        return err_set(err, ERR_IO, "%s: cannot write: %s", path, strerror(saved));
    }
    return ERR_OK;
}
