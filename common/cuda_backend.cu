/* cuda_backend.cu - the CUDA backend's table: finding a usable GPU, device
 * memory and copies, and the error reporting the other cuda_*.cu files use.
 *
 * Everything runs on the legacy default stream, so kernels, cuBLAS calls and
 * cudaMemcpy are ordered one after another without extra synchronisation. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_kernels.h"

void cuda_check_at(cudaError_t err, const char *what, const char *file, int line) {
    if (err == cudaSuccess) return;
    fatal("%s:%d: %s failed: %s (%s)", file, line, what, cudaGetErrorString(err), cudaGetErrorName(err));
}

/* STEPSTONE_CUDA_SYNC=1 (any value but "" and "0") makes every launch wait for
 * its kernel; read once. */
static int sync_after_launch;
static pthread_once_t sync_once = PTHREAD_ONCE_INIT;

static void read_sync_setting(void) {
    const char *s = getenv("STEPSTONE_CUDA_SYNC");
    sync_after_launch = s && s[0] != '\0' && strcmp(s, "0") != 0;
}

void cuda_check_launch_at(const char *kernel, const char *file, int line) {
    cuda_check_at(cudaGetLastError(), kernel, file, line);
    pthread_once(&sync_once, read_sync_setting);
    if (sync_after_launch) cuda_check_at(cudaDeviceSynchronize(), kernel, file, line);
}

/* ---- memory ---- */

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    /* cudaMalloc(0) gives NULL, which callers read as failure; ask for a byte */
    cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        /* out of memory is the caller's to handle; clear it so that the next
         * launch check does not report it as that kernel's failure */
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cuda_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

static void cuda_memset_zero(void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemset(p, 0, bytes));
}

static void cuda_copy_from_host(void *dst, const void *host_src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

static void cuda_copy_to_host(void *host_dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

static void cuda_copy(void *dst, const void *src, size_t bytes) {
    /* the CPU's memmove makes dst == src a no-op; cudaMemcpy wants no overlap */
    if (bytes && dst != src) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

static void cuda_synchronize(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

void cuda_register_memory(backend_t *be) {
    be->alloc = cuda_alloc;
    be->free = cuda_free;
    be->memset_zero = cuda_memset_zero;
    be->copy_from_host = cuda_copy_from_host;
    be->copy_to_host = cuda_copy_to_host;
    be->copy = cuda_copy;
    be->synchronize = cuda_synchronize;
}

/* ---- the table ---- */

/* A kernel that exists only so that init can ask whether this binary has
 * code the device can run (sm_90 code, or compute_80 PTX it can compile). */
__global__ static void cuda_probe_kernel(int *x) {
    if (x) *x = 0;
}

static backend_t cuda_table;
static const backend_t *cuda_ready; /* &cuda_table once a usable GPU is found */
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;

/* The table holds only pointers (the name and the kernels); a slot left NULL
 * means a field added to backend.h that no cuda_register_* fills. */
static void check_table_complete(const backend_t *be) {
    static_assert(sizeof(backend_t) % sizeof(void *) == 0, "backend_t is not all pointers");
    const unsigned char *bytes = (const unsigned char *)be;
    for (size_t i = 0; i < sizeof(backend_t) / sizeof(void *); i++) {
        void *slot;
        memcpy(&slot, bytes + i * sizeof(void *), sizeof slot);
        if (!slot) fatal("cuda backend: table slot %zu is not set (a backend.h field without a CUDA kernel)", i);
    }
}

static void cuda_init(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count <= 0) {
        (void)cudaGetLastError(); /* no driver or no device: not an error here */
        return;
    }
    cudaFuncAttributes attr;
    cudaError_t err = cudaFuncGetAttributes(&attr, cuda_probe_kernel);
    if (err != cudaSuccess) {
        int dev = 0;
        cudaDeviceProp prop;
        if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
            fprintf(stderr, "cuda: device %d (%s, sm_%d%d) is not usable: %s\n", dev, prop.name, prop.major,
                    prop.minor, cudaGetErrorString(err));
        else
            fprintf(stderr, "cuda: no usable device: %s\n", cudaGetErrorString(err));
        (void)cudaGetLastError();
        return;
    }
    memset(&cuda_table, 0, sizeof cuda_table);
    cuda_table.name = "cuda";
    cuda_register_memory(&cuda_table);
    cuda_register_convert(&cuda_table);
    cuda_register_gemm(&cuda_table);
    cuda_register_elementwise(&cuda_table);
    cuda_register_reduce(&cuda_table);
    cuda_register_norm(&cuda_table);
    cuda_register_attention(&cuda_table);
    cuda_register_spatial(&cuda_table);
    cuda_register_layout(&cuda_table);
    cuda_register_loss(&cuda_table);
    cuda_register_pool(&cuda_table);
    check_table_complete(&cuda_table);
    cuda_ready = &cuda_table;
}

extern "C" const backend_t *backend_cuda_get(void) {
    pthread_once(&cuda_once, cuda_init);
    return cuda_ready;
}

extern "C" int backend_cuda_built(void) { return 1; }
