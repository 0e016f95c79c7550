/* test_avsbench.c - the AVSBench readers and the demo data generator.
 *
 *   palette/...        the 71 colours (Pascal-VOC bits), exact colour lookup
 *   pil_nearest/...    PIL's accumulated coordinate (640 -> 224: column 17 reads 49)
 *   csv/...            quoting, CRLF, BOM, blank lines; errors name file and line
 *   label2idx/...      class id = position whatever the values; 71 entries or an error
 *   meta/...           metadata.csv rows: unknown subset/split, missing field,
 *                    duplicate video, missing column: errors name file and line
 *   object/...         the AVSBench-object S4/MS3 layout: detection and paths
 *   maps/...           every fixture label (sizes 96x72 .. 640x360, RGB and
 *                    palette, a 448x448 one for OpenCV's halving path) gives
 *                    exactly the class map and binary mask that Pillow and
 *                    OpenCV gave (tests/reference/metrics_ref.py), and the
 *                    off-palette pixel count the official rule implies
 *   synth/...          stepstone-synth: the tree passes the readers (metadata,
 *                    labels, JPEG frames, WAV and MP4 audio), the same seed gives
 *                    byte-identical files with 1 and 2 threads, another seed
 *                    other files
 *   bad/...            a truncated JPEG, an empty WAV, a header-only WAV, a missing
 *                    label PNG: errors that name the file, no crash */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio.h"
#include "avsbench.h"
#include "check.h"
#include "cli.h"
#include "csv.h"
#include "jpeg_decode.h"
#include "label_resize.h"
#include "png_io.h"

#define FIX "tests/fixtures/metrics"

static int has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

static void write_text(const char *path, const char *text) {
    if (cli_write_file(path, text, strlen(text))) fprintf(stderr, "cannot write %s\n", path);
}

static void mkdir_p(const char *path) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0777);
            *s = '/';
        }
    mkdir(p, 0777);
}

static void test_palette(void) {
    uint8_t c[3];
    avs_palette_color(1, c);
    check(c[0] == 128 && c[1] == 0 && c[2] == 0, "palette/class1", "got %d,%d,%d", c[0], c[1], c[2]);
    avs_palette_color(8, c);
    check(c[0] == 64 && c[1] == 0 && c[2] == 0, "palette/class8", "got %d,%d,%d", c[0], c[1], c[2]);
    avs_palette_color(70, c); /* 70 = 1 000 110 in base 8 digits: G, B at bit 7, then R at bit 5 */
    check(c[0] == 32 && c[1] == 128 && c[2] == 128, "palette/class70", "got %d,%d,%d", c[0], c[1], c[2]);
    int ok = 1;
    for (int j = 0; j < AVS_NUM_CLASSES; j++) {
        avs_palette_color(j, c);
        if (avs_class_of_color(c[0], c[1], c[2]) != j) ok = 0;
    }
    check(ok, "palette/roundtrip", "a colour does not map back to its class");
    check(avs_class_of_color(1, 2, 3) == -1, "palette/unknown", "(1,2,3) should be no class");
    uint8_t px[9] = {128, 0, 0, 1, 2, 3, 0, 128, 0}, cls[3];
    int64_t off;
    avs_rgb_to_classes(px, 3, cls, &off);
    check(cls[0] == 1 && cls[1] == 0 && cls[2] == 2 && off == 1, "palette/rgb_to_classes", "got %d %d %d off %lld",
          cls[0], cls[1], cls[2], (long long)off);
}

static void test_pil_nearest(void) {
    int idx[224];
    pil_nearest_indices(640, 224, idx);
    check(idx[17] == 49, "pil_nearest/640_col17", "column 17 reads %d, PIL reads 49", idx[17]);
    check(idx[0] == 1 && idx[223] == 638, "pil_nearest/640_ends", "got %d, %d", idx[0], idx[223]);
    pil_nearest_indices(224, 224, idx);
    int ok = 1;
    for (int i = 0; i < 224; i++) ok &= idx[i] == i;
    check(ok, "pil_nearest/identity", "224 -> 224 is not the identity");
}

