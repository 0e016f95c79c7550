/* cuda_elementwise.cu - fill, axpy, affine, broadcasting binary ops and unary
 * activations, with the formulas of cpu_core.c.
 *
 * The backward of a broadcasting binary op gathers rather than scatters: one
 * thread (or one block, when the reduction is long) per element of the
 * operand sums every output element that element fed. That needs no atomics,
 * so the result is the same on every run. */
#include <math.h>

#include "cuda_kernels.h"
#include "unary_math.h"

__global__ static void fill_kernel(float *x, float value, int64_t n) {
    for (int64_t i = grid_start(); i < n; i += grid_step()) x[i] = value;
}

__global__ static void axpy_kernel(float *y, const float *x, float alpha, int64_t n) {
    for (int64_t i = grid_start(); i < n; i += grid_step()) y[i] += alpha * x[i];
}

__global__ static void affine_kernel(float *out, const float *in, float alpha, float beta, int64_t n) {
    for (int64_t i = grid_start(); i < n; i += grid_step()) out[i] = alpha * in[i] + beta;
}

static void cuda_fill(float *x, float value, int64_t n) {
    if (n <= 0) return;
    fill_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(x, value, n);
    CUDA_CHECK_LAUNCH("fill_kernel");
}

static void cuda_axpy(float *y, const float *x, float alpha, int64_t n) {
    if (n <= 0 || !y) return;
    axpy_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(y, x, alpha, n);
    CUDA_CHECK_LAUNCH("axpy_kernel");
}

static void cuda_affine(float *out, const float *in, float alpha, float beta, int64_t n) {
    if (n <= 0) return;
    affine_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(out, in, alpha, beta, n);
    CUDA_CHECK_LAUNCH("affine_kernel");
}

/* ---- binary ---- */

__device__ static float binary_apply(binary_op_t op, float x, float y) {
    switch (op) {
    case BINARY_ADD: return x + y;
    case BINARY_SUB: return x - y;
    case BINARY_MUL: return x * y;
    case BINARY_DIV: return x / y;
    }
    return 0.0f;
}

/* bc is passed by value: the host's struct becomes the kernel's argument */
__global__ static void binary_forward_kernel(binary_op_t op, float *out, const float *a, const float *b, bcast_t bc) {
    for (int64_t i = grid_start(); i < bc.numel; i += grid_step()) {
        int64_t oa = 0, ob = 0, r = i;
        for (int d = bc.ndim - 1; d >= 0; d--) {
            int64_t idx = r % bc.shape[d];
            r /= bc.shape[d];
            oa += idx * bc.a_stride[d];
            ob += idx * bc.b_stride[d];
        }
        out[i] = binary_apply(op, a[oa], b[ob]);
    }
}

static void cuda_binary_forward(binary_op_t op, float *out, const float *a, const float *b, const bcast_t *bc) {
    if (bc->numel <= 0) return;
    binary_forward_kernel<<<cuda_blocks(bc->numel), CUDA_THREADS>>>(op, out, a, b, *bc);
    CUDA_CHECK_LAUNCH("binary_forward_kernel");
}

/* The gradient of one operand ("self", at self_stride) in terms of the other
 * ("other"). Output dims split into the ones self keeps (stride != 0) and the
 * ones it broadcasts over; an operand element j names the kept indices, a
 * reduction index r the broadcast ones. */
typedef struct {
    int ndim;
    int64_t shape[BCAST_MAX_DIMS];
    int64_t self_stride[BCAST_MAX_DIMS];
    int64_t other_stride[BCAST_MAX_DIMS];
    int64_t out_stride[BCAST_MAX_DIMS]; /* row-major strides of the output */
    int64_t self_numel;                 /* product of the kept extents */
    int64_t reduce_numel;               /* product of the broadcast extents */
} grad_plan_t;

/* which = 0: self is a (d/da); which = 1: self is b (d/db) */
static grad_plan_t make_plan(const bcast_t *bc, int which) {
    grad_plan_t p;
    p.ndim = bc->ndim;
    p.self_numel = 1;
    p.reduce_numel = 1;
    int64_t st = 1;
    for (int d = bc->ndim - 1; d >= 0; d--) {
        p.shape[d] = bc->shape[d];
        p.self_stride[d] = which == 0 ? bc->a_stride[d] : bc->b_stride[d];
        p.other_stride[d] = which == 0 ? bc->b_stride[d] : bc->a_stride[d];
        p.out_stride[d] = st;
        st *= bc->shape[d];
        if (p.self_stride[d] != 0) p.self_numel *= bc->shape[d];
        else p.reduce_numel *= bc->shape[d];
    }
    return p;
}

/* Offsets of operand element j, reduction index r: into the output, into the
 * operand itself and into the other operand. (With op_broadcast's strides the
 * operand is contiguous and its offset is j; the strides are used anyway, as
 * cpu_core.c does.) */
__device__ static void plan_offsets(const grad_plan_t &p, int64_t j, int64_t r, int64_t *out_off, int64_t *self_off,
                                    int64_t *other_off) {
    int64_t o = 0, sf = 0, ot = 0;
    for (int d = p.ndim - 1; d >= 0; d--) {
        int64_t idx;
        if (p.self_stride[d] != 0) {
            idx = j % p.shape[d];
            j /= p.shape[d];
        } else {
            idx = r % p.shape[d];
            r /= p.shape[d];
        }
        o += idx * p.out_stride[d];
        sf += idx * p.self_stride[d];
        ot += idx * p.other_stride[d];
    }
    *out_off = o;
    *self_off = sf;
    *other_off = ot;
}

