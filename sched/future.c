/* SPDX-License-Identifier: MIT */
/*
 * Futures: a result or an error that arrives once, awaited by fibers of
 * any loop, by plain threads, or watched by callbacks. Reference counted;
 * every field is guarded by the future's own lock, a spinlock: what it
 * guards is a few stores and wake-ups, and a mutex cost more to set up
 * and take than that (a promise ping-pong went from 203 to 153 ns).
 *
 * Who wakes whom. The completing thread takes the lock, marks the future
 * done, and then, still under the lock:
 *   - wakes fibers of its own loop directly (they only join a run queue),
 *   - posts one call to each other loop with waiters; that call, on the
 *     waiter's loop, takes the lock again and wakes that loop's waiters,
 *   - signals blocked threads and wakes loops in run_until.
 * A waiter never leaves the list except under the lock, so a fiber woken
 * by a timeout or cancellation cannot be woken a second time later.
 * Lock order: a future's lock, then a loop's xlock; never the reverse.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

weft_future *weft__future_new(void)
{
    struct weft_future *f = weft__alloc(sizeof *f);
    if (f == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    weft__future_init(f, (weft__loop_tls && weft__loop_tls->debug) ||
                             weft__debug());
    return f;
}

/* NULL, or released for the last time: an error the caller can act on,
 * with a message for the second. Reliable in debug mode (WEFT_DEBUG=1),
 * where released futures stay mapped; otherwise a best effort. */
static bool bad(weft_future *f, const char *call)
{
    if (f == NULL)
        return true;
    if (f->magic != WEFT__FUTURE_LIVE) {
        fprintf(stderr, "weft: %s: future %p used after its last release\n",
                call, (void *)f);
        return true;
    }
    return false;
}

weft_future *weft_future_new(void)
{
    return weft__future_new();
}

