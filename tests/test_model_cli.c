/* test_model_cli.c - stepstone-model forward end to end: the golden backbone
 * tensors, frames and audio made by the program itself against the reference
 * outputs, --fit-frames, --help, and bad input with exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "frames.h"
#include "cli.h"
#include "safetensors.h"

static char model_bin[4096], out_text[65536], log_path[512];

/* Runs the program with argv (NULL-terminated, no quoting needed for the
 * paths used here); its output lands in out_text. Returns the exit status. */
static int program_run(char *const argv[], char *out, size_t size) {
    char cmd[8192];
    size_t n = 0;
    for (int i = 0; argv[i] && n < sizeof cmd; i++) n += (size_t)snprintf(cmd + n, sizeof cmd - n, "'%s' ", argv[i]);
    unlink(log_path);
    int rc = cli_run(cmd, log_path);
    char *text = cli_read_text(log_path);
    snprintf(out, size, "%s", text ? text : "");
    free(text);
    return rc;
}

static double compare(const safetensors_t *got, const char *got_name, const safetensors_t *want, const char *want_name,
                      arena_t *a) {
    tensor_t *g = NULL, *w = NULL;
    err_t err;
    if (safetensors_load(got, got_name, a, DTYPE_F32, 0, NULL, &g, &err) != ERR_OK) return 1e9;
    if (safetensors_load(want, want_name, a, DTYPE_F32, 0, NULL, &w, &err) != ERR_OK) return 1e9;
    if (!tensor_same_shape(g, w)) return 1e9;
    return rel_error(tensor_f32(g), tensor_f32(w), g->numel);
}

