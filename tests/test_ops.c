/* test_ops.c - every op case on every backend (see tests/lib/op_cases.h).
 *
 * For each tests/reference/ops_*.safetensors and each case in it:
 *   <case>/torch  CPU forward within fwd_tol and input grads within 1e-4
 *                 (relative to max(1, max|expected|)) of PyTorch's (float64) values;
 *   <case>/fd     CPU input grads against central differences of sum(out * r);
 *   <case>/cuda   the same case on CUDA against the CPU within 1e-4 relative
 *                 (skipped, saying so, when no GPU is present). */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "op_cases.h"
#include "safetensors.h"

#define MAX_INPUTS 8
#define FD_POINTS 24

static const op_kind_t *const groups[] = {op_kinds_core, op_kinds_nn, op_kinds_spatial, op_kinds_layout, op_kinds_loss,
                                         op_kinds_pool};

static const op_kind_t *find_kind(const char *kind) {
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (const op_kind_t *k = groups[g]; k->kind; k++)
            if (strcmp(k->kind, kind) == 0) return k;
    return NULL;
}

typedef struct {
    const char *name;
    const op_kind_t *kind;
    tensor_t *in[MAX_INPUTS]; /* CPU, persistent */
    int nin;
    int wants_grad[MAX_INPUTS];
    int64_t args[32];
    int nargs;
    tensor_t *out, *r;       /* torch output and seed */
    tensor_t *grad[MAX_INPUTS];
    double fwd_tol;
} op_case_t;

static tensor_t *load_or_null(const safetensors_t *st, const char *name, arena_t *a, dtype_t want) {
    if (!safetensors_find(st, name)) return NULL;
    tensor_t *t = NULL;
    err_t err;
    if (safetensors_load(st, name, a, want, 0, NULL, &t, &err) != ERR_OK) fatal("%s", err.msg);
    return t;
}

static int load_case(const safetensors_t *st, const char *name, arena_t *a, op_case_t *c) {
    char key[512];
    memset(c, 0, sizeof *c);
    c->name = name;
    for (int k = 0; k < MAX_INPUTS; k++) {
        snprintf(key, sizeof key, "%s.in%d", name, k);
        const st_entry_t *e = safetensors_find(st, key);
        if (!e) break;
        int is_float = e->dtype == DTYPE_F32 || e->dtype == DTYPE_F16 || e->dtype == DTYPE_BF16;
        c->in[k] = load_or_null(st, key, a, is_float ? DTYPE_F32 : e->dtype);
        c->nin = k + 1;
        snprintf(key, sizeof key, "%s.grad%d", name, k);
        c->grad[k] = load_or_null(st, key, a, DTYPE_F32);
        c->wants_grad[k] = c->grad[k] != NULL;
    }
    snprintf(key, sizeof key, "%s.args", name);
    tensor_t *args = load_or_null(st, key, a, DTYPE_I64);
    if (args) {
        c->nargs = (int)(args->numel < 32 ? args->numel : 32);
        memcpy(c->args, args->data, (size_t)c->nargs * sizeof(int64_t));
    }
    snprintf(key, sizeof key, "%s.out", name);
    c->out = load_or_null(st, key, a, DTYPE_F32);
    snprintf(key, sizeof key, "%s.r", name);
    c->r = load_or_null(st, key, a, DTYPE_F32);
    snprintf(key, sizeof key, "fwd_tol.%s", name);
    const char *tol = safetensors_meta(st, key);
    c->fwd_tol = tol ? atof(tol) : 1e-5;
    return c->nin > 0 && c->out && c->r;
}

/* Runs the case on ctx (inputs copied to ctx's device); returns the output
 * (on ctx) and fills grads[k] (host copies, malloc'd) for inputs that want one. */
