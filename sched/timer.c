/* SPDX-License-Identifier: MIT */
/*
 * Timers: a 4-ary min-heap ordered by (deadline, sequence), so timers with
 * equal deadlines fire in the order they were armed (libuv's start_id).
 * Four children per node halve the depth of a binary heap, and the keys
 * sit in the heap array itself: a sift compares without touching the
 * timers, and writes each moved timer's slot index once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static inline bool before(const struct weft__heap_ent *a,
                          const struct weft__heap_ent *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void place(struct weft__heap_ent *h, size_t i,
                         struct weft__heap_ent e)
{
    h[i] = e;
    e.t->idx = i;
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
        size_t best = c, end = c + 4 < n ? c + 4 : n;
        for (size_t k = c + 1; k < end; k++)
            if (before(&h[k], &h[best]))
                best = k;
        if (!before(&h[best], &e))
            break;
        place(h, i, h[best]);
        i = best;
    }
    place(h, i, e);
}

int weft__timer_arm(struct weft_loop *loop, struct weft_timer *t,
                    int64_t deadline)
{
    if (loop->nheap == loop->capheap) {
        size_t cap = loop->capheap ? loop->capheap * 2 : 64;
        struct weft__heap_ent *h = realloc(loop->heap, cap * sizeof *h);
        if (h == NULL)
            return -ENOMEM;
        loop->heap = h;
        loop->capheap = cap;
    }
    t->deadline = deadline;
    t->seq = loop->timer_seq++;
    t->loop = loop;
    size_t i = loop->nheap++;
    loop->heap[i] = (struct weft__heap_ent){deadline, t->seq, t};
    sift_up(loop->heap, i);
    return 0;
}

void weft__timer_disarm(struct weft_loop *loop, struct weft_timer *t)
{
    size_t i = t->idx;
    if (i == WEFT__NO_SLOT)
        return;
    t->idx = WEFT__NO_SLOT;
    size_t last = --loop->nheap;
    if (i == last)
        return;
    struct weft__heap_ent moved = loop->heap[last];
    loop->heap[i] = moved;
    moved.t->idx = i;
    if (i > 0 && before(&moved, &loop->heap[(i - 1) / 4]))
        sift_up(loop->heap, i);
    else
        sift_down(loop->heap, loop->nheap, i);
}

int weft__timers_run(struct weft_loop *loop)
{
    int fired = 0;
    /* Only timers due at the start: a callback arming a 0 ms timer runs
     * it next iteration, not in this loop forever. */
    uint64_t seq_limit = loop->timer_seq;
    while (loop->nheap > 0 && loop->heap[0].deadline <= loop->now &&
           loop->heap[0].seq < seq_limit) {
        struct weft_timer *t = loop->heap[0].t;
        t->idx = WEFT__NO_SLOT;
        size_t n = --loop->nheap;
        if (n > 0) {
            loop->heap[0] = loop->heap[n];
            sift_down(loop->heap, n, 0);
        }
        bool user = t->user;
        void (*cb)(void *) = t->cb;
        void *arg = t->arg;
        if (user)
            weft__free(t, sizeof *t);
        cb(arg);
        fired++;
    }
    return fired;
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
        errno = EPERM;
        return NULL;
    }
    struct weft_timer *t = weft__alloc(sizeof *t);
    if (t == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    t->idx = WEFT__NO_SLOT;
    t->cb = cb;
    t->arg = arg;
    t->user = true;
    /* Relative to the loop's clock when it runs (asyncio's loop.time()),
     * to the real clock when it does not. */
    int64_t now = loop->running ? weft__loop_now(loop) : weft__now_ns();
    if (delay_ms < 0)
        delay_ms = 0;
    if (weft__timer_arm(loop, t, weft__deadline(now, delay_ms)) < 0) {
        weft__free(t, sizeof *t);
        errno = ENOMEM;
        return NULL;
    }
    return t;
}

int weft_timer_cancel(weft_timer *t)
{
    if (t == NULL || !t->user || t->idx == WEFT__NO_SLOT)
        return -EINVAL;
    weft__timer_disarm(t->loop, t);
    weft__free(t, sizeof *t);
    return 0;
}