static void test_golden(const char *sh, const char *name) {
    char cfg[512], wts[512], in[512], exp[512], out[512], check_name[128];
    snprintf(cfg, sizeof cfg, "%s/golden/%s/config.json", sh, name);
    snprintf(wts, sizeof wts, "%s/golden/%s/weights.safetensors", sh, name);
    snprintf(in, sizeof in, "%s/golden/%s/inputs.safetensors", sh, name);
    snprintf(exp, sizeof exp, "%s/golden/%s/expected.safetensors", sh, name);
    snprintf(out, sizeof out, "/tmp/stepstone-test-model-%d-%s.safetensors", (int)getpid(), name);
    char *argv[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--inputs", in, "--out", out, NULL};
    int rc = program_run(argv, out_text, sizeof out_text);
    snprintf(check_name, sizeof check_name, "model_cli/golden_%s/runs", name);
    if (!check(rc == 0, check_name, "exit %d: %s", rc, out_text)) return;
    safetensors_t got, want;
    err_t err;
    if (safetensors_open(out, &got, &err) != ERR_OK || safetensors_open(exp, &want, &err) != ERR_OK) {
        check(0, check_name, "%s", err.msg);
        return;
    }
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    double worst = 0;
    for (int k = 1; k <= 4; k++) {
        char g[64], w[64];
        snprintf(g, sizeof g, "backbone.stage%d", k);
        snprintf(w, sizeof w, "backbone.feature_map.stage%d", k);
        double e = compare(&got, g, &want, w, a);
        if (e > worst) worst = e;
    }
    snprintf(check_name, sizeof check_name, "model_cli/golden_%s/backbone_stages", name);
    check(worst <= 1e-4, check_name, "worst rel error %.3g", worst);
    arena_destroy(a);
    safetensors_close(&got);
    safetensors_close(&want);
    unlink(out);
}

/* frames and audio decoded by the program: pixel_values equal to the library's,
 * log_mel and embeddings equal to the official path's (tests/reference/audio_ref.py) */
static void test_frames_and_audio(const char *sh) {
    char cfg[512], wts[512], out[512];
    snprintf(cfg, sizeof cfg, "%s/golden/avs-tiny/config.json", sh);
    snprintf(wts, sizeof wts, "%s/golden/avs-tiny/weights.safetensors", sh);
    snprintf(out, sizeof out, "/tmp/stepstone-test-model-%d-av.safetensors", (int)getpid());
    char frames[] = "tests/fixtures/frames/a_640x360_420.jpg,tests/fixtures/frames/m_7x5_420.jpg";
    char *argv[] = {model_bin, "forward", "--config", cfg, "--weights", wts, "--frames", frames,
                    "--audio", "tests/fixtures/audio/speech44k_stereo.wav", "--audio-weights",
                    "tests/reference/vggish_tiny.safetensors", "--out", out, NULL};
    int rc = program_run(argv, out_text, sizeof out_text);
    if (!check(rc == 0, "model_cli/frames_audio/runs", "exit %d: %s", rc, out_text)) return;
    safetensors_t got, ref;
    err_t err;
    if (safetensors_open(out, &got, &err) != ERR_OK || safetensors_open("tests/reference/audio_ref.safetensors", &ref, &err) != ERR_OK) {
        check(0, "model_cli/frames_audio/outputs", "%s", err.msg);
        return;
    }
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    const char *paths[2] = {"tests/fixtures/frames/a_640x360_420.jpg", "tests/fixtures/frames/m_7x5_420.jpg"};
    tensor_t *pv = NULL, *cli_pv = NULL;
    int ok = frames_to_pixel_values(paths, 2, NULL, a, &pv, &err) == ERR_OK &&
             safetensors_load(&got, "pixel_values", a, DTYPE_F32, 4, pv->shape, &cli_pv, &err) == ERR_OK;
    check(ok && max_abs_diff(tensor_f32(cli_pv), tensor_f32(pv), pv->numel) == 0.0, "model_cli/frames_audio/pixel_values",
          "%s", ok ? "differs from frames_to_pixel_values" : err.msg);
    check(safetensors_find(&got, "backbone.stage4") != NULL, "model_cli/frames_audio/backbone_on_frames", "no backbone.stage4");
    double e = compare(&got, "log_mel", &ref, "clip.speech44k_stereo.log_mel", a);
    check(e <= 1e-4, "model_cli/frames_audio/log_mel", "rel error %.3g", e);
    e = compare(&got, "vggish.embeddings", &ref, "clip.speech44k_stereo.embeddings", a);
    check(e <= 1e-4, "model_cli/frames_audio/embeddings", "rel error %.3g", e);
    arena_destroy(a);
    safetensors_close(&got);
    safetensors_close(&ref);
    unlink(out);

    /* --fit-frames pads two embeddings to five by repeating the last */
    char *argv2[] = {model_bin, "forward", "--audio", "tests/fixtures/audio/speech44k_stereo.wav", "--audio-weights",
                     "tests/reference/vggish_tiny.safetensors", "--fit-frames", "5", "--out", out, NULL};
    rc = program_run(argv2, out_text, sizeof out_text);
    ok = rc == 0 && safetensors_open(out, &got, &err) == ERR_OK;
    const st_entry_t *emb = ok ? safetensors_find(&got, "vggish.embeddings") : NULL;
    int fitted = emb && emb->ndim == 2 && emb->shape[0] == 5 &&
                 memcmp((const char *)emb->data + 3 * emb->shape[1] * 4, (const char *)emb->data + 1 * emb->shape[1] * 4,
                        (size_t)emb->shape[1] * 4) == 0;
    check(fitted, "model_cli/fit_frames", "exit %d: %s", rc, out_text);
    if (ok) safetensors_close(&got);
    unlink(out);
}

/* init writes models that forward loads; the same seed writes the same bytes */
static void test_init(const char *sh) {
    char cfg[512], b1[256], b2[256], v1[256], out[256];
    snprintf(cfg, sizeof cfg, "%s/golden/avss-tiny/config.json", sh);
    snprintf(b1, sizeof b1, "/tmp/stepstone-test-init-%d-b1.safetensors", (int)getpid());
    snprintf(b2, sizeof b2, "/tmp/stepstone-test-init-%d-b2.safetensors", (int)getpid());
    snprintf(v1, sizeof v1, "/tmp/stepstone-test-init-%d-v1.safetensors", (int)getpid());
    snprintf(out, sizeof out, "/tmp/stepstone-test-init-%d-out.safetensors", (int)getpid());
    char *a1[] = {model_bin, "init", "--config", cfg, "--backbone-out", b1, "--vggish-out", v1, "--seed", "7", NULL};
    char *a2[] = {model_bin, "init", "--config", cfg, "--backbone-out", b2, "--seed", "7", NULL};
    int rc1 = program_run(a1, out_text, sizeof out_text), rc2 = program_run(a2, out_text, sizeof out_text);
    check(rc1 == 0 && rc2 == 0 && cli_same_file(b1, b2), "model_cli/init_deterministic", "exit %d %d: %s", rc1, rc2, out_text);
    char *a3[] = {model_bin, "forward", "--config", cfg, "--weights", b1, "--frames", "tests/fixtures/frames/b_333x257_420.jpg",
                  "--audio", "tests/fixtures/audio/speech16k_mono.wav", "--audio-weights", v1, "--out", out, NULL};
    int rc = program_run(a3, out_text, sizeof out_text);
    safetensors_t got;
    err_t err;
    int ok = rc == 0 && safetensors_open(out, &got, &err) == ERR_OK;
    check(ok && safetensors_find(&got, "backbone.stage1") && safetensors_find(&got, "vggish.embeddings"),
          "model_cli/init_then_forward", "exit %d: %s", rc, out_text);
    if (ok) safetensors_close(&got);
    unlink(b1);
    unlink(b2);
    unlink(v1);
    unlink(out);
}

static void test_bad_input(const char *sh) {
    char cfg[512], in[512];
    snprintf(cfg, sizeof cfg, "%s/golden/avs-tiny/config.json", sh);
    snprintf(in, sizeof in, "%s/golden/avs-tiny/inputs.safetensors", sh);
    char *a1[] = {model_bin, "forward", "--config", cfg, "--weights", "/nonexistent/w.safetensors", "--inputs", in,
                  "--out", "/tmp/stepstone-test-model-never.safetensors", NULL};
    int rc = program_run(a1, out_text, sizeof out_text);
    check(rc == 1 && strstr(out_text, "/nonexistent/w.safetensors") && access("/tmp/stepstone-test-model-never.safetensors", F_OK) != 0,
          "model_cli/missing_weights", "exit %d: %s", rc, out_text);
    char *a2[] = {model_bin, "forward", "--audio", "tests/fixtures/audio/empty.wav", "--out",
                  "/tmp/stepstone-test-model-never.safetensors", NULL};
    rc = program_run(a2, out_text, sizeof out_text);
    check(rc == 1 && strstr(out_text, "empty.wav"), "model_cli/empty_wav", "exit %d: %s", rc, out_text);
    char *a3[] = {model_bin, "--out", "x", NULL};
    rc = program_run(a3, out_text, sizeof out_text);
    check(rc == 2, "model_cli/no_command", "exit %d: %s", rc, out_text);
    char *a4[] = {model_bin, "--help", NULL};
    rc = program_run(a4, out_text, sizeof out_text);
    check(rc == 0 && strstr(out_text, "vggish.embeddings") && strstr(out_text, "backbone.stage1") &&
              strstr(out_text, "audio_examples"),
          "model_cli/help_lists_names", "exit %d", rc);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(log_path, sizeof log_path, "/tmp/stepstone-test-model-%d.log", (int)getpid());
    if (cli_program(argv[0], "stepstone-model", model_bin, sizeof model_bin) != 0) {
        check(0, "model_cli", "%s is not built", model_bin);
        return check_finish("test_model_cli");
    }
    const char *sh = shared_dir();
    if (!sh) {
        check_skip("model_cli", "no ../shared folder with the golden tensors");
        return check_finish("test_model_cli");
    }
    test_golden(sh, "avs-tiny");
    test_golden(sh, "avss-tiny");
    test_frames_and_audio(sh);
    test_init(sh);
    test_bad_input(sh);
    unlink(log_path);
    return check_finish("test_model_cli");
}
