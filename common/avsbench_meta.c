/* avsbench_meta.c - layouts, meta files, label2idx.json and paths (avsbench.h). */
#include "avsbench.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "csv.h"

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *meta_name(avs_layout_t l) {
    switch (l) {
    case AVS_LAYOUT_SEMANTIC: return "metadata.csv";
    case AVS_LAYOUT_S4: return "s4_meta_data.csv";
    case AVS_LAYOUT_MS3: return "ms3_meta_data.csv";
    default: return "";
    }
}

/* the object release keeps its trees in Single-source/ and Multi-sources/ */
static const char *object_subfolder(avs_layout_t l) { return l == AVS_LAYOUT_S4 ? "Single-source" : "Multi-sources"; }

static const char *data_folder(avs_layout_t l) { return l == AVS_LAYOUT_S4 ? "s4_data" : "ms3_data"; }

err_code_t avs_detect_layout(const char *root, avs_layout_t *out, err_t *err) {
    char p[4096];
    const avs_layout_t order[3] = {AVS_LAYOUT_SEMANTIC, AVS_LAYOUT_S4, AVS_LAYOUT_MS3};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/%s", root, meta_name(order[k]));
        if (is_file(p)) {
            *out = order[k];
            return ERR_OK;
        }
    }
    return err_set(err, ERR_NOTFOUND,
                   "%s: no AVSBench meta file here (looked for metadata.csv, s4_meta_data.csv and "
                   "ms3_meta_data.csv; for the object release pass its Single-source/ or Multi-sources/ "
                   "folder, or name the layout)",
                   root);
}

