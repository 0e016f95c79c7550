/* avsbench.h - AVSBench data trees: metadata, classes, palette, paths and the
 * ground truth exactly as the official loaders make it.
 *
 * Two layouts (see ../shared/spec/avsbench-data.md):
 *
 * AVSBench-semantic (AVSS; also S4 = subset v1s and MS3 = subset v1m, which is
 * how Stepping-Stones reads them), ROOT holding
 *   metadata.csv             columns used: uid, label (v1s|v1m|v2), split
 *                            (train|val|test); other columns are ignored
 *   label2idx.json           71 classes; class id = position in the file
 *                            (the values are never read: their base varies)
 *   <label>/<uid>/frames/<i>.jpg, labels_rgb/<i>.png, audio.wav, <uid>.mp4
 *
 * AVSBench-object, ROOT being the folder of the meta file (Single-source/ or
 * Multi-sources/ of the release; a parent holding those is accepted when the
 * layout is named):
 *   S4:  s4_meta_data.csv (name = column 0, category, split), s4_data/
 *        visual_frames/<split>/<category>/<name>/<name>_<k>.png
 *        gt_masks/<split>/<category>/<name>/<name>_<k>.png
 *        audio_wav/<split>/<category>/<name>.wav, raw_videos/<split>/<category>/<name>.mp4
 *   MS3: ms3_meta_data.csv (name = column 0, split), ms3_data/
 *        visual_frames/<name>/<name>.mp4_<k>.png
 *        gt_masks/<split>/<name>/<name>_<k>.png
 *        audio_wav/<split>/<name>.wav, raw_videos/<name>.mp4
 *   with k = i + 1 (files count from 1; frame indices here count from 0).
 *   S4 videos are subset v1s, MS3 videos v1m; there is no label2idx.json.
 *
 * Frames: 5 per video for v1s and v1m, 10 for v2. Annotated frames: every one,
 * except v1s (and S4) train videos, which carry frame 0 only.
 *
 * Ground truth at AVS_SIZE x AVS_SIZE:
 *   avs_load_class_map    AVSS: the colour PNG as RGB, PIL's nearest resize,
 *                         then exact palette match; a pixel of no palette
 *                         colour becomes class 0, as the official argmax over
 *                         an all-false row makes it, and is counted.
 *   avs_load_binary_mask  S4/MS3: cv2.imread (BGR) -> cv2.resize (bilinear)
 *                         -> BGR2GRAY -> > 0, as Stepping-Stones' avs/dataset.py.
 *                         On the object layout's 0/255 224x224 masks this is
 *                         also what AVSBench's PIL convert('1') loader gives.
 * (label_resize.h has the ports and what they were checked against.)
 * PNGs are read by png_io.h: alpha is dropped and gray is replicated, as
 * PIL's convert('RGB') and cv2.imread do; 16-bit PNGs are scaled to 8 bits
 * with rounding where PIL and OpenCV truncate (the AVSBench labels are 8-bit
 * palette or RGB PNGs, which this does not touch). */
#ifndef STEPSTONE_AVSBENCH_H
#define STEPSTONE_AVSBENCH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AVS_NUM_CLASSES 71
#define AVS_SIZE 224
#define AVS_MAX_FRAMES 10

typedef enum { AVS_LAYOUT_AUTO = 0, AVS_LAYOUT_SEMANTIC, AVS_LAYOUT_S4, AVS_LAYOUT_MS3 } avs_layout_t;
typedef enum { AVS_V1S = 0, AVS_V1M = 1, AVS_V2 = 2 } avs_subset_t;
typedef enum { AVS_TRAIN = 0, AVS_VAL = 1, AVS_TEST = 2 } avs_split_t;

/* "v1s", "train", "semantic", ...; parse returns 0 or -1 for an unknown name. */
const char *avs_subset_name(avs_subset_t s);
const char *avs_split_name(avs_split_t s);
const char *avs_layout_name(avs_layout_t l);
int avs_parse_subset(const char *text, avs_subset_t *out);
int avs_parse_split(const char *text, avs_split_t *out);
int avs_parse_layout(const char *text, avs_layout_t *out); /* auto|semantic|s4|ms3 */

/* ---- palette ---- */

