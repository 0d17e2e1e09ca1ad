/* SPDX-License-Identifier: MIT */
/* The futures layer: await with a timeout, gather, wait, submissions and
 * calls from other threads, loops in their own threads, the executor. */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

/* Sleeps arg ms, then returns arg (or fails with -arg if arg < 0). */
static void *sleeper(void *arg)
{
    intptr_t ms = (intptr_t)arg;
    int rc = weft_sleep(ms < 0 ? -ms : ms);
    if (rc < 0)
        return WEFT_ERR_PTR(rc);
    return ms < 0 ? WEFT_ERR_PTR((int)ms) : arg;
}

/* ---- await with a timeout ---- */

static void *await_timeout_main(void *arg)
{
    (void)arg;
    weft_future *slow = weft_spawn(NULL, sleeper, (void *)1000);
    int64_t t0 = now_ms();
    ck_assert_int_eq(weft_await_timeout(slow, 20, NULL), -ETIMEDOUT);
    ck_assert_int_lt(now_ms() - t0, 900);
    /* Like asyncio.wait_for: the timed-out task was cancelled. */
    ck_assert_int_eq(weft_await(slow, NULL), -ECANCELED);
    weft_future_release(slow);

    weft_future *quick = weft_spawn(NULL, sleeper, (void *)5);
    void *r = NULL;
    ck_assert_int_eq(weft_await_timeout(quick, 1000, &r), 0);
    ck_assert_ptr_eq(r, (void *)5);
    weft_future_release(quick);
    return NULL;
}

START_TEST(await_timeout_cancels_what_it_gave_up_on)
{
    ck_assert_int_eq(weft_run(await_timeout_main, NULL, NULL), 0);
}
END_TEST

/* ---- gather ---- */

static void *gather_main(void *arg)
{
    (void)arg;
    weft_future *fs[4] = {
        weft_spawn(NULL, sleeper, (void *)30),
        weft_spawn(NULL, sleeper, (void *)-EIO), /* fails after 5 ms */
        weft_spawn(NULL, sleeper, (void *)10),
        weft_spawn(NULL, sleeper, (void *)-ENOENT),
    };
    void *res[4];
    int err[4];
    int64_t t0 = now_ms();
    /* ALL: every one finishes; the first error by index wins. */
    ck_assert_int_eq(weft_gather(fs, 4, res, err, WEFT_GATHER_ALL), -EIO);
    ck_assert_int_ge(now_ms() - t0, 25);
    ck_assert_ptr_eq(res[0], (void *)30);
    ck_assert_ptr_eq(res[2], (void *)10);
    ck_assert_int_eq(err[0], 0);
    ck_assert_int_eq(err[1], -EIO);
    ck_assert_int_eq(err[3], -ENOENT);
    ck_assert_ptr_null(res[1]);
    for (int i = 0; i < 4; i++)
        weft_future_release(fs[i]);

    /* FAIL_FAST: the first failure (after 5 ms) cancels the rest. */
    weft_future *gs[3] = {
        weft_spawn(NULL, sleeper, (void *)5000),
        weft_spawn(NULL, sleeper, (void *)-EPROTO),
        weft_spawn(NULL, sleeper, (void *)5000),
    };
    t0 = now_ms();
    ck_assert_int_eq(weft_gather(gs, 3, NULL, err, WEFT_GATHER_FAIL_FAST),
                     -EPROTO);
    ck_assert_int_lt(now_ms() - t0, 2000);
    ck_assert_int_eq(err[0], -ECANCELED);
    ck_assert_int_eq(err[1], -EPROTO);
    ck_assert_int_eq(err[2], -ECANCELED);
    ck_assert_int_eq(weft_await(gs[0], NULL), -ECANCELED);
    for (int i = 0; i < 3; i++)
        weft_future_release(gs[i]);

    ck_assert_int_eq(weft_gather(NULL, 0, NULL, NULL, WEFT_GATHER_ALL), 0);
    ck_assert_int_eq(weft_gather(NULL, 1, NULL, NULL, WEFT_GATHER_ALL),
                     -EINVAL);
    weft_future *null_in[1] = {NULL};
    ck_assert_int_eq(weft_gather(null_in, 1, NULL, NULL, WEFT_GATHER_ALL),
                     -EINVAL);
    return NULL;
}

START_TEST(gather_collects_in_order_and_fails_fast_on_request)
{
    ck_assert_int_eq(weft_run(gather_main, NULL, NULL), 0);
}
END_TEST