/* d(a op b)/d(self) * g, for self = a (is_b = 0) or self = b (is_b = 1) */
__device__ static float binary_grad(binary_op_t op, int is_b, float g, float self, float other) {
    switch (op) {
    case BINARY_ADD: return g;
    case BINARY_SUB: return is_b ? -g : g;
    case BINARY_MUL: return g * other;
    case BINARY_DIV:
        if (!is_b) return g / other;         /* d(a/b)/da = 1/b */
        return -(g * other / (self * self)); /* d(a/b)/db = -a/b^2, as cpu_core.c */
    }
    return 0.0f;
}

/* One thread per operand element: no reduction, a short one, or so many
 * operand elements that the GPU is busy anyway. */
__global__ static void binary_backward_thread_kernel(binary_op_t op, int is_b, float *dself, const float *dout,
                                                     const float *self, const float *other, grad_plan_t p) {
    for (int64_t j = grid_start(); j < p.self_numel; j += grid_step()) {
        float s = 0.0f;
        int64_t oo, so, ot;
        for (int64_t r = 0; r < p.reduce_numel; r++) {
            plan_offsets(p, j, r, &oo, &so, &ot); /* so is the same for every r */
            s += binary_grad(op, is_b, dout[oo], self[so], other[ot]);
        }
        plan_offsets(p, j, 0, &oo, &so, &ot);
        dself[so] += s;
    }
}

/* One block per operand element: few elements with long reductions (a bias,
 * a scalar). */
__global__ static void binary_backward_block_kernel(binary_op_t op, int is_b, float *dself, const float *dout,
                                                    const float *self, const float *other, grad_plan_t p) {
    for (int64_t j = blockIdx.x; j < p.self_numel; j += gridDim.x) {
        double s = 0.0;
        int64_t oo, so, ot;
        for (int64_t r = threadIdx.x; r < p.reduce_numel; r += blockDim.x) {
            plan_offsets(p, j, r, &oo, &so, &ot); /* so is the same for every r */
            s += binary_grad(op, is_b, dout[oo], self[so], other[ot]);
        }
        s = block_sum(s);
        if (threadIdx.x == 0) {
            plan_offsets(p, j, 0, &oo, &so, &ot);
            dself[so] += (float)s;
        }
    }
}

static void binary_grad_one(binary_op_t op, int is_b, float *dself, const float *dout, const float *self,
                            const float *other, const bcast_t *bc) {
    grad_plan_t p = make_plan(bc, is_b);
    if (p.reduce_numel <= 64 || p.self_numel >= 65536) {
        binary_backward_thread_kernel<<<cuda_blocks(p.self_numel), CUDA_THREADS>>>(op, is_b, dself, dout, self,
                                                                                    other, p);
        CUDA_CHECK_LAUNCH("binary_backward_thread_kernel");
    } else {
        binary_backward_block_kernel<<<cuda_row_blocks(p.self_numel), CUDA_THREADS>>>(op, is_b, dself, dout, self,
                                                                                       other, p);
        CUDA_CHECK_LAUNCH("binary_backward_block_kernel");
    }
}

static void cuda_binary_backward(binary_op_t op, float *da, float *db, const float *dout, const float *a,
                                 const float *b, const bcast_t *bc) {
    if (bc->numel <= 0) return;
    /* two launches in order on one stream, so da == db (x op x) adds both parts */
    if (da) binary_grad_one(op, 0, da, dout, a, b, bc);
    if (db) binary_grad_one(op, 1, db, dout, b, a, bc);
}

/* ---- unary ---- */

__global__ static void unary_forward_kernel(unary_op_t op, float *out, const float *in, int64_t n) {
    for (int64_t i = grid_start(); i < n; i += grid_step()) out[i] = unary_apply(op, in[i]);
}

__global__ static void unary_backward_kernel(unary_op_t op, float *din, const float *in, const float *out,
                                             const float *dout, int64_t n) {
    for (int64_t i = grid_start(); i < n; i += grid_step()) din[i] += dout[i] * unary_derivative(op, in[i], out ? out[i] : 0.0f);
}

static void cuda_unary_forward(unary_op_t op, float *out, const float *in, int64_t n) {
    if (n <= 0) return;
    unary_forward_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(op, out, in, n);
    CUDA_CHECK_LAUNCH("unary_forward_kernel");
}

static void cuda_unary_backward(unary_op_t op, float *din, const float *in, const float *out, const float *dout,
                                int64_t n) {
    if (n <= 0 || !din) return;
    unary_backward_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(op, din, in, out, dout, n);
    CUDA_CHECK_LAUNCH("unary_backward_kernel");
}

void cuda_register_elementwise(backend_t *be) {
    be->fill = cuda_fill;
    be->axpy = cuda_axpy;
    be->affine = cuda_affine;
    be->binary_forward = cuda_binary_forward;
    be->binary_backward = cuda_binary_backward;
    be->unary_forward = cuda_unary_forward;
    be->unary_backward = cuda_unary_backward;
}
