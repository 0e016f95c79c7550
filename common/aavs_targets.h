/* aavs_targets.h - the Mask2Former training targets of a label map, as the
 * official image processor makes them.
 *
 * Both official datasets (GeWu-Lab/Stepping-Stones at de6a17b, avs/dataset.py
 * and avss/dataset.py) pass each frame's 224 x 224 label map to
 * Mask2FormerImageProcessor.preprocess (<variant>/transformers/models/
 * mask2former/image_processing_mask2former.py, with the AAVS
 * preprocessor_config.json: ignore_index 255, reduce_labels false), which
 *   1. resizes the map to the image size with PIL's nearest filter
 *      (_preprocess_mask, resample NEAREST; label_resize.h ports it), and
 *   2. makes one binary mask per label present, labels ascending, the
 *      ignore_index left out (convert_segmentation_map_to_binary_masks:
 *      np.unique, then segmentation_map == label), the class id of each being
 *      the label itself;
 * padding changes nothing when every frame has the image size.
 * The avs (binary) label map is 0/1 (gray > 0 after cv2's resize: avsbench.h
 * avs_load_binary_mask), so a frame gets a background mask (class 0) and,
 * when anything sounds, a foreground mask (class 1); the avss map holds class
 * ids (avs_load_class_map). */
#ifndef STEPSTONE_AAVS_TARGETS_H
#define STEPSTONE_AAVS_TARGETS_H

#include <stdint.h>

#include "error.h"
#include "tape.h"

#define AAVS_IGNORE_INDEX 255 /* the official preprocessor_config.json's ignore_index */

/* The targets of one label map labels[h][w] at out_h x out_w: *masks [n, out_h,
 * out_w] F32 (0/1) and *classes [n] I64, from ctx->arena (gone at ctx_reset),
 * n = the labels present other than ignore_index (0 when there are none).
 * ERR_ARG for sizes below 1. */
err_code_t aavs_targets_from_label_map(ctx_t *ctx, const uint8_t *labels, int w, int h, int out_w, int out_h,
                                       int ignore_index, tensor_t **masks, tensor_t **classes, err_t *err);

#endif
