/* SPDX-License-Identifier: MIT */
/*
 * Timers: a 4-ary min-heap ordered by (deadline, sequence), so equal
 * deadlines fire in the order they were armed (libuv's start_id).
 *
 * Deadlines repeat a lot: the loop's clock is read once per iteration, so
 * every "in 30 s" armed during one iteration is the same deadline. Those
 * timers do not each take a heap slot. The first one (the leader) is in
 * the heap; the others follow it in a ring, in arming order, and a small
 * direct-mapped cache keyed by deadline finds the newest leader of each
 * deadline. When a leader fires or is cancelled, its first follower takes
 * its heap slot. The order stays exact: a follower's sequence is larger
 * than its leader's, and a deadline the cache forgot gets a new leader
 * whose sequence is larger than every older timer of that deadline.
 *
 * Four children per node halve the depth of a binary heap, and the keys
 * sit in the heap array, so a sift reads nothing else.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- the heap of leaders ---- */

static inline bool before(const struct weft__heap_ent *a,
                          const struct weft__heap_ent *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->t->seq < b->t->seq);
}

/* Grows the heap. The array starts 3 slots into a 64-byte aligned block,
 * so the four children of any node (slots 4i+1 .. 4i+4) fill exactly one
 * cache line: a sift touches one line per level. 0 or -ENOMEM. */
static int heap_grow(struct weft_loop *loop)
{
    if (loop->capheap >= WEFT__MAX_TIMER_SLOTS / 2)
        return -ENOMEM;
    size_t cap = loop->capheap ? loop->capheap * 2 : 64;
    size_t bytes = (cap + 4) * sizeof(struct weft__heap_ent);
    void *mem = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (mem == NULL)
        return -ENOMEM;
    struct weft__heap_ent *h = (struct weft__heap_ent *)mem + 3;
    if (loop->nheap > 0)
        memcpy(h, loop->heap, loop->nheap * sizeof *h);
    free(loop->heap_mem);
    loop->heap_mem = mem;
    loop->heap = h;
    loop->capheap = cap;
    return 0;
}

static inline void place(struct weft__heap_ent *h, size_t i,
                         struct weft__heap_ent e)
{
    h[i] = e;
    e.t->idx = (uint32_t)i;
}

static void sift_up(struct weft__heap_ent *h, size_t i)
{
    struct weft__heap_ent e = h[i];
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!before(&e, &h[parent]))
            break;
        place(h, i, h[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(struct weft__heap_ent *h, size_t n, size_t i)
{
    struct weft__heap_ent e = h[i];
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= n)
            break;
        /* The least child, without data-dependent branches: which child
         * wins is a coin toss the branch predictor would lose. Equal
         * deadlines (rare in the heap) take the slow, exact path. */
        size_t best = c, end = c + 4 < n ? c + 4 : n;
        /* Whichever child wins, its children are next: fetch all four
         * groups (a cache line each) now, so deep misses overlap. */
        if (4 * c + 1 < n) {
            __builtin_prefetch(&h[4 * c + 1]);
            __builtin_prefetch(&h[4 * c + 5]);
            __builtin_prefetch(&h[4 * c + 9]);
            __builtin_prefetch(&h[4 * c + 13]);
        }
        int64_t bd = h[c].deadline;
        for (size_t k = c + 1; k < end; k++) {
            int64_t dk = h[k].deadline;
            if (WEFT__UNLIKELY(dk == bd)) {
                if (h[k].t->seq < h[best].t->seq)
                    best = k;
                continue;
            }
            bool lt = dk < bd;
            best = lt ? k : best;
            bd = lt ? dk : bd;
        }
        if (!before(&h[best], &e))
            break;
        place(h, i, h[best]);
        i = best;
    }
    place(h, i, e);
}

/* Puts e in slot i (vacated, or holding a smaller key) and restores order. */
static void heap_fix(struct weft_loop *loop, size_t i, struct weft__heap_ent e)
{
    place(loop->heap, i, e);
    if (i > 0 && before(&e, &loop->heap[(i - 1) / 4]))
        sift_up(loop->heap, i);
    else
        sift_down(loop->heap, loop->nheap, i);
}

static inline size_t cache_slot(int64_t d)
{
    uint64_t x = (uint64_t)d * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */
    return (size_t)(x >> 56) % WEFT__TCACHE;
}

/* ---- arming and disarming ---- */

