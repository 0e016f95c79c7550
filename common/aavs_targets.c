/* aavs_targets.c - per-label binary masks of a label map, as
 * Mask2FormerImageProcessor makes them (see aavs_targets.h). */
#include <stdlib.h>
#include <string.h>

#include "aavs_targets.h"
#include "label_resize.h"

err_code_t aavs_targets_from_label_map(ctx_t *ctx, const uint8_t *labels, int w, int h, int out_w, int out_h,
                                       int ignore_index, tensor_t **masks, tensor_t **classes, err_t *err) {
    if (w < 1 || h < 1 || out_w < 1 || out_h < 1)
        return err_set(err, ERR_ARG, "label map %dx%d to %dx%d: sizes must be positive", w, h, out_w, out_h);
    size_t npix = (size_t)out_w * (size_t)out_h;
    uint8_t *resized = malloc(npix);
    if (!resized) return err_set(err, ERR_NOMEM, "label map: out of memory");
    pil_resize_nearest_u8(labels, w, h, 1, resized, out_w, out_h);
    /* np.unique: the labels present, ascending */
    int present[256] = {0};
    for (size_t i = 0; i < npix; i++) present[resized[i]] = 1;
    int64_t ids[256];
    int n = 0;
    for (int v = 0; v < 256; v++)
        if (present[v] && v != ignore_index) ids[n++] = v;
    float *host = calloc((size_t)(n ? n : 1) * npix, sizeof(float));
    if (!host) {
        free(resized);
        return err_set(err, ERR_NOMEM, "label map: out of memory");
    }
    for (int k = 0; k < n; k++) {
        float *m = host + (size_t)k * npix;
        for (size_t i = 0; i < npix; i++) m[i] = resized[i] == ids[k] ? 1.0f : 0.0f;
    }
    *masks = tensor_from_host(ctx->arena, DTYPE_F32, 3, (int64_t[]){n, out_h, out_w}, host);
    *classes = tensor_from_host(ctx->arena, DTYPE_I64, 1, (int64_t[]){n}, ids);
    free(host);
    free(resized);
    return ERR_OK;
}
