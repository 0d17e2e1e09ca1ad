/* SPDX-License-Identifier: MIT */
/*
 * Fiber stacks (core/stack.c): mapping, guards and canaries, and the
 * stack-overflow report (core/overflow.c).
 */
#ifndef WEFT__CORE_STACK_H
#define WEFT__CORE_STACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include "config.h"
/* How a stack is protected against overflow. */
enum weft__guard {
    WEFT__GUARD_MADVISE,  /* MADV_GUARD_INSTALL: no extra mapping */
    WEFT__GUARD_MPROTECT, /* PROT_NONE page: one more mapping */
    WEFT__GUARD_CANARY,   /* kernel refused: canary checked at each switch */
};

/* One slot of a slab (stack.c): [guard][stack ........ top]. */
struct weft__stack {
    char *map;               /* lowest address; the guard starts here */
    size_t map_size;         /* whole slot, guard included */
    unsigned guard;          /* enum weft__guard */
    unsigned valgrind_id;    /* VALGRIND_STACK_REGISTER id, 0 if none */
    struct weft__slab *slab; /* the mapping it was carved from (stack.c) */
};

/* The madvise advice that gives a free stack's pages back (the mapping
 * and its guard stay): MADV_DONTNEED on Linux, which drops them at once;
 * MADV_FREE on the BSDs and macOS, where MADV_DONTNEED is only a hint
 * that keeps them. Nothing reads a released stack before writing it. */
#if defined(__linux__) || !defined(MADV_FREE)
#define WEFT__MADV_RELEASE MADV_DONTNEED
#else
#define WEFT__MADV_RELEASE MADV_FREE
#endif

#define WEFT__CANARY 0x5745465443414e59ull /* "WEFTCANY" */
#define WEFT__CANARY_WORDS 8

extern atomic_size_t weft__page_bytes; /* 0 until first asked */
size_t weft__page_size_slow(void);
/* The page size (sysconf once): a load on the spawn path. */
static inline size_t weft__page_size(void)
{
    size_t ps = atomic_load_explicit(&weft__page_bytes, memory_order_relaxed);
    return WEFT__LIKELY(ps != 0) ? ps : weft__page_size_slow();
}
/* The guard below every stack: 64 KiB (or a page, where pages are bigger).
 * A frame larger than the guard can store below it without touching it
 * first, so this is the largest frame (array, VLA, alloca) a store of which
 * always faults in the guard; -fstack-clash-protection probes larger frames
 * page by page. With MADV_GUARD_INSTALL the guard costs neither memory nor
 * a mapping; with mprotect it is PROT_NONE address space (no RSS, no
 * commit charge) and the same two mappings a page would take. */
#define WEFT__GUARD_BYTES (64 * 1024)
static inline size_t weft__guard_size(void)
{
    size_t ps = weft__page_size();
    return ps > WEFT__GUARD_BYTES ? ps : WEFT__GUARD_BYTES;
}
/* The guard new stacks get (probed once); tests may force a weaker one. */
int weft__stack_guard_mode(void);
void weft__stack_force_guard(int mode);
/* Maps a stack with usable bytes above its guard, from a slab. 0 or
 * -ENOMEM. Unmap gives it back to its slab (any thread). */
int weft__stack_map(struct weft__stack *s, size_t usable);
void weft__stack_unmap(struct weft__stack *s);
/* Lowest usable address (just above the guard). */
static inline char *weft__stack_lo(const struct weft__stack *s)
{
    return s->map + weft__guard_size();
}
static inline char *weft__stack_hi(const struct weft__stack *s)
{
    return s->map + s->map_size;
}
/* Canary-guarded stacks only: true while the canary is intact. */
bool weft__stack_canary_ok(const struct weft__stack *s);
/* Writes "weft: stack overflow in fiber '<name>' (stack <N> bytes)" to
 * stderr with async-signal-safe calls, then aborts. */
_Noreturn void weft__overflow_abort(const char *name, size_t stack_bytes);
/* Installs the SIGSEGV handler (once per process) and this thread's
 * alternate signal stack (once per thread). */
void weft__overflow_init_thread(void);

#endif /* WEFT__CORE_STACK_H */
