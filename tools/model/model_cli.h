/* model_cli.h - the subcommands and parts of stepstone-model (one file each). */
#ifndef STEPSTONE_MODEL_CLI_H
#define STEPSTONE_MODEL_CLI_H

#include <stdint.h>

#include "aavs.h"
#include "safetensors.h"
#include "tape.h"

/* `stepstone-model init ...` (init.c): argv[0] is "init". */
int model_init_main(int argc, char **argv);

/* ---- the AAVS head of `stepstone-model forward` (head.c) ---- */

#define MODEL_HEAD_VARIANT_DETECT (-1)

typedef struct {
    const char *config;      /* config.json (required) */
    const char *weights;     /* the head's weights: an AAVS checkpoint or a HF Mask2Former (required) */
    const char *inputs_path; /* for messages */
    int variant;             /* m2f_variant_t, or MODEL_HEAD_VARIANT_DETECT */
    aavs_trainable_t train;  /* which parameters get grad.<name> outputs */
    uint64_t seed;           /* loss points when the inputs hold none; what a plain HF file lacks */
} model_head_options_t;

/* Whether the inputs ask for the head: they hold audio_embeddings. */
int model_head_requested(const safetensors_t *in);

/* Runs the head and writes its outputs into w (names in --help):
 *   backbone: the backbone's n_backbone outputs [F, C, h, w] on ctx's device,
 *     in the config's out_features order, when it ran here; NULL to read
 *     backbone.<stage> from the inputs;
 *   in: the inputs (audio_embeddings, audio_boost_mask, target_size,
 *     mask_labels.<f>, class_labels.<f>, loss.<g>.* points).
 * The head's parameters go into param_arena (on ctx's device). Errors name
 * the file and the tensor or setting. */
err_code_t model_head_run(const model_head_options_t *o, ctx_t *ctx, arena_t *param_arena, const safetensors_t *in,
                          tensor_t *const *backbone, int n_backbone, st_writer_t *w, err_t *err);

#endif