/* The 71-colour palette (the Pascal-VOC bit pattern): rgb of class cls. */
void avs_palette_color(int cls, uint8_t rgb[3]);
/* The whole table, AVS_NUM_CLASSES rows of RGB (static storage). */
const uint8_t (*avs_palette(void))[3];
/* The class whose colour is exactly (r, g, b), or -1. */
int avs_class_of_color(uint8_t r, uint8_t g, uint8_t b);
/* Maps n RGB pixels to class ids; pixels of no palette colour become 0 and
 * are counted in *off_palette (may be NULL). */
void avs_rgb_to_classes(const uint8_t *rgb, size_t n, uint8_t *classes, int64_t *off_palette);

/* ---- the data set ---- */

typedef struct {
    char *uid;          /* video name; owned */
    char *category;     /* S4 object layout: the category folder; else NULL; owned */
    avs_subset_t subset;
    avs_split_t split;
    int line;           /* line of the meta file where the row starts */
} avs_video_t;

typedef struct {
    avs_layout_t layout;  /* never AUTO once opened */
    char *root;           /* owned */
    char *meta_path;      /* owned */
    avs_video_t *videos;  /* in file order; owned */
    int n_videos;
    char **class_names;   /* semantic: AVS_NUM_CLASSES names; object: NULL; owned */
    int n_classes;        /* AVS_NUM_CLASSES or 0 */
} avs_dataset_t;

/* Which layout ROOT holds: metadata.csv -> semantic, s4_meta_data.csv -> S4,
 * ms3_meta_data.csv -> MS3. ERR_NOTFOUND (naming what was looked for) when
 * none is there. */
err_code_t avs_detect_layout(const char *root, avs_layout_t *out, err_t *err);

/* Opens ROOT in `layout` (AUTO: detected). Reads the meta file and, for the
 * semantic layout, label2idx.json. Errors name the file and line:
 * ERR_FORMAT for a row missing a field, an empty uid, an unknown subset
 * (label) or split, a duplicate video, a label2idx.json that is not an object
 * of AVS_NUM_CLASSES entries; ERR_NOTFOUND for a missing column or file.
 * On error *ds is zeroed (avs_close is safe). */
err_code_t avs_open(const char *root, avs_layout_t layout, avs_dataset_t *ds, err_t *err);
void avs_close(avs_dataset_t *ds);

/* label2idx.json: the keys in file order (class id = position). *names is an
 * owned array of owned strings; ERR_FORMAT unless there are exactly
 * AVS_NUM_CLASSES keys. */
err_code_t avs_read_label2idx(const char *path, char ***names, int *n, err_t *err);
void avs_free_names(char **names, int n);

/* Frames of a video (5 or 10) and whether frame i has a ground-truth PNG. */
int avs_video_frames(const avs_video_t *v);
int avs_frame_labelled(const avs_video_t *v, int i);

/* Paths of frame i (0-based), its label PNG, the audio and the source clip.
 * Return 0, or -1 when buf (of size n) is too small. */
int avs_frame_path(const avs_dataset_t *ds, const avs_video_t *v, int i, char *buf, size_t n);
int avs_label_path(const avs_dataset_t *ds, const avs_video_t *v, int i, char *buf, size_t n);
int avs_audio_path(const avs_dataset_t *ds, const avs_video_t *v, char *buf, size_t n);
int avs_clip_path(const avs_dataset_t *ds, const avs_video_t *v, char *buf, size_t n);

/* ---- ground truth ---- */

/* The AVSS class map of a colour label PNG, size x size (AVS_SIZE for the
 * official rule): out gets size*size class ids; *off_palette (may be NULL)
 * the number of those pixels whose colour is in no palette entry (scored as
 * class 0). Errors name the file (ERR_IO, ERR_FORMAT from the PNG reader). */
err_code_t avs_load_class_map(const char *path, int size, uint8_t *out, int64_t *off_palette, err_t *err);

/* The S4/MS3 binary mask of a label PNG (colour or gray), size x size, 0/1. */
err_code_t avs_load_binary_mask(const char *path, int size, uint8_t *out, err_t *err);

/* The same rules on pixels already in memory (RGB, w x h). */
void avs_class_map_from_rgb(const uint8_t *rgb, int w, int h, int size, uint8_t *out, int64_t *off_palette);
void avs_binary_mask_from_rgb(const uint8_t *rgb, int w, int h, int size, uint8_t *out);

#endif
