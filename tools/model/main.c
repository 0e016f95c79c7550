/* stepstone-model - runs the model, or any part of it, on named inputs and
 * writes named outputs, so each part can be checked against tensors the
 * official code wrote: the frozen feature extractors (Swin, VGGish) and the
 * AAVS head (head.c) with its loss and gradients.
 *
 *   stepstone-model forward --config config.json --weights W.safetensors
 *       --inputs IN.safetensors --out OUT.safetensors [--frames A.jpg,B.jpg,...]
 *       [--audio X.wav] [--audio-weights V.safetensors] [--variant avs|avss]
 *       [--train phase1|all] [--seed N] [--device cpu|cuda]
 *   stepstone-model init ...   (init.c: random-weight models)
 *
 * Exit codes: 0 done; 1 an input, weight or output file could not be used
 * (the message names it); 2 bad command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "frames.h"
#include "log.h"
#include "model_cli.h"
#include "safetensors.h"
#include "swin.h"
#include "vggish.h"

#define MAX_FRAMES 256

static void usage(FILE *f) {
    fputs("usage: stepstone-model forward [options]\n"
          "       stepstone-model init --help   (random-weight models for demos and tests)\n"
          "\n"
          "Runs the Swin backbone, VGGish and the AAVS head on named inputs and writes named\n"
          "outputs (the names of the official code's reference tensors).\n"
          "\n"
          "options:\n"
          "  --config FILE          HuggingFace Mask2Former config.json (with backbone_config)\n"
          "  --weights FILE         .safetensors with the backbone and/or the head (AAVS checkpoint,\n"
          "                         HF Mask2Former, or bare Swin names for the backbone alone)\n"
          "  --inputs FILE          .safetensors of named inputs (below)\n"
          "  --out FILE             .safetensors to write the outputs to (written whole or not at all)\n"
          "  --frames A,B,...       frame files (JPEG/PNG), decoded as OpenCV and preprocessed as\n"
          "                         Mask2FormerImageProcessor; replaces the input pixel_values\n"
          "  --processor FILE       a preprocessor_config.json (default: the official AAVS one)\n"
          "  --audio FILE           an audio file FFmpeg reads; replaces the audio inputs\n"
          "  --audio-weights FILE   VGGish .safetensors under the torchvggish names\n"
          "  --resampler NAME       resampy (default, the official kaiser_best), resampy-0.2, swr\n"
          "  --vggish-final-relu    torchvggish's VGG (ReLU after the last layer); default towhee's\n"
          "  --vggish-pca           torchvggish's PCA + 8-bit quantization\n"
          "  --fit-frames N         pad (repeat the last) or cut embeddings to N rows\n"
          "  --variant avs|avss     which official head (avs: binary, stage 1; avss: semantic,\n"
          "                         stage 2). Default: avss when the weights hold the prompt\n"
          "                         embeddings (silence_embed), avs for another AAVS checkpoint; for a\n"
          "                         plain HF Mask2Former, avss when audio_boost_mask is an input\n"
          "  --train phase1|all     the parameters whose gradients are written: the official phase-1\n"
          "                         name patterns of the variant (default) or every head parameter\n"
          "  --seed N               seed of the loss's random points when the inputs hold none, and of\n"
          "                         the parts a plain HF checkpoint lacks (default 0)\n"
          "  --device cpu|cuda      where to run (default cpu)\n"
          "  -h, --help             this text\n"
          "\n"
          "inputs (names in --inputs):\n"
          "  pixel_values      [F,3,H,W] f32   preprocessed frames (or --frames): runs the backbone\n"
          "  audio_waveform    [N] f32         16 kHz mono samples in [-1, 1] (or --audio)\n"
          "  audio_examples    [T,1,96,64]     VGGish log-mel examples (or --audio, or audio_waveform)\n"
          "  audio_embeddings  [F,128] f32     VGGish embeddings, one per frame: runs the head\n"
          "  backbone.stage1 .. backbone.stage4  [F,C,h,w]  the backbone's outputs (as the cache holds\n"
          "                                  them), for the head when there are no pixel_values\n"
          "  audio_boost_mask  [F,h,w] f32     avss: the stage-1 mask in [0,1], any size\n"
          "  target_size       [2] i64         (height, width) of semantic_map (default: the frames'\n"
          "                                  size, 4x the mask logits')\n"
          "  mask_labels.<f>   [n_f,H,W] f32   frame f's targets, one binary mask per class present,\n"
          "  class_labels.<f>  [n_f] i64       and their class ids: every frame; they add the loss\n"
          "  loss.<g>.matcher_point_coords [F,1,P,2], loss.<g>.oversampled_point_coords [M,3P,2],\n"
          "  loss.<g>.random_point_coords [M,P-k,2]   the loss's points, <g> = final, aux0, aux1, ...\n"
          "                                  (default: random ones from --seed)\n"
          "\n"
          "outputs:\n"
          "  backbone.stage1 .. backbone.stage4  [F,C,h,w]  Swin stage outputs through hidden_states_norms\n"
          "  backbone.stem                       [F,C,h,w]  when the config's out_features has \"stem\"\n"
          "  pixel_values                        [F,3,H,W]  when made here from --frames\n"
          "  log_mel                             [T,1,96,64] when made here from audio\n"
          "  vggish.embeddings                   [T,128]    with --audio-weights\n"
          "  with audio_embeddings (the head):\n"
          "  pixel_decoder.multi_scale_features.<i>  [F,C,h,w]  i = 0..2, coarsest first\n"
          "  pixel_decoder.mask_features       [F,C,H/4,W/4]\n"
          "  class_queries_logits              [F,Q,L+1]  the last prediction\n"
          "  masks_queries_logits              [F,Q,H/4,W/4]\n"
          "  aux.<i>.class_queries_logits, aux.<i>.masks_queries_logits   prediction i (aux.0 before\n"
          "                                  the first decoder layer)\n"
          "  semantic_map                      [F,th,tw] i64  the official post-processing's argmax\n"
          "  with mask_labels and class_labels (the loss):\n"
          "  loss.total                        [1]        what backward starts from\n"
          "  loss_terms.<term>, loss_unweighted.<term>  [1]  loss_mask, loss_dice, loss_cross_entropy,\n"
          "                                  and <term>_<i> for aux i; weighted and not\n"
          "  loss.<g>.match_pred_idx.<f>, loss.<g>.match_tgt_idx.<f>  [n] i64  Hungarian matching\n"
          "  loss.<g>.point_coords             [M,P,2]    the mask and dice losses' points\n"
          "  grad.<param>                      d loss.total / d param of each trainable parameter\n"
          "                                  (--train), under the AAVS state-dict names (zero for one\n"
          "                                  the loss does not reach, such as avs's unused out_proj)\n"
          "\n"
          "exit codes: 0 done, 1 a file could not be used (the message names it), 2 bad command line\n",
          f);
}

typedef struct {
    const char *config, *weights, *inputs, *out, *frames, *processor, *audio, *audio_weights;
    audio_resampler_t resampler;
    vggish_options_t vggish;
    int fit_frames;
    device_t device;
    model_head_options_t head;
} options_t;

static int parse_args(int argc, char **argv, options_t *o) {
    static const struct option longs[] = {
        {"config", required_argument, 0, 'c'},   {"weights", required_argument, 0, 'w'},
        {"inputs", required_argument, 0, 'i'},   {"out", required_argument, 0, 'o'},
        {"frames", required_argument, 0, 'f'},   {"processor", required_argument, 0, 'p'},
        {"audio", required_argument, 0, 'a'},    {"audio-weights", required_argument, 0, 'v'},
        {"resampler", required_argument, 0, 'r'}, {"vggish-final-relu", no_argument, 0, 'R'},
        {"vggish-pca", no_argument, 0, 'P'},     {"fit-frames", required_argument, 0, 'n'},
        {"device", required_argument, 0, 'd'},   {"help", no_argument, 0, 'h'},
        {"variant", required_argument, 0, 'V'},  {"train", required_argument, 0, 't'},
        {"seed", required_argument, 0, 's'},     {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->resampler = AUDIO_RESAMPLE_RESAMPY;
    o->head.variant = MODEL_HEAD_VARIANT_DETECT;
    o->head.train = AAVS_TRAIN_PHASE1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case 'w': o->weights = optarg; break;
        case 'i': o->inputs = optarg; break;
        case 'o': o->out = optarg; break;
        case 'f': o->frames = optarg; break;
        case 'p': o->processor = optarg; break;
        case 'a': o->audio = optarg; break;
        case 'v': o->audio_weights = optarg; break;
        case 'R': o->vggish.final_relu = 1; break;
        case 'P': o->vggish.pca = 1; break;
        case 'n': o->fit_frames = atoi(optarg); break;
        case 'r':
            if (strcmp(optarg, "resampy") == 0) o->resampler = AUDIO_RESAMPLE_RESAMPY;
            else if (strcmp(optarg, "resampy-0.2") == 0) o->resampler = AUDIO_RESAMPLE_RESAMPY_V02;
            else if (strcmp(optarg, "swr") == 0) o->resampler = AUDIO_RESAMPLE_SWR;
            else {
                fprintf(stderr, "stepstone-model: unknown resampler '%s' (resampy, resampy-0.2, swr)\n", optarg);
                return 2;
            }
            break;
        case 'd':
            if (device_parse(optarg, &o->device) != 0) {
                fprintf(stderr, "stepstone-model: unknown device '%s' (cpu, cuda)\n", optarg);
                return 2;
            }
            break;
        case 'V':
            if (strcmp(optarg, "avs") == 0) o->head.variant = M2F_VARIANT_AVS;
            else if (strcmp(optarg, "avss") == 0) o->head.variant = M2F_VARIANT_AVSS;
            else {
                fprintf(stderr, "stepstone-model: unknown variant '%s' (avs, avss)\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (strcmp(optarg, "phase1") == 0) o->head.train = AAVS_TRAIN_PHASE1;
            else if (strcmp(optarg, "all") == 0) o->head.train = AAVS_TRAIN_ALL_HEAD;
            else {
                fprintf(stderr, "stepstone-model: unknown --train '%s' (phase1, all)\n", optarg);
                return 2;
            }
            break;
        case 's': {
            char *end;
            o->head.seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end) {
                fprintf(stderr, "stepstone-model: --seed wants a number, not '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "forward") != 0) {
        fprintf(stderr, "stepstone-model: the command is 'forward' (see --help)\n");
        return 2;
    }
    if (!o->out) {
        fprintf(stderr, "stepstone-model: --out is required\n");
        return 2;
    }
    o->head.config = o->config;
    o->head.weights = o->weights;
    o->head.inputs_path = o->inputs;
    return 0;
}

/* Splits "a,b,c" in place into at most max paths; returns the count. */
static int split_list(char *s, const char **out, int max) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) out[n++] = tok;
    return n;
}

