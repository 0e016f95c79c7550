#include "backend.h"

#include <pthread.h>
#include <string.h>

#include "cpu_kernels.h"

static backend_t cpu_table;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void cpu_init(void) {
    memset(&cpu_table, 0, sizeof cpu_table);
    cpu_table.name = "cpu";
    cpu_register_core(&cpu_table);
    cpu_register_norm(&cpu_table);
    cpu_register_attention(&cpu_table);
    cpu_register_spatial(&cpu_table);
    cpu_register_layout(&cpu_table);
    cpu_register_loss(&cpu_table);
    cpu_register_pool(&cpu_table);
}

const backend_t *backend_cpu_get(void) {
    pthread_once(&cpu_once, cpu_init);
    return &cpu_table;
}

const backend_t *backend_get(device_t device) {
    switch (device) {
    case DEVICE_CPU: return backend_cpu_get();
    case DEVICE_CUDA: return backend_cuda_get();
    }
    return NULL;
}

const char *device_name(device_t device) { return device == DEVICE_CUDA ? "cuda" : "cpu"; }

int device_parse(const char *s, device_t *out) {
    if (strcmp(s, "cpu") == 0) {
        *out = DEVICE_CPU;
        return 0;
    }
    if (strcmp(s, "cuda") == 0 || strcmp(s, "gpu") == 0) {
        *out = DEVICE_CUDA;
        return 0;
    }
    return -1;
}
