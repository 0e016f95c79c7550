/* arena.h - bump allocation of tensor memory, reset as a whole.
 *
 * A training step allocates every activation, saved tensor and gradient from
 * one arena and resets it at the end of the step, so nothing is freed one by
 * one and nothing leaks. Parameters and optimizer state live in another arena
 * that is never reset. An arena belongs to one device: data blocks come from
 * that device's backend; the tensor headers themselves are always host memory.
 * The arena grows by adding blocks when full; arena_reset keeps the blocks. */
#ifndef STEPSTONE_ARENA_H
#define STEPSTONE_ARENA_H

#include <stddef.h>

#include "backend.h"

typedef struct arena_block arena_block_t;

typedef struct arena {
    device_t device;
    const backend_t *backend;
    size_t block_bytes;      /* default size of a new data block */
    arena_block_t *data;     /* device blocks, newest first */
    arena_block_t *host;     /* host blocks for tensor headers and small records */
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

#endif
