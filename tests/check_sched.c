/* SPDX-License-Identifier: MIT */
/* The loop: fibers, yields, sleeps, timers, callbacks, task futures,
 * cancellation, deadlock detection, teardown, embedding. */
#include "testutil.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "weft.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A log of small integers, appended by fibers and callbacks. */
static int seq[20000];
static int nseq;
static void log_int(int v)
{
    ck_assert_int_lt(nseq, (int)(sizeof seq / sizeof seq[0]));
    seq[nseq++] = v;
}

/* ---- fibers ---- */

static void *log_arg(void *arg)
{
    log_int((int)(intptr_t)arg);
    return arg;
}

START_TEST(fibers_start_in_spawn_order)
{
    nseq = 0;
    weft_loop *loop = weft_loop_new();
    ck_assert_ptr_nonnull(loop);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(weft_go(loop, log_arg, (void *)(intptr_t)i), 0);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(nseq, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(seq[i], i);
    weft_loop_free(loop);
}
END_TEST

static void *yielder(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 3; i++) {
        log_int(id * 10 + i);
        ck_assert_int_eq(weft_yield(), 0);
    }
    return NULL;
}

START_TEST(yield_lets_every_ready_fiber_run_in_turn)
{
    nseq = 0;
    weft_loop *loop = weft_loop_new();
    weft_go(loop, yielder, (void *)1);
    weft_go(loop, yielder, (void *)2);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    int want[] = {10, 20, 11, 21, 12, 22};
    ck_assert_int_eq(nseq, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(seq[i], want[i]);
    weft_loop_free(loop);
}
END_TEST

static void *returns_arg(void *arg)
{
    return arg;
}

static void *fails_with_enoent(void *arg)
{
    (void)arg;
    weft_yield();
    return WEFT_ERR_PTR(-ENOENT);
}

static void *awaits_two_tasks(void *arg)
{
    (void)arg;
    weft_future *a = weft_spawn(NULL, returns_arg, (void *)0x1234);
    weft_future *b = weft_spawn(NULL, fails_with_enoent, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    void *out = NULL;
    ck_assert_int_eq(weft_await(a, &out), 0);
    ck_assert_ptr_eq(out, (void *)0x1234);
    ck_assert_int_eq(weft_await(b, &out), -ENOENT);
    ck_assert_int_eq(weft_future_result(b, NULL), -ENOENT);
    ck_assert(weft_future_done(a));
    weft_future_release(a);
    weft_future_release(b);
    ck_assert_int_eq(weft_await(weft_self(), NULL), -EDEADLK);
    return (void *)0x77;
}

START_TEST(await_returns_a_tasks_result_or_error)
{
    void *r = NULL;
    ck_assert_int_eq(weft_run(awaits_two_tasks, NULL, &r), 0);
    ck_assert_ptr_eq(r, (void *)0x77);
}
END_TEST

static void *main_fails(void *arg)
{
    (void)arg;
    return WEFT_ERR_PTR(-EPROTO);
}

START_TEST(weft_run_returns_mains_error)
{
    void *r = (void *)1;
    ck_assert_int_eq(weft_run(main_fails, NULL, &r), -EPROTO);
    ck_assert_ptr_eq(r, (void *)1);
    ck_assert_int_eq(weft_run(NULL, NULL, NULL), -EINVAL);
}
END_TEST

static void *names_itself(void *arg)
{
    (void)arg;
    ck_assert(weft_in_fiber());
    ck_assert_str_eq(weft_fiber_name(), "worker-7");
    return NULL;
}

START_TEST(spawn_options_name_the_fiber_and_size_its_stack)
{
    ck_assert(!weft_in_fiber());
    ck_assert_ptr_null(weft_self());
    weft_loop *loop = weft_loop_new();
    weft_spawn_opts o = {.stack_size = 32 * 1024, .name = "worker-7"};
    weft_future *f = weft_spawn_ex(loop, names_itself, NULL, &o);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(weft_loop_run_until(loop, f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);

    o.stack_size = 1024; /* below WEFT_STACK_MIN */
    errno = 0;
    ck_assert_ptr_null(weft_spawn_ex(loop, names_itself, NULL, &o));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(weft_spawn(loop, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    weft_loop_free(loop);
}
END_TEST

/* ---- sleeps and timers ---- */

static void *sleeper(void *arg)
{
    int ms = (int)(intptr_t)arg;
    ck_assert_int_eq(weft_sleep(ms), 0);
    log_int(ms);
    return NULL;
}

static void log_cb(void *arg)
{
    log_int((int)(intptr_t)arg);
}

START_TEST(sleeps_and_timers_fire_in_deadline_order)
{
    /* Deadlines 40 ms apart: a fiber woken by its deadline runs after the
     * callbacks of the same iteration, so two deadlines must not fall in
     * one iteration even under valgrind, whose first iteration (making
     * three stacks) can take tens of milliseconds. */
    nseq = 0;
    weft_loop *loop = weft_loop_new();
    weft_go(loop, sleeper, (void *)200);
    weft_go(loop, sleeper, (void *)80);
    weft_go(loop, sleeper, (void *)120);
    ck_assert_ptr_nonnull(weft_call_later(loop, 160, log_cb, (void *)160));
    ck_assert_ptr_nonnull(weft_call_later(loop, 40, log_cb, (void *)40));
    weft_timer *never = weft_call_later(loop, 100, log_cb, (void *)100);
    ck_assert_int_eq(weft_timer_cancel(never), 0);
    int64_t t0 = now_ms();
    ck_assert_int_eq(weft_loop_run(loop), 0);
    int64_t took = now_ms() - t0;
    int want[] = {40, 80, 120, 160, 200};
    ck_assert_int_eq(nseq, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(seq[i], want[i]);
    ck_assert_int_ge(took, 199);
    weft_loop_free(loop);
}
END_TEST

static void arm_fifty(void *loop)
{
    for (int i = 50; i < 100; i++)
        ck_assert_ptr_nonnull(
            weft_call_later(loop, 4, log_cb, (void *)(intptr_t)i));
}

START_TEST(equal_deadlines_fire_in_the_order_they_were_set)
{
    nseq = 0;
    weft_loop *loop = weft_loop_new();
    /* Armed outside the loop: each reads the clock, deadlines differ. */
    for (int i = 0; i < 50; i++)
        ck_assert_ptr_nonnull(
            weft_call_later(loop, 3, log_cb, (void *)(intptr_t)i));
    /* Armed inside: one clock reading, one deadline for all fifty. */
    ck_assert_int_eq(weft_call_soon(loop, arm_fifty, loop), 0);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(nseq, 100);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(seq[i], i);
    weft_loop_free(loop);
}
END_TEST

/* Timers armed in one iteration share the loop's clock reading, so equal
 * delays are equal deadlines: the heap keeps one leader per deadline and
 * the rest in its ring. Cancel leaders and followers at random, use more
 * distinct deadlines than the leader cache holds, and check the order. */
enum { NT = 3000 };
static int t_delay[NT];
static weft_timer *t_handle[NT];
static bool t_cancelled[NT];
static int t_fired[NT], nfired;

static void record_fire(void *arg)
{
    t_fired[nfired++] = (int)(intptr_t)arg;
}

static void arm_many(void *arg)
{
    weft_loop *loop = arg;
    unsigned r = 777;
    for (int i = 0; i < NT; i++) {
        r = r * 1103515245 + 12345;
        /* Mostly a few repeated delays, some spread over 300 values. */
        t_delay[i] =
            (r >> 16) % 4 == 0 ? (int)((r >> 8) % 300) : (int)((r >> 8) % 3);
        t_handle[i] =
            weft_call_later(loop, t_delay[i], record_fire, (void *)(intptr_t)i);
        ck_assert_ptr_nonnull(t_handle[i]);
        /* Cancel one armed earlier (a leader as often as a follower),
         * between arms of the same deadlines. */
        r = r * 1103515245 + 12345;
        int j = (int)((r >> 8) % (unsigned)(i + 1));
        if ((r >> 20) % 3 == 0 && !t_cancelled[j]) {
            ck_assert_int_eq(weft_timer_cancel(t_handle[j]), 0);
            t_cancelled[j] = true;
        }
    }
}

START_TEST(repeated_deadlines_keep_their_order_through_cancels)
{
    weft_loop *loop = weft_loop_new();
    nfired = 0;
    memset(t_cancelled, 0, sizeof t_cancelled);
    ck_assert_int_eq(weft_call_soon(loop, arm_many, loop), 0);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    int want = 0;
    for (int i = 0; i < NT; i++)
        want += !t_cancelled[i];
    ck_assert_int_eq(nfired, want);
    for (int k = 1; k < nfired; k++) {
        int a = t_fired[k - 1], b = t_fired[k];
        ck_assert(!t_cancelled[a] && !t_cancelled[b]);
        ck_assert_msg(t_delay[a] < t_delay[b] ||
                          (t_delay[a] == t_delay[b] && a < b),
                      "timer %d (%d ms) fired before %d (%d ms)", a, t_delay[a],
                      b, t_delay[b]);
    }
    weft_loop_free(loop);
}
END_TEST

static int64_t wake_ms[10000];
static int wake_order[10000];
static int nwoke;

static void *random_sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    ck_assert_int_eq(weft_sleep(wake_ms[i]), 0);
    wake_order[nwoke++] = i;
    return NULL;
}

START_TEST(ten_thousand_random_sleeps_wake_in_deadline_order)
{
    const int n = (int)scaled(10000, 2000);
    weft_loop *loop = weft_loop_new();
    unsigned r = 12345;
    for (int i = 0; i < n; i++) {
        r = r * 1103515245 + 12345;
        wake_ms[i] = (r >> 8) % 200;
    }
    nwoke = 0;
    weft_spawn_opts o = {.stack_size = WEFT_STACK_MIN};
    for (int i = 0; i < n; i++) {
        weft_future *f =
            weft_spawn_ex(loop, random_sleeper, (void *)(intptr_t)i, &o);
        ck_assert_ptr_nonnull(f);
        weft_future_release(f);
    }
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(nwoke, n);
    /* All fibers started in the first iteration, so every deadline is
     * "loop time + ms" from one clock reading: deadline order is ms order,
     * and spawn order among equal ms. */
    for (int k = 1; k < n; k++) {
        int a = wake_order[k - 1], b = wake_order[k];
        ck_assert(wake_ms[a] < wake_ms[b] ||
                  (wake_ms[a] == wake_ms[b] && a < b));
    }
    weft_loop_free(loop);
}
END_TEST

static weft_loop *cb_loop;
static void soon_chain(void *arg)
{
    int v = (int)(intptr_t)arg;
    log_int(v);
    if (v < 3) /* queued during a step: runs in the next iteration */
        weft_call_soon(cb_loop, soon_chain, (void *)(intptr_t)(v + 1));
}

START_TEST(call_soon_runs_callbacks_in_order_outside_fibers)
{
    nseq = 0;
    weft_loop *loop = cb_loop = weft_loop_new();
    ck_assert_int_eq(weft_call_soon(loop, soon_chain, (void *)1), 0);
    ck_assert_int_eq(weft_call_soon(loop, log_cb, (void *)100), 0);
    ck_assert_int_eq(weft_call_soon(loop, NULL, NULL), -EINVAL);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    int want[] = {1, 100, 2, 3};
    ck_assert_int_eq(nseq, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(seq[i], want[i]);
    ck_assert_int_eq(weft_timer_cancel(NULL), -EINVAL);
    weft_loop_free(loop);
}
END_TEST

/* ---- cancellation, deadlock, teardown ---- */

static int cleanups;

static void *sleeps_forever_then_cleans_up(void *arg)
{
    (void)arg;
    int rc = weft_sleep(1000000);
    ck_assert_int_eq(rc, -ECANCELED);
    /* Cleanup may suspend; while the loop is closing, it cancels at once. */
    cleanups++;
    return WEFT_ERR_PTR(rc);
}

static void *awaits_forever(void *arg)
{
    int rc = weft_await(arg, NULL);
    ck_assert_int_eq(rc, -ECANCELED);
    cleanups++;
    return NULL;
}

START_TEST(loop_free_cancels_suspended_fibers_and_runs_their_cleanup)
{
    cleanups = 0;
    weft_loop *loop = weft_loop_new();
    weft_future *p = weft_future_new();
    for (int i = 0; i < 10; i++) {
        weft_go(loop, sleeps_forever_then_cleans_up, NULL);
        weft_go(loop, awaits_forever, p);
    }
    weft_future *quick = weft_spawn(loop, log_arg, NULL);
    ck_assert_int_eq(weft_loop_run_once(loop, 0), 21);
    weft_future *late = weft_spawn(loop, log_arg, (void *)5);
    nseq = 0;
    weft_loop_free(loop);
    ck_assert_int_eq(cleanups, 20);
    /* A fiber cancelled before it ran still runs (what it owns is freed);
     * this one never suspends, so it completes. */
    ck_assert_int_eq(nseq, 1);
    ck_assert_int_eq(weft_future_result(late, NULL), 0);
    ck_assert_int_eq(weft_future_result(quick, NULL), 0);
    weft_future_release(late);
    weft_future_release(quick);
    weft_future_release(p);
}
END_TEST

static void *cancel_target(void *arg)
{
    (void)arg;
    int rc = weft_sleep(100000);
    log_int(rc);
    /* After the cancellation was delivered, the fiber may suspend again. */
    ck_assert_int_eq(weft_sleep(1), 0);
    return WEFT_ERR_PTR(rc);
}

static void *canceller(void *arg)
{
    weft_future *t = arg;
    ck_assert_int_eq(weft_yield(), 0);
    ck_assert_int_eq(weft_cancel(t), 0);
    ck_assert_int_eq(weft_await(t, NULL), -ECANCELED);
    ck_assert_int_eq(weft_cancel(t), -EINVAL); /* already done */
    return NULL;
}

START_TEST(cancel_reaches_a_sleeping_fiber_once)
{
    nseq = 0;
    weft_loop *loop = weft_loop_new();
    weft_future *t = weft_spawn(loop, cancel_target, NULL);
    weft_future *c = weft_spawn(loop, canceller, t);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(nseq, 1);
    ck_assert_int_eq(seq[0], -ECANCELED);
    ck_assert_int_eq(weft_future_result(c, NULL), 0);
    weft_future_release(t);
    weft_future_release(c);
    ck_assert_int_eq(weft_cancel(NULL), -EINVAL);
    weft_loop_free(loop);
}
END_TEST

static void *awaits_arg(void *arg)
{
    return WEFT_ERR_PTR(weft_await(arg, NULL));
}

static weft_future *peer;
static void *awaits_peer(void *arg)
{
    (void)arg;
    weft_yield();
    return WEFT_ERR_PTR(weft_await(peer, NULL));
}

START_TEST(run_reports_a_deadlock_instead_of_hanging)
{
    /* A fiber awaiting a promise nobody else holds. */
    weft_loop *loop = weft_loop_new();
    weft_future *p = weft_future_new();
    weft_future *f = weft_spawn(loop, awaits_arg, p);
    ck_assert_int_eq(weft_loop_run_once(loop, 0), 1); /* it awaits p */
    weft_future_release(p); /* now only its awaiter holds it */
    ck_assert_int_eq(weft_loop_run(loop), -EDEADLK);
    ck_assert(!weft_future_done(f));
    weft_loop_free(loop);
    ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
    weft_future_release(f);

    /* Two fibers awaiting each other. */
    loop = weft_loop_new();
    weft_future *a = weft_spawn(loop, awaits_peer, NULL);
    peer = a;
    weft_future *b = weft_spawn(loop, awaits_arg, a);
    peer = b;
    ck_assert_int_eq(weft_loop_run_until(loop, a), -EDEADLK);
    weft_loop_free(loop);
    weft_future_release(a);
    weft_future_release(b);
}
END_TEST

static void *resolve_later(void *arg)
{
    usleep(20000);
    ck_assert_int_eq(weft_future_resolve(arg, (void *)0x99), 0);
    ck_assert_int_eq(weft_future_resolve(arg, (void *)0x98), -EINVAL);
    return NULL;
}

START_TEST(a_promise_resolved_by_another_thread_wakes_its_fiber)
{
    weft_loop *loop = weft_loop_new();
    weft_future *p = weft_future_new();
    weft_future *f = weft_spawn(loop, awaits_arg, p);
    pthread_t th;
    pthread_create(&th, NULL, resolve_later, p);
    /* p has another holder (the thread): the loop must wait, not fail. */
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    pthread_join(th, NULL);
    void *out = NULL;
    ck_assert_int_eq(weft_await(p, &out), 0); /* done: no wait */
    ck_assert_ptr_eq(out, (void *)0x99);
    weft_future *pending = weft_future_new();
    /* Blocking the loop's own thread would freeze the loop. */
    ck_assert_int_eq(weft_await(pending, &out), -EDEADLK);
    weft_future_release(pending);
    weft_loop_free(loop);
    /* A plain thread awaits by blocking. */
    weft_future *q = weft_future_new();
    pthread_create(&th, NULL, resolve_later, q);
    ck_assert_int_eq(weft_await(q, &out), 0);
    ck_assert_ptr_eq(out, (void *)0x99);
    pthread_join(th, NULL);
    ck_assert_int_eq(weft_future_fail(q, -EIO), -EINVAL);
    ck_assert_int_eq(weft_future_fail(q, 5), -EINVAL);
    weft_future_release(q);
    weft_future_release(p);
    weft_future_release(f);
}
END_TEST

static void *stop_later(void *arg)
{
    usleep(20000);
    weft_loop_stop(arg);
    return NULL;
}

START_TEST(stop_from_another_thread_ends_run)
{
    weft_loop *loop = weft_loop_new();
    weft_go(loop, sleeps_forever_then_cleans_up, NULL);
    pthread_t th;
    pthread_create(&th, NULL, stop_later, loop);
    int64_t t0 = now_ms();
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_lt(now_ms() - t0, 5000);
    pthread_join(th, NULL);
    cleanups = 0;
    weft_loop_free(loop);
    ck_assert_int_eq(cleanups, 1);
}
END_TEST

static void *spawn_on(void *arg)
{
    errno = 0;
    weft_future *f = weft_spawn(arg, returns_arg, NULL);
    return (void *)(intptr_t)(f == NULL ? errno : 0);
}

static void *runs_nested(void *arg)
{
    ck_assert_int_eq(weft_loop_run(arg), -EBUSY);
    ck_assert_int_eq(weft_run(returns_arg, NULL, NULL), -EBUSY);
    return NULL;
}

START_TEST(misuse_gets_an_error_not_a_crash)
{
    ck_assert_int_eq(weft_yield(), -EPERM);
    ck_assert_int_eq(weft_sleep(0), 0);
    ck_assert_ptr_null(weft_loop_current());
    errno = 0;
    ck_assert_ptr_null(weft_spawn(NULL, returns_arg, NULL)); /* no loop */
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(weft_go(NULL, returns_arg, NULL), -EINVAL);
    ck_assert_int_eq(weft_loop_run(NULL), -EINVAL);
    ck_assert_int_eq(weft_loop_stop(NULL), -EINVAL);
    ck_assert_int_eq(weft_await(NULL, NULL), -EINVAL);

    weft_loop *loop = weft_loop_new();
    weft_go(loop, runs_nested, loop);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_ptr_eq(weft_loop_current(), loop);
    /* Bound to this thread now: another thread must use weft_submit. */
    pthread_t th;
    void *err;
    pthread_create(&th, NULL, spawn_on, loop);
    pthread_join(th, &err);
    ck_assert_int_eq((int)(intptr_t)err, EPERM);
    /* A thread may own several loops, run one at a time. */
    weft_loop *other = weft_loop_new();
    weft_go(other, runs_nested, loop); /* nested inside other: -EBUSY */
    ck_assert_int_eq(weft_loop_run(other), 0);
    ck_assert_ptr_eq(weft_loop_current(), other);
    weft_loop_free(loop);
    ck_assert_ptr_eq(weft_loop_current(), other);
    weft_loop_free(other);
    ck_assert_ptr_null(weft_loop_current());
}
END_TEST

/* Embedding (weft_loop_fd), from here to the #endif, is not run under
 * libkqueue (make test-kqueue): the descriptor its
 * kqueue() returns is the write end of a pipe and never polls readable, so
 * weft_loop_fd cannot work there. On FreeBSD and macOS a kqueue
 * descriptor polls readable when an event is pending. */
#ifndef WEFT_TEST_LIBKQUEUE
static void *tick(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        weft_sleep(5);
    return (void *)3;
}

START_TEST(an_embedded_loop_is_driven_through_its_fd)
{
    weft_loop *loop = weft_loop_new();
    weft_future *f = weft_spawn(loop, tick, NULL);
    int fd = weft_loop_fd(loop);
    ck_assert_int_ge(fd, 0);
    int polls = 0;
    while (!weft_future_done(f)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, 2000);
        ck_assert_int_eq(n, 1); /* readable within 2 s, every time */
        ck_assert_int_ge(weft_loop_run_once(loop, 0), 0);
        ck_assert_int_lt(++polls, 1000);
    }
    void *r;
    ck_assert_int_eq(weft_future_result(f, &r), 0);
    ck_assert_ptr_eq(r, (void *)3);
    weft_future_release(f);
    weft_loop_free(loop);
}
END_TEST

static void *receives_one(void *arg)
{
    void *item = NULL;
    int rc = weft_chan_recv(arg, &item, 5000);
    return rc < 0 ? WEFT_ERR_PTR(rc) : item;
}

static void *awaits_promise(void *arg)
{
    void *r = NULL;
    int rc = weft_await(arg, &r);
    return rc < 0 ? WEFT_ERR_PTR(rc) : r;
}

/* Runs the embedded loop until nothing is ready, then checks that its fd
 * is not readable: what follows must make it so. */
static void settle(weft_loop *loop, int fd)
{
    while (weft_loop_run_once(loop, 0) > 0)
        ;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&pf, 1, 0), 0);
}

/* Runs the embedded loop, driven by its fd, until f is done: the fd must
 * turn readable each time within 1 s (nothing here waits longer). */
static void *drive_until_done(weft_loop *loop, int fd, weft_future *f)
{
    while (!weft_future_done(f)) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&pf, 1, 1000), 1);
        ck_assert_int_ge(weft_loop_run_once(loop, 0), 0);
    }
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(f, &r), 0);
    weft_future_release(f);
    return r;
}

