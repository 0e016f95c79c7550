/* stepstone-synth - a small, learnable audio-visual data set in the exact
 * AVSBench-semantic layout (synth.h says how it is built). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libavutil/log.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "png_io.h"
#include "progress.h"
#include "synth.h"

static const char *const class_names[AVS_NUM_CLASSES] = {
    "background", "accordion", "airplane", "axe", "baby", "bassoon", "bell", "bird", "boat", "boy", "bus", "car",
    "cat", "cello", "clarinet", "clipper", "clock", "dog", "donkey", "drum", "duck", "elephant", "emergency-car",
    "erhu", "flute", "frying-food", "girl", "goose", "guitar", "gun", "guzheng", "hair-dryer", "handpan",
    "harmonica", "harp", "helicopter", "hen", "horse", "keyboard", "leopard", "lion", "man", "marimba",
    "missile-rocket", "motorcycle", "mower", "parrot", "piano", "pig", "pipa", "saw", "saxophone", "sheep", "sitar",
    "sorna", "squirrel", "tabla", "tank", "tiger", "tractor", "train", "trombone", "truck", "trumpet", "tuba",
    "ukulele", "utv", "vacuum-cleaner", "violin", "wolf", "woman"};

static void usage(FILE *f) {
    fputs("usage: stepstone-synth --out DIR [options]\n"
          "\n"
          "Writes a small, learnable audio-visual data set in the AVSBench-semantic layout:\n"
          "DIR/metadata.csv (vid,uid,s_min,s_sec,a_obj,split,label), DIR/label2idx.json (71\n"
          "classes), DIR/synth.json (the classes' looks and sounds), and per video\n"
          "DIR/<v1s|v1m|v2>/<uid>/ with audio.wav (16 kHz 16-bit PCM mono), frames/<i>.jpg\n"
          "(one per second, at t = i + 0.5 s), labels_rgb/<i>.png (the 71-colour palette;\n"
          "v1s train videos: frame 0 only) and <uid>.mp4 (MPEG-4 video + AAC audio).\n"
          "\n"
          "Each class has a look (shape, colour, texture, motion) and a sound (pitch,\n"
          "timbre, rhythm). Videos show sounding objects and silent distractors of other\n"
          "classes; only sounding objects are labelled, so the sound decides the answer.\n"
          "v1s: one source, 5 s; v1m: two or three, 5 s; v2: one to three that start and\n"
          "stop second by second, 10 s. Subsets cycle v1s, v2, v1m, v1s, v2; splits\n"
          "60/20/20 train/val/test within each subset. The same seed gives\n"
          "byte-identical files, whatever the thread count.\n"
          "\n"
          "  --out DIR           output folder (created; existing files are replaced)\n"
          "  --seed S            random seed (default 1)\n"
          "  --videos N          number of videos (default 200)\n"
          "  --size S            frame and label side in pixels, even (default 224)\n"
          "  --classes K         object classes in use, 2..24 (default 8)\n"
          "  --object-size F     mean object radius as a fraction of the side (default 0.16)\n"
          "  --distractors D     at most D silent objects per video (default 2)\n"
          "  --noise A           audio noise amplitude, 0..1 (default 0.05)\n"
          "  --fps F             clip frame rate, even (default 10)\n"
          "  --no-video          skip the .mp4 clips (the fastest data set)\n"
          "  --threads T         worker threads (default: OpenMP's choice)\n"
          "  -h, --help          this text\n"
          "\n"
          "Exit status: 0 done, 1 a file could not be written (the message names it),\n"
          "2 bad command line.\n",
          f);
}

static int bad_usage(const char *msg, const char *arg) {
    fprintf(stderr, "stepstone-synth: %s%s\n(stepstone-synth --help for the options)\n", msg, arg ? arg : "");
    return 2;
}

static err_code_t mkdirs(const char *path, err_t *err) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(err, ERR_IO, "%s: cannot create: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(err, ERR_IO, "%s: cannot create: %s", p, strerror(errno));
    return ERR_OK;
}

static err_code_t write_text(const char *path, const char *text, err_t *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return err_set(err, ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    fputs(text, f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        return err_set(err, ERR_IO, "%s: write failed", path);
    }
    return ERR_OK;
}

/* one video: frames, labels, audio, clip */
static err_code_t write_video(const char *out, const synth_options_t *o, const synth_class_t *classes,
                              const synth_video_t *v, err_t *err) {
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s/%s/%s", out, avs_subset_name(v->subset), v->uid);
    err_code_t rc;
    snprintf(p, sizeof p, "%s/frames", dir);
    if ((rc = mkdirs(p, err))) return rc;
    snprintf(p, sizeof p, "%s/labels_rgb", dir);
    if ((rc = mkdirs(p, err))) return rc;
    size_t np = (size_t)o->size * o->size;
    uint8_t *rgb = malloc(np * 3), *label = malloc(np);
    float *audio = malloc((size_t)v->seconds * SYNTH_RATE * sizeof(float));
    if (!rgb || !label || !audio) {
        free(rgb);
        free(label);
        free(audio);
        return err_set(err, ERR_NOMEM, "out of memory for video %s", v->uid);
    }
    avs_video_t av = {.subset = v->subset, .split = v->split};
    for (int i = 0; i < v->seconds && !rc; i++) {
        synth_render(o, classes, v, i + 0.5, rgb, label);
        snprintf(p, sizeof p, "%s/frames/%d.jpg", dir, i);
        if ((rc = synth_write_jpeg(p, rgb, o->size, o->size, err))) break;
        if (!avs_frame_labelled(&av, i)) continue;
        snprintf(p, sizeof p, "%s/labels_rgb/%d.png", dir, i);
        rc = png_io_write_palette(p, o->size, o->size, label, avs_palette(), AVS_NUM_CLASSES, err);
    }
    if (!rc) {
        synth_audio(o, classes, v, audio);
        snprintf(p, sizeof p, "%s/audio.wav", dir);
        rc = synth_write_wav(p, audio, v->seconds * SYNTH_RATE, SYNTH_RATE, err);
    }
    if (!rc && o->write_video) {
        snprintf(p, sizeof p, "%s/%s.mp4", dir, v->uid);
        rc = synth_write_mp4(p, o, classes, v, audio, err);
    }
    free(rgb);
    free(label);
    free(audio);
    return rc;
}