static void *gather_victim(void *arg)
{
    weft_future **fs = arg;
    return WEFT_ERR_PTR(weft_gather(fs, 2, NULL, NULL, WEFT_GATHER_ALL));
}

static void *cancel_gatherer(void *arg)
{
    (void)arg;
    weft_future *kids[2] = {weft_spawn(NULL, sleeper, (void *)5000),
                            weft_spawn(NULL, sleeper, (void *)5000)};
    weft_future *g = weft_spawn(NULL, gather_victim, kids);
    weft_sleep(5);
    ck_assert_int_eq(weft_cancel(g), 0);
    ck_assert_int_eq(weft_await(g, NULL), -ECANCELED);
    /* Cancelling a gather cancels what it gathers. */
    ck_assert_int_eq(weft_await(kids[0], NULL), -ECANCELED);
    ck_assert_int_eq(weft_await(kids[1], NULL), -ECANCELED);
    weft_future_release(g);
    weft_future_release(kids[0]);
    weft_future_release(kids[1]);
    return NULL;
}

START_TEST(cancelling_a_gather_cancels_its_futures)
{
    ck_assert_int_eq(weft_run(cancel_gatherer, NULL, NULL), 0);
}
END_TEST

/* ---- wait ---- */

static void *wait_main(void *arg)
{
    (void)arg;
    weft_future *fs[3] = {
        weft_spawn(NULL, sleeper, (void *)40),
        weft_spawn(NULL, sleeper, (void *)5),
        weft_spawn(NULL, sleeper, (void *)-EIO), /* 5 ms... */
    };
    ck_assert_int_eq(weft_wait(fs, 3, WEFT_FIRST_COMPLETED, -1), 2);
    ck_assert(!weft_future_done(fs[0]));
    weft_future *hs[2] = {weft_spawn(NULL, sleeper, (void *)30),
                          weft_spawn(NULL, sleeper, (void *)-EIO)};
    ck_assert_int_eq(weft_wait(hs, 2, WEFT_FIRST_EXCEPTION, -1), 1);
    ck_assert(!weft_future_done(hs[0])); /* wait cancels nothing */
    /* A timeout: fewer done than asked. */
    ck_assert_int_eq(weft_wait(fs, 3, WEFT_ALL_COMPLETED, 1), 2);
    ck_assert_int_eq(weft_wait(fs, 3, WEFT_ALL_COMPLETED, -1), 3);
    ck_assert_int_eq(weft_await(hs[0], NULL), 0);
    weft_future *never = weft_future_new();
    ck_assert_int_eq(weft_wait(&never, 1, WEFT_FIRST_COMPLETED, 10), 0);
    ck_assert_int_eq(weft_wait(&never, 1, 99, 10), -EINVAL);
    weft_future_release(never);
    for (int i = 0; i < 3; i++)
        weft_future_release(fs[i]);
    weft_future_release(hs[0]);
    weft_future_release(hs[1]);
    return NULL;
}

START_TEST(wait_returns_how_many_are_done_in_each_mode)
{
    ck_assert_int_eq(weft_run(wait_main, NULL, NULL), 0);
}
END_TEST

/* ---- other threads ---- */

static void *resolve_soon(void *arg)
{
    usleep(20000);
    weft_future_resolve(arg, (void *)7);
    return NULL;
}

START_TEST(plain_threads_block_where_loop_threads_would_deadlock)
{
    weft_future *p = weft_future_new(), *q = weft_future_new();
    pthread_t th;
    pthread_create(&th, NULL, resolve_soon, p);
    /* A plain thread blocks in gather and wait. */
    weft_future *both[2] = {p, q};
    ck_assert_int_eq(weft_wait(both, 2, WEFT_FIRST_COMPLETED, 5000), 1);
    pthread_join(th, NULL);
    void *r;
    ck_assert_int_eq(weft_gather(&p, 1, &r, NULL, WEFT_GATHER_ALL), 0);
    ck_assert_ptr_eq(r, (void *)7);
    ck_assert_int_eq(weft_await_timeout(q, 10, NULL), -ETIMEDOUT);
    ck_assert_int_eq(weft_future_result(q, NULL), -ECANCELED);
    /* A thread with a loop, outside its fibers: -EDEADLK. */
    weft_loop *loop = weft_loop_new();
    ck_assert_int_eq(weft_loop_run(loop), 0); /* binds it here */
    weft_future *z = weft_future_new();
    ck_assert_int_eq(weft_gather(&z, 1, NULL, NULL, WEFT_GATHER_ALL), -EDEADLK);
    ck_assert_int_eq(weft_wait(&z, 1, WEFT_ALL_COMPLETED, -1), -EDEADLK);
    weft_loop_free(loop);
    weft_future_release(z);
    weft_future_release(p);
    weft_future_release(q);
}
END_TEST

