/* options.c - stepstone-extract's command line. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "extract.h"
#include "feature_producer.h"
#include "version.h"

static const char *usage_text =
    "usage: stepstone-extract --data DIR --cache DIR --config config.json --weights W.safetensors\n"
    "                         --audio-weights V.safetensors [options]\n"
    "\n"
    "Runs the frozen Swin backbone on every frame and VGGish on the audio of every selected\n"
    "AVSBench video and stores the features in an LMDB feature cache (stepstone-cache looks\n"
    "inside). Each video is written in one transaction: it is in the cache completely or not\n"
    "at all. Killed at any moment and run again with the same command, it skips the videos\n"
    "already there and writes the rest; the result equals an uninterrupted run.\n"
    "\n"
    "required:\n"
    "  --data DIR             an AVSBench tree: metadata.csv + label2idx.json + <subset>/<uid>/\n"
    "                         {frames/<i>.jpg, audio.wav} (AVSBench-semantic), or the older\n"
    "                         AVSBench-object S4/MS3 release (s4_meta_data.csv / ms3_meta_data.csv)\n"
    "  --cache DIR            the feature cache folder (created when absent; an existing cache must\n"
    "                         have been made by the same networks, weights, image size and dtype)\n"
    "  --config FILE          HuggingFace Mask2Former config.json (its backbone_config) or a Swin config\n"
    "  --weights FILE         .safetensors with the backbone (AAVS, HF Mask2Former or bare Swin names)\n"
    "  --audio-weights FILE   VGGish .safetensors under the torchvggish names\n"
    "\n"
    "options:\n"
    "  --subsets LIST         comma-separated subsets to extract: v1s, v1m, v2 (default all)\n"
    "  --splits LIST          comma-separated splits: train, val, test (default all)\n"
    "  --layout NAME          auto (default: from the meta file present), semantic, s4, ms3\n"
    "  --processor FILE       a preprocessor_config.json (default: the official AAVS one, 384x384)\n"
    "  --resampler NAME       audio resampling to 16 kHz: resampy (default, the official\n"
    "                         kaiser_best), resampy-0.2, swr (faster, not the official numbers)\n"
    "  --device cpu|cuda      where the networks run (default cpu)\n"
    "  --shard k/N            extract shard k of N (1 <= k <= N): the videos on the data rows r of\n"
    "                         metadata.csv (counted from 0, header excluded, before --subsets and\n"
    "                         --splits) with r mod N == k-1. Give each shard its own --cache and\n"
    "                         join them with `stepstone-cache merge OUT SHARD...`.\n"
    "  --dtype f16|f32|bf16   storage dtype of the features (default f16)\n"
    "  --keep-going           exit 0 even when some videos could not be read (they are still\n"
    "                         named in the log and listed in manifest.json)\n"
    "  --map-size BYTES       initial LMDB map size (suffixes K, M, G, T; default 1G); it grows\n"
    "                         by itself when full\n"
    "  --decode-threads N     threads decoding one video's frames (default 1 with --device cpu,\n"
    "                         where the network needs the cores, all cores with cuda)\n"
    "  --no-sync              commit without fsync: faster; a killed process still loses nothing,\n"
    "                         a machine crash may lose recent videos (scratch caches, tests)\n"
    "  --version              print the version\n"
    "  -h, --help             this text\n"
    "\n"
    "Decoding runs in its own thread one video ahead of the networks. Progress (videos,\n"
    "frames/s, ETA) goes to stderr; STEPSTONE_LOG=error|warn|info|debug sets the detail.\n"
    "manifest.json in the cache folder records the resolved options, the inputs with their\n"
    "sizes and SHA-256, the counts, every video that failed and why, and the timings.\n"
    "\n"
    "exit codes:\n"
    "  0    every selected video of the shard is in the cache (or --keep-going)\n"
    "  1    some videos could not be read (corrupt or missing frames, empty or too short\n"
    "       audio); each is named with the reason; the others were extracted\n"
    "  2    bad command line\n"
    "  3    an input could not be used: the data set, the config, a weights file, the\n"
    "       processor config, or the device\n"
    "  4    the cache refused: it holds features of other networks, weights, image size or\n"
    "       dtype (the message says which field differs), or the folder is not a cache\n"
    "  5    the cache could not be written (disk or map full, LMDB failure); it holds every\n"
    "       video finished before\n"
    "  6    other failure (out of memory, device failure)\n"
    "  130  interrupted by SIGINT (143: SIGTERM) after finishing the video in progress\n";

static int usage_error(const char *fmt, const char *arg) {
    fputs("stepstone-extract: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see --help)\n", stderr);
    return EXTRACT_EXIT_USAGE;
}

/* "v1s,v2" into flags[] by parse(); 0 or -1 naming the bad item. */
static int parse_list(const char *text, int *flags, int n_flags, int (*parse)(const char *, int *), const char *what) {
    char *copy = strdup(text);
    if (!copy) {
        fputs("stepstone-extract: out of memory\n", stderr);
        return EXTRACT_EXIT_OTHER;
    }
    memset(flags, 0, sizeof(int) * (size_t)n_flags);
    int count = 0, rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int which;
        if (parse(tok, &which) != 0) {
            fprintf(stderr, "stepstone-extract: unknown %s '%s' (see --help)\n", what, tok);
            rc = EXTRACT_EXIT_USAGE;
            break;
        }
        flags[which] = 1;
        count++;
    }
    if (rc == 0 && count == 0) {
        fprintf(stderr, "stepstone-extract: --%s names none\n", what);
        rc = EXTRACT_EXIT_USAGE;
    }
    free(copy);
    return rc;
}