static tensor_t *run_case(ctx_t *ctx, const op_case_t *c, int with_grad, float **grads_host) {
    tensor_t *in[MAX_INPUTS];
    for (int k = 0; k < c->nin; k++) {
        in[k] = tensor_copy_to(ctx->arena, c->in[k]);
        in[k]->requires_grad = with_grad && c->wants_grad[k];
    }
    int old = ctx_set_grad(ctx, with_grad);
    tensor_t *out = c->kind->run(ctx, in, c->nin, c->args, c->nargs);
    if (with_grad) {
        tensor_t *seed = tensor_copy_to(ctx->arena, c->r);
        ctx_backward(ctx, out, seed);
        for (int k = 0; k < c->nin; k++) {
            if (!c->wants_grad[k]) continue;
            grads_host[k] = calloc((size_t)in[k]->numel, sizeof(float));
            if (in[k]->grad)
                ctx->be->copy_to_host(grads_host[k], in[k]->grad, (size_t)in[k]->numel * sizeof(float));
        }
    }
    ctx_set_grad(ctx, old);
    return out;
}

static float *to_host(const tensor_t *t) {
    float *h = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    tensor_to_host(t, h);
    return h;
}

static void check_against_torch(ctx_t *cpu, const op_case_t *c) {
    char name[512];
    snprintf(name, sizeof name, "%s/torch", c->name);
    float *grads[MAX_INPUTS] = {0};
    tensor_t *out = run_case(cpu, c, 1, grads);
    char msg[1024] = "";
    int ok = 1;
    if (out->numel != c->out->numel) {
        ok = 0;
        snprintf(msg, sizeof msg, "output has %lld elements, torch %lld", (long long)out->numel, (long long)c->out->numel);
    } else {
        double e = rel_error(tensor_f32(out), tensor_f32(c->out), out->numel);
        if (!(e <= c->fwd_tol)) {
            ok = 0;
            snprintf(msg, sizeof msg, "forward rel error %.3g > %.3g", e, c->fwd_tol);
        }
        for (int k = 0; ok && k < c->nin; k++) {
            if (!c->wants_grad[k]) continue;
            double g = rel_error(grads[k], tensor_f32(c->grad[k]), c->grad[k]->numel);
            if (!(g <= 1e-4)) {
                ok = 0;
                snprintf(msg, sizeof msg, "grad of input %d rel error %.3g > 1e-4", k, g);
            }
        }
    }
    check(ok, name, "%s", msg);
    for (int k = 0; k < MAX_INPUTS; k++) free(grads[k]);
    ctx_reset(cpu);
}

/* sum(out * r) in double, gradients off */
static double objective(ctx_t *cpu, const op_case_t *c) {
    tensor_t *out = run_case(cpu, c, 0, NULL);
    const float *o = tensor_f32(out), *r = tensor_f32(c->r);
    double s = 0.0;
    for (int64_t i = 0; i < out->numel; i++) s += (double)o[i] * (double)r[i];
    ctx_reset(cpu);
    return s;
}

static void check_finite_differences(ctx_t *cpu, const op_case_t *c) {
    char name[512];
    snprintf(name, sizeof name, "%s/fd", c->name);
    float *grads[MAX_INPUTS] = {0};
    run_case(cpu, c, 1, grads);
    ctx_reset(cpu);
    double rtol = c->kind->fd_rtol > 0 ? c->kind->fd_rtol : 2e-2;
    double eps = c->kind->fd_eps > 0 ? c->kind->fd_eps : 1e-3;
    int ok = 1, any = 0;
    char msg[1024] = "";
    for (int k = 0; k < c->nin && ok; k++) {
        if (!c->wants_grad[k]) continue;
        float *x = tensor_f32(c->in[k]);
        int64_t n = c->in[k]->numel;
        int64_t step = n > FD_POINTS ? n / FD_POINTS : 1;
        for (int64_t i = (n > FD_POINTS ? step / 2 : 0); i < n && ok; i += step) {
            float keep = x[i];
            float h = (float)(eps * fmax(1.0, fabs(keep)));
            x[i] = keep + h;
            double up = objective(cpu, c);
            x[i] = keep - h;
            double down = objective(cpu, c);
            x[i] = keep;
            double num = (up - down) / (2.0 * (double)h);
            double ana = grads[k][i];
            double tol = rtol * fmax(fabs(num), fabs(ana)) + rtol * 0.1;
            any = 1;
            if (!(fabs(num - ana) <= tol)) {
                ok = 0;
                snprintf(msg, sizeof msg, "input %d element %lld: analytic %.6g, numeric %.6g", k, (long long)i, ana, num);
            }
        }
    }
    if (any) check(ok, name, "%s", msg);
    for (int k = 0; k < MAX_INPUTS; k++) free(grads[k]);
}

