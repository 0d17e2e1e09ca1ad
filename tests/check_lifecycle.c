/* SPDX-License-Identifier: MIT */
/*
 * Lifecycle, cancellation and cross-thread hand-offs the way programs use
 * them: loops in their own threads stopped and joined, submissions that
 * race a stop or a cancel, futures released by one thread while another
 * completes or awaits them, fibers cancelled before they ever ran. Each
 * test is a regression test for a defect found by such a program; the
 * memory and thread bugs among them are caught by the ASan and TSan runs.
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "weft.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- loops in their own threads: stop, then join ---- */

static void *stops_its_own_loop(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weft_loop_stop(weft_loop_current()), 0);
    return (void *)7;
}

START_TEST(stop_then_join_a_loop_thread)
{
    /* Stopped from another thread: the loop stays valid until joined. */
    weft_loop *loop;
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    ck_assert_int_eq(weft_loop_stop(loop), 0);
    weft_sleep(20); /* the loop thread has stopped by now */
    ck_assert_int_eq(weft_loop_stop(loop), 0); /* still valid */
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);

    /* Stopped by one of its own fibers. */
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    weft_future *f = weft_submit(loop, stops_its_own_loop, NULL);
    ck_assert_ptr_nonnull(f);
    void *out = NULL;
    ck_assert_int_eq(weft_await(f, &out), 0);
    ck_assert_ptr_eq(out, (void *)7);
    weft_future_release(f);
    weft_sleep(20);
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);

    /* Joined without a stop: join stops it. */
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);
}
END_TEST

static atomic_int started, cleaned;

/* Owns its argument: frees it however it ends. */
static void *owns_and_sleeps(void *arg)
{
    atomic_fetch_add(&started, 1);
    int rc = weft_sleep(10000);
    free(arg);
    atomic_fetch_add(&cleaned, 1);
    return rc < 0 ? WEFT_ERR_PTR(rc) : (void *)1;
}

static void *returns_its_arg(void *arg)
{
    return arg;
}

static atomic_int calls_ran;

static void count_call(void *arg)
{
    (void)arg;
    atomic_fetch_add(&calls_ran, 1);
}

static void *await_in_thread(void *arg)
{
    return (void *)(intptr_t)weft_await(arg, NULL);
}

START_TEST(submissions_to_a_stopped_loop_are_never_lost)
{
    atomic_store(&started, 0);
    atomic_store(&cleaned, 0);
    atomic_store(&calls_ran, 0);
    weft_loop *loop;
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    ck_assert_int_eq(weft_loop_stop(loop), 0);
    weft_sleep(20);
    /* Handed to a stopped loop: they wait for the join. */
    weft_future *sleeper = weft_submit(loop, owns_and_sleeps, malloc(64));
    weft_future *quick = weft_submit(loop, returns_its_arg, (void *)9);
    ck_assert_ptr_nonnull(sleeper);
    ck_assert_ptr_nonnull(quick);
    ck_assert_int_eq(weft_call_soon_threadsafe(loop, count_call, NULL), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, await_in_thread, sleeper), 0);
    weft_sleep(20);
    ck_assert(!weft_future_done(sleeper));
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);
    /* The join ran each of them: the sleeper's sleep was cancelled (its
     * cleanup ran), the quick one finished, the call ran. */
    void *rc;
    ck_assert_int_eq(pthread_join(th, &rc), 0);
    ck_assert_int_eq((int)(intptr_t)rc, -ECANCELED);
    ck_assert_int_eq(weft_future_result(sleeper, NULL), -ECANCELED);
    void *out = NULL;
    ck_assert_int_eq(weft_future_result(quick, &out), 0);
    ck_assert_ptr_eq(out, (void *)9);
    ck_assert_int_eq(atomic_load(&started), 1);
    ck_assert_int_eq(atomic_load(&cleaned), 1);
    ck_assert_int_eq(atomic_load(&calls_ran), 1);
    weft_future_release(sleeper);
    weft_future_release(quick);

    /* The same for a loop of this thread, stopped, then freed. */
    weft_loop *mine = weft_loop_new();
    ck_assert_int_eq(weft_loop_run_once(mine, 0), 0);
    ck_assert_int_eq(weft_loop_stop(mine), 0);
    ck_assert_int_eq(weft_loop_run(mine), 0);
    weft_future *late = weft_submit(mine, owns_and_sleeps, malloc(64));
    ck_assert_ptr_nonnull(late);
    weft_loop_free(mine);
    ck_assert_int_eq(weft_future_result(late, NULL), -ECANCELED);
    ck_assert_int_eq(atomic_load(&cleaned), 2);
    weft_future_release(late);
}
END_TEST

