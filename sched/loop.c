/* SPDX-License-Identifier: MIT */
/*
 * The loop: one per thread, run by that thread. An iteration
 *   1. runs the calls other threads queued (weft__loop_post),
 *   2. asks the poller for ready fds: without blocking when work is ready,
 *      else until the next timer (no syscall at all when work is ready
 *      and no fiber waits on an fd),
 *   3. reads the clock (once) and fires due timers,
 *   4. runs the callbacks queued before this step, then
 *   5. runs the fibers that were ready before this step, each until it
 *      parks, yields or returns.
 * A fiber or callback made ready during the iteration runs in the next.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

WEFT__TLS struct weft_loop *weft__loop_tls;

atomic_int weft__debug_env = -1;

bool weft__debug_slow(void)
{
    const char *e = getenv("WEFT_DEBUG");
    int v = e != NULL && e[0] == '1';
    atomic_store_explicit(&weft__debug_env, v, memory_order_relaxed);
    return v;
}

bool weft__loop_is_mine(const struct weft_loop *loop)
{
    return !loop->bound || pthread_equal(loop->owner, pthread_self());
}

/* Makes loop (bound to this thread) the thread's current loop: the head
 * of its list of live loops. */
static void make_current(struct weft_loop *loop)
{
    struct weft_loop *head = weft__loop_tls;
    if (head == loop)
        return;
    if (loop->listed) { /* not the head: it has a predecessor */
        loop->thr_prev->thr_next = loop->thr_next;
        if (loop->thr_next)
            loop->thr_next->thr_prev = loop->thr_prev;
    }
    loop->thr_prev = NULL;
    loop->thr_next = head;
    if (head)
        head->thr_prev = loop;
    loop->listed = true;
    weft__loop_tls = loop;
}

/* Takes loop off its thread's list; the current loop becomes the one the
 * thread made current before it (or NULL). */
static void forget(struct weft_loop *loop)
{
    if (!loop->listed)
        return;
    if (loop->thr_prev)
        loop->thr_prev->thr_next = loop->thr_next;
    else
        weft__loop_tls = loop->thr_next;
    if (loop->thr_next)
        loop->thr_next->thr_prev = loop->thr_prev;
    loop->listed = false;
}

void weft__loop_bind(struct weft_loop *loop)
{
    loop->owner = pthread_self();
    loop->owner_tid = weft__thread_id();
    loop->bound = true;
    make_current(loop);
}

/* Binds loop to the calling thread (for good) and makes it the thread's
 * current loop. 0, -EPERM (another thread's loop), -EBUSY (this thread is
 * running another loop right now). */
static int bind_loop(struct weft_loop *loop)
{
    if (loop->bound && !pthread_equal(loop->owner, pthread_self())) {
        weft__debug_wrong_thread(loop, "weft_loop_run", "the loop");
        return -EPERM;
    }
    struct weft_loop *cur = weft__loop_tls;
    if (cur != NULL && cur != loop && cur->running)
        return -EBUSY;
    if (!loop->bound)
        weft__loop_bind(loop);
    else
        make_current(loop);
    return 0;
}

weft_loop *weft_loop_new(void)
{
    struct weft_loop *loop = weft__zalloc(sizeof *loop);
    if (loop == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = weft__poller_init(&loop->poller);
    if (rc < 0) {
        weft__free(loop, sizeof *loop);
        errno = -rc;
        return NULL;
    }
    pthread_mutex_init(&loop->xlock, NULL);
    loop->io_due = -1;
    loop->debug = weft__debug();
    const char *slow = getenv("WEFT_SLOW_MS");
    loop->slow_ns =
        weft__ms_to_ns(slow && *slow ? strtoll(slow, NULL, 10) : 100);
    atomic_init(&loop->stop, false);
    atomic_init(&loop->nxcalls, 0);
    atomic_init(&loop->refs, 1);
    return loop;
}

weft_loop *weft_loop_current(void)
{
    return weft__loop_tls;
}

/* ---- cross-thread calls ---- */

int weft_loop_stop(weft_loop *loop)
{
    if (loop == NULL)
        return -EINVAL;
    atomic_fetch_add_explicit(&loop->refs, 1, memory_order_acquire);
    atomic_store_explicit(&loop->stop, true, memory_order_release);
    weft__poller_wake(&loop->poller);
    atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_release);
    return 0;
}

/* ---- the anchor: posting to a loop that may be gone ---- */

struct weft__anchor *weft__loop_anchor(struct weft_loop *loop)
{
    if (loop->anchor == NULL) {
        struct weft__anchor *a = weft__alloc(sizeof *a);
        if (a == NULL)
            return NULL;
        atomic_init(&a->refs, 1); /* the loop's */
        atomic_init(&a->lock, 0);
        a->loop = loop;
        loop->anchor = a;
    }
    return loop->anchor;
}