static err_code_t write_tables(const char *out, const synth_options_t *o, const synth_class_t *classes,
                               const synth_video_t *videos, int n, err_t *err) {
    /* metadata.csv: the AVSBench-semantic columns */
    size_t cap = 256 + (size_t)n * 160, len = 0;
    char *csv = malloc(cap);
    if (!csv) return err_set(err, ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(csv + len, cap - len, "vid,uid,s_min,s_sec,a_obj,split,label\n");
    for (int k = 0; k < n; k++) {
        const synth_video_t *v = &videos[k];
        char objs[512] = "";
        for (int j = 0; j < v->n_objects; j++) {
            if (!v->obj[j].sounding) continue;
            if (objs[0]) strcat(objs, "_");
            strcat(objs, class_names[classes[v->obj[j].cls].class_id]);
        }
        len += (size_t)snprintf(csv + len, cap - len, "%s,%s,0,0,%s,%s,%s\n", v->uid, v->uid, objs,
                                avs_split_name(v->split), avs_subset_name(v->subset));
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/metadata.csv", out);
    err_code_t rc = write_text(p, csv, err);
    free(csv);
    if (rc) return rc;

    json_t *l2i = json_object();
    for (int c = 0; c < AVS_NUM_CLASSES; c++) json_object_set_new(l2i, class_names[c], json_integer(c));
    char *text = json_dumps(l2i, JSON_INDENT(1));
    json_decref(l2i);
    if (!text) return err_set(err, ERR_NOMEM, "out of memory");
    snprintf(p, sizeof p, "%s/label2idx.json", out);
    rc = write_text(p, text, err);
    free(text);
    if (rc) return rc;

    static const char *const shapes[] = {"disc", "square", "triangle", "diamond", "ring", "cross", "wide ellipse",
                                         "hexagon"};
    static const char *const textures[] = {"solid", "stripes", "checker", "dots"};
    static const char *const motions[] = {"jitter", "sway", "bob", "circle"};
    static const char *const timbres[] = {"sine", "odd harmonics", "all harmonics", "bell"};
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "program", json_string("stepstone-synth"));
    json_object_set_new(root, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(root, "videos", json_integer(n));
    json_object_set_new(root, "size", json_integer(o->size));
    json_object_set_new(root, "object_size", json_real(o->object_size));
    json_object_set_new(root, "distractors", json_integer(o->distractors));
    json_object_set_new(root, "noise", json_real(o->noise));
    json_object_set_new(root, "fps", json_integer(o->fps));
    for (int j = 0; j < o->classes; j++) {
        const synth_class_t *c = &classes[j];
        json_t *e = json_object();
        char hex[8];
        snprintf(hex, sizeof hex, "#%02x%02x%02x", c->rgb[0], c->rgb[1], c->rgb[2]);
        json_object_set_new(e, "class_id", json_integer(c->class_id));
        json_object_set_new(e, "name", json_string(class_names[c->class_id]));
        json_object_set_new(e, "colour", json_string(hex));
        json_object_set_new(e, "shape", json_string(shapes[c->shape]));
        json_object_set_new(e, "texture", json_string(textures[c->texture]));
        json_object_set_new(e, "motion", json_string(motions[c->motion]));
        json_object_set_new(e, "pitch_hz", json_real(c->f0));
        json_object_set_new(e, "timbre", json_string(timbres[c->timbre]));
        json_object_set_new(e, "pulse_hz", json_real(c->pulse_hz));
        json_array_append_new(arr, e);
    }
    json_object_set_new(root, "classes", arr);
    text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!text) return err_set(err, ERR_NOMEM, "out of memory");
    snprintf(p, sizeof p, "%s/synth.json", out);
    rc = write_text(p, text, err);
    free(text);
    return rc;
}

static int parse_num(const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    log_set_program("stepstone-synth");
    synth_options_t o = {.classes = 8, .size = 224, .object_size = 0.16, .distractors = 2, .noise = 0.05,
                         .fps = 10, .write_video = 1, .seed = 1};
    const char *out = NULL;
    int n_videos = 200, threads = 0;
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},         {"seed", required_argument, 0, 's'},
        {"videos", required_argument, 0, 'n'},      {"size", required_argument, 0, 'z'},
        {"classes", required_argument, 0, 'k'},     {"object-size", required_argument, 0, 'r'},
        {"distractors", required_argument, 0, 'd'}, {"noise", required_argument, 0, 'a'},
        {"fps", required_argument, 0, 'f'},         {"no-video", no_argument, 0, 'V'},
        {"threads", required_argument, 0, 't'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    double v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's': {
            char *end;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (end == optarg || *end) return bad_usage("--seed wants a non-negative integer, not ", optarg);
            o.seed = s;
            break;
        }
        case 'n':
            if (parse_num(optarg, 1, 1e6, &v) || v != (int)v) return bad_usage("--videos wants 1..1000000, not ", optarg);
            n_videos = (int)v;
            break;
        case 'z':
            if (parse_num(optarg, 16, 4096, &v) || v != (int)v || (int)v % 2)
                return bad_usage("--size wants an even side 16..4096, not ", optarg);
            o.size = (int)v;
            break;
        case 'k':
            if (parse_num(optarg, 2, SYNTH_MAX_CLASSES, &v) || v != (int)v)
                return bad_usage("--classes wants 2..24, not ", optarg);
            o.classes = (int)v;
            break;
        case 'r':
            if (parse_num(optarg, 0.02, 0.45, &o.object_size)) return bad_usage("--object-size wants 0.02..0.45, not ", optarg);
            break;
        case 'd':
            if (parse_num(optarg, 0, SYNTH_MAX_OBJECTS - 3, &v) || v != (int)v)
                return bad_usage("--distractors wants 0..5, not ", optarg);
            o.distractors = (int)v;
            break;
        case 'a':
            if (parse_num(optarg, 0, 1, &o.noise)) return bad_usage("--noise wants 0..1, not ", optarg);
            break;
        case 'f':
            if (parse_num(optarg, 2, 60, &v) || v != (int)v || (int)v % 2) return bad_usage("--fps wants an even 2..60, not ", optarg);
            o.fps = (int)v;
            break;
        case 'V': o.write_video = 0; break;
        case 't':
            if (parse_num(optarg, 1, 256, &v) || v != (int)v) return bad_usage("--threads wants 1..256, not ", optarg);
            threads = (int)v;
            break;
        case 'h': usage(stdout); return 0;
        default: return bad_usage("bad option", NULL);
        }
    }
    if (optind < argc) return bad_usage("unexpected argument ", argv[optind]);
    if (!out) return bad_usage("--out is required", NULL);
    if (threads > 0) omp_set_num_threads(threads);
    av_log_set_level(AV_LOG_ERROR); /* the AAC encoder reports its statistics at info level */

    err_t err = {0};
    if (mkdirs(out, &err)) {
        log_error("%s", err.msg);
        return 1;
    }
    synth_class_t classes[SYNTH_MAX_CLASSES];
    synth_make_classes(&o, classes);
    synth_video_t *videos = calloc((size_t)n_videos, sizeof *videos);
    if (!videos) {
        log_error("out of memory for %d videos", n_videos);
        return 1;
    }
    for (int k = 0; k < n_videos; k++) synth_plan_video(&o, classes, k, n_videos, &videos[k]);
    if (write_tables(out, &o, classes, videos, n_videos, &err)) {
        log_error("%s", err.msg);
        free(videos);
        return 1;
    }
    progress_t prog;
    progress_start(&prog, "synth", n_videos, "videos");
    int done = 0, failed = 0;
    err_t first = {0};
#pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < n_videos; k++) {
        int skip;
#pragma omp critical(synth_progress)
        skip = failed;
        if (skip) continue;
        err_t e = {0};
        err_code_t rc = write_video(out, &o, classes, &videos[k], &e);
#pragma omp critical(synth_progress)
        {
            if (rc && !failed) first = e;
            if (rc) failed = 1;
            done++;
            progress_update(&prog, done, 0);
        }
    }
    progress_finish(&prog);
    free(videos);
    if (failed) {
        log_error("%s", first.msg);
        return 1;
    }
    log_info("wrote %d videos to %s (seed %llu)", n_videos, out, (unsigned long long)o.seed);
    return 0;
}