START_TEST(a_cancel_racing_a_fresh_submission_still_lets_it_clean_up)
{
    atomic_store(&started, 0);
    atomic_store(&cleaned, 0);
    weft_loop *loop;
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    int n = (int)scaled(2000, 300);
    for (int i = 0; i < n; i++) {
        weft_future *f = weft_submit(loop, owns_and_sleeps, malloc(32));
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(weft_cancel(f), 0);
        ck_assert_int_eq(weft_await(f, NULL), -ECANCELED);
        /* Done means done: the fiber has run its cleanup. */
        ck_assert_int_eq(atomic_load(&cleaned), i + 1);
        weft_future_release(f);
    }
    ck_assert_int_eq(atomic_load(&started), n);
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);
}
END_TEST

/* ---- futures shared across threads ---- */

static void *resolves(void *arg)
{
    weft_future **slot = arg;
    for (;;) {
        weft_future *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        if (f == (weft_future *)1)
            return NULL;
        if (f != NULL) {
            __atomic_store_n(slot, NULL, __ATOMIC_RELEASE);
            ck_assert_int_eq(weft_future_resolve(f, (void *)3), 0);
        }
    }
}

START_TEST(resolve_while_the_owner_releases_on_done)
{
    weft_future *slot = NULL;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, resolves, &slot), 0);
    int n = (int)scaled(20000, 2000);
    for (int i = 0; i < n; i++) {
        weft_future *f = weft_future_new();
        ck_assert_ptr_nonnull(f);
        __atomic_store_n(&slot, f, __ATOMIC_RELEASE);
        while (!weft_future_done(f))
            ;
        void *out;
        ck_assert_int_eq(weft_future_result(f, &out), 0);
        ck_assert_ptr_eq(out, (void *)3);
        weft_future_release(f); /* the resolver may still be inside */
    }
    while (__atomic_load_n(&slot, __ATOMIC_ACQUIRE) != NULL)
        ;
    __atomic_store_n(&slot, (weft_future *)1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
}
END_TEST

static weft_future *self_of_g;

static void *publishes_its_self(void *arg)
{
    (void)arg;
    self_of_g = weft_self();
    weft_sleep(10);
    return (void *)42;
}

static void *awaits_published(void *arg)
{
    (void)arg;
    while (self_of_g == NULL)
        weft_yield();
    void *out = NULL;
    ck_assert_int_eq(weft_await(self_of_g, &out), 0);
    ck_assert_ptr_eq(out, (void *)42);
    return NULL;
}

static void *sleeps_then_returns(void *arg)
{
    weft_sleep(10);
    return arg;
}

static void *awaits_arg(void *arg)
{
    void *out = NULL;
    ck_assert_int_eq(weft_await(arg, &out), 0);
    return out;
}

static void *submits_and_releases(void *arg)
{
    weft_loop *other = arg;
    weft_future *f = weft_submit(other, sleeps_then_returns, (void *)5);
    ck_assert_ptr_nonnull(f);
    weft_future *a = weft_spawn(NULL, awaits_arg, f);
    weft_yield();           /* a is awaiting f now */
    weft_future_release(f); /* only a's wait holds it */
    void *out = NULL;
    ck_assert_int_eq(weft_await(a, &out), 0);
    ck_assert_ptr_eq(out, (void *)5);
    weft_future_release(a);
    return NULL;
}

START_TEST(an_await_outlives_the_other_references)
{
    /* weft_self() of a detached fiber: its last reference is the loop's,
     * dropped as it ends. */
    self_of_g = NULL;
    weft_loop *loop = weft_loop_new();
    ck_assert_int_eq(weft_go(loop, awaits_published, NULL), 0);
    ck_assert_int_eq(weft_go(loop, publishes_its_self, NULL), 0);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    weft_loop_free(loop);

    /* A submission's future its creator released while another awaits. */
    weft_loop *other;
    ck_assert_int_eq(weft_loop_start_thread(&other), 0);
    ck_assert_int_eq(weft_run(submits_and_releases, other, NULL), 0);
    ck_assert_int_eq(weft_loop_join_thread(other), 0);
}
END_TEST

static atomic_int cb_ran;

