/* cpu_spatial.c - CPU kernels (being written). */
#include "cpu_kernels.h"

void cpu_register_spatial(backend_t *be) { (void)be; }