static void test_csv(void) {
    const char *text = "\xEF\xBB\xBFname, b ,c\r\n\r\n\"x, y\",\"say \"\"hi\"\"\",3\r\nz,\"multi\nline\",4,extra\n\nonly\n";
    csv_t t;
    err_t err = {0};
    int rc = csv_parse(text, strlen(text), "t.csv", &t, &err);
    if (!check(rc == 0, "csv/parse", "%s", err.msg)) return;
    check(t.n_header == 3 && csv_column(&t, "b") == 1 && csv_column(&t, "name") == 0, "csv/header",
          "n_header %d, column b %d", t.n_header, csv_column(&t, "b"));
    check(t.n_rows == 3, "csv/rows", "%d rows", t.n_rows);
    check(t.n_rows == 3 && strcmp(csv_field(&t, 0, 0), "x, y") == 0 && strcmp(csv_field(&t, 0, 1), "say \"hi\"") == 0,
          "csv/quoted", "got [%s] [%s]", csv_field(&t, 0, 0), csv_field(&t, 0, 1));
    check(t.n_rows == 3 && strcmp(csv_field(&t, 1, 1), "multi\nline") == 0 && t.rows[1].n_fields == 4 &&
              t.rows[1].line == 4,
          "csv/multiline_extra", "field [%s], %d fields, line %d", csv_field(&t, 1, 1), t.rows[1].n_fields,
          t.rows[1].line);
    check(t.n_rows == 3 && csv_field(&t, 2, 1) == NULL && t.rows[2].line == 7, "csv/short_row", "line %d",
          t.rows[2].line);
    csv_free(&t);
    const char *bad = "a,b\n\"open,2\n";
    rc = csv_parse(bad, strlen(bad), "bad.csv", &t, &err);
    check(rc == ERR_FORMAT && has(err.msg, "bad.csv:") && has(err.msg, "never closed"), "csv/unterminated", "%s",
          err.msg);
    const char *bad2 = "a,b\nx\"y,2\n";
    rc = csv_parse(bad2, strlen(bad2), "bad2.csv", &t, &err);
    check(rc == ERR_FORMAT && has(err.msg, "bad2.csv:2"), "csv/stray_quote", "%s", err.msg);
    rc = csv_read("/nonexistent/x.csv", &t, &err);
    check(rc == ERR_IO && has(err.msg, "/nonexistent/x.csv"), "csv/missing_file", "%s", err.msg);
}

static void test_label2idx(const char *tmp) {
    char **names;
    int n;
    err_t err = {0};
    int rc = avs_read_label2idx(FIX "/data/label2idx.json", &names, &n, &err);
    if (check(rc == 0 && n == AVS_NUM_CLASSES, "label2idx/positions", "%s (n = %d)", err.msg, n))
        check(strcmp(names[0], "background") == 0 && strcmp(names[70], "woman") == 0, "label2idx/names",
              "got %s .. %s (the fixture numbers classes from 1: positions must win)", names[0], names[70]);
    avs_free_names(names, n);
    char p[4200];
    snprintf(p, sizeof p, "%s/l70.json", tmp);
    char text[4096] = "{";
    for (int i = 0; i < 70; i++) snprintf(text + strlen(text), sizeof text - strlen(text), "%s\"c%d\": %d", i ? "," : "", i, i);
    strcat(text, "}");
    write_text(p, text);
    rc = avs_read_label2idx(p, &names, &n, &err);
    check(rc == ERR_FORMAT && has(err.msg, "l70.json") && has(err.msg, "71"), "label2idx/70_entries", "%s", err.msg);
}

/* a semantic tree in tmp/name with the given metadata.csv */
static void semantic_tree(const char *tmp, const char *name, const char *csv, char *root, size_t n) {
    snprintf(root, n, "%s/%s", tmp, name);
    mkdir_p(root);
    char p[4200];
    snprintf(p, sizeof p, "%s/metadata.csv", root);
    write_text(p, csv);
    char *l2i = cli_read_text(FIX "/data/label2idx.json");
    snprintf(p, sizeof p, "%s/label2idx.json", root);
    if (l2i) write_text(p, l2i);
    free(l2i);
}

