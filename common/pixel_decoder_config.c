/* pixel_decoder_config.c - the pixel decoder's settings from a HuggingFace
 * Mask2Former config.json (see pixel_decoder.h for what is refused and why). */
#include <math.h>
#include <string.h>

#include "pixel_decoder.h"
#include "swin.h"

err_code_t pixel_decoder_config_from_json(const config_t *cfg, pixel_decoder_variant_t variant,
                                          pixel_decoder_config_t *out, err_t *err) {
    if (variant != PIXEL_DECODER_AVS && variant != PIXEL_DECODER_AVSS)
        return err_set(err, ERR_ARG, "pixel decoder: unknown variant %d", (int)variant);
    pixel_decoder_config_t c;
    memset(&c, 0, sizeof c);
    c.variant = variant;
    err_code_t rc;
    /* defaults: Mask2FormerConfig.__init__ */
    if ((rc = config_get_int_or(cfg, "feature_size", 256, &c.feature_size, err))) return rc;
    if ((rc = config_get_int_or(cfg, "mask_feature_size", 256, &c.mask_feature_size, err))) return rc;
    if ((rc = config_get_int_or(cfg, "encoder_layers", 6, &c.encoder_layers, err))) return rc;
    if ((rc = config_get_int_or(cfg, "encoder_feedforward_dim", 1024, &c.encoder_ffn_dim, err))) return rc;
    if ((rc = config_get_int_or(cfg, "num_attention_heads", 8, &c.num_heads, err))) return rc;
    int common_stride;
    if ((rc = config_get_int_or(cfg, "common_stride", 4, &common_stride, err))) return rc;
    double dropout, init_std;
    if ((rc = config_get_double_or(cfg, "dropout", 0.0, &dropout, err))) return rc;
    if ((rc = config_get_double_or(cfg, "init_std", 0.02, &init_std, err))) return rc;
    c.init_std = (float)init_std;
    int strides[PIXEL_DECODER_MAX_FEATURES] = {4, 8, 16, 32}, n_strides = 4;
    if (config_has(cfg, "feature_strides") &&
        (rc = config_get_int_array(cfg, "feature_strides", strides, PIXEL_DECODER_MAX_FEATURES, &n_strides, err)))
        return rc;

    if (c.feature_size < 1 || c.feature_size % PIXEL_DECODER_GROUPS != 0)
        return err_set(err, ERR_MISMATCH,
                       "%s: feature_size %d is not a positive multiple of %d: the pixel decoder's "
                       "GroupNorm(%d, feature_size) cannot split it into groups",
                       cfg->path, c.feature_size, PIXEL_DECODER_GROUPS, PIXEL_DECODER_GROUPS);
    if (c.num_heads < 1 || c.feature_size % c.num_heads != 0)
        return err_set(err, ERR_MISMATCH,
                       "%s: num_attention_heads %d does not divide feature_size %d (the deformable attention "
                       "splits the tokens into heads)",
                       cfg->path, c.num_heads, c.feature_size);
    if (c.mask_feature_size < 1 || c.encoder_layers < 0 || c.encoder_ffn_dim < 1)
        return err_set(err, ERR_MISMATCH,
                       "%s: mask_feature_size %d, encoder_layers %d, encoder_feedforward_dim %d must be positive "
                       "(encoder_layers may be 0)",
                       cfg->path, c.mask_feature_size, c.encoder_layers, c.encoder_ffn_dim);
    if (dropout != 0.0)
        return err_set(err, ERR_MISMATCH,
                       "%s: dropout %g: only 0 is supported (the official configs have 0; the pixel decoder's "
                       "encoder would apply it in training)",
                       cfg->path, dropout);
    if (!(init_std >= 0.0)) return err_set(err, ERR_MISMATCH, "%s: init_std %g is negative", cfg->path, init_std);

    /* the backbone's output channels: Mask2FormerPixelLevelModule passes encoder.channels */
    swin_config_t sc;
    if ((rc = swin_config_from_json(cfg, &sc, err))) return err_prefix(err, "pixel decoder: ");
    if (sc.n_out < PIXEL_DECODER_LEVELS || sc.n_out > PIXEL_DECODER_MAX_FEATURES)
        return err_set(err, ERR_MISMATCH,
                       "%s: the backbone gives %d feature maps (out_features); the pixel decoder needs %d to %d "
                       "(its deformable attention is built for %d levels)",
                       cfg->path, sc.n_out, PIXEL_DECODER_LEVELS, PIXEL_DECODER_MAX_FEATURES, PIXEL_DECODER_LEVELS);
    c.n_features = sc.n_out;
    for (int i = 0; i < sc.n_out; i++) c.in_channels[i] = swin_stage_dim(&sc, sc.out_stages[i]);

    /* num_fpn_levels = int(np.log2(min(feature_strides[-3:])) - np.log2(common_stride)) */
    if (n_strides < PIXEL_DECODER_LEVELS)
        return err_set(err, ERR_MISMATCH, "%s: feature_strides has %d entries; the pixel decoder reads the last %d",
                       cfg->path, n_strides, PIXEL_DECODER_LEVELS);
    int min_stride = strides[n_strides - PIXEL_DECODER_LEVELS];
    for (int i = n_strides - PIXEL_DECODER_LEVELS; i < n_strides; i++)
        if (strides[i] < min_stride) min_stride = strides[i];
    if (min_stride < 1 || common_stride < 1)
        return err_set(err, ERR_MISMATCH, "%s: feature_strides and common_stride must be positive", cfg->path);
    double fpn = log2((double)min_stride) - log2((double)common_stride);
    if (fpn <= -1.0)
        return err_set(err, ERR_MISMATCH,
                       "%s: common_stride %d is coarser than the finest level's stride %d: %g FPN levels (HF would "
                       "slice the feature list from its end)",
                       cfg->path, common_stride, min_stride, fpn);
    c.n_fpn_levels = (int)fpn; /* Python's int() truncates toward zero */
    /* features[:n] and feature_channels[:n] stop at the list's end */
    if (c.n_fpn_levels > c.n_features) c.n_fpn_levels = c.n_features;
    *out = c;
    return ERR_OK;
}
