/* m2f_variant.h - which official AAVS code a Mask2Former head follows.
 *
 * GeWu-Lab/Stepping-Stones vendors two modified copies of Mask2Former that
 * differ in their forward: avs/ (the binary stage-1 model: no stage-1 mask,
 * the decoder's self-attention skips out_proj) and avss/ (the semantic stage-2
 * model: the stage-1 mask enters as prompt embeddings, the first attention mask
 * and an addition to the mask features; its loss is the same code). One enum
 * for every module that depends on it (the transformer decoder, the loss, the
 * whole head), so that their headers can be included together. */
#ifndef STEPSTONE_M2F_VARIANT_H
#define STEPSTONE_M2F_VARIANT_H

typedef enum { M2F_VARIANT_AVS = 0, M2F_VARIANT_AVSS = 1 } m2f_variant_t;

#endif
