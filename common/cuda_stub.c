/* cuda_stub.c - linked instead of the CUDA backend when built with CUDA=0. */
#include "backend.h"

const backend_t *backend_cuda_get(void) { return NULL; }
int backend_cuda_built(void) { return 0; }
