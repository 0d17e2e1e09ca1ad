/* SPDX-License-Identifier: MIT */
/*
 * "A fiber parks, a plain thread blocks": the one helper for a wait that
 * either may make (block.c). A waker wakes a fiber with weft__wake on its
 * loop (or a call posted there), a thread with weft__tpark_wake from
 * anywhere.
 */
#ifndef WEFT__SCHED_BLOCK_H
#define WEFT__SCHED_BLOCK_H

#include <errno.h>
#include <stdint.h>

#include "fiber.h"
#include "loop.h"
#include "park.h"
#include "tpark.h"

/* The caller of a wait: the running fiber, or a plain thread's tpark. */
struct weft__blocker {
    struct weft__fiber *fiber; /* NULL: a plain thread, blocking on tp */
    struct weft__tpark tp;
};

/* Sets b up for the caller. -EDEADLK on a loop's thread outside its
 * fibers: blocking it would freeze its loop. */
static inline int weft__blocker_init(struct weft__blocker *b)
{
    b->fiber = weft__fiber_current();
    if (b->fiber != NULL)
        return 0;
    if (weft__loop_tls != NULL)
        return -EDEADLK;
    weft__tpark_init(&b->tp);
    return 0;
}

static inline void weft__blocker_fini(struct weft__blocker *b)
{
    if (b->fiber == NULL)
        weft__tpark_destroy(&b->tp);
}

/* Waits until woken (what the wake gave), deadline (monotonic ns; < 0:
 * none) passes (-ETIMEDOUT) or, for a fiber, it is cancelled
 * (-ECANCELED); a fiber parks as weft__park says (wait, wait_obj,
 * unlink), a thread blocks. The caller has made itself findable by its
 * waker. Inline, so a fiber's switch happens in its caller's frame, as
 * weft__park requires. */
__attribute__((always_inline)) static inline int
weft__block(struct weft__blocker *b, unsigned wait, void *wait_obj,
            int64_t deadline, weft__unlink_fn *unlink)
{
    if (b->fiber != NULL)
        return weft__park(b->fiber, wait, wait_obj, deadline, unlink);
    return weft__tpark_wait(&b->tp, deadline);
}

/* Sleeps until deadline (monotonic ns; < 0: for good): a fiber parks, a
 * thread sleeps. 0, or -ECANCELED for a cancelled fiber. */
int weft__sleep_until(int64_t deadline);

#endif /* WEFT__SCHED_BLOCK_H */
