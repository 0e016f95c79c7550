/* plan.c - the videos one run extracts: metadata.csv's rows filtered by
 * subset and split, and this shard's share of them (extract.h says why round
 * robin by row). */
#include <stdlib.h>

#include "extract.h"

int plan_row_in_shard(int row, int shard_k, int shard_n) { return row % shard_n == shard_k - 1; }

err_code_t plan_make(const avs_dataset_t *ds, const extract_options_t *o, extract_plan_t *plan, err_t *err) {
    plan->n_videos = plan->n_selected = 0;
    plan->videos = malloc(sizeof(int) * (size_t)(ds->n_videos > 0 ? ds->n_videos : 1));
    if (!plan->videos) return err_set(err, ERR_NOMEM, "%s: out of memory for %d videos", ds->meta_path, ds->n_videos);
    /* ds->videos holds one video per data row, in file order */
    for (int row = 0; row < ds->n_videos; row++) {
        const avs_video_t *v = &ds->videos[row];
        if (!o->subsets[v->subset] || !o->splits[v->split]) continue;
        plan->n_selected++;
        if (plan_row_in_shard(row, o->shard_k, o->shard_n)) plan->videos[plan->n_videos++] = row;
    }
    return ERR_OK;
}

void plan_free(extract_plan_t *plan) {
    free(plan->videos);
    plan->videos = NULL;
    plan->n_videos = plan->n_selected = 0;
}
