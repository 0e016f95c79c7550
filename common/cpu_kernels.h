/* cpu_kernels.h - how the CPU backend's table is filled.
 *
 * The kernels of each op family live in their own cpu_*.c file next to the
 * family's ops_*.c; each file exports one function that puts its kernels
 * into the table. backend_cpu.c calls them all once. */
#ifndef STEPSTONE_CPU_KERNELS_H
#define STEPSTONE_CPU_KERNELS_H

#include "backend.h"

void cpu_register_core(backend_t *be);    /* cpu_core.c: memory, convert, elementwise, reduce, gemm */
void cpu_register_norm(backend_t *be);    /* cpu_norm.c: softmax, layer norm, group norm */
void cpu_register_attention(backend_t *be); /* cpu_attention.c: attention mask, cosine similarity */
void cpu_register_spatial(backend_t *be); /* cpu_spatial.c: im2col/col2im, bilinear, grid sample */
void cpu_register_layout(backend_t *be);  /* cpu_layout.c: embedding, slice, strided copy, roll */
void cpu_register_loss(backend_t *be);    /* cpu_loss.c: BCE, dice, cross-entropy, AdamW */
void cpu_register_pool(backend_t *be);    /* cpu_pool.c: max pooling */

#endif
