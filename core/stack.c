/* SPDX-License-Identifier: MIT */
/*
 * Fiber stacks: carved from slabs (anonymous mappings of up to 64 stacks
 * of one size; see "slabs" below), each with a 64 KiB guard at its bottom
 * (weft__guard_size). The overflow report is in overflow.c.
 *
 * The guard is 64 KiB, not a page, because a frame larger than a page can
 * store below the stack without touching the guard first (the compiler
 * moves sp by the frame size and stores wherever it likes): with a page,
 * such a store lands in the mapping below, usually another fiber's stack.
 * Any frame up to 64 KiB now faults in our own guard. Every stack has its
 * own guard between it and whatever lies below (the stack below it in its
 * slab, or another mapping).
 *
 * Guards, in order of preference (probed once per process):
 *   MADV_GUARD_INSTALL (Linux 6.13+) marks the pages without splitting the
 *   mapping, so a million guarded stacks cost no extra VMAs (one madvise
 *   per stack, the first time its slot is used); mprotect
 *   makes them PROT_NONE at the cost of one more VMA per stack; and
 *   when the kernel refuses that too (vm.max_map_count), the stack is
 *   unguarded but carries a canary that every switch checks. We say so
 *   once on stderr and keep going: a smaller promise kept beats a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT__VALGRIND 1
#endif
#endif

#include "internal.h"

#if defined(__linux__) && !defined(MADV_GUARD_INSTALL)
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; glibc 2.36 lacks it */
#endif
/* Slab mappings: MAP_NORESERVE where it exists (no swap reserved for
 * address space a fiber may never touch; FreeBSD dropped the flag).
 * MAP_STACK where it only marks stack memory: Linux (a hint) and
 * OpenBSD, which kills a process whose stack pointer is outside such
 * memory at a syscall. Not on FreeBSD and DragonFly, where MAP_STACK
 * makes one grow-down stack region, not a slab of stacks. */
#ifdef MAP_NORESERVE
#define SLAB_NORESERVE MAP_NORESERVE
#else
#define SLAB_NORESERVE 0
#endif
#if defined(MAP_STACK) && (defined(__linux__) || defined(__OpenBSD__))
#define SLAB_STACK MAP_STACK
#else
#define SLAB_STACK 0
#endif

atomic_size_t weft__page_bytes;
static int guard_mode; /* enum weft__guard chosen for new stacks */
static atomic_bool told_canary;
/* Mappings we let mprotect guards use: vm.max_map_count less a reserve for
 * the rest of the process. At the limit the kernel refuses every mmap, not
 * only the split, so we stop splitting before we get there. */
static long map_budget;
static atomic_long mprotect_stacks;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

size_t weft__page_size_slow(void)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    atomic_store_explicit(&weft__page_bytes, ps, memory_order_relaxed);
    return ps;
}

/* Is MADV_GUARD_INSTALL real here? qemu-user answers it with success but
 * does not enforce it (seen with qemu 7.2), so a success is checked: write()
 * from a guarded page must fail with EFAULT. */
static void probe_guard(void)
{
    size_t ps = weft__page_size();
    guard_mode = WEFT__GUARD_MPROTECT;
    long max_maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f != NULL) {
        if (fscanf(f, "%ld", &max_maps) != 1)
            max_maps = 65530;
        fclose(f);
    }
    map_budget = max_maps > 8192 ? max_maps - 4096 : max_maps / 2;
    char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
#ifdef MADV_GUARD_INSTALL
    int fds[2];
    if (madvise(p, ps, MADV_GUARD_INSTALL) == 0 && pipe(fds) == 0) {
        if (write(fds[1], p, 1) < 0 && errno == EFAULT)
            guard_mode = WEFT__GUARD_MADVISE;
        close(fds[0]);
        close(fds[1]);
    }
#endif
    munmap(p, 2 * ps);
}

