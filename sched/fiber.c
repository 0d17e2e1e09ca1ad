/* SPDX-License-Identifier: MIT */
/*
 * Fibers: coroutines scheduled by a loop. The loop resumes a ready fiber;
 * the fiber runs until it parks (waits for something), yields, or returns,
 * and each of those switches to the next ready fiber of the batch, or back
 * to the loop (switch_away in park.h, fiber_exit here). A spawned fiber
 * and its future are one allocation (struct weft__task); the coroutine and
 * its stack are made when the fiber first runs, on the loop's thread, so
 * spawning is cheap. A fiber cancelled before it starts still runs: its
 * first suspension point returns -ECANCELED, so the argument it owns is
 * freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static void all_add(struct weft_loop *loop, struct weft__fiber *f)
{
    weft__list_push_front(&loop->fibers, &f->all);
    loop->nfibers++;
}

static void all_del(struct weft_loop *loop, struct weft__fiber *f)
{
    weft__list_del(&loop->fibers, &f->all);
    loop->nfibers--;
}

/* Sets up a task block, fresh from the allocator or the loop's spare, field
 * by field: zeroing its 400-odd bytes with memset (rep stos) cost a tenth
 * of a spawn. Arrays get only their terminator, and what every wait sets
 * before use (the waiter fw, the timeout's links) is left as it is. A
 * field added to the fiber must be added here (the future's go in
 * weft__future_init): the static assertions are the reminder, and
 * valgrind's memcheck (make test) reports a field read before it is set,
 * the first block coming uninitialised from malloc. */
static void task_init(struct weft__task *t, struct weft_loop *loop,
                      bool with_future)
{
    _Static_assert(sizeof(struct weft__fiber) == 328,
                   "a field was added: set it in task_init");
    struct weft_future *u = &t->fut;
    weft__future_init(u, loop->debug || weft__debug());
    /* the loop's reference, and the caller's */
    atomic_init(&u->refs, with_future ? 2 : 1);
    u->task = &t->fib;
    u->task_loop = loop;
    u->in_task = true;

    struct weft__fiber *f = &t->fib;
    f->co = NULL;
    f->fut = u;
    f->cancel = false;
    f->nocancel = false;
    f->wake_rc = 0;
    f->wait = WEFT__WAIT_NONE;
    f->wait_obj = NULL;
    f->unlink = NULL;
    f->name[0] = '\0';
    f->held = NULL;
    f->wait_events = 0;
    f->wq.next = f->wq.prev = NULL;
    /* set by the caller: loop, id, fn, arg, stack_size, wait_fd,
     * timeout.idx; by all_add and weft__runq_push: the links, state */
}