void weft__anchor_release(struct weft__anchor *a)
{
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1)
        weft__free(a, sizeof *a);
}

int weft__anchor_post(struct weft__anchor *a, void (*cb)(void *), void *arg)
{
    weft__spin_lock(&a->lock);
    struct weft_loop *loop = a->loop;
    if (loop != NULL) /* held: weft_loop_free waits for refs to drop */
        atomic_fetch_add_explicit(&loop->refs, 1, memory_order_acquire);
    weft__spin_unlock(&a->lock);
    if (loop == NULL)
        return -ESHUTDOWN;
    int rc = loop == weft__loop_tls && weft__loop_is_mine(loop)
                 ? weft_call_soon(loop, cb, arg)
                 : weft__loop_post(loop, cb, arg);
    atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_release);
    return rc;
}

/* weft_loop_free: callbacks completed from now on are dropped. */
static void anchor_detach(struct weft_loop *loop)
{
    struct weft__anchor *a = loop->anchor;
    if (a == NULL)
        return;
    weft__spin_lock(&a->lock);
    a->loop = NULL;
    weft__spin_unlock(&a->lock);
    loop->anchor = NULL;
    weft__anchor_release(a);
}

/* ---- callbacks ---- */

int weft_call_soon(weft_loop *loop, void (*cb)(void *), void *arg)
{
    if (loop == NULL)
        loop = weft__loop_tls;
    if (loop == NULL || cb == NULL)
        return -EINVAL;
    if (!weft__loop_is_mine(loop)) {
        weft__debug_wrong_thread(loop, "weft_call_soon", "the loop");
        return -EPERM;
    }
    if (loop->calls_len == loop->calls_cap) {
        size_t cap = loop->calls_cap ? loop->calls_cap * 2 : 64;
        struct weft__call *c = malloc(cap * sizeof *c);
        if (c == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < loop->calls_len; i++)
            c[i] = loop->calls[(loop->calls_head + i) % loop->calls_cap];
        free(loop->calls);
        loop->calls = c;
        loop->calls_cap = cap;
        loop->calls_head = 0;
    }
    size_t tail = (loop->calls_head + loop->calls_len) % loop->calls_cap;
    loop->calls[tail] = (struct weft__call){cb, arg};
    loop->calls_len++;
    if (!loop->running)
        weft__loop_readied(loop);
    return 0;
}

void weft__loop_readied(struct weft_loop *loop)
{
    if (loop->embedded)
        weft__poller_wake(&loop->poller);
}

static int run_calls(struct weft_loop *loop)
{
    size_t n = loop->calls_len; /* only those queued before this step */
    for (size_t i = 0; i < n; i++) {
        struct weft__call c = loop->calls[loop->calls_head];
        loop->calls_head = (loop->calls_head + 1) % loop->calls_cap;
        loop->calls_len--;
        if (WEFT__UNLIKELY(loop->debug))
            weft__debug_callback(loop, c.cb, c.arg, "callback");
        else
            c.cb(c.arg);
    }
    return (int)n;
}

/* ---- one iteration ---- */

static bool has_ready_work(struct weft_loop *loop)
{
    return loop->runq_head != NULL || loop->calls_len > 0 ||
           atomic_load_explicit(&loop->nxcalls, memory_order_relaxed) > 0 ||
           atomic_load_explicit(&loop->stop, memory_order_relaxed);
}

/* The poller's report, for io (nothing is registered without it). */
static void io_ready(void *ctx, int fd, unsigned events)
{
    struct weft_loop *loop = ctx;
    if (loop->io != NULL)
        loop->io_hooks->ready(loop, fd, events);
}

/* When the loop must next wake with nothing else to do: its next timer,
 * or the next check of the descriptors it waits on (io/fd.c). */
static int64_t next_deadline(const struct weft_loop *loop)
{
    int64_t next = weft__timers_next(loop);
    if (loop->io_due >= 0 && (next < 0 || loop->io_due < next))
        next = loop->io_due;
    return next;
}

/* One iteration, blocking at most max_block_ns (< 0: no limit) when there
 * is nothing ready. Returns how many fibers, callbacks and calls ran. */
