/* vggish.h - VGGish audio embeddings as the official AAVS loader computes them
 * (towhee 1.1.3: audio_decode.ffmpeg then audio_embedding.vggish), one 128-d
 * embedding per 0.96 s of audio.
 *
 * Front end (torchvggish's waveform_to_examples and mel_features, in double,
 * the examples rounded to float at the end):
 *   16 kHz mono (audio.h) -> frames of 400 samples (25 ms) every 160 (10 ms),
 *   each times a periodic Hann window -> |FFT 512| (257 bins) -> 64 HTK mel
 *   bands 125-7500 Hz (triangles linear in mel, DC bin excluded) ->
 *   log(mel + 0.01) -> examples of 96 frames every 96, the incomplete last one
 *   dropped -> [T, 1, 96, 64] float. T = 0 below VGGISH_MIN_SAMPLES (0.975 s),
 *   which the file-level call reports as an error naming the file.
 *
 * Network (torchvggish's VGG; names are its state-dict names):
 *   features.{0,3,6,8,11,13}: conv 3x3, padding 1, each followed by ReLU;
 *   a 2x2 max-pool after features.0, .3, .8 and .13. Real widths 64, 128, 256,
 *   256, 512, 512; any widths load (they are read from the weights' shapes).
 *   Then the [T, C, 6, 4] maps are flattened channel-last (torchvggish's two
 *   transposes: [T, 6, 4, C]) and go through embeddings.{0,2,4}: linear
 *   layers (real sizes 4096, 4096, 128) with ReLU after the first two.
 *   towhee's VGGish stops there: no ReLU after the last layer, no PCA.
 *   torchvggish's variants, behind options: final_relu adds the ReLU after the
 *   last layer (its VGG class), pca applies its Postprocessor: x -> V (x - m)
 *   with pproc.pca_eigen_vectors V [E, E] and pproc.pca_means m [E, 1] (or [E]),
 *   clamped to [-2, 2] and quantized to round((x + 2) * 255 / 4) in 0..255
 *   (round half to even, as torch.round). torchvggish with postprocess=True
 *   does both.
 * Weights: a .safetensors under those names (tools/convert_vggish.py makes it
 * from torchvggish's .pth files), optionally under a "vggish." prefix. Every
 * tensor's shape is checked against its neighbours' (errors name the tensor,
 * the expected and the found shape); tensors the model does not use are an
 * error too, except the PCA tensors when pca is off. */
#ifndef STEPSTONE_VGGISH_H
#define STEPSTONE_VGGISH_H

#include <stdint.h>

#include "audio.h"
#include "error.h"
#include "tape.h"
#include "weights.h"

#define VGGISH_SAMPLE_RATE 16000
#define VGGISH_WINDOW 400          /* samples per STFT frame (25 ms) */
#define VGGISH_HOP 160             /* samples between frames (10 ms) */
#define VGGISH_FFT 512
#define VGGISH_BANDS 64            /* mel bands */
#define VGGISH_EXAMPLE_FRAMES 96   /* frames per example (0.96 s), also the hop between examples */
#define VGGISH_MIN_SAMPLES 15600   /* samples for one example: 95 hops + one window */
#define VGGISH_LOG_OFFSET 0.01
#define VGGISH_MEL_LOW_HZ 125.0
#define VGGISH_MEL_HIGH_HZ 7500.0

/* ---- front end ---- */

/* The number of complete examples in n samples at 16 kHz. */
int64_t vggish_num_examples(int64_t n_samples);

/* Log-mel examples of wave[0..n) (16 kHz) into a new malloc'd float array of
 * *count * 96 * 64 values ([T, 1, 96, 64] row-major); *count may be 0 (then
 * *examples is a 1-element allocation). ERR_NOMEM, or ERR_FORMAT when FFmpeg's
 * FFT cannot be set up. */
err_code_t vggish_log_mel_examples(const double *wave, int64_t n, float **examples, int64_t *count, err_t *err);

/* audio_load_mono (16 kHz, resampled by `how`) then vggish_log_mel_examples.
 * Audio too short for one example is ERR_ARG naming the file. */
err_code_t vggish_examples_from_file(const char *path, audio_resampler_t how, float **examples, int64_t *count,
                                     err_t *err);

/* ---- network ---- */

typedef struct {
    int final_relu; /* torchvggish's VGG: ReLU after the last linear layer (towhee: 0) */
    int pca;        /* torchvggish's Postprocessor: PCA + 8-bit quantization (towhee: 0) */
} vggish_options_t;

typedef struct vggish vggish_t;

/* Loads the weights at path onto device (options NULL: towhee's path). On
 * error *out is NULL and err names the file and the tensor. */
err_code_t vggish_load(const char *path, device_t device, const vggish_options_t *options, vggish_t **out, err_t *err);
void vggish_free(vggish_t *m);

/* The size of one embedding (128 for the real VGGish). */
int64_t vggish_embedding_size(const vggish_t *m);
/* The model's parameters (for listing or moving; owned by the model). */
const param_list_t *vggish_params(const vggish_t *m);

/* Embeddings [T, E] of examples [T, 1, 96, 64] on ctx (ctx's device must be
 * the model's). Shapes that do not fit the weights are fatal (a programmer
 * error: examples come from the front end). */
tensor_t *vggish_forward(const vggish_t *m, ctx_t *ctx, tensor_t *examples);

/* Embeddings [count, E] of host examples into a new malloc'd host array: runs
 * the network without gradients on a context of its own on the model's device,
 * `batch` examples at a time (0: 64), so memory stays bounded for long audio.
 * count == 0 gives a 1-element allocation. ERR_NOMEM or ERR_DEVICE. */
err_code_t vggish_embed(const vggish_t *m, const float *examples, int64_t count, int64_t batch, float **embeddings,
                        err_t *err);

/* emb [t, e] (host) to exactly `frames` rows in a new malloc'd array: the first
 * `frames` rows when t >= frames, else all rows then the last repeated (the
 * official loader pads v1s audio to 5 embeddings this way; it has no cut, and
 * would loop forever on more than 5). NULL when t == 0 or out of memory. */
float *vggish_fit_frames(const float *emb, int64_t t, int64_t e, int64_t frames);

#endif