/* The input tensor `name` as F32 on arena a, or NULL when the file lacks it. */
static err_code_t optional_input(const safetensors_t *st, const char *name, arena_t *a, tensor_t **out, err_t *err) {
    *out = NULL;
    if (!st || !safetensors_find(st, name)) return ERR_OK;
    return safetensors_load(st, name, a, DTYPE_F32, 0, NULL, out, err);
}

/* Swin on pixel_values: backbone.<stage> outputs into w, and into
 * features[0 .. *n_features) (ctx's, in the config's out_features order) for the head. */
static err_code_t run_backbone(const options_t *o, ctx_t *ctx, arena_t *params_arena, tensor_t *pixel_values,
                               st_writer_t *w, tensor_t **features, int *n_features, err_t *err) {
    if (!o->config || !o->weights)
        return err_set(err, ERR_ARG, "pixel_values given: the backbone needs --config and --weights");
    config_t cfg;
    err_code_t rc = config_load(o->config, &cfg, err);
    if (rc != ERR_OK) return rc;
    swin_config_t sc;
    rc = swin_config_from_json(&cfg, &sc, err);
    config_free(&cfg);
    if (rc != ERR_OK) return err_prefix(err, "%s: ", o->config);
    weights_t wf;
    rc = weights_open(o->weights, &wf, err);
    if (rc != ERR_OK) return rc;
    param_list_t params;
    param_list_init(&params, params_arena);
    swin_t *model = NULL;
    rc = swin_load(&sc, &wf, &params, "", &model, err);
    weights_close(&wf);
    if (rc != ERR_OK) {
        param_list_free(&params);
        return rc;
    }
    log_info("backbone: %d stages, embed %d, window %d; frames %lld of %lldx%lld", sc.n_stages, sc.embed_dim,
             sc.window_size, (long long)pixel_values->shape[0], (long long)pixel_values->shape[2],
             (long long)pixel_values->shape[3]);
    tensor_t *x = tensor_copy_to(ctx->arena, pixel_values);
    swin_forward(ctx, model, x, features, NULL, NULL);
    *n_features = sc.n_out;
    for (int i = 0; i < sc.n_out && rc == ERR_OK; i++) {
        char name[64];
        if (sc.out_stages[i] == 0) snprintf(name, sizeof name, "backbone.stem");
        else snprintf(name, sizeof name, "backbone.stage%d", sc.out_stages[i]);
        rc = safetensors_writer_add_tensor(w, name, features[i], err);
    }
    swin_free(model);
    param_list_free(&params);
    return rc;
}

