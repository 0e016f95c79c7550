#include "arena.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

struct arena_block {
    arena_block_t *next;
    char *base;
    size_t size;
    size_t used;
    int on_host; /* base came from malloc rather than the backend */
};

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

arena_t *arena_create(device_t device, size_t block_bytes) {
    const backend_t *be = backend_get(device);
    if (!be) return NULL;
    arena_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->device = device;
    a->backend = be;
    a->block_bytes = block_bytes < (1u << 20) ? (1u << 20) : block_bytes;
    return a;
}

static void free_blocks(arena_t *a, arena_block_t *b) {
    while (b) {
        arena_block_t *next = b->next;
        if (b->on_host) free(b->base);
        else a->backend->free(b->base);
        free(b);
        b = next;
    }
}

void arena_destroy(arena_t *a) {
    if (!a) return;
    free_blocks(a, a->data);
    free_blocks(a, a->host);
    free(a);
}

/* Finds room in the block list or adds a block; returns NULL when out of memory. */
static void *take(arena_t *a, arena_block_t **list, size_t bytes, size_t align, int on_host) {
    for (arena_block_t *b = *list; b; b = b->next) {
        size_t start = align_up(b->used, align);
        if (start + bytes <= b->size) {
            b->used = start + bytes;
            return b->base + start;
        }
    }
    size_t size = a->block_bytes;
    if (on_host) size = 1u << 20;
    if (size < bytes + align) size = bytes + align;
    arena_block_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->base = on_host ? malloc(size) : a->backend->alloc(size);
    if (!b->base) {
        free(b);
        return NULL;
    }
    b->size = size;
    b->on_host = on_host;
    b->used = bytes;
    b->next = *list;
    *list = b;
    if (!on_host) a->reserved += size;
    return b->base;
}

void *arena_alloc(arena_t *a, size_t bytes) {
    if (bytes == 0) bytes = 1;
    void *p = take(a, &a->data, bytes, 64, 0);
    if (!p) fatal("arena: out of %s memory allocating %zu bytes (%zu in use)", device_name(a->device), bytes, a->used);
    a->used += align_up(bytes, 64);
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void *arena_alloc_host(arena_t *a, size_t bytes) {
    void *p = take(a, &a->host, bytes ? bytes : 1, 16, 1);
    if (!p) fatal("arena: out of host memory allocating %zu bytes", bytes);
    memset(p, 0, bytes);
    return p;
}

void arena_reset(arena_t *a) {
    for (arena_block_t *b = a->data; b; b = b->next) b->used = 0;
    for (arena_block_t *b = a->host; b; b = b->next) b->used = 0;
    a->used = 0;
}