struct weft__fiber *weft__fiber_new(struct weft_loop *loop, weft_fn fn,
                                    void *arg, const weft_spawn_opts *opts,
                                    bool with_future, weft_future *fut)
{
    size_t size = opts && opts->stack_size ? opts->stack_size
                                           : (size_t)WEFT_STACK_DEFAULT;
    if (fn == NULL || size < WEFT_STACK_MIN || size > WEFT_STACK_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct weft__fiber *f;
    if (fut != NULL) { /* weft_submit's: the loop's reference is ours */
        if ((f = weft__zalloc(sizeof *f)) == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        f->fut = fut;
        weft__spin_lock(&fut->lock);
        fut->task = f;
        f->cancel = fut->cancel_req; /* cancelled while it travelled */
        weft__spin_unlock(&fut->lock);
    } else { /* fiber and future together */
        struct weft__task *t = loop->spare;
        if (t != NULL) /* spawn, await, release, spawn...: no malloc */
            loop->spare = NULL;
        else if ((t = weft__alloc(sizeof *t)) == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        task_init(t, loop, with_future);
        f = &t->fib;
    }
    f->loop = loop;
    f->id = ++loop->last_fiber_id;
    f->fn = fn;
    f->arg = arg;
    f->stack_size = size;
    if (opts && opts->name) {
        size_t n = strnlen(opts->name, sizeof f->name - 1);
        memcpy(f->name, opts->name, n);
        f->name[n] = '\0';
    }
    f->wait_fd = -1;
    f->timeout.idx = WEFT__IDLE;
    all_add(loop, f);
    weft__runq_push(loop, f);
    if (WEFT__UNLIKELY(!loop->running))
        weft__loop_readied(loop);
    return f;
}

/* f has returned (or could not get a stack), and its coroutine is given
 * back: completes its future, and frees it (with the future, if that was
 * the last reference: see struct weft__task). */
static void fiber_complete(struct weft__fiber *f, void *result)
{
    struct weft_loop *loop = f->loop;
    if (WEFT__UNLIKELY(f->held != NULL)) /* debug; before its name goes */
        weft__mutexes_abandon(f);
    f->state = WEFT__FIBER_DONE;
    all_del(loop, f);
    int err = WEFT_IS_ERR(result) ? WEFT_PTR_ERR(result) : 0;
    weft_future *fut = f->fut;
    bool alone = !fut->in_task;
    weft__future_complete(fut, err ? NULL : result, err);
    weft_future_release(fut); /* f may be gone */
    if (alone)
        weft__free(f, sizeof *f);
}

/* The same, on the loop's stack: gives back its coroutine first. */
static void fiber_finish(struct weft__fiber *f, void *result)
{
    int err = WEFT_IS_ERR(result) ? WEFT_PTR_ERR(result) : 0;
    if (WEFT__UNLIKELY(f->loop->debug) && err != 0) {
        /* Keep its name: a report may need it after the fiber is gone. */
        char buf[32];
        f->fut->debug = true;
        snprintf(f->fut->name, sizeof f->fut->name, "%s",
                 weft__fiber_name(f, buf));
    }
    if (f->co != NULL)
        weft_coro_free(f->co);
    fiber_complete(f, result);
}

/* The end of a fiber whose function has returned, on its own stack: it
 * completes its future (waking its awaiter, typically) and switches
 * straight to the next fiber of the batch, its stack already back in the
 * pool; no trip through the loop. When there is no next fiber, or the pool
 * will not take the stack while we stand on it, it switches back to the
 * loop, which gives the coroutine back (weft__fiber_run). */
__attribute__((noreturn, noinline)) static void
fiber_exit(struct weft__fiber *f, void *result)
{
    struct weft_loop *loop = f->loop;
    weft_coro *co = f->co;
    loop->current = NULL; /* as on the loop's stack, for what completion runs */
    fiber_complete(f, result); /* f is gone */
    struct weft__fiber *next = loop->batch;
    if (next == NULL)
        next = weft__refill(loop);
    if (next != NULL && (next->co != NULL || weft__fiber_make_coro(next)) &&
        weft__coro_retire(co)) {
#if WEFT__RESUME_HINT
        weft__resume_ra = NULL; /* the return stack holds our frames */
#endif
        weft__take_next(loop, next);
        weft__coro_exit_transfer(co, next->co);
    }
    loop->exited = co;
    weft__coro_exit(co);
}

/* The coroutine body of every fiber. */
static void *fiber_main(void *arg)
{
    struct weft__fiber *f = arg;
    void *result = f->fn(f->arg);
    /* Debug mode times each slice from the loop, and the sanitizers must
     * see the stack die after the switch: the loop ends the fiber there. */
    if (!WEFT__ASAN && !WEFT__TSAN && !f->loop->debug)
        fiber_exit(f, result);
    return result;
}

bool weft__fiber_make_coro(struct weft__fiber *f)
{
    weft_spawn_opts o = {.stack_size = f->stack_size,
                         .name = f->name[0] ? f->name : NULL};
    f->co = weft_coro_new(fiber_main, f, &o);
    if (f->co == NULL)
        return false;
    if (WEFT__UNLIKELY(f->loop->debug))
        weft__debug_paint_stack(f);
    return true;
}

bool weft__fiber_start_from(struct weft__fiber *f, struct weft__fiber *next)
{
    if (!weft__fiber_make_coro(next))
        return false;
    weft__hand_over(f->loop, f, next);
    return true;
}

void weft__fiber_run(struct weft__fiber *f)
{
    struct weft_loop *loop = f->loop;
    if (WEFT__UNLIKELY(f->co == NULL) && !weft__fiber_make_coro(f)) {
        fiber_finish(f, WEFT_ERR_PTR(-ENOMEM));
        return;
    }
    f->state = WEFT__FIBER_RUNNING;
    loop->current = f;
    loop->nran++;
    if (WEFT__UNLIKELY(loop->debug))
        weft__debug_slice_start(loop);
#if WEFT__RESUME_HINT
    weft__resume_ra = NULL; /* the return stack holds the loop's frames */
#endif
    weft_coro_resume(f->co, NULL);
    /* Back on the loop's stack: from f, or from a fiber f switched to. */
    struct weft__fiber *x = loop->current;
    loop->current = NULL;
    if (x == NULL) { /* one that ended itself (fiber_exit) */
        weft_coro_free(loop->exited);
        loop->exited = NULL;
        return;
    }
    if (WEFT__UNLIKELY(loop->debug))
        weft__debug_slice_end(loop, x); /* it parked, yielded or returned */
    if (weft_coro_done(x->co)) {
        if (WEFT__UNLIKELY(loop->debug))
            weft__debug_check_stack(x);
        fiber_finish(x, x->co->result);
    }
}

void weft__park_timeout(void *arg)
{
    struct weft__fiber *f = arg;
    if (f->unlink && !f->unlink(f))
        return; /* completed meanwhile: that wake is on its way */
    weft__wake(f, -ETIMEDOUT);
}

void weft__fiber_cancel(struct weft__fiber *f)
{
    if (f->state == WEFT__FIBER_DONE)
        return;
    if (f->state != WEFT__FIBER_PARKED || f->nocancel ||
        (f->unlink && !f->unlink(f))) {
        f->cancel = true; /* delivered at its next park */
        return;
    }
    weft__wake(f, -ECANCELED);
}

/* ---- public ---- */

/* Resolves the loop argument of a spawn. NULL and errno. */
static struct weft_loop *spawn_loop(weft_loop *loop)
{
    if (loop == NULL)
        loop = weft__loop_tls;
    if (loop == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (!weft__loop_is_mine(loop)) {
        weft__debug_wrong_thread(loop, "weft_spawn", "the loop");
        errno = EPERM;
        return NULL;
    }
    return loop;
}

weft_future *weft_spawn_ex(weft_loop *loop, weft_fn fn, void *arg,
                           const weft_spawn_opts *opts)
{
    loop = spawn_loop(loop);
    if (loop == NULL)
        return NULL;
    struct weft__fiber *f = weft__fiber_new(loop, fn, arg, opts, true, NULL);
    return f ? f->fut : NULL;
}

weft_future *weft_spawn(weft_loop *loop, weft_fn fn, void *arg)
{
    return weft_spawn_ex(loop, fn, arg, NULL);
}

int weft_go(weft_loop *loop, weft_fn fn, void *arg)
{
    loop = spawn_loop(loop);
    if (loop == NULL)
        return -errno;
    return weft__fiber_new(loop, fn, arg, NULL, false, NULL) ? 0 : -errno;
}

/* weft_yield's switch, tail-called so that it returns to user code
 * through the thunk (WEFT__RESUME_RETURN). */
WEFT__RESUME_RETURN __attribute__((noinline)) static int
yield_switch(struct weft__fiber *f)
{
    weft__runq_push(f->loop, f);
    weft__switch_away(f);
    return 0;
}

int weft_yield(void)
{
    struct weft__fiber *f = weft__fiber_current();
    if (f == NULL)
        return -EPERM;
    if (f->cancel || f->loop->closing) {
        f->cancel = false;
        return -ECANCELED;
    }
    return yield_switch(f);
}

int weft_sleep(int64_t ms)
{
    if (ms <= 0)
        return weft__fiber_current() != NULL ? weft_yield() : 0;
    return weft__sleep_until(weft__wait_deadline(ms));
}

weft_future *weft_self(void)
{
    struct weft__fiber *f = weft__fiber_current();
    return f ? f->fut : NULL;
}

bool weft_in_fiber(void)
{
    return weft__fiber_current() != NULL;
}

const char *weft_fiber_name(void)
{
    struct weft__fiber *f = weft__fiber_current();
    return f ? weft_coro_name(f->co) : NULL;
}
