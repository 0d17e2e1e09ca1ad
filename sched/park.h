/* SPDX-License-Identifier: MIT */
/*
 * Parking and waking: the hot path of every wait, and the hand-over
 * between fibers. The policy is told in docs/scheduling.md, the states in
 * docs/fibers.md.
 */
#ifndef WEFT__SCHED_PARK_H
#define WEFT__SCHED_PARK_H

#include "../core/internal.h"
#include "../core/tunables.h"
#include "fiber.h"
#include "loop.h"
#include "timer.h"
#include <errno.h>
#include <stdbool.h>

/* Parks the running fiber until weft__wake(f, rc) (returns rc), its
 * deadline passes (-ETIMEDOUT; deadline < 0: none) or it is cancelled
 * (-ECANCELED). A pending cancellation returns -ECANCELED at once. The
 * caller has linked f into what it waits on; unlink undoes that. Inline,
 * below the loop's definition: every wait in weft goes through it. */
__attribute__((always_inline)) static inline int
weft__park(struct weft__fiber *f, unsigned wait, void *wait_obj,
           int64_t deadline, weft__unlink_fn *unlink);
/* Loop thread: ends f's park with rc (no-op unless parked). */
static inline void weft__wake(struct weft__fiber *f, int rc);

/* True when a fiber may start the next batch itself, without a trip
 * through the loop: no callback or cross-thread call is queued, the loop
 * is not stopping, closing, embedded or debugging (in debug mode the loop
 * runs each fiber itself, to time it), and its visit is not due (it is
 * never due while no timer is armed and no fiber waits on the kernel). */
static inline bool weft__may_refill(struct weft_loop *loop)
{
    return (loop->calls_len |
            atomic_load_explicit(&loop->nxcalls, memory_order_relaxed) |
            loop->modes |
            (size_t)atomic_load_explicit(&loop->stop, memory_order_relaxed)) ==
               0 &&
           ((loop->nheap | loop->nfdwait | loop->nemfile) == 0 ||
            loop->nran - loop->visit_nran < WEFT__RUNS_PER_VISIT);
}

/* The batch is empty: makes the run queue the batch if the policy allows
 * (weft__may_refill), and returns its head; NULL if not (or empty). */
static inline struct weft__fiber *weft__refill(struct weft_loop *loop)
{
    if (loop->runq_head == NULL || !weft__may_refill(loop))
        return NULL;
    struct weft__fiber *next = loop->batch = loop->runq_head;
    loop->runq_head = loop->runq_tail = NULL;
    loop->now_valid = false; /* a new iteration, in effect */
    return next;
}

/* Takes next, the head of the batch, off it as the running fiber, before
 * a switch to it (weft__hand_over, and a fiber's end in fiber.c). */
__attribute__((always_inline)) static inline void
weft__take_next(struct weft_loop *loop, struct weft__fiber *next)
{
    /* The fiber after next: its coroutine's header, at the top of its own
     * stack (with many fibers, a cache and TLB miss at its resume
     * otherwise), found through its fiber, which the hand-over before
     * fetched; and the fiber after that, for the next hand-over. */
    struct weft__fiber *after = next->next;
    if (after != NULL) {
        __builtin_prefetch(after->co, 1);
        __builtin_prefetch(after->next, 0);
    }
    loop->batch = next->next;
    next->state = WEFT__FIBER_RUNNING;
    loop->current = next;
    loop->nran++;
}

/* The running fiber f switches to next, the head of the batch, which has
 * its coroutine. Returns when f runs again. */
__attribute__((always_inline)) static inline void
weft__hand_over(struct weft_loop *loop, struct weft__fiber *f,
                struct weft__fiber *next)
{
    weft__take_next(loop, next);
    weft__coro_transfer(f->co, next->co);
}

/* The running fiber f has queued or parked itself: switch to the next
 * fiber of the batch, or back to the loop. Returns when f runs again. */
__attribute__((always_inline)) static inline void
weft__switch_away(struct weft__fiber *f)
{
    struct weft_loop *loop = f->loop;
    struct weft__fiber *next = loop->batch;
#if WEFT__RESUME_HINT
    /* Whoever runs next, this fiber again included, finds this function's
     * return address on top of the return stack (WEFT__RESUME_RETURN). */
    weft__resume_ra = __builtin_return_address(0);
#endif
    if (next == NULL)
        next = weft__refill(loop);
    if (next == f) { /* alone: keep running */
        loop->batch = f->next;
        f->state = WEFT__FIBER_RUNNING;
        loop->nran++;
        return;
    }
    if (next != NULL && next->co != NULL) {
        weft__hand_over(loop, f, next);
        return;
    }
    /* A fiber that never ran starts by a switch too (out of line). */
    if (next != NULL && weft__fiber_start_from(f, next))
        return;
    weft_coro_yield(); /* to the loop */
}

static inline void weft__clear_wait(struct weft__fiber *f)
{
    f->wait = WEFT__WAIT_NONE;
    f->wait_obj = NULL;
    f->unlink = NULL;
}

/* Always inline: the switch must happen in the function that called
 * weft__park, whose return address switch_away records for the thunk
 * (WEFT__RESUME_RETURN). */
__attribute__((always_inline)) static inline int
weft__park(struct weft__fiber *f, unsigned wait, void *wait_obj,
           int64_t deadline, weft__unlink_fn *unlink)
{
    struct weft_loop *loop = f->loop;
    f->wait = wait;
    f->wait_obj = wait_obj;
    f->unlink = unlink;
    bool timed = deadline >= 0;
    if (WEFT__UNLIKELY((f->cancel || loop->closing) && !f->nocancel)) {
        if (unlink == NULL || unlink(f)) {
            f->cancel = false;
            weft__clear_wait(f);
            return -ECANCELED;
        }
        /* It completed under us and its wake is on its way: wait for
         * that; the cancellation stays pending for the next park. */
        f->cancel = true;
        timed = false;
    }
    if (timed) {
        f->timeout.cb = weft__park_timeout;
        f->timeout.arg = f;
        f->timeout.user = false;
        if (weft__timer_arm(loop, &f->timeout, deadline) < 0 &&
            (unlink == NULL || unlink(f))) {
            weft__clear_wait(f);
            return -ENOMEM;
        }
    }
    f->state = WEFT__FIBER_PARKED;
    if (WEFT__UNLIKELY(wait >= WEFT__WAIT_FD)) {
        if (wait == WEFT__WAIT_FD)
            loop->nfdwait++;
        else if (wait == WEFT__WAIT_EMFILE)
            loop->nemfile++;
    }
    weft__switch_away(f);
    return f->wake_rc;
}

static inline void weft__wake(struct weft__fiber *f, int rc)
{
    if (f->state != WEFT__FIBER_PARKED)
        return;
    struct weft_loop *loop = f->loop;
    if (f->timeout.idx != WEFT__IDLE)
        weft__timer_disarm(loop, &f->timeout);
    if (WEFT__UNLIKELY(f->wait >= WEFT__WAIT_FD)) {
        if (f->wait == WEFT__WAIT_FD)
            loop->nfdwait--;
        else if (f->wait == WEFT__WAIT_EMFILE)
            loop->nemfile--;
    }
    /* wait, wait_obj and unlink stay stale: only read while parked. */
    f->wake_rc = rc;
    weft__runq_push(loop, f);
    if (WEFT__UNLIKELY(!loop->running))
        weft__loop_readied(loop); /* a host's call, between its runs */
}

#endif /* WEFT__SCHED_PARK_H */
