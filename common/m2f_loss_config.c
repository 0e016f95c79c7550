/* m2f_loss_config.c - the loss settings of a Mask2Former config.json (see
 * m2f_loss.h), with HuggingFace Mask2FormerConfig's defaults. */
#include <math.h>

#include "m2f_loss.h"

static err_code_t get_weight(const config_t *cfg, const char *key, double fallback, float *out, err_t *err) {
    double v;
    err_code_t rc = config_get_double_or(cfg, key, fallback, &v, err);
    if (rc != ERR_OK) return rc;
    if (!(v >= 0.0) || !isfinite(v))
        return err_set(err, ERR_MISMATCH, "%s: '%s' is %g, want a finite weight >= 0", cfg->path, key, v);
    *out = (float)v; /* torch keeps the weights as Python floats and multiplies float32 losses by them */
    return ERR_OK;
}

err_code_t m2f_loss_config_from_json(const config_t *cfg, m2f_loss_config_t *out, err_t *err) {
    m2f_loss_config_t c = {0};
    err_code_t rc;
    json_t *id2label = config_lookup(cfg, "id2label");
    if (id2label && json_is_object(id2label)) {
        c.num_labels = (int)json_object_size(id2label);
    } else if ((rc = config_get_int(cfg, "num_labels", &c.num_labels, err)) != ERR_OK) {
        return err_prefix(err, "%s: no id2label object: ", cfg->path);
    }
    if (c.num_labels < 1) return err_set(err, ERR_MISMATCH, "%s: %d labels, want at least 1", cfg->path, c.num_labels);
    if ((rc = get_weight(cfg, "class_weight", 2.0, &c.class_weight, err)) != ERR_OK) return rc;
    if ((rc = get_weight(cfg, "mask_weight", 5.0, &c.mask_weight, err)) != ERR_OK) return rc;
    if ((rc = get_weight(cfg, "dice_weight", 5.0, &c.dice_weight, err)) != ERR_OK) return rc;
    if ((rc = get_weight(cfg, "no_object_weight", 0.1, &c.no_object_weight, err)) != ERR_OK) return rc;
    if ((rc = config_get_int_or(cfg, "train_num_points", 12544, &c.train_num_points, err)) != ERR_OK) return rc;
    if (c.train_num_points < 1)
        return err_set(err, ERR_MISMATCH, "%s: 'train_num_points' is %d, want >= 1", cfg->path, c.train_num_points);
    if ((rc = config_get_double_or(cfg, "oversample_ratio", 3.0, &c.oversample_ratio, err)) != ERR_OK) return rc;
    /* the uncertain points are picked among the oversampled ones: at least P of them */
    if (!(c.oversample_ratio >= 1.0) || c.oversample_ratio * c.train_num_points > (double)(1 << 30))
        return err_set(err, ERR_MISMATCH, "%s: 'oversample_ratio' is %g, want >= 1 (and not absurdly large)",
                       cfg->path, c.oversample_ratio);
    if ((rc = config_get_double_or(cfg, "importance_sample_ratio", 0.75, &c.importance_sample_ratio, err)) != ERR_OK)
        return rc;
    if (!(c.importance_sample_ratio >= 0.0 && c.importance_sample_ratio <= 1.0))
        return err_set(err, ERR_MISMATCH, "%s: 'importance_sample_ratio' is %g, want it in [0, 1]", cfg->path,
                       c.importance_sample_ratio);
    *out = c;
    return ERR_OK;
}