static void say_canary_once(void)
{
    if (!atomic_exchange(&told_canary, true))
        fprintf(stderr,
                "weft: the kernel refused a guard page (vm.max_map_count); "
                "new fiber stacks are unguarded and checked by a canary at "
                "every switch\n");
}

int weft__stack_guard_mode(void)
{
    pthread_once(&probe_once, probe_guard);
    return guard_mode;
}

void weft__stack_force_guard(int mode)
{
    pthread_once(&probe_once, probe_guard);
    guard_mode = mode;
}

/* ---- slabs ----
 *
 * Stacks are carved from slabs: one mapping of up to WEFT__SLAB_SLOTS
 * stacks of one size, each [guard][usable], so a million stacks cost some
 * 16,000 mmap and munmap calls, not a million of each. Unmapping a stack
 * in the middle of a mapping splits it and flushes the TLB: with one
 * mapping per stack, finishing a million fibers spent more time in munmap
 * than in anything else (bench_scale). A slot gets its guard when it is
 * first handed out and keeps it (guard markers and PROT_NONE survive
 * MADV_DONTNEED); the slot below is another stack, so every stack still
 * has its own guard between it and whatever lies below.
 *
 * A freed stack goes back to its slab with its pages ("dirty") while
 * fewer than WEFT__SLAB_DIRTY such stacks are kept, and gives them back
 * with MADV_DONTNEED otherwise; a slab whose every stack is free is
 * unmapped whole. One mutex guards it all: this is the slow path, behind
 * the per-thread pools of coro.c, and a stack may be freed by a thread
 * other than the one that mapped it. */

struct weft__slab {
    char *base;
    size_t stride;                  /* guard + usable */
    struct weft__slab *next, *prev; /* its class's list of slabs with room */
    struct weft__slab *next_all, *prev_all; /* every slab (leak checkers) */
    struct weft__slab_class *cls;
    unsigned nslots, nlive, nused; /* slots [0, nused) have their guard */
    /* Bit i for slot i. Kept small: a slab header is the only memory a
     * stack costs beyond its pages (about 2 bytes a stack). */
    uint64_t free;     /* freed slots (guarded, ready) */
    uint64_t dirty;    /* ... of which freed with their pages */
    uint64_t mprotect; /* slots guarded by mprotect */
    uint64_t canary;   /* slots with no guard: a canary */
};

struct weft__slab_class {
    size_t stride;
    struct weft__slab *avail; /* slabs with a free or unused slot */
    struct weft__slab_class *next;
};

static pthread_mutex_t slab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft__slab_class *slab_classes;
static unsigned slab_ndirty; /* dirty free slots, all slabs */
/* Every slab, full ones included: a full slab is otherwise known only to
 * its stacks, in memory leak checkers do not scan. */
static struct weft__slab *slab_all;

/* A child forked while another thread held slab_lock would deadlock at
 * its first new stack: fork waits for the lock to be free. */
static void slab_lock_take(void)
{
    pthread_mutex_lock(&slab_lock);
}
static void slab_lock_give(void)
{
    pthread_mutex_unlock(&slab_lock);
}
static pthread_once_t slab_atfork_once = PTHREAD_ONCE_INIT;
static void slab_atfork(void)
{
    pthread_atfork(slab_lock_take, slab_lock_give, slab_lock_give);
}

static struct weft__slab_class *slab_class(size_t stride)
{
    struct weft__slab_class *c;
    for (c = slab_classes; c != NULL; c = c->next)
        if (c->stride == stride)
            return c;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->stride = stride;
    c->next = slab_classes;
    slab_classes = c;
    return c;
}

static void avail_add(struct weft__slab *sl)
{
    struct weft__slab_class *c = sl->cls;
    sl->prev = NULL;
    sl->next = c->avail;
    if (c->avail)
        c->avail->prev = sl;
    c->avail = sl;
}

static void avail_del(struct weft__slab *sl)
{
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        sl->cls->avail = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    sl->next = sl->prev = NULL;
}

static bool slab_has_room(const struct weft__slab *sl)
{
    return sl->free != 0 || sl->nused < sl->nslots;
}

