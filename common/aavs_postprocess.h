/* aavs_postprocess.h - the official post-processing of a Mask2Former
 * prediction into per-class maps, semantic maps and binary masks.
 *
 * Mask2FormerImageProcessor of the official code (GeWu-Lab/Stepping-Stones at
 * de6a17b, <variant>/transformers/models/mask2former/image_processing_mask2former.py):
 *   post_process_semantic_segmentation (avss):
 *     masks = bilinear(mask logits, 384 x 384)     (align_corners False; 384 is
 *                                                   hard-coded, whatever the input size)
 *     logits = einsum("bqc,bqhw->bchw", softmax(class logits)[..., :-1], sigmoid(masks))
 *     semantic map = argmax over c of bilinear(logits, target size)
 *   post_process_binary_segmentation (avs): the same with softmax(...)[..., :2]
 *     (AVS_CLASS_NUM = 2 whatever num_labels is) and the resized logits
 *     returned; avs/scripts/save_mask.py takes argmax(1) as the mask and
 *     writes it as 0/255.
 * argmax takes the first of equal maxima, as torch does. Nothing here is on the
 * tape. */
#ifndef STEPSTONE_AAVS_POSTPROCESS_H
#define STEPSTONE_AAVS_POSTPROCESS_H

#include "tape.h"

/* The size the official processor resizes mask logits to before the einsum. */
#define AAVS_POSTPROCESS_SIZE 384

/* The per-class maps [F, n_classes, th, tw] of class logits [F, Q, L + 1] and
 * mask logits [F, Q, h, w] (on ctx's device), keeping the first n_classes
 * softmax columns (L for semantic maps, 2 for the binary one). Frame by frame,
 * so that the 384 x 384 intermediate is that of one frame only. */
tensor_t *aavs_postprocess_logits(ctx_t *ctx, tensor_t *class_logits, tensor_t *mask_logits, int n_classes,
                                  int64_t target_h, int64_t target_w);

/* argmax over dim 1 of per-class maps [F, n, h, w] -> I64 [F, h, w] on ctx's device. */
tensor_t *aavs_argmax_classes(ctx_t *ctx, tensor_t *class_maps);

/* The semantic map (avss) of a prediction: I64 [F, th, tw], class ids in [0, L). */
tensor_t *aavs_semantic_map(ctx_t *ctx, tensor_t *class_logits, tensor_t *mask_logits, int64_t target_h,
                            int64_t target_w);

/* The binary mask (avs) of a prediction: I64 [F, th, tw], 1 = sounding (class 1
 * beats class 0), as save_mask.py computes it before writing 0/255. */
tensor_t *aavs_binary_mask(ctx_t *ctx, tensor_t *class_logits, tensor_t *mask_logits, int64_t target_h,
                           int64_t target_w);

#endif
