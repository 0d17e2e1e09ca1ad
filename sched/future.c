/* SPDX-License-Identifier: MIT */
/*
 * Futures: a result or an error that arrives once, awaited by fibers of
 * any loop, by plain threads, or watched by callbacks. Reference counted;
 * every field is guarded by the future's own lock.
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

#include "internal.h"

static _Noreturn void out_of_memory(const char *what)
{
    fprintf(stderr, "weft: out of memory in %s\n", what);
    abort();
}

weft_future *weft__future_new(void)
{
    struct weft_future *f = weft__zalloc(sizeof *f);
    if (f == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&f->refs, 1);
    atomic_init(&f->done, false);
    pthread_mutex_init(&f->lock, NULL);
    return f;
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
    if (f == NULL)
        return;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&f->lock);
    weft__free(f, sizeof *f);
}

static void list_add(weft_future *f, struct weft__waiter *w)
{
    w->prev = NULL;
    w->next = f->waiters;
    if (f->waiters)
        f->waiters->prev = w;
    f->waiters = w;
}

static void list_del(weft_future *f, struct weft__waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        f->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

bool weft__future_add_waiter(weft_future *f, struct weft__waiter *w)
{
    pthread_mutex_lock(&f->lock);
    bool pending = !atomic_load_explicit(&f->done, memory_order_relaxed);
    if (pending)
        list_add(f, w);
    pthread_mutex_unlock(&f->lock);
    return pending;
}

void weft__future_remove_waiter(weft_future *f, struct weft__waiter *w)
{
    pthread_mutex_lock(&f->lock);
    for (struct weft__waiter *x = f->waiters; x; x = x->next)
        if (x == w) {
            list_del(f, w);
            break;
        }
    pthread_mutex_unlock(&f->lock);
}

/* On a waiter's loop: wakes that loop's fibers waiting on f. */
static void wake_local_fibers(void *arg)
{
    weft_future *f = arg;
    struct weft_loop *me = weft__loop_tls;
    pthread_mutex_lock(&f->lock);
    struct weft__waiter *w = f->waiters;
    while (w != NULL) {
        struct weft__waiter *next = w->next;
        if (w->kind == WEFT__WAITER_FIBER && w->loop == me) {
            list_del(f, w);
            weft__wake(w->fiber, 0);
        }
        w = next;
    }
    pthread_mutex_unlock(&f->lock);
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

/* Schedules cb(f, arg) on loop (posted, or queued if loop is ours). */
static void schedule_cb(struct weft_loop *loop,
                        void (*cb)(weft_future *, void *), void *arg,
                        weft_future *f)
{
    struct cb_call *c = weft__alloc(sizeof *c);
    if (c == NULL)
        out_of_memory("a future's done-callback");
    *c = (struct cb_call){cb, arg, f};
    weft__future_retain(f);
    int rc = loop == weft__loop_tls ? weft_call_soon(loop, run_cb_call, c)
                                    : weft__loop_post(loop, run_cb_call, c);
    if (rc < 0)
        out_of_memory("a future's done-callback");
}

int weft__future_complete(weft_future *f, void *result, int err)
{
    struct weft_loop *me = weft__loop_tls;
    pthread_mutex_lock(&f->lock);
    if (atomic_load_explicit(&f->done, memory_order_relaxed)) {
        pthread_mutex_unlock(&f->lock);
        return -EINVAL;
    }
    f->result = result;
    f->err = err;
    f->task = NULL;
    atomic_store_explicit(&f->done, true, memory_order_release);

    struct weft__waiter *direct = NULL; /* callbacks with no loop */
    struct weft__waiter *w = f->waiters;
    while (w != NULL) {
        struct weft__waiter *next = w->next;
        switch (w->kind) {
        case WEFT__WAITER_FIBER:
            if (w->loop == me) {
                list_del(f, w);
                weft__wake(w->fiber, 0);
            } else {
                /* Stays listed: its loop removes it under the lock. */
                weft__future_retain(f);
                if (weft__loop_post(w->loop, wake_local_fibers, f) < 0)
                    out_of_memory("waking a fiber of another loop");
            }
            break;
        case WEFT__WAITER_THREAD:
            list_del(f, w);
            *w->flag = true;
            pthread_cond_signal(w->cond);
            break;
        case WEFT__WAITER_WAKE:
            list_del(f, w);
            weft__poller_wake(&w->loop->poller);
            break;
        case WEFT__WAITER_CALLBACK:
            list_del(f, w);
            if (w->loop != NULL) {
                schedule_cb(w->loop, w->cb, w->arg, f);
                weft__free(w, sizeof *w);
            } else {
                w->next = direct;
                direct = w;
            }
            break;
        }
        w = next;
    }
    pthread_mutex_unlock(&f->lock);

    if (direct != NULL) {
        weft__future_retain(f); /* a callback may drop the last reference */
        while (direct != NULL) {
            struct weft__waiter *next = direct->next;
            direct->cb(f, direct->arg);
            weft__free(direct, sizeof *direct);
            direct = next;
        }
        weft_future_release(f);
    }
    return 0;
}

int weft_future_resolve(weft_future *f, void *result)
{
    if (f == NULL)
        return -EINVAL;
    return weft__future_complete(f, result, 0);
}

int weft_future_fail(weft_future *f, int err)
{
    if (f == NULL || err >= 0)
        return -EINVAL;
    return weft__future_complete(f, NULL, err);
}

bool weft_future_done(weft_future *f)
{
    return f != NULL && atomic_load_explicit(&f->done, memory_order_acquire);
}

int weft_future_result(weft_future *f, void **out)
{
    if (f == NULL)
        return -EINVAL;
    if (!atomic_load_explicit(&f->done, memory_order_acquire))
        return -EAGAIN;
    if (f->err == 0 && out != NULL)
        *out = f->result;
    return f->err;
}

int weft_future_on_done(weft_future *f, void (*cb)(weft_future *, void *),
                        void *arg)
{
    if (f == NULL || cb == NULL)
        return -EINVAL;
    struct weft_loop *loop = weft__loop_tls;
    struct weft__waiter *w = weft__zalloc(sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->kind = WEFT__WAITER_CALLBACK;
    w->loop = loop;
    w->cb = cb;
    w->arg = arg;
    if (weft__future_add_waiter(f, w))
        return 0;
    /* Already done: soon on our loop, or right now outside any loop. */
    weft__free(w, sizeof *w);
    if (loop != NULL)
        schedule_cb(loop, cb, arg, f);
    else
        cb(f, arg);
    return 0;
}

static void unlink_fiber_waiter(struct weft__fiber *fib)
{
    weft__future_remove_waiter(fib->wait_obj, &fib->fw);
}

int weft_await(weft_future *f, void **out)
{
    if (f == NULL)
        return -EINVAL;
    struct weft__fiber *fib = weft__fiber_current();
    if (fib != NULL) {
        if (fib->fut == f)
            return -EDEADLK; /* awaiting itself */
        fib->fw.kind = WEFT__WAITER_FIBER;
        fib->fw.loop = fib->loop;
        fib->fw.fiber = fib;
        /* Hold a reference while waiting: the future stays valid, and
         * the loop can tell whether anyone else could still complete it. */
        weft__future_retain(f);
        if (weft__future_add_waiter(f, &fib->fw)) {
            int rc =
                weft__park(fib, WEFT__WAIT_FUTURE, f, -1, unlink_fiber_waiter);
            if (rc < 0) {
                weft_future_release(f);
                return rc;
            }
        }
        int rc = weft_future_result(f, out);
        weft_future_release(f);
        return rc;
    } else if (weft__loop_tls != NULL) {
        if (!weft_future_done(f))
            return -EDEADLK; /* blocking here would freeze the loop */
    } else {
        pthread_cond_t cond;
        bool flag = false;
        pthread_cond_init(&cond, NULL);
        struct weft__waiter w = {
            .kind = WEFT__WAITER_THREAD, .cond = &cond, .flag = &flag};
        weft__future_retain(f);
        pthread_mutex_lock(&f->lock);
        if (!atomic_load_explicit(&f->done, memory_order_relaxed)) {
            list_add(f, &w);
            while (!flag)
                pthread_cond_wait(&cond, &f->lock);
        }
        pthread_mutex_unlock(&f->lock);
        pthread_cond_destroy(&cond);
        int rc = weft_future_result(f, out);
        weft_future_release(f);
        return rc;
    }
    return weft_future_result(f, out);
}

/* On the task's loop: delivers a cancellation that came from elsewhere. */
static void cancel_task(void *arg)
{
    weft_future *f = arg;
    pthread_mutex_lock(&f->lock);
    struct weft__fiber *task = f->task;
    pthread_mutex_unlock(&f->lock);
    if (task != NULL)
        weft__fiber_cancel(task);
    weft_future_release(f);
}

int weft_cancel(weft_future *f)
{
    if (f == NULL)
        return -EINVAL;
    pthread_mutex_lock(&f->lock);
    if (atomic_load_explicit(&f->done, memory_order_relaxed)) {
        pthread_mutex_unlock(&f->lock);
        return -EINVAL;
    }
    struct weft__fiber *task = f->task;
    if (task == NULL) { /* a promise */
        pthread_mutex_unlock(&f->lock);
        int rc = weft__future_complete(f, NULL, -ECANCELED);
        return rc < 0 ? -EINVAL : 0;
    }
    struct weft_loop *loop = f->task_loop;
    if (loop == weft__loop_tls) {
        pthread_mutex_unlock(&f->lock);
        weft__fiber_cancel(task);
        return 0;
    }
    weft__future_retain(f);
    int rc = weft__loop_post(loop, cancel_task, f);
    pthread_mutex_unlock(&f->lock);
    if (rc < 0)
        weft_future_release(f);
    return rc;
}
