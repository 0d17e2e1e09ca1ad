/* SPDX-License-Identifier: MIT */
/*
 * Deadlock detection. A loop with nothing ready asks whether anything can
 * still wake one of its parked fibers (weft__loop_can_be_woken): the
 * kernel (a descriptor), a timer, or another thread (a future another
 * loop or thread can complete, a channel). If nothing can, weft_loop_run
 * returns -EDEADLK instead of blocking forever (debug mode lists the
 * blocked fibers). weft_loop_free uses weft__loop_give_up_one for waits
 * that nothing can end while it tears the loop down.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "internal.h"

/* True if f, a promise (no task), can still be completed: someone other
 * than its awaiters (each holds a reference while it waits) has it. */
static bool promise_reachable(struct weft_future *f)
{
    weft__spin_lock(&f->lock);
    int held = 0;
    weft__list_each (l, &f->waiters) {
        unsigned kind = weft__waiter_of(l)->kind;
        held += kind == WEFT__WAITER_FIBER || kind == WEFT__WAITER_THREAD;
    }
    bool reachable = atomic_load(&f->refs) > held;
    weft__spin_unlock(&f->lock);
    return reachable;
}

/* True if the future can be completed from outside this loop. */
static bool completes_elsewhere(struct weft_loop *loop, struct weft_future *f)
{
    if (f->task_loop != NULL)
        return f->task_loop != loop; /* a task of another loop */
    return promise_reachable(f);
}

/* True if f, parked on one future or several, waits for one that can be
 * completed from outside the loop. */
static bool awaits_elsewhere(struct weft_loop *loop, struct weft__fiber *f)
{
    if (f->wait == WEFT__WAIT_FUTURE)
        return completes_elsewhere(loop, f->wait_obj);
    if (f->wait == WEFT__WAIT_FUTURES) {
        struct weft__multiwait *m = f->wait_obj;
        for (size_t i = 0; i < m->n; i++)
            if (!weft_future_done(m->fs[i]) &&
                completes_elsewhere(loop, m->fs[i]))
                return true;
    }
    return false;
}

/* True if some parked fiber could be woken from outside the loop: by the
 * kernel (fd), a timer, another thread (a future of another loop, or a
 * promise someone still holds). */
bool weft__loop_can_be_woken(struct weft_loop *loop)
{
    if (loop->nheap > 0 || loop->nfdwait > 0 || loop->nemfile > 0)
        return true;
    if (loop->until != NULL && !weft_future_done(loop->until) &&
        completes_elsewhere(loop, loop->until))
        return true;
    weft__loop_each_fiber (f, loop) {
        if (f->state != WEFT__FIBER_PARKED)
            continue;
        if (awaits_elsewhere(loop, f))
            return true;
        if (f->wait == WEFT__WAIT_CHAN)
            return true; /* any thread may still use the channel */
    }
    return false;
}

/* While the loop closes, every park cancels at once but those that must
 * not: a condition wait re-locking its mutex (weft_cond_wait returns
 * holding it), and a caller waiting for the tasks it cancelled to finish
 * (weft_await_timeout, weft_gather). True when f is such a wait that
 * nothing can end any more: only a running fiber of this loop unlocks a
 * mutex or finishes a task of this loop, and none is running. */
static bool stuck(struct weft_loop *loop, struct weft__fiber *f)
{
    if (f->state != WEFT__FIBER_PARKED || !f->nocancel)
        return false;
    if (f->wait == WEFT__WAIT_SYNC)
        return true;
    return (f->wait == WEFT__WAIT_FUTURE || f->wait == WEFT__WAIT_FUTURES) &&
           !awaits_elsewhere(loop, f);
}

/* Nothing is ready and every live fiber is stuck: ends one of those
 * waits with -ECANCELED (its call returns without what it waited for;
 * debug mode says so), which may let the others end on their own. False
 * if some fiber can still make progress. */
bool weft__loop_give_up_one(struct weft_loop *loop)
{
    if (loop->nfibers == 0 || loop->runq_head != NULL || loop->calls_len > 0 ||
        atomic_load_explicit(&loop->nxcalls, memory_order_relaxed) > 0)
        return false;
    weft__loop_each_fiber (f, loop)
        if (!stuck(loop, f))
            return false;
    struct weft__fiber *f = weft__fiber_of_all(loop->fibers.head);
    if (f->wait == WEFT__WAIT_SYNC) {
        weft__relock_give_up(f);
        return true;
    }
    if (loop->debug) {
        char buf[32];
        fprintf(stderr,
                "weft: weft_loop_free: fiber '%s' waits for tasks it "
                "cancelled that wait for it in turn; its wait returns "
                "-ECANCELED before they are done\n",
                weft__fiber_name(f, buf));
    }
    if (f->unlink == NULL || f->unlink(f))
        weft__wake(f, -ECANCELED);
    return true;
}