static int iterate(struct weft_loop *loop, int64_t max_block_ns)
{
    int ran = 0;
    loop->visit_nran = loop->nran;
    if (atomic_load_explicit(&loop->nxcalls, memory_order_relaxed) > 0)
        ran += weft__xcalls_run(loop);

    int64_t timeout = 0;
    bool ready = has_ready_work(loop);
    if (!ready) {
        int64_t next = next_deadline(loop);
        timeout = max_block_ns;
        if (next >= 0) {
            int64_t wait = next - weft__now_ns(); /* not cached: we may block */
            if (wait < 0)
                wait = 0;
            if (timeout < 0 || wait < timeout)
                timeout = wait;
        }
    }
    /* Ask the kernel when nothing is ready (blocking), when embedded (the
     * host polls our fd, and the wake and timer events that made it
     * readable must be consumed), and, while work is ready and fibers
     * wait on descriptors, once every WEFT__POLL_NS (core/tunables.h). */
    loop->now_valid = false; /* a new iteration, a new reading */
    bool poll = timeout != 0 || loop->embedded;
    if (!poll && loop->nfdwait > 0)
        poll =
            !ready || weft__loop_now(loop) - loop->last_poll >= WEFT__POLL_NS;
    if (poll) {
        weft__poller_wait(&loop->poller, timeout, io_ready, loop);
        if (atomic_load_explicit(&loop->nxcalls, memory_order_relaxed) > 0)
            ran += weft__xcalls_run(loop);
        loop->now_valid = false;
        if (loop->nfdwait > 0)
            loop->last_poll = weft__loop_now(loop);
    }
    if (loop->io_due >= 0 && weft__loop_now(loop) >= loop->io_due)
        loop->io_hooks->due(loop);

    if (loop->nheap > 0) {
        weft__loop_now(loop);
        ran += weft__timers_run(loop);
    }
    if (loop->calls_len > 0)
        ran += run_calls(loop);

    /* The batch: fibers ready now. A fiber that parks or yields switches
     * straight to the next one of the batch (sched/fiber.c). */
    uint64_t nran = loop->nran;
    struct weft__fiber *f = loop->runq_head;
    loop->runq_head = loop->runq_tail = NULL;
    if (WEFT__UNLIKELY(loop->debug)) {
        /* No batch for fibers to hand over to: each comes back here, so
         * its slice is timed (sched/debug.c). */
        while (f != NULL) {
            struct weft__fiber *next = f->next;
            weft__fiber_run(f);
            f = next;
        }
        return ran + (int)(loop->nran - nran);
    }
    loop->batch = f;
    while ((f = loop->batch) != NULL) {
        loop->batch = f->next;
        /* The next fiber's coroutine header, at the top of its stack: with
         * many fibers, a cache and TLB miss at its resume otherwise. */
        if (f->next != NULL)
            __builtin_prefetch(f->next->co, 1);
        weft__fiber_run(f);
    }
    return ran + (int)(loop->nran - nran);
}

/* Enters run mode on the calling thread. 0 or -errno. */
static int enter(struct weft_loop *loop)
{
    if (loop == NULL)
        return -EINVAL;
    if (loop->bound && !pthread_equal(loop->owner, pthread_self())) {
        /* Before anything else: the loop's fields are its thread's. */
        weft__debug_wrong_thread(loop, "weft_loop_run", "the loop");
        return -EPERM;
    }
    if (loop->running || weft__thr.current != NULL)
        return -EBUSY; /* nested run, or run from inside a coroutine */
    int rc = bind_loop(loop);
    if (rc < 0)
        return rc;
    loop->running = true;
    return 0;
}

static void leave(struct weft_loop *loop)
{
    loop->running = false;
    if (loop->embedded) {
        /* Keep the host's view of the loop fd honest. */
        if (has_ready_work(loop))
            weft__poller_wake(&loop->poller);
        else
            weft__poller_timer(&loop->poller, next_deadline(loop));
    }
}

/* Runs until until is done (with until NULL: until nothing is left). */
static int run(struct weft_loop *loop, struct weft_future *until)
{
    int rc = enter(loop);
    if (rc < 0)
        return rc; /* touched nothing: a refused call leaves the loop be */
    /* A future completed by another thread must end our poller wait. */
    struct weft__waiter w = {.kind = WEFT__WAITER_WAKE, .loop = loop};
    if (until != NULL) {
        if (!weft__future_add_waiter(until, &w)) {
            leave(loop);
            return 0; /* already done */
        }
        loop->until = until;
    }
    for (;;) {
        if (atomic_exchange_explicit(&loop->stop, false, memory_order_acq_rel))
            break;
        if (until != NULL && weft_future_done(until))
            break;
        if (!has_ready_work(loop) && !loop->forever) {
            if (until == NULL && loop->nfibers == 0 && loop->nheap == 0)
                break; /* nothing left to do */
            if (!weft__loop_can_be_woken(loop)) {
                if (loop->debug)
                    weft__debug_deadlock(loop);
                rc = -EDEADLK;
                break;
            }
        }
        iterate(loop, -1);
    }
    if (until != NULL) {
        loop->until = NULL;
        loop->until_done = false;
        weft__future_remove_waiter(until, &w);
    }
    leave(loop);
    return rc;
}

