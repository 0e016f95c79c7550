/* arena.h - bump allocation of tensor memory, reset as a whole.
 *
 * A training step allocates every activation, saved tensor and gradient from
 * one arena and resets it at the end of the step, so nothing is freed one by
 * one and nothing leaks. Parameters and optimizer state live in another arena
 * that is never reset. An arena belongs to one device: data blocks come from
 * that device's backend; the tensor headers themselves are always host memory.
 * The arena grows by adding blocks when full; arena_reset keeps the blocks.
 * Allocation is a stack: arena_mark notes the top and arena_release pops
 * everything allocated since, so a forward pass without gradients can drop
 * each layer's temporaries (see ctx_keep in tape.h). */
#ifndef STEPSTONE_ARENA_H
#define STEPSTONE_ARENA_H

#include <stddef.h>

#include "backend.h"

typedef struct arena_block arena_block_t;

typedef struct arena {
    device_t device;
    const backend_t *backend;
    size_t block_bytes;      /* default size of a new data block */
    arena_block_t *data;     /* device blocks in use, the top of the stack first */
    arena_block_t *host;     /* host blocks for tensor headers and small records */
    arena_block_t *spare_data, *spare_host; /* released blocks kept for reuse */
    size_t used;             /* data bytes handed out since the last reset */
    size_t peak;             /* the largest `used` seen */
    size_t reserved;         /* data bytes held in blocks */
} arena_t;

/* Creates an arena on `device` whose blocks hold at least block_bytes each.
 * Returns NULL when the device is absent or memory is short. */
arena_t *arena_create(device_t device, size_t block_bytes);
void arena_destroy(arena_t *a);
/* Device memory, 64-byte aligned; fatal() when the device is out of memory. */
void *arena_alloc(arena_t *a, size_t bytes);
/* Host memory for headers and records, zeroed, 16-byte aligned. */
void *arena_alloc_host(arena_t *a, size_t bytes);
/* Forgets every allocation; keeps the blocks for the next step. */
void arena_reset(arena_t *a);

/* The top of the stack. A mark stays valid until an arena_release or
 * arena_reset below it. */
typedef struct {
    arena_block_t *data, *host;
    size_t data_used, host_used, used;
} arena_mark_t;
arena_mark_t arena_mark(const arena_t *a);
/* Frees everything allocated after the mark (its memory is reused). */
void arena_release(arena_t *a, arena_mark_t mark);

#endif