/* VGGish: log_mel (when made here) and vggish.embeddings (with weights) into w. */
static err_code_t run_audio(const options_t *o, const safetensors_t *in, arena_t *host, st_writer_t *w, err_t *err) {
    float *examples = NULL;
    int64_t count = 0;
    int made_here = 0;
    err_code_t rc = ERR_OK;
    tensor_t *t = NULL;
    if (o->audio) {
        rc = vggish_examples_from_file(o->audio, o->resampler, &examples, &count, err);
        made_here = 1;
    } else if ((rc = optional_input(in, "audio_examples", host, &t, err)) == ERR_OK && t) {
        if (t->ndim != 4 || t->shape[1] != 1 || t->shape[2] != VGGISH_EXAMPLE_FRAMES || t->shape[3] != VGGISH_BANDS)
            return err_set(err, ERR_MISMATCH, "%s: audio_examples must be [T,1,96,64]", o->inputs);
        count = t->shape[0];
        examples = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        if (!examples) return err_set(err, ERR_NOMEM, "out of memory");
        memcpy(examples, t->data, (size_t)t->numel * sizeof(float));
    } else if (rc == ERR_OK && (rc = optional_input(in, "audio_waveform", host, &t, err)) == ERR_OK && t) {
        double *wave = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(double));
        if (!wave) return err_set(err, ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < t->numel; i++) wave[i] = tensor_f32(t)[i];
        if (t->numel < VGGISH_MIN_SAMPLES)
            rc = err_set(err, ERR_ARG, "%s: audio_waveform has %lld samples, at least %d (0.975 s at 16 kHz) needed",
                         o->inputs, (long long)t->numel, VGGISH_MIN_SAMPLES);
        else
            rc = vggish_log_mel_examples(wave, t->numel, &examples, &count, err);
        free(wave);
        made_here = 1;
    } else {
        return rc; /* no audio asked for */
    }
    if (rc != ERR_OK) {
        free(examples);
        return rc;
    }
    int64_t shape[4] = {count, 1, VGGISH_EXAMPLE_FRAMES, VGGISH_BANDS};
    if (made_here) rc = safetensors_writer_add(w, "log_mel", DTYPE_F32, 4, shape, examples, err);
    if (rc == ERR_OK && !o->audio_weights) {
        log_warn("no --audio-weights: writing log_mel only, no vggish.embeddings");
    } else if (rc == ERR_OK) {
        vggish_t *m = NULL;
        rc = vggish_load(o->audio_weights, o->device, &o->vggish, &m, err);
        float *emb = NULL;
        if (rc == ERR_OK) rc = vggish_embed(m, examples, count, 0, &emb, err);
        int64_t e = m ? vggish_embedding_size(m) : 0, rows = count;
        if (rc == ERR_OK && o->fit_frames > 0) {
            float *fitted = vggish_fit_frames(emb, count, e, o->fit_frames);
            if (!fitted) rc = err_set(err, ERR_ARG, "no embeddings to fit to %d frames", o->fit_frames);
            free(emb);
            emb = fitted;
            rows = o->fit_frames;
        }
        int64_t eshape[2] = {rows, e};
        if (rc == ERR_OK) rc = safetensors_writer_add(w, "vggish.embeddings", DTYPE_F32, 2, eshape, emb, err);
        free(emb);
        vggish_free(m);
    }
    free(examples);
    return rc;
}