static void count_call(void *arg)
{
    ++*(int *)arg;
}

/* The host's own calls between weft_loop_run_once calls (a channel send
 * that hands an item to a parked fiber, a promise resolved, a spawn, a
 * weft_call_soon) make fibers or callbacks ready: the loop's fd must poll
 * readable at once, or the host would not come back until some timer or IO that
 * may never come. */
START_TEST(a_host_call_that_readies_a_fiber_makes_the_loop_fd_readable)
{
    weft_loop *loop = weft_loop_new();
    int fd = weft_loop_fd(loop);
    ck_assert_int_ge(fd, 0);
    weft_chan *ch = weft_chan_new(0);
    for (int round = 0; round < 3; round++) {
        weft_future *f = weft_spawn(loop, receives_one, ch);
        settle(loop, fd); /* f parked in its receive; no timer */
        ck_assert_int_eq(weft_chan_send(ch, (void *)7, 0), 0);
        ck_assert_ptr_eq(drive_until_done(loop, fd, f), (void *)7);

        weft_future *p = weft_future_new();
        weft_future *g = weft_spawn(loop, awaits_promise, p);
        settle(loop, fd);
        ck_assert_int_eq(weft_future_resolve(p, (void *)8), 0);
        ck_assert_ptr_eq(drive_until_done(loop, fd, g), (void *)8);
        weft_future_release(p);

        settle(loop, fd);
        weft_future *h = weft_spawn(loop, tick, NULL);
        ck_assert_ptr_eq(drive_until_done(loop, fd, h), (void *)3);

        settle(loop, fd);
        int called = 0;
        ck_assert_int_eq(weft_call_soon(loop, count_call, &called), 0);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&pf, 1, 1000), 1);
        ck_assert_int_ge(weft_loop_run_once(loop, 0), 1);
        ck_assert_int_eq(called, 1);
    }
    weft_loop_free(loop);
    weft_chan_free(ch);
}
END_TEST
#endif /* WEFT_TEST_LIBKQUEUE */