void weft__future_retain(weft_future *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void weft_future_release(weft_future *f)
{
    if (f == NULL || bad(f, "weft_future_release"))
        return;
    /* The only reference left is ours: nobody else can take one (that
     * takes a reference), so no atomic write is needed to drop it. */
    if (atomic_load_explicit(&f->refs, memory_order_acquire) != 1 &&
        atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (WEFT__UNLIKELY(f->debug) &&
        !atomic_load_explicit(&f->observed, memory_order_relaxed) &&
        atomic_load_explicit(&f->done, memory_order_acquire) && f->err != 0 &&
        f->err != -ECANCELED)
        weft__debug_unobserved(f);
    /* Never completed: its done-callbacks will never run. */
    while (WEFT__UNLIKELY(!weft__list_empty(&f->waiters))) {
        struct weft__waiter *w = weft__waiter_of(weft__list_pop(&f->waiters));
        if (w->kind == WEFT__WAITER_CALLBACK) {
            if (w->anchor != NULL)
                weft__anchor_release(w->anchor);
            weft__free(w, sizeof *w);
        }
    }
    f->magic = WEFT__FUTURE_DEAD;
    if (weft__debug())
        return; /* quarantined: later misuse is caught for sure */
    if (!f->in_task) {
        weft__free(f, sizeof *f);
        return;
    }
    /* Its fiber has finished (it held a reference). Released on its loop,
     * the block is kept for that loop's next spawn: the loop is alive,
     * being this thread's current one, and frees it with itself. Not
     * under ASan, which should see a released future's memory freed. */
    struct weft_loop *loop = weft__loop_tls;
    if (!WEFT__ASAN && loop != NULL && loop == f->task_loop &&
        loop->spare == NULL)
        loop->spare = (struct weft__task *)f;
    else
        weft__free(f, sizeof(struct weft__task));
}

static void list_add(weft_future *f, struct weft__waiter *w)
{
    weft__list_push_front(&f->waiters, &w->link);
}

static void list_del(weft_future *f, struct weft__waiter *w)
{
    weft__list_del(&f->waiters, &w->link);
}

bool weft__future_add_waiter(weft_future *f, struct weft__waiter *w)
{
    weft__spin_lock(&f->lock);
    bool pending = !atomic_load_explicit(&f->done, memory_order_relaxed);
    if (pending)
        list_add(f, w);
    weft__spin_unlock(&f->lock);
    return pending;
}

void weft__future_remove_waiter(weft_future *f, struct weft__waiter *w)
{
    weft__spin_lock(&f->lock);
    weft__list_each (l, &f->waiters)
        if (l == &w->link) {
            list_del(f, w);
            break;
        }
    weft__spin_unlock(&f->lock);
}

/* Wakes a fiber waiting on f, done, with f's outcome (under f's lock). */
static void wake_waiter(weft_future *f, struct weft__waiter *w)
{
    w->result = f->result;
    w->err = f->err;
    atomic_store_explicit(&f->observed, true, memory_order_relaxed);
    weft__wake(w->fiber, 0);
}

/* On a waiter's loop: wakes that loop's fibers waiting on f. */
static void wake_local_fibers(void *arg)
{
    weft_future *f = arg;
    struct weft_loop *me = weft__loop_tls;
    weft__spin_lock(&f->lock);
    struct weft__waiter *w = weft__waiter_of(f->waiters.head);
    while (w != NULL) {
        struct weft__waiter *next = weft__waiter_of(w->link.next);
        if (w->kind == WEFT__WAITER_FIBER && w->loop == me) {
            list_del(f, w);
            wake_waiter(f, w);
        }
        w = next;
    }
    weft__spin_unlock(&f->lock);
    weft_future_release(f);
}

/* A done-callback on its loop. */
struct cb_call {
    void (*cb)(weft_future *, void *);
    void *arg;
    weft_future *f; /* referenced */
};

static void run_cb_call(void *arg)
{
    struct cb_call c = *(struct cb_call *)arg;
    weft__free(arg, sizeof c);
    c.cb(c.f, c.arg);
    weft_future_release(c.f);
}

/* Schedules cb(f, arg) on the anchor's loop (posted, or queued if the
 * loop is ours); dropped if that loop is gone. */
static void schedule_cb(struct weft__anchor *anchor,
                        void (*cb)(weft_future *, void *), void *arg,
                        weft_future *f)
{
    struct cb_call *c = weft__alloc(sizeof *c);
    if (c == NULL)
        weft__die("a future's done-callback", ENOMEM);
    *c = (struct cb_call){cb, arg, f};
    weft__future_retain(f);
    int rc = weft__anchor_post(anchor, run_cb_call, c);
    if (rc == -ENOMEM)
        weft__die("a future's done-callback", ENOMEM);
    if (rc < 0) { /* its loop is gone: the callback is dropped */
        weft__free(c, sizeof *c);
        weft_future_release(f);
    }
}

int weft__future_complete(weft_future *f, void *result, int err)
{
    struct weft_loop *me = weft__loop_tls;
    weft__spin_lock(&f->lock);
    if (atomic_load_explicit(&f->done, memory_order_relaxed)) {
        weft__spin_unlock(&f->lock);
        return -EINVAL;
    }
    f->result = result;
    f->err = err;
    f->task = NULL;
    atomic_store_explicit(&f->done, true, memory_order_release);
    /* A task completes on its own loop only (weft_future_resolve and
     * _fail refuse tasks): its local awaiters are ours. */
    struct weft__link *l;
    while ((l = weft__list_pop(&f->local)) != NULL)
        wake_waiter(f, weft__waiter_of(l));

    /* Callbacks with no loop, in the order they were added. */
    struct weft__list direct = {NULL, NULL};
    struct weft__waiter *w = weft__waiter_of(f->waiters.head);
    while (w != NULL) {
        struct weft__waiter *next = weft__waiter_of(w->link.next);
        switch (w->kind) {
        case WEFT__WAITER_FIBER:
            if (w->loop == me) {
                list_del(f, w);
                wake_waiter(f, w);
            } else {
                /* Stays listed: its loop removes it under the lock. (A
                 * parked fiber keeps its loop alive: the post cannot
                 * find the loop closed.) */
                weft__future_retain(f);
                if (weft__loop_post(w->loop, wake_local_fibers, f) < 0)
                    weft__die("waking a fiber of another loop", ENOMEM);
            }
            break;
        case WEFT__WAITER_THREAD:
            list_del(f, w);
            weft__tpark_wake(w->tp, 0);
            break;
        case WEFT__WAITER_WAKE:
            list_del(f, w);
            if (w->loop == me) /* fibers handing over: back to run_until */
                me->until_done = true;
            else
                weft__poller_wake(&w->loop->poller);
            break;
        case WEFT__WAITER_CALLBACK:
            list_del(f, w);
            if (w->anchor != NULL) {
                schedule_cb(w->anchor, w->cb, w->arg, f);
                weft__anchor_release(w->anchor);
                weft__free(w, sizeof *w);
            } else {
                weft__list_push_front(&direct, &w->link);
            }
            break;
        }
        w = next;
    }
    weft__spin_unlock(&f->lock);

    if (!weft__list_empty(&direct)) {
        weft__future_retain(f); /* a callback may drop the last reference */
        while ((l = weft__list_pop(&direct)) != NULL) {
            struct weft__waiter *c = weft__waiter_of(l);
            c->cb(f, c->arg);
            weft__free(c, sizeof *c);
        }
        weft_future_release(f);
    }
    return 0;
}

/* Completes f for a caller that may hold no reference of its own: the
 * owner may release f as soon as it sees it done, while we are still
 * waking its waiters, so we hold one until we are through. */
static int complete_held(weft_future *f, void *result, int err)
{
    weft__future_retain(f);
    int rc = weft__future_complete(f, result, err);
    weft_future_release(f);
    return rc;
}

int weft_future_resolve(weft_future *f, void *result)
{
    if (bad(f, "weft_future_resolve") || f->task_loop != NULL)
        return -EINVAL; /* a task's future is its task's to complete */
    return complete_held(f, result, 0);
}

int weft_future_fail(weft_future *f, int err)
{
    if (bad(f, "weft_future_fail") || err >= 0 || f->task_loop != NULL)
        return -EINVAL;
    return complete_held(f, NULL, err);
}

bool weft_future_done(weft_future *f)
{
    return f != NULL && atomic_load_explicit(&f->done, memory_order_acquire);
}

int weft_future_result(weft_future *f, void **out)
{
    if (bad(f, "weft_future_result"))
        return -EINVAL;
    if (!atomic_load_explicit(&f->done, memory_order_acquire))
        return -EAGAIN;
    if (!atomic_load_explicit(&f->observed, memory_order_relaxed))
        atomic_store_explicit(&f->observed, true, memory_order_relaxed);
    if (f->err == 0 && out != NULL)
        *out = f->result;
    return f->err;
}

int weft_future_on_done(weft_future *f, void (*cb)(weft_future *, void *),
                        void *arg)
{
    if (bad(f, "weft_future_on_done") || cb == NULL)
        return -EINVAL;
    struct weft_loop *loop = weft__loop_tls;
    struct weft__anchor *anchor = NULL;
    if (loop != NULL && (anchor = weft__loop_anchor(loop)) == NULL)
        return -ENOMEM;
    struct weft__waiter *w = weft__zalloc(sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    /* the callback is told the outcome */
    atomic_store_explicit(&f->observed, true, memory_order_relaxed);
    w->kind = WEFT__WAITER_CALLBACK;
    w->anchor = anchor;
    w->cb = cb;
    w->arg = arg;
    if (anchor != NULL)
        atomic_fetch_add_explicit(&anchor->refs, 1, memory_order_relaxed);
    if (weft__future_add_waiter(f, w))
        return 0;
    /* Already done: soon on our loop, or right now outside any loop. */
    if (anchor != NULL)
        weft__anchor_release(anchor);
    weft__free(w, sizeof *w);
    if (anchor != NULL)
        schedule_cb(anchor, cb, arg, f);
    else
        cb(f, arg);
    return 0;
}

/* ---- waiting: one future or several ---- */

void weft__debug_unobserved(struct weft_future *f)
{
    /* Any negative int may come in: never negate INT_MIN. */
    const char *what = f->err > -4096 ? strerror(-f->err) : "an unknown error";
    if (f->name[0] != '\0')
        fprintf(stderr,
                "weft: the future of fiber '%s' failed with %s (%d) and was "
                "released without being awaited\n",
                f->name, what, f->err);
    else
        fprintf(stderr,
                "weft: future %p failed with %s (%d) and was released "
                "without being awaited\n",
                (void *)f, what, f->err);
}

/* Decides, from the futures' states, whether a wait is over. */
typedef bool wait_done_fn(weft_future *const *fs, size_t n, void *ctx);

static bool unlink_multi(struct weft__fiber *fib)
{
    struct weft__multiwait *m = fib->wait_obj;
    for (size_t i = 0; i < m->n; i++)
        weft__future_remove_waiter(m->fs[i], &m->ws[i]);
    return true;
}

static bool unlink_single(struct weft__fiber *fib)
{
    weft__future_remove_waiter(fib->wait_obj, &fib->fw);
    return true;
}

/*
 * Waits until done(fs, n, ctx) holds, looking again each time one of fs
 * completes. A fiber parks (on its own waiter for one future, on an array
 * of them for several); a plain thread blocks; a loop thread outside a
 * fiber gets -EDEADLK, since blocking it would freeze its loop. Returns 0,
 * -ETIMEDOUT once deadline (monotonic ns; < 0: none) passes, -ECANCELED,
 * -ENOMEM.
 * When it waits, it takes a reference to each future (so they stay valid,
 * and the loop can tell who else could complete them) and sets *held;
 * the caller drops them (release_all) once it has read the outcomes: a
 * future's other references may all be gone by then.
 */
static int wait_until(weft_future *const *fs, size_t n, wait_done_fn *done,
                      void *ctx, int64_t deadline, bool *held)
{
    if (done(fs, n, ctx))
        return 0;
    struct weft__blocker b;
    int rc = weft__blocker_init(&b);
    if (rc < 0)
        return rc;
    struct weft__fiber *fib = b.fiber;
    struct weft__waiter one, *ws = &one;
    if (fib != NULL && n == 1)
        ws = &fib->fw;
    else if (n > 1 && (ws = weft__zalloc(n * sizeof *ws)) == NULL) {
        weft__blocker_fini(&b);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ws[i] = (struct weft__waiter){0};
        if (fib != NULL) {
            ws[i].kind = WEFT__WAITER_FIBER;
            ws[i].loop = fib->loop;
            ws[i].fiber = fib;
        } else {
            ws[i].kind = WEFT__WAITER_THREAD;
            ws[i].tp = &b.tp;
        }
        if (!*held)
            weft__future_retain(fs[i]);
        weft__future_add_waiter(fs[i], &ws[i]);
    }
    *held = true;
    struct weft__multiwait m = {fs, ws, n};
    while (!done(fs, n, ctx)) {
        if (n == 1)
            rc = weft__block(&b, WEFT__WAIT_FUTURE, fs[0], deadline,
                             unlink_single);
        else
            rc =
                weft__block(&b, WEFT__WAIT_FUTURES, &m, deadline, unlink_multi);
        if (rc < 0)
            break;
    }
    if (rc < 0 && done(fs, n, ctx))
        rc = 0; /* it came true as the time ran out */
    for (size_t i = 0; i < n; i++)
        weft__future_remove_waiter(fs[i], &ws[i]);
    weft__blocker_fini(&b);
    if (n > 1)
        weft__free(ws, n * sizeof *ws);
    return rc;
}

static void release_all(weft_future *const *fs, size_t n, bool held)
{
    for (size_t i = 0; held && i < n; i++)
        weft_future_release(fs[i]); /* maybe the last: not used after */
}

static bool all_done(weft_future *const *fs, size_t n, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        if (!weft_future_done(fs[i]))
            return false;
    return true;
}

/* After cancelling some of fs: waits until every one is done, so that no
 * task we cancelled still runs (it may use the caller's frame) when we
 * return. Our own cancellation waits too: it stays pending for the
 * caller's next suspension point. */
static void settle(weft_future *const *fs, size_t n, bool *held)
{
    struct weft__fiber *fib = weft__fiber_current();
    bool nocancel = fib != NULL && fib->nocancel;
    if (fib != NULL)
        fib->nocancel = true;
    while (wait_until(fs, n, all_done, NULL, -1, held) == -ENOMEM)
        weft_sleep(1); /* a fiber waiting on several needs an array */
    if (fib != NULL)
        fib->nocancel = nocancel;
}

int weft_await(weft_future *f, void **out)
{
    return weft_await_timeout(f, -1, out);
}

/* A local awaiter leaves (timeout, cancellation): on the loop's thread. */
static bool unlink_local(struct weft__fiber *fib)
{
    weft_future *f = fib->wait_obj;
    weft__list_del(&f->local, &fib->fw.link);
    return true;
}

/*
 * wait_until for a fiber awaiting a task of its own loop, the common case
 * (spawn, then await): a task completes on its loop's thread alone, so
 * the fiber parks on the future's local list with no lock. It takes no
 * reference, so the outcome comes with the wake (wake_waiter): the
 * future may be gone by the time we run (weft_self() of a weft_go fiber,
 * awaited, holds no reference), and the loop's deadlock check does not
 * count references for tasks (completes_elsewhere). A wake with 0 comes
 * from the completion, which has taken our waiter off the list; a
 * timeout or a cancellation takes it off through unlink_local. f is not
 * done (the caller looked, and only this thread completes it).
 * Returns 0 once f is done, with its outcome in *res (weft_await's
 * return value and *out), or the wait's -ETIMEDOUT, -ECANCELED, -ENOMEM.
 */
WEFT__RESUME_RETURN __attribute__((noinline)) static int
await_local(struct weft__fiber *fib, weft_future *f, int64_t deadline,
            void **out, int *res)
{
    /* Field by field: a compound literal zeroes the 72 bytes with rep
     * stos, whose start-up cost showed in profiles. */
    fib->fw.kind = WEFT__WAITER_FIBER;
    fib->fw.loop = fib->loop;
    fib->fw.fiber = fib;
    weft__list_push_front(&f->local, &fib->fw.link);
    int rc = weft__park(fib, WEFT__WAIT_FUTURE, f, deadline, unlink_local);
    if (rc == 0) {
        if (fib->fw.err == 0 && out != NULL)
            *out = fib->fw.result;
        *res = fib->fw.err;
    }
    return rc;
}

int weft_await_timeout(weft_future *f, int64_t timeout_ms, void **out)
{
    if (bad(f, "weft_await"))
        return -EINVAL;
    if (weft_future_done(f))
        return weft_future_result(f, out);
    struct weft__fiber *fib = weft__fiber_current();
    if (fib != NULL && fib->fut == f)
        return -EDEADLK; /* awaiting itself */
    bool held = false;
    int64_t deadline = weft__wait_deadline(timeout_ms);
    int rc;
    if (fib != NULL && f->task_loop == fib->loop) {
        int res;
        rc = await_local(fib, f, deadline, out, &res);
        if (rc == 0)
            return res;
        if (rc != -ETIMEDOUT)
            return rc;
    } else {
        rc = wait_until(&f, 1, all_done, NULL, deadline, &held);
    }
    if (rc == -ETIMEDOUT) {
        /* asyncio.wait_for: a timeout cancels, and returns once the
         * cancelled task has finished its cleanup. */
        weft_cancel(f);
        settle(&f, 1, &held);
    } else if (rc == 0) {
        rc = weft_future_result(f, out);
    }
    release_all(&f, 1, held);
    return rc;
}

/* ---- gather and wait ---- */

static int check_inputs(weft_future *const *fs, size_t n)
{
    if (n > 0 && fs == NULL)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (bad(fs[i], "weft_gather/weft_wait"))
            return -EINVAL;
    return 0;
}

static bool failed(weft_future *f)
{
    return weft_future_done(f) && f->err != 0; /* a peek, not a retrieval */
}

static bool all_or_one_failed(weft_future *const *fs, size_t n, void *ctx)
{
    (void)ctx;
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        if (!weft_future_done(fs[i]))
            all = false;
        else if (fs[i]->err != 0)
            return true;
    }
    return all;
}

static bool at_least_one(weft_future *const *fs, size_t n, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        if (weft_future_done(fs[i]))
            return true;
    return n == 0;
}

int weft_gather(weft_future *const *fs, size_t n, void **results, int *errors,
                unsigned flags)
{
    int rc = check_inputs(fs, n);
    if (rc < 0)
        return rc;
    if (flags != WEFT_GATHER_ALL && flags != WEFT_GATHER_FAIL_FAST)
        return -EINVAL;
    bool fast = flags == WEFT_GATHER_FAIL_FAST;
    bool held = false;
    rc =
        wait_until(fs, n, fast ? all_or_one_failed : all_done, NULL, -1, &held);
    if (rc < 0 && rc != -ECANCELED) {
        release_all(fs, n, held);
        return rc; /* -EDEADLK, -ENOMEM: nothing was waited for */
    }
    int stop = 0; /* failing fast: the error that stopped us */
    for (size_t i = 0; rc == 0 && fast && i < n && stop == 0; i++)
        if (failed(fs[i]))
            stop = fs[i]->err;
    if (rc < 0 || stop != 0) {
        /* Cancelled ourselves (asyncio cancels a gather's children too),
         * or failing fast: what has not finished is cancelled, and we
         * return once it has (TaskGroup does the same). */
        for (size_t i = 0; i < n; i++)
            if (!weft_future_done(fs[i]))
                weft_cancel(fs[i]);
        settle(fs, n, &held);
    }
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        int e = weft_future_result(fs[i], &r);
        if (results)
            results[i] = e ? NULL : r;
        if (errors)
            errors[i] = e;
        if (e && first == 0)
            first = e;
    }
    if (rc == 0) /* failing fast: not a cancellation the error caused */
        rc = stop != 0 ? stop : first;
    release_all(fs, n, held);
    return rc;
}

int weft_wait(weft_future *const *fs, size_t n, int mode, int64_t timeout_ms)
{
    int rc = check_inputs(fs, n);
    if (rc < 0)
        return rc;
    wait_done_fn *done;
    switch (mode) {
    case WEFT_FIRST_COMPLETED:
        done = at_least_one;
        break;
    case WEFT_FIRST_EXCEPTION:
        done = all_or_one_failed;
        break;
    case WEFT_ALL_COMPLETED:
        done = all_done;
        break;
    default:
        return -EINVAL;
    }
    bool held = false;
    rc = wait_until(fs, n, done, NULL, weft__wait_deadline(timeout_ms), &held);
    if (rc == 0 || rc == -ETIMEDOUT) {
        rc = 0;
        for (size_t i = 0; i < n; i++)
            rc += weft_future_done(fs[i]);
    }
    release_all(fs, n, held);
    return rc;
}

/* On the task's loop: delivers a cancellation that came from elsewhere. */
static void cancel_task(void *arg)
{
    weft_future *f = arg;
    weft__spin_lock(&f->lock);
    struct weft__fiber *task = f->task;
    weft__spin_unlock(&f->lock);
    if (task != NULL)
        weft__fiber_cancel(task);
    weft_future_release(f);
}

int weft_cancel(weft_future *f)
{
    if (bad(f, "weft_cancel"))
        return -EINVAL;
    weft__spin_lock(&f->lock);
    if (atomic_load_explicit(&f->done, memory_order_relaxed)) {
        weft__spin_unlock(&f->lock);
        return -EINVAL;
    }
    struct weft__fiber *task = f->task;
    if (task == NULL && f->task_loop != NULL) {
        /* A submission whose fiber does not exist yet: it starts
         * cancelled (see start_submission), so it still runs, and its
         * future completes when it has. */
        f->cancel_req = true;
        weft__spin_unlock(&f->lock);
        return 0;
    }
    if (task == NULL) { /* a promise */
        weft__spin_unlock(&f->lock);
        int rc = complete_held(f, NULL, -ECANCELED);
        return rc < 0 ? -EINVAL : 0;
    }
    struct weft_loop *loop = f->task_loop;
    if (loop == weft__loop_tls) {
        weft__spin_unlock(&f->lock);
        weft__fiber_cancel(task);
        return 0;
    }
    weft__future_retain(f);
    int rc = weft__loop_post(loop, cancel_task, f);
    weft__spin_unlock(&f->lock);
    if (rc < 0)
        weft_future_release(f);
    return rc;
}