static void test_meta(const char *tmp) {
    avs_dataset_t ds;
    err_t err = {0};
    int rc = avs_open(FIX "/data", AVS_LAYOUT_AUTO, &ds, &err);
    if (check(rc == 0, "meta/fixture_open", "%s", err.msg)) {
        int n_v2 = 0, n_test = 0;
        for (int i = 0; i < ds.n_videos; i++) {
            n_v2 += ds.videos[i].subset == AVS_V2;
            n_test += ds.videos[i].split == AVS_TEST;
        }
        check(ds.layout == AVS_LAYOUT_SEMANTIC && ds.n_videos == 9 && n_v2 == 3 && n_test == 7, "meta/fixture_rows",
              "layout %d, %d videos, %d v2, %d test", ds.layout, ds.n_videos, n_v2, n_test);
        char p[4096];
        const avs_video_t *v = &ds.videos[0];
        avs_frame_path(&ds, v, 3, p, sizeof p);
        check(strcmp(p, FIX "/data/v1s/s4a/frames/3.jpg") == 0, "meta/frame_path", "%s", p);
        avs_label_path(&ds, v, 3, p, sizeof p);
        check(strcmp(p, FIX "/data/v1s/s4a/labels_rgb/3.png") == 0, "meta/label_path", "%s", p);
        avs_audio_path(&ds, v, p, sizeof p);
        check(strcmp(p, FIX "/data/v1s/s4a/audio.wav") == 0, "meta/audio_path", "%s", p);
        avs_clip_path(&ds, v, p, sizeof p);
        check(strcmp(p, FIX "/data/v1s/s4a/s4a.mp4") == 0, "meta/clip_path", "%s", p);
        const avs_video_t *train = &ds.videos[3];
        check(avs_frame_labelled(train, 0) && !avs_frame_labelled(train, 1) && avs_frame_labelled(v, 4) &&
                  avs_video_frames(&ds.videos[6]) == 10,
              "meta/labelled_frames", "v1s train must carry frame 0 only; v2 has 10 frames");
        avs_close(&ds);
    }
    struct {
        const char *name, *csv, *want1, *want2;
        err_code_t code;
    } bad[] = {
        {"subset", "uid,label,split\na,v1s,test\nb,v3,test\n", "metadata.csv:3", "unknown subset 'v3'", ERR_FORMAT},
        {"split", "uid,label,split\na,v1s,testing\n", "metadata.csv:2", "unknown split 'testing'", ERR_FORMAT},
        {"missing_field", "vid,uid,label,split\nx,a,v1s,test\ny,b,v1m\n", "metadata.csv:3", "'split'", ERR_FORMAT},
        {"duplicate", "uid,label,split\na,v1s,test\nb,v1s,test\na,v1s,train\n", "metadata.csv:4", "first on line 2",
         ERR_FORMAT},
        {"no_column", "uid,subset,split\na,v1s,test\n", "metadata.csv:1", "no column 'label'", ERR_NOTFOUND},
        {"empty_uid", "uid,label,split\n,v1s,test\n", "metadata.csv:2", "empty video name", ERR_FORMAT},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char root[4096], name[64];
        semantic_tree(tmp, bad[k].name, bad[k].csv, root, sizeof root);
        memset(&err, 0, sizeof err);
        rc = avs_open(root, AVS_LAYOUT_AUTO, &ds, &err);
        snprintf(name, sizeof name, "meta/bad_%s", bad[k].name);
        check((err_code_t)rc == bad[k].code && has(err.msg, bad[k].want1) && has(err.msg, bad[k].want2), name,
              "code %d: %s", rc, err.msg);
    }
    rc = avs_open(tmp, AVS_LAYOUT_AUTO, &ds, &err);
    check(rc == ERR_NOTFOUND && has(err.msg, "metadata.csv"), "meta/no_meta_file", "%s", err.msg);
}