static void *on_done_fiber(void *arg)
{
    (void)arg;
    weft_sleep(1);
    return (void *)42;
}

static void record_done(weft_future *f, void *arg)
{
    void *r = NULL;
    weft_future_result(f, &r);
    *(intptr_t *)arg = (intptr_t)r;
}

START_TEST(done_callbacks_run_on_the_registering_loop)
{
    weft_loop *loop = weft_loop_new();
    weft_future *f = weft_spawn(loop, on_done_fiber, NULL);
    intptr_t got = 0;
    ck_assert_int_eq(weft_future_on_done(f, record_done, &got), 0);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(got, 42);
    /* Registered after done, outside any loop: runs at once. */
    weft_loop_free(loop);
    got = 0;
    ck_assert_int_eq(weft_future_on_done(f, record_done, &got), 0);
    ck_assert_int_eq(got, 42);
    weft_future_release(f);
}
END_TEST

/* ---- the poll policy: fibers that hand over without pause starve
 * nothing (IO, timers, callbacks, run_until) ---- */

static volatile int busy;

static void *yields_while_busy(void *arg)
{
    (void)arg;
    while (busy)
        weft_yield();
    return NULL;
}

static int64_t noticed_ms;

static void *reads_one_byte(void *arg)
{
    char c;
    ck_assert_int_eq(weft_read((int)(intptr_t)arg, &c, 1, 10000), 1);
    noticed_ms = now_ms();
    return NULL;
}