static void count_cb(weft_future *f, void *arg)
{
    (void)f;
    (void)arg;
    atomic_fetch_add(&cb_ran, 1);
}

static void *registers_on_done(void *arg)
{
    ck_assert_int_eq(weft_future_on_done(arg, count_cb, NULL), 0);
    return NULL;
}

static void *registers_on_done_forever(void *arg)
{
    weft_future *p = weft_future_new();
    ck_assert_int_eq(weft_future_on_done(p, count_cb, NULL), 0);
    weft_future_release(p); /* never completed: the registration goes */
    return arg;
}

START_TEST(a_done_callback_whose_loop_is_gone_is_dropped)
{
    atomic_store(&cb_ran, 0);
    /* Registered in weft_run's loop, which is freed when it returns. */
    weft_future *p = weft_future_new();
    ck_assert_int_eq(weft_run(registers_on_done, p, NULL), 0);
    ck_assert_int_eq(weft_future_resolve(p, NULL), 0);
    ck_assert_int_eq(atomic_load(&cb_ran), 0);
    weft_future_release(p);

    /* Registered on a loop thread that is joined before the completion. */
    weft_loop *loop;
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    p = weft_future_new();
    weft_future *r = weft_submit(loop, registers_on_done, p);
    ck_assert_int_eq(weft_await(r, NULL), 0);
    weft_future_release(r);
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);
    ck_assert_int_eq(weft_future_fail(p, -EIO), 0);
    ck_assert_int_eq(atomic_load(&cb_ran), 0);
    weft_future_release(p);

    /* A callback on a future that is never completed is freed with it
     * (the leak check of the sanitizer runs sees it). */
    ck_assert_int_eq(weft_run(registers_on_done_forever, NULL, NULL), 0);

    /* And one whose loop is alive still runs there. */
    p = weft_future_new();
    weft_loop *mine = weft_loop_new();
    ck_assert_int_eq(weft_loop_run_once(mine, 0), 0);
    ck_assert_int_eq(weft_future_on_done(p, count_cb, NULL), 0);
    ck_assert_int_eq(weft_future_resolve(p, NULL), 0);
    ck_assert_int_eq(atomic_load(&cb_ran), 0);
    ck_assert_int_eq(weft_loop_run(mine), 0);
    ck_assert_int_eq(atomic_load(&cb_ran), 1);
    weft_loop_free(mine);
    weft_future_release(p);
}
END_TEST

static void *awaits_result(void *arg)
{
    void *out = NULL;
    ck_assert_int_eq(weft_await(arg, &out), 0);
    return out;
}

START_TEST(two_threads_await_one_future)
{
    int n = (int)scaled(2000, 300);
    for (int i = 0; i < n; i++) {
        weft_future *p = weft_future_new();
        pthread_t a, b;
        ck_assert_int_eq(pthread_create(&a, NULL, awaits_result, p), 0);
        ck_assert_int_eq(pthread_create(&b, NULL, awaits_result, p), 0);
        ck_assert_int_eq(weft_future_resolve(p, (void *)11), 0);
        void *ra, *rb;
        pthread_join(a, &ra);
        pthread_join(b, &rb);
        ck_assert_ptr_eq(ra, (void *)11);
        ck_assert_ptr_eq(rb, (void *)11);
        weft_future_release(p);
    }
}
END_TEST

static void *frees_its_executor(void *arg)
{
    weft_executor_free(arg);
    return (void *)13;
}

static void *blocks_briefly(void *arg)
{
    weft_sleep(20); /* a plain thread: really sleeps */
    return arg;
}

START_TEST(an_executor_freed_from_its_own_job)
{
    weft_executor *ex = weft_executor_new(3);
    ck_assert_ptr_nonnull(ex);
    weft_future *other = weft_run_in_executor(ex, blocks_briefly, (void *)1);
    weft_future *f = weft_run_in_executor(ex, frees_its_executor, ex);
    void *out = NULL;
    ck_assert_int_eq(weft_await(f, &out), 0);
    ck_assert_ptr_eq(out, (void *)13);
    /* The running job finished; the pool is freed once both are done. */
    ck_assert_int_eq(weft_await(other, &out), 0);
    ck_assert_ptr_eq(out, (void *)1);
    weft_future_release(f);
    weft_future_release(other);
    weft_sleep(50); /* the freeing worker joins the others, then exits */
}
END_TEST

/* ---- loop-bound calls ---- */

static void never(void *arg)
{
    (void)arg;
    ck_abort_msg("a cancelled timer fired");
}

