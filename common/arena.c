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
    free_blocks(a, a->spare_data);
    free_blocks(a, a->spare_host);
    free(a);
}

/* Takes from the top block of the stack, or pushes a block (a spare one that
 * is large enough, else a new one); NULL when out of memory. */
static void *take(arena_t *a, arena_block_t **stack, arena_block_t **spare, size_t bytes, size_t align, int on_host) {
    arena_block_t *top = *stack;
    if (top) {
        size_t start = align_up(top->used, align);
        if (start + bytes <= top->size) {
            top->used = start + bytes;
            return top->base + start;
        }
    }
    arena_block_t *b = NULL;
    for (arena_block_t **p = spare; *p; p = &(*p)->next) {
        if ((*p)->size >= bytes + align) {
            b = *p;
            *p = b->next;
            break;
        }
    }
    if (!b) {
        size_t size = on_host ? (size_t)1 << 20 : a->block_bytes;
        if (size < bytes + align) size = bytes + align;
        b = calloc(1, sizeof *b);
        if (!b) return NULL;
        b->base = on_host ? malloc(size) : a->backend->alloc(size);
        if (!b->base) {
            free(b);
            return NULL;
        }
        b->size = size;
        b->on_host = on_host;
        if (!on_host) a->reserved += size;
    }
    b->used = bytes; /* blocks are 64-byte aligned by every allocator used here */
    b->next = *stack;
    *stack = b;
    return b->base;
}

void *arena_alloc(arena_t *a, size_t bytes) {
    if (bytes == 0) bytes = 1;
    void *p = take(a, &a->data, &a->spare_data, bytes, 64, 0);
    if (!p) fatal("arena: out of %s memory allocating %zu bytes (%zu in use)", device_name(a->device), bytes, a->used);
    a->used += align_up(bytes, 64);
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void *arena_alloc_host(arena_t *a, size_t bytes) {
    void *p = take(a, &a->host, &a->spare_host, bytes ? bytes : 1, 16, 1);
    if (!p) fatal("arena: out of host memory allocating %zu bytes", bytes);
    memset(p, 0, bytes);
    return p;
}

/* Moves the blocks above `keep` (exclusive; all when keep is NULL) to the spare list. */
static void pop_blocks(arena_block_t **stack, arena_block_t **spare, const arena_block_t *keep) {
    while (*stack && *stack != keep) {
        arena_block_t *b = *stack;
        *stack = b->next;
        b->used = 0;
        b->next = *spare;
        *spare = b;
    }
}

void arena_reset(arena_t *a) {
    pop_blocks(&a->data, &a->spare_data, NULL);
    pop_blocks(&a->host, &a->spare_host, NULL);
    a->used = 0;
}

arena_mark_t arena_mark(const arena_t *a) {
    arena_mark_t m = {a->data, a->host, a->data ? a->data->used : 0, a->host ? a->host->used : 0, a->used};
    return m;
}

void arena_release(arena_t *a, arena_mark_t m) {
    pop_blocks(&a->data, &a->spare_data, m.data);
    pop_blocks(&a->host, &a->spare_host, m.host);
    if (a->data) a->data->used = m.data_used;
    if (a->host) a->host->used = m.host_used;
    a->used = m.used;
}
