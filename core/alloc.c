/* SPDX-License-Identifier: MIT */
/*
 * The allocator for the runtime's own objects. With WEFT_ALLOC_JEMALLOC
 * (the default build) it uses jemalloc's mallocx/sdallocx when the program
 * is linked with jemalloc (libweft.so always is; with libweft.a, add
 * -ljemalloc or use `pkg-config --static --libs weft`), and libc's malloc
 * otherwise: the references are weak, so a program that links only
 * libweft.a still links and runs. `make ALLOC=libc` drops jemalloc.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if WEFT_ALLOC_JEMALLOC
extern void *mallocx(size_t size, int flags) __attribute__((weak));
extern void sdallocx(void *ptr, size_t size, int flags) __attribute__((weak));

void *weft__alloc(size_t size)
{
    return mallocx ? mallocx(size ? size : 1, 0) : malloc(size);
}

/* mallocx(size, 0) and a memset: jemalloc's MALLOCX_ZERO misses its fast
 * path and costs about 50 instructions more for the small objects here. */
void *weft__zalloc(size_t size)
{
    if (!mallocx)
        return calloc(1, size);
    void *p = mallocx(size ? size : 1, 0);
    return p ? memset(p, 0, size) : NULL;
}

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