static void *cancels_timer(void *arg)
{
    return (void *)(intptr_t)weft_timer_cancel(arg);
}

START_TEST(timer_cancel_from_another_thread_is_refused)
{
    weft_loop *loop = weft_loop_new();
    ck_assert_int_eq(weft_loop_run_once(loop, 0), 0); /* bound to us */
    weft_timer *t = weft_call_later(loop, 10000, never, NULL);
    ck_assert_ptr_nonnull(t);
    pthread_t th;
    void *rc;
    ck_assert_int_eq(pthread_create(&th, NULL, cancels_timer, t), 0);
    pthread_join(th, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, -EPERM);
    ck_assert_int_eq(weft_timer_cancel(t), 0);
    ck_assert_int_eq(weft_loop_run(loop), 0); /* nothing left */
    weft_loop_free(loop);
}
END_TEST

static void *nothing(void *arg)
{
    return arg;
}

static void *checks_current(void *arg)
{
    ck_assert_ptr_ne(weft_loop_current(), arg);
    return NULL;
}

START_TEST(the_current_loop_falls_back_to_the_one_run_before)
{
    weft_loop *a = weft_loop_new();
    ck_assert_int_eq(weft_loop_run_once(a, 0), 0);
    ck_assert_ptr_eq(weft_loop_current(), a);

    ck_assert_int_eq(weft_run(checks_current, a, NULL), 0);
    ck_assert_ptr_eq(weft_loop_current(), a);
    weft_future *f = weft_spawn(NULL, nothing, (void *)1);
    ck_assert_ptr_nonnull(f);

    weft_loop *b = weft_loop_new();
    ck_assert_int_eq(weft_loop_run_once(b, 0), 0);
    ck_assert_ptr_eq(weft_loop_current(), b);
    weft_loop *c = weft_loop_new();
    ck_assert_int_eq(weft_loop_run_once(c, 0), 0);
    weft_loop_free(b); /* not the current one: c stays */
    ck_assert_ptr_eq(weft_loop_current(), c);
    weft_loop_free(c);
    ck_assert_ptr_eq(weft_loop_current(), a);

    ck_assert_int_eq(weft_loop_run_until(a, f), 0);
    weft_future_release(f);
    weft_loop_free(a);
    ck_assert_ptr_null(weft_loop_current());
}
END_TEST

static void *nested_run_until(void *arg)
{
    weft_future *p2 = weft_future_new();
    ck_assert_int_eq(weft_loop_run_until(arg, p2), -EBUSY);
    weft_future_release(p2);
    return NULL;
}

struct later {
    weft_future *f;
    weft_loop *loop;
    int ms;
};

static void *resolves_later(void *arg)
{
    struct later *l = arg;
    if (l->loop != NULL) { /* first tries to run the loop from here */
        weft_sleep(20);    /* while the owner runs it */
        weft_future *p2 = weft_future_new();
        int rc = weft_loop_run_until(l->loop, p2);
        ck_assert(rc == -EPERM || rc == -EBUSY);
        weft_future_release(p2);
    }
    weft_sleep(l->ms);
    weft_future_resolve(l->f, NULL);
    return NULL;
}

START_TEST(a_refused_run_until_leaves_the_running_call_alone)
{
    weft_loop *loop = weft_loop_new();
    weft_future *p = weft_future_new();
    struct later l = {p, NULL, 50};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, resolves_later, &l), 0);
    ck_assert_int_eq(weft_go(loop, nested_run_until, loop), 0);
    ck_assert_int_eq(weft_loop_run_until(loop, p), 0); /* not -EDEADLK */
    pthread_join(th, NULL);
    weft_future_release(p);

    /* The same when the refused call comes from another thread. */
    p = weft_future_new();
    l = (struct later){p, loop, 50};
    ck_assert_int_eq(pthread_create(&th, NULL, resolves_later, &l), 0);
    ck_assert_int_eq(weft_loop_run_until(loop, p), 0);
    pthread_join(th, NULL);
    weft_future_release(p);
    weft_loop_free(loop);
}
END_TEST

/* ---- cancellation a C caller can build on ---- */

static int owned_freed;

static void *owns_its_arg(void *arg)
{
    int rc = weft_sleep(10);
    free(arg);
    owned_freed++;
    return WEFT_ERR_PTR(rc < 0 ? rc : -EPROTO);
}

static void *spawns_and_leaves(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft_go(NULL, owns_its_arg, malloc(16)), 0);
    return NULL;
}