static void *writes_after_20ms(void *arg)
{
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    *(int64_t *)((intptr_t *)arg)[1] = now_ms();
    ck_assert_int_eq(write((int)((intptr_t *)arg)[0], "x", 1), 1);
    return NULL;
}

static void *sleeps_5ms(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weft_sleep(5), 0);
    return NULL;
}

static int policy_calls;

static void count_policy_call(void *arg)
{
    (void)arg;
    policy_calls++;
}

static void *policy_main(void *arg)
{
    (void)arg;
    busy = 1;
    weft_future *a = weft_spawn(NULL, yields_while_busy, NULL);
    weft_future *b = weft_spawn(NULL, yields_while_busy, NULL);
    int sp[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);

    /* A descriptor turning ready is noticed. */
    int64_t written_ms = 0;
    intptr_t wargs[2] = {sp[1], (intptr_t)&written_ms};
    weft_future *r = weft_spawn(NULL, reads_one_byte, (void *)(intptr_t)sp[0]);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, writes_after_20ms, wargs), 0);
    ck_assert_int_eq(weft_await(r, NULL), 0);
    pthread_join(th, NULL);
    /* The contract's bound is 1 ms; this allows for valgrind and qemu. */
    ck_assert_int_lt(noticed_ms - written_ms, 500);
    weft_future_release(r);

    /* A timer fires, and a callback runs. */
    int64_t t0 = now_ms();
    weft_future *s = weft_spawn(NULL, sleeps_5ms, NULL);
    ck_assert_int_eq(weft_await(s, NULL), 0);
    ck_assert_int_lt(now_ms() - t0, 500);
    weft_future_release(s);
    policy_calls = 0;
    ck_assert_int_eq(weft_call_soon(NULL, count_policy_call, NULL), 0);
    weft_yield();
    weft_yield();
    ck_assert_int_eq(policy_calls, 1);

    busy = 0;
    weft_await(a, NULL);
    weft_await(b, NULL);
    weft_future_release(a);
    weft_future_release(b);
    close(sp[0]);
    close(sp[1]);
    return NULL;
}

