/* SPDX-License-Identifier: MIT */
/*
 * Crossing threads: submitting fibers and calls to a loop from any thread,
 * and loops that run in a thread of their own.
 *
 * Everything goes through the loop's cross-thread queue (weft__loop_post),
 * whose wake-up costs a syscall only on the 0->1 edge of its pending flag:
 * many submissions between two wake-ups cost one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* ---- weft_submit ---- */

struct submission {
    weft_future *fut; /* the loop's reference */
    weft_fn fn;
    void *arg;
};

/* On the target loop: the fiber starts. A cancellation that came while
 * the submission travelled (or a loop being freed) does not stop it:
 * like any task cancelled before it first ran, it runs, and its first
 * suspension point returns -ECANCELED, so what fn owns is cleaned up. */
static void start_submission(void *arg)
{
    struct submission s = *(struct submission *)arg;
    weft__free(arg, sizeof s);
    struct weft_loop *loop = weft__loop_tls;
    if (weft__fiber_new(loop, s.fn, s.arg, NULL, false, s.fut) == NULL) {
        weft__future_complete(s.fut, NULL, -errno);
        weft_future_release(s.fut);
    }
}

weft_future *weft_submit(weft_loop *target, weft_fn fn, void *arg)
{
    if (target == NULL || fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    weft_future *f = weft__future_new();
    if (f == NULL)
        return NULL;
    f->task_loop = target;
    weft__future_retain(f); /* one for the caller, one for the loop */
    int err = ENOMEM;
    if (target == weft__loop_tls && weft__loop_is_mine(target)) {
        if (weft__fiber_new(target, fn, arg, NULL, false, f) != NULL)
            return f;
        err = errno;
    } else {
        struct submission *s = weft__alloc(sizeof *s);
        if (s != NULL) {
            *s = (struct submission){f, fn, arg};
            int rc = weft__loop_post(target, start_submission, s);
            if (rc == 0)
                return f;
            weft__free(s, sizeof *s);
            err = -rc; /* ENOMEM, or ESHUTDOWN: the loop is being freed */
        }
    }
    weft_future_release(f);
    weft_future_release(f);
    errno = err;
    return NULL;
}

int weft_call_soon_threadsafe(weft_loop *loop, void (*cb)(void *), void *arg)
{
    if (loop == NULL || cb == NULL)
        return -EINVAL;
    return weft__loop_post(loop, cb, arg);
}

/* ---- loops in their own threads ---- */

struct start {
    weft_loop *loop;
    struct weft__tpark ready; /* the loop is bound to its thread */
};

static void *loop_thread(void *arg)
{
    struct start *st = arg;
    weft_loop *loop = st->loop;
    /* Bind before the creator returns: from then on, calls from other
     * threads must go through weft_submit and friends. */
    weft__loop_bind(loop);
    weft__tpark_wake(&st->ready, 0); /* st is gone after this */
    weft_loop_run(loop); /* until weft_loop_stop or weft_loop_join_thread */
    /* Stopped: the loop stays valid (submissions queue up) until joined. */
    while (!atomic_load_explicit(&loop->joining, memory_order_acquire))
        weft__tpark_wait(&loop->join_park, -1);
    weft_loop_free(loop);
    return NULL;
}

int weft_loop_start_thread(weft_loop **out)
{
    if (out == NULL)
        return -EINVAL;
    weft_loop *loop = weft_loop_new();
    if (loop == NULL)
        return -errno;
    loop->forever = true;
    loop->threaded = true;
    atomic_init(&loop->joining, false);
    weft__tpark_init(&loop->join_park);
    struct start st = {.loop = loop};
    weft__tpark_init(&st.ready);
    int rc = pthread_create(&loop->thread, NULL, loop_thread, &st);
    if (rc != 0) {
        weft__tpark_destroy(&st.ready);
        weft_loop_free(loop);
        return -rc;
    }
    weft__tpark_wait(&st.ready, -1);
    weft__tpark_destroy(&st.ready);
    *out = loop;
    return 0;
}

int weft_loop_join_thread(weft_loop *loop)
{
    if (loop == NULL || !loop->threaded)
        return -EINVAL;
    pthread_t th = loop->thread;
    if (pthread_equal(th, pthread_self()))
        return -EDEADLK;
    /* Hold the loop: once joining is set its thread may free it. */
    atomic_fetch_add_explicit(&loop->refs, 1, memory_order_acquire);
    atomic_store_explicit(&loop->joining, true, memory_order_release);
    weft_loop_stop(loop);
    weft__tpark_wake(&loop->join_park, 0);
    atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_release);
    return -pthread_join(th, NULL); /* the thread frees the loop */
}

/* ---- the cross-thread call queue ---- */

int weft__loop_post(struct weft_loop *loop, void (*cb)(void *), void *arg)
{
    struct weft__xcall *x = weft__alloc(sizeof *x);
    if (x == NULL)
        return -ENOMEM;
    x->next = NULL;
    x->cb = cb;
    x->arg = arg;
    /* Hold the loop: once the call is queued its thread may run it, stop
     * and free the loop before our wake-up is through (weft_loop_free
     * waits for this to drop). */
    atomic_fetch_add_explicit(&loop->refs, 1, memory_order_acquire);
    pthread_mutex_lock(&loop->xlock);
    if (WEFT__UNLIKELY(loop->xclosed)) {
        pthread_mutex_unlock(&loop->xlock);
        atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_release);
        weft__free(x, sizeof *x);
        return -ESHUTDOWN;
    }
    if (loop->xtail)
        loop->xtail->next = x;
    else
        loop->xhead = x;
    loop->xtail = x;
    atomic_fetch_add_explicit(&loop->nxcalls, 1, memory_order_release);
    pthread_mutex_unlock(&loop->xlock);
    weft__poller_wake(&loop->poller);
    atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_release);
    return 0;
}

/* Runs the cross-thread calls queued so far; returns how many. */
int weft__xcalls_run(struct weft_loop *loop)
{
    pthread_mutex_lock(&loop->xlock);
    struct weft__xcall *x = loop->xhead;
    loop->xhead = loop->xtail = NULL;
    size_t n =
        atomic_exchange_explicit(&loop->nxcalls, 0, memory_order_acquire);
    pthread_mutex_unlock(&loop->xlock);
    while (x != NULL) {
        struct weft__xcall *next = x->next;
        if (WEFT__UNLIKELY(loop->debug))
            weft__debug_callback(loop, x->cb, x->arg, "cross-thread call");
        else
            x->cb(x->arg);
        weft__free(x, sizeof *x);
        x = next;
    }
    return (int)n;
}