static int parse_subset(const char *s, int *out) {
    avs_subset_t v;
    if (avs_parse_subset(s, &v)) return -1;
    *out = (int)v;
    return 0;
}

static int parse_split(const char *s, int *out) {
    avs_split_t v;
    if (avs_parse_split(s, &v)) return -1;
    *out = (int)v;
    return 0;
}

static int parse_dtype(const char *s, dtype_t *out) {
    if (strcasecmp(s, "f16") == 0) *out = DTYPE_F16;
    else if (strcasecmp(s, "f32") == 0) *out = DTYPE_F32;
    else if (strcasecmp(s, "bf16") == 0) *out = DTYPE_BF16;
    else return -1;
    return 0;
}

/* "k/N" with 1 <= k <= N. */
static int parse_shard(const char *s, int *k, int *n) {
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (errno || end == s || *end != '/') return -1;
    const char *second = end + 1;
    long b = strtol(second, &end, 10);
    if (errno || end == second || *end != '\0') return -1;
    if (b < 1 || a < 1 || a > b || b > 1000000) return -1;
    *k = (int)a;
    *n = (int)b;
    return 0;
}

/* A byte count with an optional binary suffix K, M, G, T (1G = 2^30). */
static int parse_bytes(const char *s, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-') return -1;
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return -1;
    }
    if (*end && end[1] != '\0' && !(toupper((unsigned char)end[1]) == 'B' && end[2] == '\0')) return -1;
    if (shift && v > (~0ull >> shift)) return -1;
    *out = (size_t)(v << shift);
    return *out > 0 ? 0 : -1;
}

static int parse_positive_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 4096) return -1;
    *out = (int)v;
    return 0;
}