int weft__timer_arm(struct weft_loop *loop, struct weft_timer *t,
                    int64_t deadline)
{
    t->deadline = deadline;
    t->seq = loop->timer_seq;
    t->loop = loop;
    size_t slot = cache_slot(deadline);
    struct weft_timer *lead = loop->tcache[slot].leader;
    if (lead != NULL && loop->tcache[slot].deadline == deadline) {
        /* Follow the newest leader of this deadline: last in its ring. */
        t->idx = WEFT__FOLLOWER;
        t->next = lead;
        t->prev = lead->prev;
        lead->prev->next = t;
        lead->prev = t;
        loop->timer_seq++;
        return 0;
    }
    if (loop->nheap == loop->capheap && heap_grow(loop) < 0)
        return -ENOMEM;
    loop->timer_seq++;
    t->prev = t->next = t;
    loop->tcache[slot].deadline = deadline;
    loop->tcache[slot].leader = t;
    size_t i = loop->nheap++;
    loop->heap[i] = (struct weft__heap_ent){deadline, t};
    sift_up(loop->heap, i);
    return 0;
}

void weft__timer_disarm(struct weft_loop *loop, struct weft_timer *t)
{
    uint32_t i = t->idx;
    if (i == WEFT__IDLE)
        return;
    t->idx = WEFT__IDLE;
    struct weft_timer *next = t->next;
    t->prev->next = next;
    next->prev = t->prev;
    if (i == WEFT__FOLLOWER)
        return;
    struct weft_timer **slot = &loop->tcache[cache_slot(t->deadline)].leader;
    if (next != t) {
        /* The first follower leads now, from the same slot. Its key is
         * larger (same deadline, larger sequence) but still below every
         * key under it: a timer of this deadline armed later than it went
         * to a newer leader. The sift is a cheap safety net. */
        if (*slot == t)
            *slot = next;
        place(loop->heap, i, (struct weft__heap_ent){next->deadline, next});
        sift_down(loop->heap, loop->nheap, i);
        return;
    }
    if (*slot == t)
        *slot = NULL;
    size_t last = --loop->nheap;
    if (i != last)
        heap_fix(loop, i, loop->heap[last]);
}

int weft__timers_run(struct weft_loop *loop)
{
    int fired = 0;
    /* Only timers armed before this run: a callback arming a 0 ms timer
     * runs it next iteration, not in this loop forever. */
    uint64_t seq_limit = loop->timer_seq;
    while (loop->nheap > 0 && loop->heap[0].deadline <= loop->now &&
           loop->heap[0].t->seq < seq_limit) {
        struct weft_timer *t = loop->heap[0].t;
        weft__timer_disarm(loop, t);
        bool user = t->user;
        void (*cb)(void *) = t->cb;
        void *arg = t->arg;
        if (user)
            weft__free(t, sizeof *t);
        if (WEFT__UNLIKELY(loop->debug) && user)
            weft__debug_callback(loop, cb, arg, "timer callback");
        else
            cb(arg);
        fired++;
    }
    return fired;
}

void weft__timers_free(struct weft_loop *loop)
{
    for (size_t i = 0; i < loop->nheap; i++) {
        struct weft_timer *lead = loop->heap[i].t, *t = lead;
        do {
            struct weft_timer *next = t->next;
            t->idx = WEFT__IDLE;
            if (t->user) /* never fired: ours to free */
                weft__free(t, sizeof *t);
            t = next;
        } while (t != lead);
    }
    free(loop->heap_mem);
    loop->heap_mem = NULL;
    loop->heap = NULL;
    loop->nheap = loop->capheap = 0;
    memset(loop->tcache, 0, sizeof loop->tcache);
}

/* ---- public ---- */

weft_timer *weft_call_later(weft_loop *loop, int64_t delay_ms,
                            void (*cb)(void *), void *arg)
{
    if (loop == NULL)
        loop = weft__loop_tls;
    if (loop == NULL || cb == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (!weft__loop_is_mine(loop)) {
        weft__debug_wrong_thread(loop, "weft_call_later", "the loop");
        errno = EPERM;
        return NULL;
    }
    struct weft_timer *t = weft__alloc(sizeof *t);
    if (t == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    t->cb = cb;
    t->arg = arg;
    t->user = true;
    /* Relative to the loop's clock when it runs (asyncio's loop.time()),
     * to the real clock when it does not. */
    int64_t now = loop->running ? weft__loop_now(loop) : weft__now_ns();
    if (delay_ms < 0)
        delay_ms = 0;
    int64_t deadline = weft__deadline(now, delay_ms);
    if (deadline < 0) /* beyond the clock's range: never, in practice */
        deadline = INT64_MAX;
    if (weft__timer_arm(loop, t, deadline) < 0) {
        weft__free(t, sizeof *t);
        errno = ENOMEM;
        return NULL;
    }
    return t;
}

int weft_timer_cancel(weft_timer *t)
{
    if (t == NULL || !t->user || t->idx == WEFT__IDLE)
        return -EINVAL;
    if (!weft__loop_is_mine(t->loop)) { /* its heap is the loop's */
        weft__debug_wrong_thread(t->loop, "weft_timer_cancel", "the timer");
        return -EPERM;
    }
    weft__timer_disarm(t->loop, t);
    weft__free(t, sizeof *t);
    return 0;
}
