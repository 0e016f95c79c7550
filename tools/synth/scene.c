/* scene.c - the synthetic world: classes, video plans and pictures (synth.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "synth.h"

/* ---- classes ---- */

static void hsv_to_rgb(double h, double s, double v, uint8_t rgb[3]) {
    double hh = fmod(h, 1.0) * 6.0;
    int i = (int)hh;
    double f = hh - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double r, g, b;
    switch (i) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
    }
    rgb[0] = (uint8_t)lround(r * 255);
    rgb[1] = (uint8_t)lround(g * 255);
    rgb[2] = (uint8_t)lround(b * 255);
}

void synth_make_classes(const synth_options_t *o, synth_class_t *classes) {
    /* the world depends on the class count only, not on the seed: data sets made
     * with different seeds share their classes */
    int k = o->classes;
    for (int j = 0; j < k; j++) {
        synth_class_t *c = &classes[j];
        memset(c, 0, sizeof *c);
        c->class_id = 1 + (j * (AVS_NUM_CLASSES - 1)) / k;
        hsv_to_rgb(j * 0.618033988749895, 0.75 + 0.2 * (j % 2), 0.85 + 0.1 * ((j / 2) % 2), c->rgb);
        c->shape = j % 8;
        c->texture = (j + j / 8) % 4;
        c->motion = (3 * j) % 4;
        c->f0 = 196.0 * pow(2.0, ((5 * j) % 24) / 12.0);
        c->timbre = (j / 2 + j) % 4;
        c->pulse_hz = (j % 3 == 0) ? 0.0 : (j % 3 == 1 ? 2.0 : 3.5);
    }
}

/* ---- plans ---- */

static const avs_subset_t subset_cycle[5] = {AVS_V1S, AVS_V2, AVS_V1M, AVS_V1S, AVS_V2};
static const avs_split_t split_cycle[10] = {AVS_TRAIN, AVS_TEST, AVS_TRAIN, AVS_VAL, AVS_TRAIN,
                                            AVS_TRAIN, AVS_TEST, AVS_TRAIN, AVS_VAL, AVS_TRAIN};

static double unif(rng_t *r, double lo, double hi) { return lo + (hi - lo) * rng_double(r); }

void synth_plan_video(const synth_options_t *o, const synth_class_t *classes, int index, int total,
                      synth_video_t *v) {
    (void)classes;
    (void)total;
    memset(v, 0, sizeof *v);
    /* subset and split from the position, so every subset and split appears early */
    v->subset = subset_cycle[index % 5];
    int same_before = 0;
    for (int i = 0; i < index; i++) same_before += subset_cycle[i % 5] == v->subset;
    v->split = split_cycle[same_before % 10];
    snprintf(v->uid, sizeof v->uid, "syn%05d", index);
    v->seconds = v->subset == AVS_V2 ? 10 : 5;

    uint64_t st = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)index;
    rng_t r;
    rng_seed(&r, splitmix64_next(&st));
    v->noise_seed = rng_u64(&r);

    int n_sound = v->subset == AVS_V1S ? 1 : v->subset == AVS_V1M ? 2 + (int)rng_below(&r, 2) : 1 + (int)rng_below(&r, 3);
    if (n_sound > o->classes) n_sound = o->classes;
    int n_dis = 0;
    if (o->distractors > 0)
        n_dis = v->subset == AVS_V1S ? 1 + (int)rng_below(&r, (uint64_t)o->distractors)
                                     : (int)rng_below(&r, (uint64_t)o->distractors + 1);
    if (n_dis > o->classes - n_sound) n_dis = o->classes - n_sound;
    if (n_sound + n_dis > SYNTH_MAX_OBJECTS) n_dis = SYNTH_MAX_OBJECTS - n_sound;

    /* distinct classes: a shuffled prefix */
    int order[SYNTH_MAX_CLASSES];
    for (int j = 0; j < o->classes; j++) order[j] = j;
    rng_shuffle(&r, order, (size_t)o->classes, sizeof order[0]);

    double side = o->size;
    v->n_objects = n_sound + n_dis;
    for (int k = 0; k < v->n_objects; k++) {
        synth_object_t *ob = &v->obj[k];
        ob->cls = order[k];
        ob->sounding = k < n_sound;
        ob->r = o->object_size * side * unif(&r, 0.75, 1.25);
        ob->amp = side * unif(&r, 0.03, 0.09);
        ob->phase = unif(&r, 0, 2 * M_PI);
        /* spread the objects out: the best of a few candidate places */
        double best = -1e300;
        for (int tries = 0; tries < 16; tries++) {
            double x = unif(&r, ob->r + ob->amp, side - ob->r - ob->amp);
            double y = unif(&r, ob->r + ob->amp, side - ob->r - ob->amp);
            double gap = 1e9;
            for (int q = 0; q < k; q++) {
                double d = hypot(x - v->obj[q].x, y - v->obj[q].y) - ob->r - v->obj[q].r;
                if (d < gap) gap = d;
            }
            if (gap > best) best = gap, ob->x = x, ob->y = y;
        }
        if (!ob->sounding) {
            ob->active = 0;
        } else if (v->subset != AVS_V2) {
            ob->active = (uint16_t)((1u << v->seconds) - 1);
        } else {
            for (int s = 0; s < v->seconds; s++)
                if (rng_double(&r) < 0.7) ob->active |= (uint16_t)(1u << s);
            if (!ob->active) ob->active = (uint16_t)(1u << rng_below(&r, (uint64_t)v->seconds));
        }
    }
    /* shuffle the drawing order so the sounding object is not always below */
    for (int k = v->n_objects - 1; k > 0; k--) {
        int j = (int)rng_below(&r, (uint64_t)k + 1);
        synth_object_t t = v->obj[k];
        v->obj[k] = v->obj[j];
        v->obj[j] = t;
    }
    for (int c = 0; c < 2; c++)
        for (int ch = 0; ch < 3; ch++) v->bg[c][ch] = (uint8_t)(40 + rng_below(&r, 150));
    v->bg_pattern = (int)rng_below(&r, 3);
}