void avs_free_names(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

err_code_t avs_read_label2idx(const char *path, char ***names_out, int *n_out, err_t *err) {
    *names_out = NULL;
    *n_out = 0;
    config_t cfg;
    err_code_t rc = config_load(path, &cfg, err);
    if (rc) return rc;
    size_t n = json_object_size(cfg.root);
    if (n != AVS_NUM_CLASSES) {
        config_free(&cfg);
        return err_set(err, ERR_FORMAT,
                       "%s: %zu classes, but the official loaders assert %d (the palette's size)", path, n,
                       AVS_NUM_CLASSES);
    }
    char **names = calloc(n, sizeof(char *));
    if (!names) {
        config_free(&cfg);
        return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    }
    const char *key;
    json_t *value;
    int i = 0;
    /* jansson keeps an object's keys in file order */
    json_object_foreach(cfg.root, key, value) {
        (void)value;
        names[i] = strdup(key);
        if (!names[i]) {
            avs_free_names(names, i);
            config_free(&cfg);
            return err_set(err, ERR_NOMEM, "%s: out of memory", path);
        }
        i++;
    }
    config_free(&cfg);
    *names_out = names;
    *n_out = i;
    return ERR_OK;
}

static err_code_t field_or_error(const csv_t *t, int row, int col, const char *col_name, const char **out,
                                 err_t *err) {
    const char *f = csv_field(t, row, col);
    if (!f)
        return err_set(err, ERR_FORMAT, "%s:%d: row has %d fields, so no '%s' (column %d of the header)", t->path,
                       t->rows[row].line, t->rows[row].n_fields, col_name, col + 1);
    *out = f;
    return ERR_OK;
}

static int column_or_error(const csv_t *t, const char *name, err_t *err) {
    int c = csv_column(t, name);
    if (c < 0) err_set(err, ERR_NOTFOUND, "%s:%d: no column '%s' in the header", t->path, t->header_line, name);
    return c;
}

static int cmp_video(const void *a, const void *b) {
    const avs_video_t *x = *(const avs_video_t *const *)a, *y = *(const avs_video_t *const *)b;
    if (x->subset != y->subset) return (int)x->subset - (int)y->subset;
    return strcmp(x->uid, y->uid);
}

static err_code_t check_duplicates(const avs_dataset_t *ds, err_t *err) {
    if (ds->n_videos < 2) return ERR_OK;
    const avs_video_t **order = malloc((size_t)ds->n_videos * sizeof *order);
    if (!order) return err_set(err, ERR_NOMEM, "%s: out of memory", ds->meta_path);
    for (int i = 0; i < ds->n_videos; i++) order[i] = &ds->videos[i];
    qsort(order, (size_t)ds->n_videos, sizeof *order, cmp_video);
    err_code_t rc = ERR_OK;
    for (int i = 1; i < ds->n_videos; i++)
        if (order[i]->subset == order[i - 1]->subset && strcmp(order[i]->uid, order[i - 1]->uid) == 0) {
            const avs_video_t *a = order[i - 1]->line < order[i]->line ? order[i - 1] : order[i];
            const avs_video_t *b = a == order[i] ? order[i - 1] : order[i];
            rc = err_set(err, ERR_FORMAT, "%s:%d: video '%s' of %s again (first on line %d)", ds->meta_path, b->line,
                         b->uid, avs_subset_name(b->subset), a->line);
            break;
        }
    free(order);
    return rc;
}

static err_code_t read_meta(avs_dataset_t *ds, err_t *err) {
    csv_t t;
    err_code_t rc = csv_read(ds->meta_path, &t, err);
    if (rc) return rc;
    int c_uid, c_label = -1, c_split, c_cat = -1;
    const char *uid_name = "uid";
    if (ds->layout == AVS_LAYOUT_SEMANTIC) {
        c_uid = column_or_error(&t, "uid", err);
        if (c_uid >= 0) c_label = column_or_error(&t, "label", err);
        if (c_uid < 0 || c_label < 0) goto fail_nf;
    } else {
        /* the official object loaders take the name from column 0 */
        c_uid = 0;
        uid_name = t.n_header > 0 ? t.header[0] : "name";
        if (ds->layout == AVS_LAYOUT_S4) {
            c_cat = csv_column(&t, "category");
            if (c_cat < 0) c_cat = 2; /* its position in the release (name, ?, category, split) */
        }
    }
    c_split = column_or_error(&t, "split", err);
    if (c_split < 0) goto fail_nf;
    ds->videos = calloc(t.n_rows ? (size_t)t.n_rows : 1, sizeof(avs_video_t));
    if (!ds->videos) {
        csv_free(&t);
        return err_set(err, ERR_NOMEM, "%s: out of memory", ds->meta_path);
    }
    for (int r = 0; r < t.n_rows; r++) {
        const char *uid, *split, *label = NULL, *cat = NULL;
        int line = t.rows[r].line;
        if ((rc = field_or_error(&t, r, c_uid, uid_name, &uid, err))) goto fail;
        if ((rc = field_or_error(&t, r, c_split, "split", &split, err))) goto fail;
        if (c_label >= 0 && (rc = field_or_error(&t, r, c_label, "label", &label, err))) goto fail;
        if (c_cat >= 0 && (rc = field_or_error(&t, r, c_cat, "category", &cat, err))) goto fail;
        avs_video_t *v = &ds->videos[ds->n_videos];
        v->line = line;
        if (!uid[0]) {
            rc = err_set(err, ERR_FORMAT, "%s:%d: empty video name ('%s')", t.path, line, uid_name);
            goto fail;
        }
        if (avs_parse_split(split, &v->split)) {
            rc = err_set(err, ERR_FORMAT, "%s:%d: unknown split '%s' (expected train, val or test)", t.path, line,
                         split);
            goto fail;
        }
        if (label) {
            if (avs_parse_subset(label, &v->subset)) {
                rc = err_set(err, ERR_FORMAT, "%s:%d: unknown subset '%s' in column 'label' (expected v1s, v1m or v2)",
                             t.path, line, label);
                goto fail;
            }
        } else {
            v->subset = ds->layout == AVS_LAYOUT_S4 ? AVS_V1S : AVS_V1M;
        }
        if (cat && !cat[0]) {
            rc = err_set(err, ERR_FORMAT, "%s:%d: empty category", t.path, line);
            goto fail;
        }
        v->uid = strdup(uid);
        v->category = cat ? strdup(cat) : NULL;
        ds->n_videos++;
        if (!v->uid || (cat && !v->category)) {
            rc = err_set(err, ERR_NOMEM, "%s: out of memory", ds->meta_path);
            goto fail;
        }
    }
    csv_free(&t);
    return check_duplicates(ds, err);
fail_nf:
    csv_free(&t);
    return ERR_NOTFOUND;
fail:
    csv_free(&t);
    return rc;
}

err_code_t avs_open(const char *root, avs_layout_t layout, avs_dataset_t *ds, err_t *err) {
    memset(ds, 0, sizeof *ds);
    err_code_t rc;
    char p[4096];
    char *use_root = NULL;
    if (layout == AVS_LAYOUT_AUTO) {
        if ((rc = avs_detect_layout(root, &layout, err))) return rc;
        use_root = strdup(root);
    } else {
        snprintf(p, sizeof p, "%s/%s", root, meta_name(layout));
        if (is_file(p)) {
            use_root = strdup(root);
        } else if (layout != AVS_LAYOUT_SEMANTIC) {
            snprintf(p, sizeof p, "%s/%s/%s", root, object_subfolder(layout), meta_name(layout));
            if (!is_file(p))
                return err_set(err, ERR_NOTFOUND, "%s: no %s here nor in %s/", root, meta_name(layout),
                               object_subfolder(layout));
            snprintf(p, sizeof p, "%s/%s", root, object_subfolder(layout));
            use_root = strdup(p);
        } else {
            return err_set(err, ERR_NOTFOUND, "%s/metadata.csv: no such file (not an AVSBench-semantic tree)", root);
        }
    }
    if (!use_root) return err_set(err, ERR_NOMEM, "out of memory");
    ds->layout = layout;
    ds->root = use_root;
    snprintf(p, sizeof p, "%s/%s", ds->root, meta_name(layout));
    ds->meta_path = strdup(p);
    if (!ds->meta_path) {
        avs_close(ds);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    if ((rc = read_meta(ds, err))) {
        avs_close(ds);
        return rc;
    }
    if (layout == AVS_LAYOUT_SEMANTIC) {
        snprintf(p, sizeof p, "%s/label2idx.json", ds->root);
        if ((rc = avs_read_label2idx(p, &ds->class_names, &ds->n_classes, err))) {
            avs_close(ds);
            return rc;
        }
    }
    return ERR_OK;
}

void avs_close(avs_dataset_t *ds) {
    for (int i = 0; i < ds->n_videos; i++) {
        free(ds->videos[i].uid);
        free(ds->videos[i].category);
    }
    free(ds->videos);
    free(ds->root);
    free(ds->meta_path);
    avs_free_names(ds->class_names, ds->n_classes);
    memset(ds, 0, sizeof *ds);
}

int avs_video_frames(const avs_video_t *v) { return v->subset == AVS_V2 ? 10 : 5; }

int avs_frame_labelled(const avs_video_t *v, int i) {
    if (i < 0 || i >= avs_video_frames(v)) return 0;
    if (v->subset == AVS_V1S && v->split == AVS_TRAIN) return i == 0;
    return 1;
}

static int fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int fmt(char *buf, size_t n, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int k = vsnprintf(buf, n, f, ap);
    va_end(ap);
    return (k < 0 || (size_t)k >= n) ? -1 : 0;
}

int avs_frame_path(const avs_dataset_t *ds, const avs_video_t *v, int i, char *buf, size_t n) {
    const char *sp = avs_split_name(v->split);
    switch (ds->layout) {
    case AVS_LAYOUT_S4:
        return fmt(buf, n, "%s/%s/visual_frames/%s/%s/%s/%s_%d.png", ds->root, data_folder(ds->layout), sp,
                   v->category, v->uid, v->uid, i + 1);
    case AVS_LAYOUT_MS3:
        return fmt(buf, n, "%s/%s/visual_frames/%s/%s.mp4_%d.png", ds->root, data_folder(ds->layout), v->uid, v->uid,
                   i + 1);
    default:
        return fmt(buf, n, "%s/%s/%s/frames/%d.jpg", ds->root, avs_subset_name(v->subset), v->uid, i);
    }
}

int avs_label_path(const avs_dataset_t *ds, const avs_video_t *v, int i, char *buf, size_t n) {
    const char *sp = avs_split_name(v->split);
    switch (ds->layout) {
    case AVS_LAYOUT_S4:
        return fmt(buf, n, "%s/%s/gt_masks/%s/%s/%s/%s_%d.png", ds->root, data_folder(ds->layout), sp, v->category,
                   v->uid, v->uid, i + 1);
    case AVS_LAYOUT_MS3:
        return fmt(buf, n, "%s/%s/gt_masks/%s/%s/%s_%d.png", ds->root, data_folder(ds->layout), sp, v->uid, v->uid,
                   i + 1);
    default:
        return fmt(buf, n, "%s/%s/%s/labels_rgb/%d.png", ds->root, avs_subset_name(v->subset), v->uid, i);
    }
}

int avs_audio_path(const avs_dataset_t *ds, const avs_video_t *v, char *buf, size_t n) {
    const char *sp = avs_split_name(v->split);
    switch (ds->layout) {
    case AVS_LAYOUT_S4:
        return fmt(buf, n, "%s/%s/audio_wav/%s/%s/%s.wav", ds->root, data_folder(ds->layout), sp, v->category, v->uid);
    case AVS_LAYOUT_MS3:
        return fmt(buf, n, "%s/%s/audio_wav/%s/%s.wav", ds->root, data_folder(ds->layout), sp, v->uid);
    default:
        return fmt(buf, n, "%s/%s/%s/audio.wav", ds->root, avs_subset_name(v->subset), v->uid);
    }
}

int avs_clip_path(const avs_dataset_t *ds, const avs_video_t *v, char *buf, size_t n) {
    const char *sp = avs_split_name(v->split);
    switch (ds->layout) {
    case AVS_LAYOUT_S4:
        return fmt(buf, n, "%s/%s/raw_videos/%s/%s/%s.mp4", ds->root, data_folder(ds->layout), sp, v->category, v->uid);
    case AVS_LAYOUT_MS3:
        return fmt(buf, n, "%s/%s/raw_videos/%s.mp4", ds->root, data_folder(ds->layout), v->uid);
    default:
        return fmt(buf, n, "%s/%s/%s/%s.mp4", ds->root, avs_subset_name(v->subset), v->uid, v->uid);
    }
}
