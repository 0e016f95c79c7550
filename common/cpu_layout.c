/* cpu_layout.c - CPU kernels (being written). */
#include "cpu_kernels.h"

void cpu_register_layout(backend_t *be) { (void)be; }