int synth_sounding(const synth_video_t *v, int k, double t) {
    int s = (int)floor(t);
    if (s < 0 || s >= v->seconds) return 0;
    return (v->obj[k].active >> s) & 1;
}

/* ---- pictures ---- */

static int inside(int shape, double u, double w) {
    double au = fabs(u), aw = fabs(w), d2 = u * u + w * w;
    switch (shape) {
    case 0: return d2 <= 1.0;
    case 1: return au <= 0.85 && aw <= 0.85;
    case 2: return w <= 0.8 && au <= (w + 1.0) / 1.8;
    case 3: return au + aw <= 1.0;
    case 4: return d2 <= 1.0 && d2 >= 0.36;
    case 5: return (au <= 0.33 && aw <= 1.0) || (aw <= 0.33 && au <= 1.0);
    case 6: return u * u + w * w / 0.36 <= 1.0;
    default: return aw <= 0.866 && au * 0.866 + aw * 0.5 <= 0.866;
    }
}

static double texture(int kind, double u, double w) {
    switch (kind) {
    case 1: return fmod(fabs(u + w) * 4.0, 1.0) < 0.5 ? 1.0 : 0.62;
    case 2: return ((int)floor(u * 3.0 + 10) + (int)floor(w * 3.0 + 10)) % 2 ? 1.0 : 0.68;
    case 3: {
        double fu = fmod(u * 3.0 + 10.0, 1.0) - 0.5, fw = fmod(w * 3.0 + 10.0, 1.0) - 0.5;
        return fu * fu + fw * fw < 0.07 ? 0.55 : 1.0;
    }
    default: return 1.0;
    }
}

static void position(const synth_class_t *c, const synth_object_t *ob, double t, double *x, double *y) {
    double a = ob->amp, p = ob->phase;
    switch (c->motion) {
    case 1: *x = ob->x + a * sin(1.3 * t + p), *y = ob->y; break;
    case 2: *x = ob->x, *y = ob->y + a * sin(1.7 * t + p); break;
    case 3: *x = ob->x + a * cos(0.9 * t + p), *y = ob->y + a * sin(0.9 * t + p); break;
    default: *x = ob->x + 0.15 * a * sin(5.0 * t + p), *y = ob->y + 0.15 * a * cos(4.0 * t + p); break;
    }
}

static uint32_t hash3(uint64_t seed, uint32_t a, uint32_t b, uint32_t c) {
    uint64_t h = seed ^ (0x9E3779B97F4A7C15ull * (a + 1)) ^ (0xC2B2AE3D27D4EB4Full * (b + 1)) ^
                 (0x165667B19E3779F9ull * (c + 1));
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

void synth_render(const synth_options_t *o, const synth_class_t *classes, const synth_video_t *v, double t,
                  uint8_t *rgb, uint8_t *label) {
    int n = o->size;
    /* background: a gradient, a slowly drifting pattern, a fixed grain (a grain
     * that changed every frame would make the clips large) */
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            double g = (x + y) / (2.0 * n);
            double pat = 0;
            if (v->bg_pattern == 1) pat = 0.12 * sin(x * 0.07 + t * 0.3) * cos(y * 0.05);
            if (v->bg_pattern == 2) pat = ((x - y + 4 * n) / 24) % 2 ? 0.06 : -0.06;
            int grain = (int)(hash3(v->noise_seed, (uint32_t)x, (uint32_t)y, 0) % 13) - 6;
            uint8_t *p = rgb + 3 * ((size_t)y * n + x);
            for (int c = 0; c < 3; c++) {
                double val = v->bg[0][c] * (1 - g) + v->bg[1][c] * g;
                val = val * (1 + pat) + grain;
                p[c] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val);
            }
        }
    if (label) memset(label, 0, (size_t)n * n);
    for (int k = 0; k < v->n_objects; k++) {
        const synth_object_t *ob = &v->obj[k];
        const synth_class_t *c = &classes[ob->cls];
        double cx, cy;
        position(c, ob, t, &cx, &cy);
        int lab = synth_sounding(v, k, t) ? c->class_id : 0;
        int x0 = (int)floor(cx - ob->r) - 1, x1 = (int)ceil(cx + ob->r) + 1;
        int y0 = (int)floor(cy - ob->r) - 1, y1 = (int)ceil(cy + ob->r) + 1;
        for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < n; y++)
            for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < n; x++) {
                double u = (x + 0.5 - cx) / ob->r, w = (y + 0.5 - cy) / ob->r;
                if (!inside(c->shape, u, w)) continue;
                double shade = texture(c->texture, u, w) * (1.0 - 0.22 * (u * u + w * w));
                uint8_t *p = rgb + 3 * ((size_t)y * n + x);
                for (int ch = 0; ch < 3; ch++) {
                    double val = c->rgb[ch] * shade;
                    p[ch] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val);
                }
                if (label) label[(size_t)y * n + x] = (uint8_t)lab;
            }
    }
}
