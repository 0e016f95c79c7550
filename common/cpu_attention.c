/* cpu_attention.c - CPU kernels (being written). */
#include "cpu_kernels.h"

void cpu_register_attention(backend_t *be) { (void)be; }