static void test_object_layout(const char *tmp) {
    char root[4096], p[4200];
    snprintf(root, sizeof root, "%s/avsbench_data/Single-source", tmp);
    mkdir_p(root);
    snprintf(p, sizeof p, "%s/s4_meta_data.csv", root);
    write_text(p, "name,start,category,split\nvidA,0,dog_barking,test\nvidB,2,lions_roaring,train\n");
    avs_dataset_t ds;
    err_t err = {0};
    int rc = avs_open(root, AVS_LAYOUT_AUTO, &ds, &err);
    if (check(rc == 0 && ds.layout == AVS_LAYOUT_S4 && ds.n_videos == 2, "object/s4_detect", "%s", err.msg)) {
        avs_frame_path(&ds, &ds.videos[0], 0, p, sizeof p);
        check(has(p, "Single-source/s4_data/visual_frames/test/dog_barking/vidA/vidA_1.png"), "object/s4_frame", "%s", p);
        avs_label_path(&ds, &ds.videos[0], 4, p, sizeof p);
        check(has(p, "s4_data/gt_masks/test/dog_barking/vidA/vidA_5.png"), "object/s4_label", "%s", p);
        avs_audio_path(&ds, &ds.videos[1], p, sizeof p);
        check(has(p, "s4_data/audio_wav/train/lions_roaring/vidB.wav"), "object/s4_audio", "%s", p);
        check(ds.videos[0].subset == AVS_V1S && !avs_frame_labelled(&ds.videos[1], 1) && ds.n_classes == 0,
              "object/s4_subset", "S4 is v1s; a train video carries frame 0 only");
        avs_close(&ds);
    }
    /* the parent of Single-source/ works when the layout is named */
    snprintf(p, sizeof p, "%s/avsbench_data", tmp);
    rc = avs_open(p, AVS_LAYOUT_S4, &ds, &err);
    check(rc == 0 && ds.n_videos == 2, "object/s4_parent", "%s", err.msg);
    if (rc == 0) avs_close(&ds);
    snprintf(root, sizeof root, "%s/avsbench_data/Multi-sources", tmp);
    mkdir_p(root);
    snprintf(p, sizeof p, "%s/ms3_meta_data.csv", root);
    write_text(p, "video_id,split\nm1,test\n");
    rc = avs_open(root, AVS_LAYOUT_AUTO, &ds, &err);
    if (check(rc == 0 && ds.layout == AVS_LAYOUT_MS3 && ds.n_videos == 1, "object/ms3_detect", "%s", err.msg)) {
        avs_frame_path(&ds, &ds.videos[0], 2, p, sizeof p);
        check(has(p, "ms3_data/visual_frames/m1/m1.mp4_3.png"), "object/ms3_frame", "%s", p);
        avs_label_path(&ds, &ds.videos[0], 2, p, sizeof p);
        check(has(p, "ms3_data/gt_masks/test/m1/m1_3.png"), "object/ms3_label", "%s", p);
        check(ds.videos[0].subset == AVS_V1M, "object/ms3_subset", "MS3 is v1m");
        avs_close(&ds);
    }
}