static int run(const options_t *o) {
    err_t err = {0};
    err_code_t rc = ERR_OK;
    safetensors_t in_file, *in = NULL;
    if (o->inputs) {
        if ((rc = safetensors_open(o->inputs, &in_file, &err)) != ERR_OK) {
            log_error("%s", err.msg);
            return 1;
        }
        in = &in_file;
    }
    ctx_t *ctx = ctx_create(o->device, 64 << 20);
    arena_t *host = arena_create(DEVICE_CPU, 16 << 20);
    arena_t *params = arena_create(o->device, 64 << 20);
    if (!ctx || !host || !params) {
        log_error("device %s is not available%s", device_name(o->device),
                  backend_cuda_built() ? "" : " (built with CUDA=0)");
        rc = ERR_DEVICE;
        goto done;
    }
    ctx_set_grad(ctx, 0);
    st_writer_t *w = safetensors_writer_new();
    tensor_t *pixel_values = NULL;
    if (o->frames) {
        char *list = strdup(o->frames);
        const char *paths[MAX_FRAMES];
        int n = list ? split_list(list, paths, MAX_FRAMES) : 0;
        image_processor_t proc = image_processor_official();
        if (o->processor) rc = image_processor_load(o->processor, &proc, &err);
        if (rc == ERR_OK) rc = frames_to_pixel_values(paths, n, &proc, host, &pixel_values, &err);
        if (rc == ERR_OK) rc = safetensors_writer_add_tensor(w, "pixel_values", pixel_values, &err);
        free(list);
    } else {
        rc = optional_input(in, "pixel_values", host, &pixel_values, &err);
    }
    tensor_t *features[SWIN_MAX_STAGES + 1];
    int n_features = 0;
    if (rc == ERR_OK && pixel_values) rc = run_backbone(o, ctx, params, pixel_values, w, features, &n_features, &err);
    if (rc == ERR_OK) rc = run_audio(o, in, host, w, &err);
    if (rc == ERR_OK && model_head_requested(in))
        rc = model_head_run(&o->head, ctx, params, in, pixel_values ? features : NULL, n_features, w, &err);
    if (rc == ERR_OK) rc = safetensors_writer_save(w, o->out, &err);
    if (rc == ERR_OK) log_info("wrote %s", o->out);
    else log_error("%s", err.msg);
    safetensors_writer_free(w);
done:
    if (in) safetensors_close(in);
    ctx_destroy(ctx);
    arena_destroy(host);
    arena_destroy(params);
    return rc == ERR_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    log_set_program("stepstone-model");
    if (argc > 1 && strcmp(argv[1], "init") == 0) return model_init_main(argc - 1, argv + 1);
    options_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc == -1) return 0;
    if (rc != 0) return rc;
    return run(&o);
}
