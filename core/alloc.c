/* SPDX-License-Identifier: MIT */
/*
 * The allocator for the runtime's own objects. With WEFT_ALLOC_JEMALLOC
 * (the default build) it uses jemalloc's malloc and sized free (sdallocx)
 * when the program is linked with jemalloc (libweft.so always is; with
 * libweft.a, add -ljemalloc or use `pkg-config --static --libs weft`), and
 * libc's malloc otherwise: the references are weak, so a program that links
 * only libweft.a still links and runs. `make ALLOC=libc` drops jemalloc.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if WEFT_ALLOC_JEMALLOC
extern void sdallocx(void *ptr, size_t size, int flags) __attribute__((weak));

/* Plain malloc: with jemalloc linked, it is jemalloc's, whose malloc has a
 * fast path that mallocx(size, 0) misses (about 60 instructions more for
 * the 400-byte spawn block, counted with callgrind). */
void *weft__alloc(size_t size)
{
    return malloc(size ? size : 1);
}

/* malloc and a memset: calloc costs about 100 instructions more here. */
void *weft__zalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    return p ? memset(p, 0, size) : NULL;
}

/* jemalloc's sized free, when it is linked (and so is the malloc above). */
void weft__free(void *p, size_t size)
{
    if (p == NULL)
        return;
    if (sdallocx)
        sdallocx(p, size ? size : 1, 0);
    else
        free(p);
}
#else
void *weft__alloc(size_t size)
{
    return malloc(size);
}

void *weft__zalloc(size_t size)
{
    return calloc(1, size);
}

void weft__free(void *p, size_t size)
{
    (void)size;
    free(p);
}
#endif