int extract_parse_args(int argc, char **argv, extract_options_t *o) {
    enum {
        OPT_DATA = 256, OPT_CACHE, OPT_CONFIG, OPT_WEIGHTS, OPT_AUDIO_WEIGHTS, OPT_PROCESSOR, OPT_LAYOUT, OPT_SUBSETS,
        OPT_SPLITS, OPT_DEVICE, OPT_SHARD, OPT_DTYPE, OPT_KEEP_GOING, OPT_MAP_SIZE, OPT_RESAMPLER, OPT_DECODE_THREADS,
        OPT_NO_SYNC, OPT_VERSION
    };
    static const struct option longs[] = {
        {"data", required_argument, 0, OPT_DATA},
        {"cache", required_argument, 0, OPT_CACHE},
        {"config", required_argument, 0, OPT_CONFIG},
        {"weights", required_argument, 0, OPT_WEIGHTS},
        {"audio-weights", required_argument, 0, OPT_AUDIO_WEIGHTS},
        {"processor", required_argument, 0, OPT_PROCESSOR},
        {"layout", required_argument, 0, OPT_LAYOUT},
        {"subsets", required_argument, 0, OPT_SUBSETS},
        {"splits", required_argument, 0, OPT_SPLITS},
        {"device", required_argument, 0, OPT_DEVICE},
        {"shard", required_argument, 0, OPT_SHARD},
        {"dtype", required_argument, 0, OPT_DTYPE},
        {"keep-going", no_argument, 0, OPT_KEEP_GOING},
        {"map-size", required_argument, 0, OPT_MAP_SIZE},
        {"resampler", required_argument, 0, OPT_RESAMPLER},
        {"decode-threads", required_argument, 0, OPT_DECODE_THREADS},
        {"no-sync", no_argument, 0, OPT_NO_SYNC},
        {"version", no_argument, 0, OPT_VERSION},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->layout = AVS_LAYOUT_AUTO;
    for (int i = 0; i < 3; i++) o->subsets[i] = o->splits[i] = 1;
    o->device = DEVICE_CPU;
    o->shard_k = o->shard_n = 1;
    o->dtype = DTYPE_F16;
    o->resampler = AUDIO_RESAMPLE_RESAMPY;
    int c;
    opterr = 0; /* our own messages */
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_DATA: o->data_dir = optarg; break;
        case OPT_CACHE: o->cache_dir = optarg; break;
        case OPT_CONFIG: o->config_path = optarg; break;
        case OPT_WEIGHTS: o->weights_path = optarg; break;
        case OPT_AUDIO_WEIGHTS: o->audio_weights_path = optarg; break;
        case OPT_PROCESSOR: o->processor_path = optarg; break;
        case OPT_LAYOUT:
            if (avs_parse_layout(optarg, &o->layout)) return usage_error("unknown layout '%s'", optarg);
            break;
        case OPT_SUBSETS: rc = parse_list(optarg, o->subsets, 3, parse_subset, "subsets"); break;
        case OPT_SPLITS: rc = parse_list(optarg, o->splits, 3, parse_split, "splits"); break;
        case OPT_DEVICE:
            if (device_parse(optarg, &o->device)) return usage_error("unknown device '%s' (cpu, cuda)", optarg);
            break;
        case OPT_SHARD:
            if (parse_shard(optarg, &o->shard_k, &o->shard_n))
                return usage_error("--shard wants k/N with 1 <= k <= N, not '%s'", optarg);
            break;
        case OPT_DTYPE:
            if (parse_dtype(optarg, &o->dtype)) return usage_error("unknown dtype '%s' (f16, f32, bf16)", optarg);
            break;
        case OPT_KEEP_GOING: o->keep_going = 1; break;
        case OPT_MAP_SIZE:
            if (parse_bytes(optarg, &o->map_size))
                return usage_error("--map-size wants a positive byte count such as 64G, not '%s'", optarg);
            break;
        case OPT_RESAMPLER:
            if (audio_resampler_parse(optarg, &o->resampler))
                return usage_error("unknown resampler '%s' (resampy, resampy-0.2, swr)", optarg);
            break;
        case OPT_DECODE_THREADS:
            if (parse_positive_int(optarg, &o->decode_threads))
                return usage_error("--decode-threads wants a count from 1 to 4096, not '%s'", optarg);
            break;
        case OPT_NO_SYNC: o->no_sync = 1; break;
        case OPT_VERSION: printf("stepstone-extract %s\n", STEPSTONE_VERSION); return -1;
        case 'h': fputs(usage_text, stdout); return -1;
        case ':': return usage_error("%s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (rc) return rc;
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    const struct {
        const char *value, *name;
    } required[] = {{o->data_dir, "--data"},
                    {o->cache_dir, "--cache"},
                    {o->config_path, "--config"},
                    {o->weights_path, "--weights"},
                    {o->audio_weights_path, "--audio-weights"}};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!required[i].value || !required[i].value[0]) return usage_error("%s is required", required[i].name);
    return 0;
}
