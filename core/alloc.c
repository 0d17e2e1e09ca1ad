/* SPDX-License-Identifier: MIT */
/*
 * The allocator for the runtime's own objects: malloc and free, which are
 * jemalloc's when the program is linked with it (the default build links
 * libweft.so with it; with libweft.a, add -ljemalloc or use
 * `pkg-config --static --libs weft`), and libc's otherwise, so a program
 * that links only libweft.a still links and runs. `make ALLOC=libc`
 * drops jemalloc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* malloc and a memset: with jemalloc, calloc costs about 100 instructions
 * more for the 400-byte spawn block (callgrind). */
void *weft__zalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    return p ? memset(p, 0, size) : NULL;
}

void *weft__alloc(size_t size)
{
    return malloc(size ? size : 1);
}

/* Plain free, though the size is known: jemalloc's sdallocx would pair
 * only with its own mallocx, and malloc may be someone else's (valgrind
 * and the sanitizers replace it), while jemalloc's malloc + free cost 82
 * instructions a pair against 208 for mallocx + sdallocx (callgrind, a
 * 408-byte block). */
void weft__free(void *p, size_t size)
{
    (void)size;
    free(p);
}

_Noreturn void weft__die(const char *what, int err)
{
    fprintf(stderr, "weft: %s: %s\n", what, strerror(err));
    abort();
}