START_TEST(fibers_handing_over_without_pause_starve_nothing)
{
    /* weft_run is run_until: the direct hand-over is on there too. */
    ck_assert_int_eq(weft_run(policy_main, NULL, NULL), 0);

    /* run_until returns once its future is done, though others still
     * hand over to each other. */
    weft_loop *loop = weft_loop_new();
    busy = 1;
    weft_future *a = weft_spawn(loop, yields_while_busy, NULL);
    weft_future *b = weft_spawn(loop, yields_while_busy, NULL);
    weft_future *s = weft_spawn(loop, sleeps_5ms, NULL);
    ck_assert_int_eq(weft_loop_run_until(loop, s), 0);
    busy = 0;
    ck_assert_int_eq(weft_loop_run(loop), 0);
    weft_future_release(a);
    weft_future_release(b);
    weft_future_release(s);
    weft_loop_free(loop);
}
END_TEST

static Suite *sched_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fibers_start_in_spawn_order);
    tcase_add_test(tc, yield_lets_every_ready_fiber_run_in_turn);
    tcase_add_test(tc, await_returns_a_tasks_result_or_error);
    tcase_add_test(tc, weft_run_returns_mains_error);
    tcase_add_test(tc, spawn_options_name_the_fiber_and_size_its_stack);
    tcase_add_test(tc, sleeps_and_timers_fire_in_deadline_order);
    tcase_add_test(tc, equal_deadlines_fire_in_the_order_they_were_set);
    tcase_add_test(tc, repeated_deadlines_keep_their_order_through_cancels);
    tcase_add_test(tc, ten_thousand_random_sleeps_wake_in_deadline_order);
    tcase_add_test(tc, call_soon_runs_callbacks_in_order_outside_fibers);
    tcase_add_test(tc,
                   loop_free_cancels_suspended_fibers_and_runs_their_cleanup);
    tcase_add_test(tc, cancel_reaches_a_sleeping_fiber_once);
    tcase_add_test(tc, run_reports_a_deadlock_instead_of_hanging);
    tcase_add_test(tc, a_promise_resolved_by_another_thread_wakes_its_fiber);
    tcase_add_test(tc, stop_from_another_thread_ends_run);
    tcase_add_test(tc, misuse_gets_an_error_not_a_crash);
#ifndef WEFT_TEST_LIBKQUEUE /* see tick */
    tcase_add_test(tc, an_embedded_loop_is_driven_through_its_fd);
    tcase_add_test(tc,
                   a_host_call_that_readies_a_fiber_makes_the_loop_fd_readable);
#endif
    tcase_add_test(tc, done_callbacks_run_on_the_registering_loop);
    tcase_add_test(tc, fibers_handing_over_without_pause_starve_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(sched_suite());
}