static void *twice(void *arg)
{
    return (void *)((uintptr_t)arg * 2);
}

static void *on_which_loop(void *arg)
{
    (void)arg;
    return weft_loop_current();
}

START_TEST(submit_runs_a_fiber_on_a_loop_in_its_own_thread)
{
    weft_loop *loop = NULL;
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    ck_assert_ptr_nonnull(loop);
    void *r;
    weft_future *f = weft_submit(loop, twice, (void *)21);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(weft_await(f, &r), 0);
    ck_assert_ptr_eq(r, (void *)42);
    weft_future_release(f);
    f = weft_submit(loop, on_which_loop, NULL);
    ck_assert_int_eq(weft_await(f, &r), 0);
    ck_assert_ptr_eq(r, loop);
    weft_future_release(f);
    /* Idle, it keeps waiting for work instead of returning. */
    usleep(20000);
    f = weft_submit(loop, twice, (void *)1);
    ck_assert_int_eq(weft_await(f, &r), 0);
    weft_future_release(f);
    errno = 0;
    ck_assert_ptr_null(weft_submit(NULL, twice, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);
    weft_loop *plain = weft_loop_new();
    ck_assert_int_eq(weft_loop_join_thread(plain), -EINVAL);
    weft_loop_free(plain);
}
END_TEST

/* A fiber of one loop awaiting a task of a loop in another thread. */
static void *await_across(void *arg)
{
    weft_loop *other = arg;
    weft_future *f = weft_submit(other, sleeper, (void *)10);
    void *r;
    int rc = weft_await(f, &r);
    weft_future_release(f);
    return rc ? WEFT_ERR_PTR(rc) : r;
}

START_TEST(fibers_await_tasks_of_other_loops)
{
    weft_loop *other;
    ck_assert_int_eq(weft_loop_start_thread(&other), 0);
    void *r;
    ck_assert_int_eq(weft_run(await_across, other, &r), 0);
    ck_assert_ptr_eq(r, (void *)10);
    ck_assert_int_eq(weft_loop_join_thread(other), 0);
}
END_TEST

static int order[1000];
static atomic_int norder;
static void record(void *arg)
{
    order[atomic_fetch_add(&norder, 1)] = (int)(intptr_t)arg;
}

static void *poster(void *arg)
{
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(
            weft_call_soon_threadsafe(arg, record, (void *)(intptr_t)i), 0);
    return NULL;
}

static atomic_int loop_blocked, posted_all;

static void block_loop(void *arg)
{
    (void)arg;
    /* The loop is busy until every call is posted: they pile up (no
     * fixed sleep: under qemu posting 1,000 calls takes longer). */
    atomic_store(&loop_blocked, 1);
    for (int i = 0; i < 10000 && !atomic_load(&posted_all); i++)
        usleep(1000);
}

extern unsigned long weft__poller_wake_syscalls;

START_TEST(calls_from_other_threads_run_in_order_with_one_wake_up)
{
    weft_loop *loop;
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    atomic_store(&loop_blocked, 0);
    atomic_store(&posted_all, 0);
    ck_assert_int_eq(weft_call_soon_threadsafe(loop, block_loop, NULL), 0);
    while (!atomic_load(&loop_blocked)) /* block_loop is running */
        usleep(1000);
    unsigned long before =
        __atomic_load_n(&weft__poller_wake_syscalls, __ATOMIC_RELAXED);
    atomic_store(&norder, 0);
    pthread_t th;
    pthread_create(&th, NULL, poster, loop);
    pthread_join(th, NULL);
    /* 1000 calls while the loop was busy: at most one wake-up syscall. */
    ck_assert_uint_le(
        __atomic_load_n(&weft__poller_wake_syscalls, __ATOMIC_RELAXED) - before,
        1);
    atomic_store(&posted_all, 1);
    ck_assert_int_eq(weft_loop_join_thread(loop), 0); /* runs what is left */
    ck_assert_int_eq(atomic_load(&norder), 1000);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(order[i], i);
    ck_assert_int_eq(weft_call_soon_threadsafe(NULL, record, NULL), -EINVAL);
}
END_TEST

/* A done-callback registered by a fiber runs on that fiber's loop, even
 * when another thread completes the future. */
static pthread_t cb_thread;
static void note_thread(weft_future *f, void *arg)
{
    (void)f;
    (void)arg;
    cb_thread = pthread_self();
}

static void *register_and_wait(void *arg)
{
    weft_future *p = arg;
    ck_assert_int_eq(weft_future_on_done(p, note_thread, p), 0);
    ck_assert_int_eq(weft_await(p, NULL), 0);
    weft_sleep(1); /* the callback is queued on this loop */
    return NULL;
}

START_TEST(done_callbacks_run_on_the_registering_loop_across_threads)
{
    weft_future *p = weft_future_new();
    weft_loop *loop = weft_loop_new();
    weft_future *f = weft_spawn(loop, register_and_wait, p);
    pthread_t th;
    pthread_create(&th, NULL, resolve_soon, p);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);
    weft_future_release(p);
    /* The resolver posts the callback after it wakes the fiber: under
     * qemu the fiber's 1 ms sleep can end, and the run with it, before
     * the post arrives. A call posted to a loop runs at the latest in
     * weft_loop_free, on this thread: check after it. */
    weft_loop_free(loop);
    ck_assert(pthread_equal(cb_thread, pthread_self()));
}
END_TEST