START_TEST(a_fiber_cancelled_before_it_ran_runs_its_cleanup)
{
    owned_freed = 0;
    weft_loop *loop = weft_loop_new();
    weft_future *f = weft_spawn(loop, owns_its_arg, malloc(16));
    ck_assert_int_eq(weft_cancel(f), 0);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(owned_freed, 1);
    ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
    weft_future_release(f);

    /* Never started when the loop is freed. */
    ck_assert_int_eq(weft_go(loop, owns_its_arg, malloc(16)), 0);
    weft_loop_free(loop);
    ck_assert_int_eq(owned_freed, 2);

    /* Never started when weft_run tears down. */
    ck_assert_int_eq(weft_run(spawns_and_leaves, NULL, NULL), 0);
    ck_assert_int_eq(owned_freed, 5);
}
END_TEST

struct borrowed {
    int *slot; /* in the caller's frame */
    bool done;
};

/* Uses memory its awaiter lent it, and cleans up slowly when cancelled. */
static void *slow_cleanup(void *arg)
{
    struct borrowed *b = arg;
    int rc = weft_sleep(10000);
    if (rc == -ECANCELED) {
        weft_sleep(30); /* cleanup that suspends */
        *b->slot = 99;  /* still writes to the lent memory */
        b->done = true;
    }
    return WEFT_ERR_PTR(-ECANCELED);
}

static void *fails_soon(void *arg)
{
    (void)arg;
    weft_sleep(5);
    return WEFT_ERR_PTR(-EPROTO);
}

static void *waits_for_with_timeout(void *arg)
{
    (void)arg;
    int slot = 0;
    struct borrowed b = {&slot, false};
    weft_future *t = weft_spawn(NULL, slow_cleanup, &b);
    int64_t t0 = now_ms();
    ck_assert_int_eq(weft_await_timeout(t, 10, NULL), -ETIMEDOUT);
    ck_assert_int_ge(now_ms() - t0, 30);
    ck_assert(b.done); /* its cleanup has run */
    ck_assert_int_eq(slot, 99);
    ck_assert(weft_future_done(t));
    weft_future_release(t);

    /* gather fail-fast: returns once the siblings it cancelled are done */
    int s1 = 0, s2 = 0;
    struct borrowed b1 = {&s1, false}, b2 = {&s2, false};
    weft_future *fs[3] = {
        weft_spawn(NULL, slow_cleanup, &b1),
        weft_spawn(NULL, fails_soon, NULL),
        weft_spawn(NULL, slow_cleanup, &b2),
    };
    int err[3];
    ck_assert_int_eq(weft_gather(fs, 3, NULL, err, WEFT_GATHER_FAIL_FAST),
                     -EPROTO);
    ck_assert(b1.done && b2.done);
    ck_assert_int_eq(err[0], -ECANCELED);
    ck_assert_int_eq(err[2], -ECANCELED);
    for (int i = 0; i < 3; i++)
        weft_future_release(fs[i]);
    return NULL;
}

START_TEST(wait_for_and_fail_fast_return_after_the_cancelled_are_done)
{
    ck_assert_int_eq(weft_run(waits_for_with_timeout, NULL, NULL), 0);

    /* A plain thread awaiting a submission with a timeout likewise. */
    weft_loop *loop;
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    int slot = 0;
    struct borrowed b = {&slot, false};
    weft_future *f = weft_submit(loop, slow_cleanup, &b);
    ck_assert_int_eq(weft_await_timeout(f, 10, NULL), -ETIMEDOUT);
    ck_assert(weft_future_done(f));
    ck_assert_int_eq(__atomic_load_n(&slot, __ATOMIC_ACQUIRE), 99);
    weft_future_release(f);
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);
}
END_TEST

static weft_future *pair[2];

static void *waits_for_the_other(void *arg)
{
    intptr_t me = (intptr_t)arg;
    while (pair[1 - me] == NULL)
        weft_yield();
    weft_await_timeout(pair[1 - me], 5, NULL);
    return NULL;
}