/* A new slab for stride-byte slots, on the class's list; NULL: ENOMEM. */
static struct weft__slab *slab_new(struct weft__slab_class *c)
{
    struct weft__slab *sl = calloc(1, sizeof *sl);
    if (sl == NULL)
        return NULL;
    size_t n = WEFT__SLAB_BYTES / c->stride;
    if (n > WEFT__SLAB_SLOTS)
        n = WEFT__SLAB_SLOTS;
    for (; n >= 1; n = n > 1 ? n / 2 : 0) {
        sl->base = mmap(
            NULL, n * c->stride, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | SLAB_NORESERVE | SLAB_STACK, -1, 0);
        if (sl->base != MAP_FAILED)
            break;
    }
    if (n == 0) {
        free(sl);
        return NULL;
    }
#ifdef MADV_NOHUGEPAGE
    /* Never a huge page for a stack (THP "always"): one page per fiber. */
    madvise(sl->base, n * c->stride, MADV_NOHUGEPAGE);
#endif
    sl->stride = c->stride;
    sl->cls = c;
    sl->nslots = (unsigned)n;
    sl->next_all = slab_all;
    if (slab_all)
        slab_all->prev_all = sl;
    slab_all = sl;
    avail_add(sl);
    return sl;
}

/* Guards the slot at map, the first time it is handed out; returns the
 * enum weft__guard it got. */
static unsigned slot_guard(char *map)
{
    size_t gs = weft__guard_size();
    unsigned g = (unsigned)guard_mode;
#ifdef MADV_GUARD_INSTALL
    if (g == WEFT__GUARD_MADVISE && madvise(map, gs, MADV_GUARD_INSTALL) != 0)
        g = WEFT__GUARD_MPROTECT;
#endif
    if (g == WEFT__GUARD_MPROTECT) {
        /* Each split costs a VMA (two per stack in all); ENOMEM from
         * mprotect is vm.max_map_count reached by someone else. */
        if (2 * atomic_load_explicit(&mprotect_stacks, memory_order_relaxed) +
                    2 <
                map_budget &&
            mprotect(map, gs, PROT_NONE) == 0)
            atomic_fetch_add_explicit(&mprotect_stacks, 1,
                                      memory_order_relaxed);
        else
            g = WEFT__GUARD_CANARY;
    }
    return g;
}

/* Maps [guard][usable bytes]. Returns 0 or -ENOMEM. In canary mode the
 * guard's bytes stay writable (untouched, so no memory): a frame that
 * overshoots the stack by up to that much lands in our own mapping, not in
 * the stack below, and the canary reports it at the next switch. */
int weft__stack_map(struct weft__stack *s, size_t usable)
{
    size_t stride = usable + weft__guard_size();
    pthread_once(&probe_once, probe_guard);
    pthread_once(&slab_atfork_once, slab_atfork);

    pthread_mutex_lock(&slab_lock);
    struct weft__slab_class *c = slab_class(stride);
    struct weft__slab *sl = c ? c->avail : NULL;
    if (sl == NULL && c != NULL)
        sl = slab_new(c);
    if (sl == NULL) {
        pthread_mutex_unlock(&slab_lock);
        return -ENOMEM;
    }
    unsigned i;
    if (sl->free != 0) {
        /* A slot with its pages first: no page faults. */
        uint64_t pick = sl->dirty ? sl->dirty : sl->free;
        i = 63u - (unsigned)__builtin_clzll(pick);
        sl->free &= ~(1ull << i);
        if (sl->dirty & 1ull << i) {
            sl->dirty &= ~(1ull << i);
            slab_ndirty--;
        }
    } else {
        i = sl->nused++;
        unsigned g = slot_guard(sl->base + i * stride);
        if (g == WEFT__GUARD_MPROTECT)
            sl->mprotect |= 1ull << i;
        else if (g == WEFT__GUARD_CANARY)
            sl->canary |= 1ull << i;
    }
    sl->nlive++;
    if (!slab_has_room(sl))
        avail_del(sl);
    s->map = sl->base + i * stride;
    s->map_size = stride;
    s->guard = sl->canary & 1ull << i     ? WEFT__GUARD_CANARY
               : sl->mprotect & 1ull << i ? WEFT__GUARD_MPROTECT
                                          : WEFT__GUARD_MADVISE;
    s->slab = sl;
    pthread_mutex_unlock(&slab_lock);

    if (s->guard == WEFT__GUARD_CANARY) {
        say_canary_once();
        uint64_t *w = (uint64_t *)weft__stack_lo(s);
        for (int k = 0; k < WEFT__CANARY_WORDS; k++)
            w[k] = WEFT__CANARY;
    }
    s->valgrind_id = 0;
#ifdef WEFT__VALGRIND
    s->valgrind_id =
        VALGRIND_STACK_REGISTER(weft__stack_lo(s), weft__stack_hi(s));
#endif
    return 0;
}

