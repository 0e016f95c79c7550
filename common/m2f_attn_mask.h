/* m2f_attn_mask.h - the binary attention masks of Mask2Former's masked
 * cross-attention, and the AAVS choices made from the stage-1 mask.
 *
 * These are step functions of their inputs (no gradient flows through them: the
 * official code detaches the mask, M2F:2050), computed on the host from small
 * resized maps and handed to op_attention as a BLOCK mask. Every threshold is
 * compared in float32, as torch compares a float32 tensor with a Python float. */
#ifndef STEPSTONE_M2F_ATTN_MASK_H
#define STEPSTONE_M2F_ATTN_MASK_H

#include <stdint.h>

#include "tape.h"

/* mask[i] = sigmoid(logits[i]) < 0.5 (1 = may not attend), sigmoid evaluated in
 * float32 as 1 / (1 + exp(-x)), as Mask2FormerMaskPredictor does (M2F:2047):
 * a logit so close to 0 that its sigmoid rounds to 0.5 stays open. */
void m2f_attn_mask_from_logits(uint8_t *mask, const float *logits, int64_t n);

/* The avss override of the first mask (M2F:1876): for each frame f and query q,
 * mask[f, q, k] = boost[f, k] < 0.5, with boost the stage-1 mask already resized
 * to the level [frames, len]. */
void m2f_attn_mask_from_boost(uint8_t *mask, const float *boost, int64_t frames, int64_t queries, int64_t len);

/* Opens each of the rows [rows, len] that blocks every key (M2F:1913), so that
 * no query attends to nothing. */
void m2f_attn_mask_open_full_rows(uint8_t *mask, int64_t rows, int64_t len);

/* The prompt embedding each location takes in avss (M2F:2098-2113) from the
 * resized stage-1 mask p: 0 = silence (p <= 0.4), 1 = audio (p >= 0.6),
 * 2 = uncertain (in between). */
#define M2F_PROMPT_SILENCE 0
#define M2F_PROMPT_AUDIO 1
#define M2F_PROMPT_UNCERTAIN 2
void m2f_prompt_index(int64_t *index, const float *p, int64_t n);

/* The attention mask for a level of h x w from mask logits [F, Q, Hm, Wm] on
 * ctx's device: bilinear resize (align_corners False), sigmoid < 0.5, full rows
 * opened. Returns U8 [F, 1, Q, h w] on ctx's device (one plane shared by all
 * heads); no tape node. */
tensor_t *m2f_attn_mask_from_mask_logits(ctx_t *ctx, tensor_t *mask_logits, int64_t h, int64_t w);

/* The avss first mask from the stage-1 mask resized to the level, boost
 * [F, 1, h, w] on ctx's device: U8 [F, 1, Q, h w], full rows opened. */
tensor_t *m2f_attn_mask_from_boost_map(ctx_t *ctx, tensor_t *boost, int64_t queries);

#endif