static void check_cuda(ctx_t *cpu, ctx_t *gpu, const op_case_t *c) {
    char name[512];
    snprintf(name, sizeof name, "%s/cuda", c->name);
    float *gc[MAX_INPUTS] = {0}, *gg[MAX_INPUTS] = {0};
    tensor_t *oc = run_case(cpu, c, 1, gc);
    tensor_t *og = run_case(gpu, c, 1, gg);
    float *hc = to_host(oc), *hg = to_host(og);
    char msg[1024] = "";
    int ok = oc->numel == og->numel;
    double e = ok ? rel_error(hg, hc, oc->numel) : INFINITY;
    if (!(e <= 1e-4)) {
        ok = 0;
        snprintf(msg, sizeof msg, "forward rel error %.3g", e);
    }
    for (int k = 0; ok && k < c->nin; k++) {
        if (!c->wants_grad[k]) continue;
        double g = rel_error(gg[k], gc[k], c->in[k]->numel);
        if (!(g <= 1e-4)) {
            ok = 0;
            snprintf(msg, sizeof msg, "grad of input %d rel error %.3g", k, g);
        }
    }
    check(ok, name, "%s", msg);
    free(hc);
    free(hg);
    for (int k = 0; k < MAX_INPUTS; k++) {
        free(gc[k]);
        free(gg[k]);
    }
    ctx_reset(cpu);
    ctx_reset(gpu);
}

static void run_file(const char *path, ctx_t *cpu, ctx_t *gpu) {
    safetensors_t st;
    err_t err;
    if (safetensors_open(path, &st, &err) != ERR_OK) {
        check(0, path, "%s", err.msg);
        return;
    }
    arena_t *a = arena_create(DEVICE_CPU, 1 << 20);
    int n_cases = 0;
    for (int m = 0; m < st.n_meta; m++) {
        if (strncmp(st.meta_keys[m], "case.", 5) != 0) continue;
        const char *name = st.meta_keys[m] + 5;
        op_case_t c;
        if (!load_case(&st, name, a, &c)) {
            check(0, name, "%s: case is missing inputs, out or r", path);
            continue;
        }
        c.kind = find_kind(st.meta_values[m]);
        if (!c.kind) {
            check(0, name, "no C kind '%s' in tests/lib/cases_*.c", st.meta_values[m]);
            continue;
        }
        n_cases++;
        check_against_torch(cpu, &c);
        check_finite_differences(cpu, &c);
        if (gpu) check_cuda(cpu, gpu, &c);
        arena_reset(a);
    }
    if (!gpu) check_skip(path, "%d cases not run on CUDA: %s", n_cases,
                         backend_cuda_built() ? "no GPU on this machine" : "built with CUDA=0");
    arena_destroy(a);
    safetensors_close(&st);
}

int main(int argc, char **argv) {
    ctx_t *cpu = ctx_create(DEVICE_CPU, 16 << 20);
    ctx_t *gpu = ctx_create(DEVICE_CUDA, 16 << 20); /* NULL without a GPU */
    glob_t g;
    const char *pattern = argc > 1 ? argv[1] : "tests/reference/ops_*.safetensors";
    if (glob(pattern, 0, NULL, &g) != 0) {
        check(0, "test_ops", "no reference files match %s (run from the repository root)", pattern);
    } else {
        for (size_t i = 0; i < g.gl_pathc; i++) run_file(g.gl_pathv[i], cpu, gpu);
        globfree(&g);
    }
    ctx_destroy(cpu);
    ctx_destroy(gpu);
    return check_finish("test_ops");
}