/* Called with slab_lock held, which it releases: sl's last stack is free,
 * the whole slab goes. */
static void slab_free(struct weft__slab *sl)
{
    if (slab_has_room(sl))
        avail_del(sl);
    if (sl->prev_all)
        sl->prev_all->next_all = sl->next_all;
    else
        slab_all = sl->next_all;
    if (sl->next_all)
        sl->next_all->prev_all = sl->prev_all;
    slab_ndirty -= (unsigned)__builtin_popcountll(sl->dirty);
    atomic_fetch_sub_explicit(&mprotect_stacks,
                              (unsigned)__builtin_popcountll(sl->mprotect),
                              memory_order_relaxed);
    pthread_mutex_unlock(&slab_lock);
    munmap(sl->base, sl->nslots * sl->stride);
    free(sl);
}

/* Called with slab_lock held: slot i of sl is free (dirty: with its
 * pages). */
static void slot_put(struct weft__slab *sl, unsigned i, bool dirty)
{
    sl->nlive--;
    if (!slab_has_room(sl))
        avail_add(sl);
    if (dirty)
        sl->dirty |= 1ull << i;
    slab_ndirty += dirty;
    sl->free |= 1ull << i;
}

void weft__stack_unmap(struct weft__stack *s)
{
#ifdef WEFT__VALGRIND
    if (s->valgrind_id)
        VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
    struct weft__slab *sl = s->slab;
    unsigned i = (unsigned)((size_t)(s->map - sl->base) / sl->stride);
    size_t gs = weft__guard_size();
    s->map = NULL;
    pthread_mutex_lock(&slab_lock);
    if (sl->nlive == 1) {
        sl->nlive = 0;
        slab_free(sl);
        return;
    }
    if (slab_ndirty < WEFT__SLAB_DIRTY) {
        slot_put(sl, i, true);
        pthread_mutex_unlock(&slab_lock);
        return;
    }
    /* Give the pages back before the slot can be handed out again (the
     * slot still counts as live meanwhile, so the slab stays). The guard
     * stays: MADV_DONTNEED keeps guard markers and PROT_NONE alike, and
     * MADV_FREE (WEFT__MADV_RELEASE on the BSDs) is not asked of it. */
    pthread_mutex_unlock(&slab_lock);
    madvise(sl->base + i * sl->stride + gs, sl->stride - gs,
            WEFT__MADV_RELEASE);
    pthread_mutex_lock(&slab_lock);
    if (sl->nlive == 1) {
        sl->nlive = 0;
        slab_free(sl);
        return;
    }
    slot_put(sl, i, false);
    pthread_mutex_unlock(&slab_lock);
}

bool weft__stack_canary_ok(const struct weft__stack *s)
{
    const uint64_t *w = (const uint64_t *)weft__stack_lo(s);
    for (int i = 0; i < WEFT__CANARY_WORDS; i++)
        if (w[i] != WEFT__CANARY)
            return false;
    return true;
}