START_TEST(tasks_that_wait_for_each_other_with_timeouts_still_tear_down)
{
    /* Both time out together, cancel each other, and each waits for the
     * other to finish: a true deadlock. The loop says so, and its
     * teardown ends instead of spinning. */
    weft_loop *loop = weft_loop_new();
    pair[0] = pair[1] = NULL;
    pair[0] = weft_spawn(loop, waits_for_the_other, (void *)0);
    pair[1] = weft_spawn(loop, waits_for_the_other, (void *)1);
    int rc = weft_loop_run(loop);
    ck_assert(rc == -EDEADLK || rc == 0);
    weft_loop_free(loop);
    ck_assert(weft_future_done(pair[0]) && weft_future_done(pair[1]));
    weft_future_release(pair[0]);
    weft_future_release(pair[1]);
}
END_TEST

/* ---- huge timeouts mean very long ---- */

/* Under qemu-user, epoll_pwait2 may return before its timeout (seen with
 * qemu 7.2 for waits of about a millisecond): run_once then returns 0
 * early, which says nothing about saturation. */
static bool emulated(void)
{
    const char *slow = getenv("WEFT_TEST_SLOW");
    return slow != NULL && *slow == '1' && !WEFT_TEST_SANITIZED;
}

static void tick(void *arg)
{
    (*(int *)arg)++;
}

static void fail_int_min(void *arg)
{
    (void)arg;
    weft_loop *loop = weft_loop_new();
    weft_loop_set_debug(loop, true);
    weft_loop_run_once(loop, 0); /* current: its futures report */
    weft_future *p = weft_future_new();
    weft_future_fail(p, INT_MIN);
    weft_future_release(p); /* unobserved: reported in debug mode */
}

START_TEST(huge_timeouts_saturate)
{
    weft_loop *loop = weft_loop_new();
    int ticks = 0;
    ck_assert_ptr_nonnull(weft_call_later(loop, 40, tick, &ticks));
    /* 2^64 / 10^6 ms, rounded up: times 10^6 it wraps to 0.45 ms. It
     * must block until the timer, not return at once. */
    int64_t t0 = now_ms();
    int ran = 0, calls = 0;
    while (ran == 0 && now_ms() - t0 < 5000) {
        ran = weft_loop_run_once(loop, INT64_C(18446744073710));
        calls++;
    }
    ck_assert_int_eq(ticks, 1);
    if (!emulated())
        ck_assert_int_le(calls, 2);
    ck_assert_int_ge(now_ms() - t0, 30);
    ck_assert_int_eq(weft_loop_set_slow_ms(loop, INT64_MAX), 0);
    ck_assert_ptr_nonnull(weft_call_later(loop, 1, tick, &ticks));
    /* Blocks until the timer (an emulator may wake a little early). */
    calls = 0;
    t0 = now_ms();
    while (ticks < 2 && now_ms() - t0 < 5000) {
        weft_loop_run_once(loop, INT64_MAX);
        calls++;
    }
    ck_assert_int_eq(ticks, 2);
    if (!emulated())
        ck_assert_int_le(calls, 3);
    weft_loop_free(loop);

    setenv("WEFT_SLOW_MS", "9223372036854775807", 1);
    loop = weft_loop_new();
    unsetenv("WEFT_SLOW_MS");
    weft_loop_free(loop);

    char out[512];
    int st = run_child(fail_int_min, NULL, out, sizeof out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st,
                  out);
    ck_assert_msg(strstr(out, "-2147483648") != NULL, "%s", out);
}
END_TEST

static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stop_then_join_a_loop_thread);
    tcase_add_test(tc, submissions_to_a_stopped_loop_are_never_lost);
    tcase_add_test(tc,
                   a_cancel_racing_a_fresh_submission_still_lets_it_clean_up);
    tcase_add_test(tc, resolve_while_the_owner_releases_on_done);
    tcase_add_test(tc, an_await_outlives_the_other_references);
    tcase_add_test(tc, a_done_callback_whose_loop_is_gone_is_dropped);
    tcase_add_test(tc, two_threads_await_one_future);
    tcase_add_test(tc, an_executor_freed_from_its_own_job);
    suite_add_tcase(s, tc);

    tc = tcase_create("loops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, timer_cancel_from_another_thread_is_refused);
    tcase_add_test(tc, the_current_loop_falls_back_to_the_one_run_before);
    tcase_add_test(tc, a_refused_run_until_leaves_the_running_call_alone);
    tcase_add_test(tc, huge_timeouts_saturate);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancellation");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_fiber_cancelled_before_it_ran_runs_its_cleanup);
    tcase_add_test(tc,
                   wait_for_and_fail_fast_return_after_the_cancelled_are_done);
    tcase_add_test(
        tc, tasks_that_wait_for_each_other_with_timeouts_still_tear_down);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(lifecycle_suite());
}