int weft_loop_run(weft_loop *loop)
{
    return run(loop, NULL);
}

int weft_loop_run_until(weft_loop *loop, weft_future *f)
{
    if (loop == NULL || f == NULL)
        return -EINVAL;
    return run(loop, f);
}

int weft_loop_run_once(weft_loop *loop, int64_t timeout_ms)
{
    int rc = enter(loop);
    if (rc < 0)
        return rc;
    int64_t block = timeout_ms < 0 ? -1 : weft__ms_to_ns(timeout_ms);
    atomic_store_explicit(&loop->stop, false, memory_order_relaxed);
    rc = iterate(loop, block);
    leave(loop);
    return rc;
}

int weft_loop_fd(weft_loop *loop)
{
    if (loop == NULL)
        return -EINVAL;
    if (!loop->embedded) {
        loop->embedded = true;
        if (has_ready_work(loop))
            weft__poller_wake(&loop->poller);
        else
            weft__poller_timer(&loop->poller, next_deadline(loop));
    }
    return loop->poller.fd;
}

/* Teardown: runs until no fiber, callback or queued call is left. When
 * nothing is ready it blocks (fibers may wait on other threads), and it
 * never spins on waits nothing can end. */
static void drain(struct weft_loop *loop)
{
    while (loop->nfibers > 0 || loop->calls_len > 0 ||
           atomic_load(&loop->nxcalls) > 0) {
        if (weft__loop_give_up_one(loop))
            continue;
        bool ready = loop->runq_head != NULL || loop->calls_len > 0 ||
                     atomic_load(&loop->nxcalls) > 0;
        atomic_store_explicit(&loop->stop, false, memory_order_relaxed);
        iterate(loop, ready ? 0 : -1);
    }
}

void weft_loop_free(weft_loop *loop)
{
    if (loop == NULL)
        return;
    if (!weft__loop_is_mine(loop))
        weft__debug_wrong_thread(loop, "weft_loop_free", "the loop");
    if (loop->running || !weft__loop_is_mine(loop)) {
        fprintf(stderr, "weft: weft_loop_free: the loop is %s; not freed\n",
                loop->running ? "running" : "bound to another thread");
        return;
    }
    struct weft_loop *prev = weft__loop_tls;
    if (prev != NULL && prev != loop && prev->running) {
        fprintf(stderr, "weft: weft_loop_free: called from inside another "
                        "loop's run; not freed\n");
        return;
    }
    bind_loop(loop);
    if (loop->debug)
        weft__debug_leaks(loop);
    /* Cancel every fiber; while closing, every park cancels at once, so
     * each runs its cleanup to the end. A fiber that never ran runs too:
     * its first suspension point returns -ECANCELED. Submissions still
     * queued start the same way. */
    loop->closing = true;
    loop->running = true;
    weft__loop_each_fiber (f, loop)
        weft__fiber_cancel(f);
    drain(loop);
    /* From here on a done-callback bound for this loop is dropped, and a
     * post from another thread fails: drain what got in before that. */
    anchor_detach(loop);
    pthread_mutex_lock(&loop->xlock);
    loop->xclosed = true;
    pthread_mutex_unlock(&loop->xlock);
    drain(loop);
    loop->running = false;

    /* A thread still inside weft_loop_stop or a post wakes our poller:
     * let it finish before the poller and the loop go away. */
    while (atomic_load_explicit(&loop->refs, memory_order_acquire) > 1)
        sched_yield();
    weft__timers_free(loop);
    free(loop->calls);
    if (loop->io != NULL)
        loop->io_hooks->fini(loop);
    weft__poller_close(&loop->poller);
    pthread_mutex_destroy(&loop->xlock);
    if (loop->threaded)
        weft__tpark_destroy(&loop->join_park);
    forget(loop); /* the thread's current loop is the one it ran before */
    weft__free(loop->spare, sizeof *loop->spare); /* none comes after forget */
    weft__free(loop, sizeof *loop);
}

int weft_run(weft_fn main, void *arg, void **result)
{
    if (main == NULL)
        return -EINVAL;
    if ((weft__loop_tls != NULL && weft__loop_tls->running) ||
        weft__thr.current != NULL)
        return -EBUSY;
    weft_loop *loop = weft_loop_new();
    if (loop == NULL)
        return -errno;
    weft_future *f = weft_spawn(loop, main, arg);
    if (f == NULL) {
        int err = errno;
        weft_loop_free(loop);
        return -err;
    }
    int rc = weft_loop_run_until(loop, f);
    if (rc == 0) {
        void *out = NULL;
        rc = weft_future_result(f, &out);
        if (rc == 0 && result != NULL)
            *result = out;
    }
    weft_future_release(f);
    weft_loop_free(loop);
    return rc;
}