/* ---- many submitters ---- */

struct submitter {
    weft_loop *loop;
    long n;
    int id;
    long bad;
};

static void *square_id(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    return (void *)(v * 3 + 1);
}

static void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    weft_future **fs = calloc((size_t)s->n, sizeof *fs);
    for (long i = 0; i < s->n; i++) {
        fs[i] = weft_submit(s->loop, square_id,
                            (void *)(uintptr_t)(s->id * 10000000 + i));
        ck_assert_ptr_nonnull(fs[i]);
    }
    for (long i = 0; i < s->n; i++) {
        void *r;
        if (weft_await(fs[i], &r) != 0 ||
            (uintptr_t)r != (uintptr_t)(s->id * 10000000 + i) * 3 + 1)
            s->bad++;
        weft_future_release(fs[i]);
    }
    free(fs);
    return NULL;
}

START_TEST(four_threads_submit_a_hundred_thousand_fibers_each)
{
    const long n = scaled(100000, 5000);
    weft_loop *loop;
    ck_assert_int_eq(weft_loop_start_thread(&loop), 0);
    pthread_t th[4];
    struct submitter s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (struct submitter){loop, n, i, 0};
        pthread_create(&th[i], NULL, submitter_main, &s[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(s[i].bad, 0);
    }
    ck_assert_int_eq(weft_loop_join_thread(loop), 0);
}
END_TEST

/* ---- the executor ---- */

static void *block_200ms(void *arg)
{
    usleep(200000);
    return arg;
}

static atomic_int ticks;
static atomic_bool ticking;
static int64_t max_gap;

static void *ticker(void *arg)
{
    (void)arg;
    int64_t last = now_ms();
    while (atomic_load(&ticking)) {
        weft_sleep(10);
        int64_t t = now_ms();
        if (t - last > max_gap)
            max_gap = t - last;
        last = t;
        atomic_fetch_add(&ticks, 1);
    }
    return NULL;
}

static void *executor_main(void *arg)
{
    weft_executor *ex = arg;
    atomic_store(&ticking, true);
    weft_future *tick = weft_spawn(NULL, ticker, NULL);
    int64_t t0 = now_ms();
    for (intptr_t i = 0; i < 5; i++) { /* one by one: about 1 s */
        weft_future *f = weft_run_in_executor(ex, block_200ms, (void *)i);
        void *r;
        ck_assert_int_eq(weft_await(f, &r), 0);
        ck_assert_ptr_eq(r, (void *)i);
        weft_future_release(f);
    }
    int64_t serial = now_ms() - t0;
    t0 = now_ms();
    weft_future *fs[5];
    for (intptr_t i = 0; i < 5; i++)
        fs[i] = weft_run_in_executor(ex, block_200ms, (void *)i);
    void *res[5];
    ck_assert_int_eq(weft_gather(fs, 5, res, NULL, WEFT_GATHER_ALL), 0);
    int64_t parallel = now_ms() - t0;
    for (int i = 0; i < 5; i++) {
        ck_assert_ptr_eq(res[i], (void *)(intptr_t)i);
        weft_future_release(fs[i]);
    }
    atomic_store(&ticking, false);
    weft_await(tick, NULL);
    weft_future_release(tick);
    ck_assert_int_ge(serial, 990);
    ck_assert_int_lt(serial, 1600);
    ck_assert_int_ge(parallel, 195);
    ck_assert_int_lt(parallel, 600);
    /* The loop never blocked: the ticker ran all along, every 10 ms. */
    int64_t total = serial + parallel;
    ck_assert_int_ge(atomic_load(&ticks), (int)(total / 10) * 6 / 10);
    ck_assert_msg(max_gap < 150, "ticker stalled for %lld ms",
                  (long long)max_gap);
    return NULL;
}

START_TEST(blocking_jobs_run_beside_a_loop_that_keeps_ticking)
{
    weft_executor *ex = weft_executor_new(8);
    ck_assert_ptr_nonnull(ex);
    ck_assert_int_eq(weft_run(executor_main, ex, NULL), 0);
    weft_executor_free(ex);
}
END_TEST

static void *executor_default_main(void *arg)
{
    (void)arg;
    weft_future *f = weft_run_in_executor(NULL, twice, (void *)4);
    void *r;
    ck_assert_int_eq(weft_await(f, &r), 0);
    ck_assert_ptr_eq(r, (void *)8);
    weft_future_release(f);
    return NULL;
}

START_TEST(the_default_executor_is_made_on_first_use)
{
    ck_assert_int_eq(weft_run(executor_default_main, NULL, NULL), 0);
    errno = 0;
    ck_assert_ptr_null(weft_run_in_executor(NULL, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(executor_free_waits_for_running_jobs_and_cancels_queued_ones)
{
    weft_executor *ex = weft_executor_new(1);
    weft_future *running = weft_run_in_executor(ex, block_200ms, (void *)1);
    usleep(50000); /* it has started */
    weft_future *queued = weft_run_in_executor(ex, block_200ms, (void *)2);
    weft_future *dropped = weft_run_in_executor(ex, block_200ms, (void *)3);
    ck_assert_int_eq(weft_cancel(dropped), 0); /* cancelled while queued */
    int64_t t0 = now_ms();
    weft_executor_free(ex);
    ck_assert_int_lt(now_ms() - t0, 400); /* not 3 x 200 ms */
    void *r;
    ck_assert_int_eq(weft_future_result(running, &r), 0);
    ck_assert_ptr_eq(r, (void *)1);
    ck_assert_int_eq(weft_future_result(queued, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_result(dropped, NULL), -ECANCELED);
    weft_future_release(running);
    weft_future_release(queued);
    weft_future_release(dropped);
}
END_TEST

/* ---- misuse ---- */

static void released_child(void *arg)
{
    (void)arg;
    setenv("WEFT_DEBUG", "1", 1);
    weft_future *f = weft_future_new();
    weft_future_release(f);
    int rc = weft_future_resolve(f, NULL);
    int rc2 = weft_await(f, NULL);
    _exit(rc == -EINVAL && rc2 == -EINVAL ? 0 : 1);
}

START_TEST(a_released_future_is_named_in_debug_mode)
{
    char out[512];
    int st = run_child(released_child, NULL, out, sizeof out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st,
                  out);
    ck_assert_ptr_nonnull(strstr(out, "weft: weft_future_resolve: future "));
    ck_assert_ptr_nonnull(strstr(out, "used after its last release"));
}
END_TEST

/* ---- a fiber's end hands straight over to the next one ---- */

static void *yields_then_returns(void *arg)
{
    weft_yield();
    return arg;
}

/* Spawns n fibers of stack sizes cycling through nsizes sizes, all ending
 * in the same batch, and checks every result (gather) and a direct await
 * of each. Past the thread's hot stack pool (64) and its size classes (4),
 * a fiber's end goes back through the loop: both ways are exercised. */
static void spawn_many(int n, int nsizes)
{
    weft_future **fs = calloc((size_t)n, sizeof *fs);
    void **rs = calloc((size_t)n, sizeof *rs);
    ck_assert_ptr_nonnull(fs);
    ck_assert_ptr_nonnull(rs);
    for (int i = 0; i < n; i++) {
        weft_spawn_opts o = {.stack_size =
                                 (size_t)(64 + 16 * (i % nsizes)) * 1024};
        fs[i] =
            weft_spawn_ex(NULL, yields_then_returns, (void *)(intptr_t)i, &o);
        ck_assert_ptr_nonnull(fs[i]);
    }
    ck_assert_int_eq(weft_gather(fs, (size_t)n, rs, NULL, 0), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_ptr_eq(rs[i], (void *)(intptr_t)i);
        void *r = NULL;
        ck_assert_int_eq(weft_await(fs[i], &r), 0);
        ck_assert_ptr_eq(r, (void *)(intptr_t)i);
        weft_future_release(fs[i]);
    }
    free(fs);
    free(rs);
}

/* A socket, a timer and another thread posting calls around: a fiber's
 * end must lose none of that work. */
static atomic_int posted_ran;

static void count_posted(void *arg)
{
    (void)arg;
    atomic_fetch_add(&posted_ran, 1);
}

static void *posts_calls(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(weft_call_soon_threadsafe(arg, count_posted, NULL), 0);
        if (i % 100 == 0)
            sched_yield();
    }
    return NULL;
}

static void *reads_a_byte(void *arg)
{
    char c;
    return (void *)(intptr_t)weft_read((int)(intptr_t)arg, &c, 1, 10000);
}

static void *spawn_await_main(void *arg)
{
    (void)arg;
    int sp[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    weft_future *reader =
        weft_spawn(NULL, reads_a_byte, (void *)(intptr_t)sp[0]);
    weft_future *sleeper5 = weft_spawn(NULL, sleeper, (void *)5);
    atomic_store(&posted_ran, 0);
    pthread_t th;
    ck_assert_int_eq(
        pthread_create(&th, NULL, posts_calls, weft_loop_current()), 0);

    /* One at a time: the child's end switches back to its awaiter. */
    for (intptr_t i = 0; i < 20000; i++) {
        weft_future *f = weft_spawn(NULL, yields_then_returns, (void *)i);
        void *r = NULL;
        ck_assert_int_eq(weft_await(f, &r), 0);
        ck_assert_ptr_eq(r, (void *)i);
        weft_future_release(f);
        if (i == 10000)
            ck_assert_int_eq(write(sp[1], "x", 1), 1);
    }
    spawn_many(300, 1);
    spawn_many(300, 6);
    /* A fiber with no future of its own ends the same way. */
    static int ran;
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(weft_go(NULL, yields_then_returns, &ran), 0);

    void *r = NULL;
    ck_assert_int_eq(weft_await(reader, &r), 0);
    ck_assert_ptr_eq(r, (void *)1);
    ck_assert_int_eq(weft_await(sleeper5, &r), 0);
    pthread_join(th, NULL);
    while (atomic_load(&posted_ran) < 1000)
        weft_sleep(1);
    weft_future_release(reader);
    weft_future_release(sleeper5);
    close(sp[0]);
    close(sp[1]);
    return NULL;
}

START_TEST(a_fibers_end_switches_straight_to_its_awaiter)
{
    ck_assert_int_eq(weft_run(spawn_await_main, NULL, NULL), 0);
}
END_TEST

static void *resolves_later(void *arg)
{
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(weft_future_resolve(arg, (void *)7), -EINVAL);
    ck_assert_int_eq(weft_future_fail(arg, -EIO), -EINVAL);
    return NULL;
}

static void *sleeps_long(void *arg)
{
    (void)arg;
    weft_sleep(200);
    return (void *)1;
}

static void *awaits_until_cancelled(void *arg)
{
    int rc = weft_await(arg, NULL);
    ck_assert_int_eq(rc, -ECANCELED);
    /* The task it gave up on ends while this sleeps: its end must not
     * wake this fiber (the waiter left the list). */
    int64_t t0 = now_ms();
    ck_assert_int_eq(weft_sleep(300), 0);
    ck_assert_int_ge(now_ms() - t0, 290);
    return NULL;
}

static void *await_edges_main(void *arg)
{
    (void)arg;
    /* An awaiter cancelled while its task runs on. */
    weft_future *t = weft_spawn(NULL, sleeps_long, NULL);
    weft_future *a = weft_spawn(NULL, awaits_until_cancelled, t);
    weft_yield();
    ck_assert_int_eq(weft_cancel(a), 0);
    ck_assert_int_eq(weft_await(a, NULL), 0);
    void *r = NULL;
    ck_assert_int_eq(weft_await(t, &r), 0);
    ck_assert_ptr_eq(r, (void *)1);
    weft_future_release(a);
    weft_future_release(t);

    /* A task's future is its task's to complete: another thread's
     * resolve or fail is refused, and the awaiter gets the task's own
     * result. */
    t = weft_spawn(NULL, sleeps_long, NULL);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, resolves_later, t), 0);
    ck_assert_int_eq(weft_await(t, &r), 0);
    ck_assert_ptr_eq(r, (void *)1);
    pthread_join(th, NULL);
    ck_assert_int_eq(weft_future_fail(t, -EIO), -EINVAL);
    weft_future_release(t);
    return NULL;
}

START_TEST(awaits_survive_cancellation_and_refuse_foreign_completion)
{
    ck_assert_int_eq(weft_run(await_edges_main, NULL, NULL), 0);
}
END_TEST

static int until_rounds;

static void *yields_forever_until(void *arg)
{
    volatile int *stop = arg;
    while (!*stop)
        weft_yield();
    return NULL;
}

static void *yields_a_little(void *arg)
{
    for (int i = 0; i < 10; i++)
        weft_yield();
    until_rounds++;
    return arg;
}

START_TEST(run_until_returns_while_others_hand_over_without_timers)
{
    /* No timer, no descriptor: nothing makes the loop visit the kernel,
     * and two fibers hand over to each other without pause. run_until
     * still returns once its future is done, also when that future's
     * fiber ends by switching straight to them. */
    weft_loop *loop = weft_loop_new();
    static volatile int stop;
    stop = 0;
    weft_future *a = weft_spawn(loop, yields_forever_until, (void *)&stop);
    weft_future *b = weft_spawn(loop, yields_forever_until, (void *)&stop);
    for (int i = 0; i < 3; i++) {
        weft_future *u = weft_spawn(loop, yields_a_little, NULL);
        ck_assert_int_eq(weft_loop_run_until(loop, u), 0);
        ck_assert(weft_future_done(u));
        weft_future_release(u);
    }
    ck_assert_int_eq(until_rounds, 3);
    stop = 1;
    ck_assert_int_eq(weft_loop_run(loop), 0);
    weft_future_release(a);
    weft_future_release(b);
    weft_loop_free(loop);
}
END_TEST

static Suite *futures_suite(void)
{
    Suite *s = suite_create("futures");
    TCase *tc = tcase_create("futures");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, await_timeout_cancels_what_it_gave_up_on);
    tcase_add_test(tc, gather_collects_in_order_and_fails_fast_on_request);
    tcase_add_test(tc, cancelling_a_gather_cancels_its_futures);
    tcase_add_test(tc, wait_returns_how_many_are_done_in_each_mode);
    tcase_add_test(tc, plain_threads_block_where_loop_threads_would_deadlock);
    tcase_add_test(tc, submit_runs_a_fiber_on_a_loop_in_its_own_thread);
    tcase_add_test(tc, fibers_await_tasks_of_other_loops);
    tcase_add_test(tc, calls_from_other_threads_run_in_order_with_one_wake_up);
    tcase_add_test(tc,
                   done_callbacks_run_on_the_registering_loop_across_threads);
    tcase_add_test(tc, four_threads_submit_a_hundred_thousand_fibers_each);
    tcase_add_test(tc, blocking_jobs_run_beside_a_loop_that_keeps_ticking);
    tcase_add_test(tc, the_default_executor_is_made_on_first_use);
    tcase_add_test(
        tc, executor_free_waits_for_running_jobs_and_cancels_queued_ones);
    tcase_add_test(tc, a_released_future_is_named_in_debug_mode);
    suite_add_tcase(s, tc);
    /* A fiber's end on its own stack: also run under valgrind (make
     * test-native), since the sanitizer builds end fibers on the loop. */
    TCase *ho = tcase_create("handover");
    tcase_set_timeout(ho, 120);
    tcase_add_test(ho, a_fibers_end_switches_straight_to_its_awaiter);
    tcase_add_test(ho,
                   awaits_survive_cancellation_and_refuse_foreign_completion);
    tcase_add_test(ho, run_until_returns_while_others_hand_over_without_timers);
    suite_add_tcase(s, ho);
    return s;
}

int main(void)
{
    return run_suite(futures_suite());
}