/* the fixture's expected maps: label i is rows [224 i, 224 (i + 1)) */
static void test_maps(void) {
    json_error_t jerr;
    json_t *root = json_load_file(FIX "/expected.json", 0, &jerr);
    json_t *labels = root ? json_object_get(root, "labels") : NULL;
    json_t *offs = root ? json_object_get(root, "off_palette") : NULL;
    if (!check(json_is_array(labels) && json_is_object(offs), "maps/expected", "%s: %s", FIX "/expected.json",
               jerr.text)) {
        json_decref(root);
        return;
    }
    png_io_image_t cm = {0}, bm = {0};
    err_t err = {0};
    int rc = png_io_read(FIX "/expected_class_maps.png", &cm, PNG_IO_WANT_GRAY, &err);
    if (!rc) rc = png_io_read(FIX "/expected_binary_masks.png", &bm, PNG_IO_WANT_GRAY, &err);
    size_t np = (size_t)AVS_SIZE * AVS_SIZE, n = json_array_size(labels);
    if (!check(!rc && (size_t)cm.height == n * AVS_SIZE && (size_t)bm.height == n * AVS_SIZE, "maps/expected_png",
               "%s (%zu labels)", err.msg, n)) {
        png_io_free(&cm);
        png_io_free(&bm);
        json_decref(root);
        return;
    }
    int bad_class = 0, bad_bin = 0, bad_off = 0, bad_read = 0;
    char first[1200] = "";
    uint8_t cls[AVS_SIZE * AVS_SIZE], bin[AVS_SIZE * AVS_SIZE];
    for (size_t i = 0; i < n; i++) {
        const char *rel = json_string_value(json_array_get(labels, i));
        char path[600];
        snprintf(path, sizeof path, FIX "/%s", rel ? rel : "");
        int64_t off = 0;
        if (avs_load_class_map(path, AVS_SIZE, cls, &off, &err) || avs_load_binary_mask(path, AVS_SIZE, bin, &err)) {
            if (!bad_read++) snprintf(first, sizeof first, "%s", err.msg);
            continue;
        }
        if (memcmp(cls, cm.pixels + np * i, np) != 0 && !bad_class++ && !first[0])
            snprintf(first, sizeof first, "class map of %s", rel);
        for (size_t k = 0; k < np; k++)
            if ((bin[k] ? 255 : 0) != bm.pixels[np * i + k]) {
                if (!bad_bin++ && !first[0]) snprintf(first, sizeof first, "binary mask of %s", rel);
                break;
            }
        json_t *want = json_object_get(offs, rel);
        if (off != (want ? json_integer_value(want) : 0)) bad_off++;
    }
    check(n == 56 && bad_read == 0, "maps/read", "%zu labels, %d unreadable; %s", n, bad_read, first);
    check(bad_class == 0, "maps/class_maps_pil_exact", "%d of %zu differ; first: %s", bad_class, n, first);
    check(bad_bin == 0, "maps/binary_masks_cv2_exact", "%d of %zu differ; first: %s", bad_bin, n, first);
    check(bad_off == 0 && json_object_size(offs) == 1, "maps/off_palette_count",
          "%d labels with a wrong off-palette count", bad_off);
    png_io_free(&cm);
    png_io_free(&bm);
    json_decref(root);
}

/* ---- synth ---- */

static const char *walk_other_root;
static const char *walk_root;
static int walk_files, walk_diff;
static char walk_first[600];

static int cmp_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag != FTW_F || !S_ISREG(st->st_mode)) return 0;
    char other[4096];
    snprintf(other, sizeof other, "%s%s", walk_other_root, path + strlen(walk_root));
    walk_files++;
    if (!cli_same_file(path, other)) {
        if (!walk_diff) snprintf(walk_first, sizeof walk_first, "%s", path + strlen(walk_root));
        walk_diff++;
    }
    return 0;
}

static void compare_trees(const char *a, const char *b) {
    walk_root = a;
    walk_other_root = b;
    walk_files = walk_diff = 0;
    walk_first[0] = '\0';
    nftw(a, cmp_one, 16, FTW_PHYS);
}

