/* decoder.c - the decode thread: while the networks work on video i, video
 * i + 1 is read from disk. Two slots: the caller holds one, the thread fills
 * the other and then waits for the caller to give its slot back, so decoding
 * runs exactly one video ahead and memory stays at two videos.
 *
 * Slot states move FREE -> (thread) READY -> (decoder_next) TAKEN ->
 * (decoder_release) FREE, all under one mutex; a condition variable wakes
 * whichever side waits. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"

enum { SLOT_FREE = 0, SLOT_READY, SLOT_TAKEN };
#define N_SLOTS 2

struct decoder {
    decode_settings_t settings;
    const int *videos; /* not owned */
    int n_videos;
    int threads;
    decoded_video_t slots[N_SLOTS]; /* video k goes to slot k % N_SLOTS */
    int state[N_SLOTS];
    int next_taken;  /* the caller's next video (index into videos) */
    int stop;        /* set by decoder_stop */
    double seconds;  /* decoding time so far */
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    pthread_t thread;
    int thread_started;
};

static void *decode_thread(void *arg) {
    decoder_t *d = arg;
    /* the OpenMP team size of this thread's own parallel regions only */
    omp_set_num_threads(d->threads);
    for (int k = 0; k < d->n_videos; k++) {
        int slot = k % N_SLOTS;
        pthread_mutex_lock(&d->mutex);
        while (!d->stop && d->state[slot] != SLOT_FREE) pthread_cond_wait(&d->changed, &d->mutex);
        int stop = d->stop;
        pthread_mutex_unlock(&d->mutex);
        if (stop) break;
        /* the slot is ours until it is READY: no lock while decoding */
        decode_video(&d->settings, d->videos[k], &d->slots[slot]);
        pthread_mutex_lock(&d->mutex);
        d->state[slot] = SLOT_READY;
        d->seconds += d->slots[slot].seconds;
        pthread_cond_broadcast(&d->changed);
        pthread_mutex_unlock(&d->mutex);
    }
    return NULL;
}

err_code_t decoder_start(const decode_settings_t *s, const int *videos, int n, int threads, decoder_t **out,
                         err_t *err) {
    *out = NULL;
    decoder_t *d = calloc(1, sizeof *d);
    if (!d) return err_set(err, ERR_NOMEM, "out of memory for the decoder");
    d->settings = *s;
    d->videos = videos;
    d->n_videos = n;
    d->threads = threads > 0 ? threads : 1;
    pthread_mutex_init(&d->mutex, NULL);
    pthread_cond_init(&d->changed, NULL);
    for (int i = 0; i < N_SLOTS; i++) {
        d->slots[i].arena = arena_create(DEVICE_CPU, 32 << 20);
        if (!d->slots[i].arena) {
            decoder_stop(d);
            return err_set(err, ERR_NOMEM, "out of memory for the decoder's buffers");
        }
    }
    int rc = pthread_create(&d->thread, NULL, decode_thread, d);
    if (rc != 0) {
        decoder_stop(d);
        return err_set(err, ERR_IO, "cannot start the decode thread: %s", strerror(rc));
    }
    d->thread_started = 1;
    *out = d;
    return ERR_OK;
}

decoded_video_t *decoder_next(decoder_t *d) {
    pthread_mutex_lock(&d->mutex);
    decoded_video_t *v = NULL;
    if (d->next_taken < d->n_videos && !d->stop) {
        int slot = d->next_taken % N_SLOTS;
        while (d->state[slot] != SLOT_READY) pthread_cond_wait(&d->changed, &d->mutex);
        d->state[slot] = SLOT_TAKEN;
        d->next_taken++;
        v = &d->slots[slot];
    }
    pthread_mutex_unlock(&d->mutex);
    return v;
}

void decoder_release(decoder_t *d, decoded_video_t *v) {
    decoded_video_clear(v);
    pthread_mutex_lock(&d->mutex);
    d->state[v - d->slots] = SLOT_FREE;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->mutex);
}

double decoder_seconds(decoder_t *d) {
    pthread_mutex_lock(&d->mutex);
    double s = d->seconds;
    pthread_mutex_unlock(&d->mutex);
    return s;
}

void decoder_stop(decoder_t *d) {
    if (!d) return;
    pthread_mutex_lock(&d->mutex);
    d->stop = 1;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->mutex);
    if (d->thread_started) pthread_join(d->thread, NULL);
    for (int i = 0; i < N_SLOTS; i++) {
        decoded_video_clear(&d->slots[i]);
        arena_destroy(d->slots[i].arena);
    }
    pthread_cond_destroy(&d->changed);
    pthread_mutex_destroy(&d->mutex);
    free(d);
}
