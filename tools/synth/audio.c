/* audio.c - the sound track of a synthetic video (synth.h). Each sounding
 * object adds its class's tone (pitch, timbre, rhythm) while it is active,
 * with 20 ms fades at the switches; then noise; then a gain that keeps the
 * peak below 0.95. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "synth.h"

#define TABLE 4096

static float sine_table[TABLE];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_fill(void) {
    for (int i = 0; i < TABLE; i++) sine_table[i] = (float)sin(2 * M_PI * i / TABLE);
}

/* sin(2 pi phase) for phase in [0, 1) */
static float sine(double phase) { return sine_table[(int)(phase * TABLE) & (TABLE - 1)]; }

static const double bell_ratio[3] = {1.0, 2.76, 5.40}, bell_amp[3] = {1.0, 0.5, 0.25};

static float tone(const synth_class_t *c, const double *ph) {
    float s = 0;
    switch (c->timbre) {
    case 1: /* odd harmonics: hollow, clarinet-like */
        for (int h = 0; h < 4; h++) s += sine(ph[h]) / (float)(2 * h + 1);
        return s * 0.8f;
    case 2: /* all harmonics: bright, saw-like */
        for (int h = 0; h < 4; h++) s += sine(ph[h]) / (float)(h + 1);
        return s * 0.6f;
    case 3:
        for (int h = 0; h < 3; h++) s += (float)bell_amp[h] * sine(ph[h]);
        return s * 0.7f;
    default: return sine(ph[0]);
    }
}

void synth_audio(const synth_options_t *o, const synth_class_t *classes, const synth_video_t *v, float *out) {
    pthread_once(&table_once, table_fill);
    int n = v->seconds * SYNTH_RATE;
    memset(out, 0, (size_t)n * sizeof(float));
    const int fade = SYNTH_RATE / 50;
    for (int k = 0; k < v->n_objects; k++) {
        const synth_object_t *ob = &v->obj[k];
        if (!ob->sounding) continue;
        const synth_class_t *c = &classes[ob->cls];
        double step[4], ph[4] = {0, 0, 0, 0};
        for (int h = 0; h < 4; h++) {
            double ratio = c->timbre == 1 ? 2 * h + 1 : c->timbre == 3 ? (h < 3 ? bell_ratio[h] : 0) : h + 1;
            step[h] = c->f0 * ratio / SYNTH_RATE;
        }
        double pulse_len = c->pulse_hz > 0 ? SYNTH_RATE / c->pulse_hz : 0;
        double decay = exp(-6.0 / (pulse_len > 0 ? pulse_len : 1)); /* down to e^-6 over a pulse */
        double env = 1.0;
        double start = ob->phase / (2 * M_PI) * pulse_len; /* pulses of different objects do not align */
        for (int i = 0; i < n; i++) {
            int s = i / SYNTH_RATE;
            int on = (ob->active >> s) & 1;
            /* gate with fades: distance to the nearest switch inside the second */
            double gate = on ? 1.0 : 0.0;
            int within = i % SYNTH_RATE;
            int prev_on = s > 0 ? (ob->active >> (s - 1)) & 1 : on;
            int next_on = s + 1 < v->seconds ? (ob->active >> (s + 1)) & 1 : on;
            if (on && !prev_on && within < fade) gate = (double)within / fade;
            if (on && !next_on && SYNTH_RATE - within < fade) gate = (double)(SYNTH_RATE - within) / fade;
            if (pulse_len > 0) {
                double pos = fmod(i + start, pulse_len);
                env = pos < 1.0 ? 1.0 : env * decay;
            }
            if (gate > 0) out[i] += (float)(0.3 * gate * env) * tone(c, ph);
            for (int h = 0; h < 4; h++) {
                ph[h] += step[h];
                ph[h] -= floor(ph[h]);
            }
        }
    }
    rng_t r;
    rng_seed(&r, v->noise_seed ^ 0xA5A5A5A5ull);
    float peak = 0;
    for (int i = 0; i < n; i++) {
        out[i] += (float)o->noise * (2.0f * rng_float(&r) - 1.0f);
        float a = fabsf(out[i]);
        if (a > peak) peak = a;
    }
    if (peak > 0.95f)
        for (int i = 0; i < n; i++) out[i] *= 0.95f / peak;
}