static void test_synth(const char *argv0, const char *tmp) {
    char synth[4096];
    if (!check(cli_program(argv0, "stepstone-synth", synth, sizeof synth) == 0, "synth/program",
               "stepstone-synth not built next to this test (%s)", synth))
        return;
    char cmd[16384], a[4200], b[4200], c[4200], log[4200];
    snprintf(log, sizeof log, "%s/synth.log", tmp);
    snprintf(a, sizeof a, "%s/synA", tmp);
    snprintf(b, sizeof b, "%s/synB", tmp);
    snprintf(c, sizeof c, "%s/synC", tmp);
    snprintf(cmd, sizeof cmd, "'%s' --out '%s' --videos 6 --seed 7 --size 96 --fps 4 --threads 2", synth, a);
    int rc = cli_run(cmd, log);
    if (!check(rc == 0, "synth/runs", "exit %d (see %s)", rc, log)) return;
    snprintf(cmd, sizeof cmd, "'%s' --out '%s' --videos 6 --seed 7 --size 96 --fps 4 --threads 1", synth, b);
    cli_run(cmd, log);
    compare_trees(a, b);
    check(walk_files > 60 && walk_diff == 0, "synth/deterministic", "%d files, %d differ (first %s)", walk_files,
          walk_diff, walk_first);
    snprintf(cmd, sizeof cmd, "'%s' --out '%s' --videos 6 --seed 8 --size 96 --fps 4", synth, c);
    cli_run(cmd, log);
    compare_trees(a, c);
    check(walk_diff > walk_files / 2, "synth/seed_matters", "%d of %d files differ with another seed", walk_diff,
          walk_files);
    snprintf(cmd, sizeof cmd, "'%s' --help", synth);
    check(cli_run(cmd, NULL) == 0, "synth/help", "--help did not exit 0");
    snprintf(cmd, sizeof cmd, "'%s' --videos 3", synth);
    check(cli_run(cmd, NULL) == 2, "synth/usage", "a missing --out should exit 2");

    /* the generated tree passes the readers */
    avs_dataset_t ds;
    err_t err = {0};
    rc = avs_open(a, AVS_LAYOUT_AUTO, &ds, &err);
    if (!check(rc == 0 && ds.n_videos == 6 && ds.n_classes == AVS_NUM_CLASSES, "synth/metadata", "%s", err.msg)) return;
    int subsets[3] = {0}, splits[3] = {0}, bad = 0, labels = 0, frames = 0, sounding_pixels = 0;
    char p[4096], first[9000] = "";
    for (int i = 0; i < ds.n_videos; i++) {
        const avs_video_t *v = &ds.videos[i];
        subsets[v->subset]++;
        splits[v->split]++;
        for (int f = 0; f < avs_video_frames(v); f++) {
            rgb_image_t img = {0};
            avs_frame_path(&ds, v, f, p, sizeof p);
            if (jpeg_decode_file(p, &img, &err) || img.width != 96 || img.height != 96) {
                if (!bad++) snprintf(first, sizeof first, "%s", err.msg);
            }
            rgb_image_free(&img);
            frames++;
            avs_label_path(&ds, v, f, p, sizeof p);
            if (!avs_frame_labelled(v, f)) {
                if (access(p, F_OK) == 0 && !bad++) snprintf(first, sizeof first, "%s should not exist", p);
                continue;
            }
            uint8_t map[AVS_SIZE * AVS_SIZE];
            int64_t off = 0;
            if (avs_load_class_map(p, AVS_SIZE, map, &off, &err) || off != 0) {
                if (!bad++) snprintf(first, sizeof first, "%s (off-palette %lld)", err.msg, (long long)off);
                continue;
            }
            for (int k = 0; k < AVS_SIZE * AVS_SIZE; k++) sounding_pixels += map[k] != 0;
            labels++;
        }
        audio_decoded_t au;
        avs_audio_path(&ds, v, p, sizeof p);
        if (audio_decode(p, &au, &err) || au.channels != 1 || au.sample_rate != 16000 ||
            au.frames != avs_video_frames(v) * 16000) {
            if (!bad++) snprintf(first, sizeof first, "%s: %s", p, err.msg);
        }
        audio_decoded_free(&au);
        avs_clip_path(&ds, v, p, sizeof p);
        if (audio_decode(p, &au, &err) || au.sample_rate != 16000 || au.frames < avs_video_frames(v) * 16000 - 2048) {
            if (!bad++) snprintf(first, sizeof first, "%s: %s (%lld samples)", p, err.msg, (long long)au.frames);
        }
        audio_decoded_free(&au);
    }
    check(bad == 0, "synth/readers", "%d problems; first: %s", bad, first);
    check(subsets[0] && subsets[1] && subsets[2] && splits[0] && splits[2], "synth/subsets_splits",
          "v1s %d v1m %d v2 %d; train %d val %d test %d", subsets[0], subsets[1], subsets[2], splits[0], splits[1],
          splits[2]);
    check(labels > 20 && sounding_pixels > 0, "synth/labels", "%d labels, %d sounding pixels", labels, sounding_pixels);

    /* ---- bad input, on copies of generated files ---- */
    const avs_video_t *v = &ds.videos[0];
    avs_frame_path(&ds, v, 0, p, sizeof p);
    char *jpg = NULL;
    FILE *f = fopen(p, "rb");
    long size = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fseek(f, 0, SEEK_SET);
        jpg = malloc((size_t)size);
        if (jpg && fread(jpg, 1, (size_t)size, f) != (size_t)size) size = 0;
        fclose(f);
    }
    char trunc[4200];
    snprintf(trunc, sizeof trunc, "%s/truncated.jpg", tmp);
    if (jpg && size > 100) cli_write_file(trunc, jpg, (size_t)size / 2);
    free(jpg);
    rgb_image_t img = {0};
    rc = jpeg_decode_file(trunc, &img, &err);
    check(rc != 0 && has(err.msg, "truncated.jpg"), "bad/truncated_jpeg", "code %d: %s", rc, err.msg);
    rgb_image_free(&img);
    char wav[4200];
    snprintf(wav, sizeof wav, "%s/empty.wav", tmp);
    cli_write_file(wav, "", 0);
    audio_mono_t mono;
    rc = audio_load_mono(wav, 16000, AUDIO_RESAMPLE_RESAMPY, 15600, &mono, &err);
    check(rc != 0 && has(err.msg, "empty.wav"), "bad/empty_wav", "code %d: %s", rc, err.msg);
    if (!rc) audio_mono_free(&mono);
    snprintf(wav, sizeof wav, "%s/header_only.wav", tmp);
    static const uint8_t header[44] = {'R', 'I', 'F', 'F', 36, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' ',
                                       16, 0, 0, 0, 1, 0, 1, 0, 0x80, 0x3e, 0, 0, 0, 0x7d, 0, 0, 2, 0, 16, 0,
                                       'd', 'a', 't', 'a', 0, 0, 0, 0};
    cli_write_file(wav, header, sizeof header);
    rc = audio_load_mono(wav, 16000, AUDIO_RESAMPLE_RESAMPY, 15600, &mono, &err);
    check(rc != 0 && has(err.msg, "header_only.wav"), "bad/header_only_wav", "code %d: %s", rc, err.msg);
    if (!rc) audio_mono_free(&mono);
    uint8_t map[AVS_SIZE * AVS_SIZE];
    snprintf(p, sizeof p, "%s/missing/labels_rgb/0.png", tmp);
    rc = avs_load_class_map(p, AVS_SIZE, map, NULL, &err);
    check(rc == ERR_IO && has(err.msg, "missing/labels_rgb/0.png"), "bad/missing_label_png", "code %d: %s", rc,
          err.msg);
    rc = avs_load_binary_mask(p, AVS_SIZE, map, &err);
    check(rc == ERR_IO && has(err.msg, "missing/labels_rgb/0.png"), "bad/missing_label_png_binary", "code %d: %s", rc,
          err.msg);
    avs_close(&ds);
}

int main(int argc, char **argv) {
    (void)argc;
    char tmp[512];
    if (cli_tmpdir(tmp, sizeof tmp)) {
        check(0, "tmpdir", "cannot make a scratch folder");
        return check_finish("test_avsbench");
    }
    test_palette();
    test_pil_nearest();
    test_csv();
    test_label2idx(tmp);
    test_meta(tmp);
    test_object_layout(tmp);
    test_maps();
    test_synth(argv[0], tmp);
    cli_rmtree(tmp);
    return check_finish("test_avsbench");
}
