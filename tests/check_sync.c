/* SPDX-License-Identifier: MIT */
/* Mutex, condition, semaphore, event and channels; cancelling a fiber
 * suspended in each kind of wait. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "weft.h"

static int seq[64];
static int nseq;

/* ---- mutex ---- */

static weft_mutex *mu;

static void *locker(void *arg)
{
    int id = (int)(intptr_t)arg;
    ck_assert_int_eq(weft_mutex_lock(mu, -1), 0);
    seq[nseq++] = id;
    weft_yield(); /* hold it across a suspension */
    ck_assert_int_eq(weft_mutex_unlock(mu), 0);
    return NULL;
}

static void *greedy(void *arg)
{
    (void)arg;
    /* Unlock and lock again at once: the fibers already waiting go first
     * (FIFO hand-off, no barging). */
    ck_assert_int_eq(weft_mutex_lock(mu, -1), 0);
    weft_yield(); /* the others queue up behind */
    seq[nseq++] = 100;
    ck_assert_int_eq(weft_mutex_unlock(mu), 0);
    ck_assert_int_eq(weft_mutex_lock(mu, -1), 0);
    seq[nseq++] = 101;
    ck_assert_int_eq(weft_mutex_unlock(mu), 0);
    return NULL;
}

START_TEST(mutex_hands_off_in_fifo_order_without_barging)
{
    nseq = 0;
    mu = weft_mutex_new();
    weft_loop *loop = weft_loop_new();
    weft_go(loop, greedy, NULL);
    for (int i = 1; i <= 3; i++)
        weft_go(loop, locker, (void *)(intptr_t)i);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    int want[] = {100, 1, 2, 3, 101};
    ck_assert_int_eq(nseq, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(seq[i], want[i]);
    ck_assert_int_eq(weft_mutex_free(mu), 0);
    weft_loop_free(loop);
}
END_TEST

static void *mutex_misuse(void *arg)
{
    weft_mutex *m = arg;
    ck_assert_int_eq(weft_mutex_unlock(m), -EPERM); /* not held */
    ck_assert_int_eq(weft_mutex_lock(m, 0), 0);
    ck_assert_int_eq(weft_mutex_lock(m, -1), -EDEADLK);
    ck_assert_int_eq(weft_mutex_free(m), -EBUSY);
    weft_sleep(30); /* the contender finds it held meanwhile */
    ck_assert_int_eq(weft_mutex_unlock(m), 0);
    return NULL;
}

static void *mutex_contender(void *arg)
{
    weft_mutex *m = arg;
    ck_assert_int_eq(weft_mutex_trylock(m), -EBUSY);
    ck_assert_int_eq(weft_mutex_lock(m, 0), -ETIMEDOUT);
    ck_assert_int_eq(weft_mutex_lock(m, 10), -ETIMEDOUT);
    return NULL;
}

static void *lock_on_other_loop(void *arg)
{
    return WEFT_ERR_PTR(weft_mutex_lock(arg, 0));
}

START_TEST(mutex_misuse_gets_an_error)
{
    weft_mutex *m = weft_mutex_new();
    weft_loop *loop = weft_loop_new();
    weft_go(loop, mutex_misuse, m); /* leaves m locked */
    weft_go(loop, mutex_contender, m);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    /* Outside fibers, or from a fiber of another loop: -EPERM. */
    ck_assert_int_eq(weft_mutex_lock(m, 0), -EPERM);
    weft_loop *other = weft_loop_new();
    weft_future *f = weft_spawn(other, lock_on_other_loop, m);
    ck_assert_int_eq(weft_loop_run(other), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), -EPERM);
    weft_future_release(f);
    weft_loop_free(other);
    weft_loop_free(loop);
    ck_assert_int_eq(weft_mutex_free(m), 0);
    ck_assert_int_eq(weft_mutex_free(NULL), -EINVAL);
}
END_TEST

/* ---- condition ---- */

static weft_cond *cv;
static int items;

static void *consumer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weft_mutex_lock(mu, -1), 0);
    while (items == 0)
        ck_assert_int_eq(weft_cond_wait(cv, mu, -1), 0);
    items--;
    seq[nseq++] = 1;
    ck_assert_int_eq(weft_mutex_unlock(mu), 0);
    return NULL;
}

static void *producer(void *arg)
{
    (void)arg;
    weft_sleep(5);
    ck_assert_int_eq(weft_mutex_lock(mu, -1), 0);
    items = 3;
    ck_assert_int_eq(weft_cond_broadcast(cv), 0);
    ck_assert_int_eq(weft_mutex_unlock(mu), 0);
    return NULL;
}

static void *cond_timeout(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weft_mutex_lock(mu, -1), 0);
    ck_assert_int_eq(weft_cond_wait(cv, mu, 5), -ETIMEDOUT);
    /* Whatever it returns, it returns holding the mutex. */
    ck_assert_int_eq(weft_mutex_trylock(mu), -EDEADLK);
    ck_assert_int_eq(weft_mutex_unlock(mu), 0);
    ck_assert_int_eq(weft_cond_wait(cv, mu, 5), -EPERM); /* not held */
    return NULL;
}

START_TEST(cond_wakes_waiters_and_they_hold_the_mutex_again)
{
    nseq = 0;
    items = 0;
    mu = weft_mutex_new();
    cv = weft_cond_new();
    weft_loop *loop = weft_loop_new();
    for (int i = 0; i < 3; i++)
        weft_go(loop, consumer, NULL);
    weft_go(loop, producer, NULL);
    weft_go(loop, cond_timeout, NULL);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(nseq, 3);
    ck_assert_int_eq(items, 0);
    ck_assert_int_eq(weft_cond_free(cv), 0);
    ck_assert_int_eq(weft_mutex_free(mu), 0);
    weft_loop_free(loop);
}
END_TEST

/* ---- semaphore and event ---- */

static weft_sem *sem;
static int inside, max_inside;

static void *limited(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weft_sem_acquire(sem, -1), 0);
    if (++inside > max_inside)
        max_inside = inside;
    weft_sleep(2);
    inside--;
    ck_assert_int_eq(weft_sem_release(sem), 0);
    return NULL;
}

START_TEST(semaphore_bounds_how_many_fibers_are_inside)
{
    sem = weft_sem_new(2);
    inside = max_inside = 0;
    weft_loop *loop = weft_loop_new();
    for (int i = 0; i < 10; i++)
        weft_go(loop, limited, NULL);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(max_inside, 2);
    ck_assert_int_eq(weft_sem_free(sem), 0);
    weft_loop_free(loop);
}
END_TEST

static weft_event *ev;

static void *event_waiter(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weft_event_wait(ev, 1000), 0);
    seq[nseq++] = 1;
    return NULL;
}

static void *event_setter(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weft_event_wait(ev, 5), -ETIMEDOUT);
    ck_assert(!weft_event_is_set(ev));
    ck_assert_int_eq(weft_event_set(ev), 0);
    ck_assert_int_eq(weft_event_wait(ev, 0), 0); /* set: at once */
    ck_assert_int_eq(weft_event_clear(ev), 0);
    ck_assert_int_eq(weft_event_wait(ev, 0), -ETIMEDOUT);
    return NULL;
}

START_TEST(event_set_wakes_every_waiter)
{
    nseq = 0;
    ev = weft_event_new();
    weft_loop *loop = weft_loop_new();
    for (int i = 0; i < 4; i++)
        weft_go(loop, event_waiter, NULL);
    weft_go(loop, event_setter, NULL);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(nseq, 4);
    ck_assert_int_eq(weft_event_free(ev), 0);
    weft_loop_free(loop);
}
END_TEST

/* ---- channels ---- */

static void *chan_ponger(void *arg)
{
    weft_chan **ch = arg;
    for (;;) {
        void *v;
        int rc = weft_chan_recv(ch[0], &v, -1);
        if (rc == -EPIPE)
            break;
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(weft_chan_send(ch[1], (void *)((uintptr_t)v + 1), -1),
                         0);
    }
    return NULL;
}

static void *chan_pinger(void *arg)
{
    weft_chan **ch = arg;
    uintptr_t v = 0;
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(weft_chan_send(ch[0], (void *)v, -1), 0);
        void *back;
        ck_assert_int_eq(weft_chan_recv(ch[1], &back, -1), 0);
        ck_assert_uint_eq((uintptr_t)back, v + 1);
        v = (uintptr_t)back;
    }
    ck_assert_int_eq(weft_chan_close(ch[0]), 0);
    return (void *)v;
}

START_TEST(unbuffered_channels_ping_pong_between_fibers)
{
    weft_chan *ch[2] = {weft_chan_new(0), weft_chan_new(0)};
    weft_loop *loop = weft_loop_new();
    weft_go(loop, chan_ponger, ch);
    weft_future *f = weft_spawn(loop, chan_pinger, ch);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    void *r;
    ck_assert_int_eq(weft_future_result(f, &r), 0);
    ck_assert_uint_eq((uintptr_t)r, 1000);
    weft_future_release(f);
    weft_loop_free(loop);
    ck_assert_int_eq(weft_chan_free(ch[0]), 0);
    ck_assert_int_eq(weft_chan_free(ch[1]), 0);
}
END_TEST

START_TEST(a_closed_channel_drains_then_reports_epipe)
{
    weft_chan *ch = weft_chan_new(3);
    for (uintptr_t i = 1; i <= 3; i++)
        ck_assert_int_eq(weft_chan_send(ch, (void *)i, 0), 0);
    ck_assert_int_eq(weft_chan_send(ch, (void *)4, 0), -ETIMEDOUT); /* full */
    ck_assert_int_eq(weft_chan_send(ch, (void *)4, 10), -ETIMEDOUT);
    ck_assert_int_eq(weft_chan_close(ch), 0);
    ck_assert_int_eq(weft_chan_close(ch), -EPIPE);
    ck_assert_int_eq(weft_chan_send(ch, (void *)5, 0), -EPIPE);
    for (uintptr_t i = 1; i <= 3; i++) {
        void *v;
        ck_assert_int_eq(weft_chan_recv(ch, &v, 0), 0);
        ck_assert_uint_eq((uintptr_t)v, i);
    }
    ck_assert_int_eq(weft_chan_recv(ch, NULL, -1), -EPIPE);
    ck_assert_int_eq(weft_chan_free(ch), 0);
    weft_chan *u = weft_chan_new(0);
    ck_assert_int_eq(weft_chan_recv(u, NULL, 10), -ETIMEDOUT); /* a thread */
    ck_assert_int_eq(weft_chan_free(u), 0);
    ck_assert_int_eq(weft_chan_send(NULL, NULL, 0), -EINVAL);
}
END_TEST

/* Timed channel waits in fibers: a hand-over to a waiter whose deadline
 * is armed, a wait that times out and leaves the channel clean, and a
 * wait on a loop's thread outside its fibers. */
static weft_chan *tch;

static void *timed_receiver(void *arg)
{
    (void)arg;
    void *v = NULL;
    ck_assert_int_eq(weft_chan_recv(tch, &v, 5000), 0); /* gets 42 */
    ck_assert_uint_eq((uintptr_t)v, 42);
    ck_assert_int_eq(weft_chan_recv(tch, &v, 20), -ETIMEDOUT);
    ck_assert_int_eq(weft_chan_send(tch, (void *)7, 20), -ETIMEDOUT);
    ck_assert_int_eq(weft_chan_recv(tch, &v, 5000), 0); /* gets 43 */
    ck_assert_uint_eq((uintptr_t)v, 43);
    ck_assert_int_eq(weft_chan_send(tch, (void *)44, 5000), 0);
    return NULL;
}

static void *timed_sender(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weft_chan_send(tch, (void *)42, -1), 0);
    weft_sleep(100); /* the receiver times out twice meanwhile */
    ck_assert_int_eq(weft_chan_send(tch, (void *)43, -1), 0);
    void *v = NULL;
    ck_assert_int_eq(weft_chan_recv(tch, &v, -1), 0);
    ck_assert_uint_eq((uintptr_t)v, 44);
    return NULL;
}

static int outside_rc[2];

static void chan_outside_fibers(void *arg)
{
    (void)arg;
    outside_rc[0] = weft_chan_recv(tch, NULL, -1);
    outside_rc[1] = weft_chan_send(tch, NULL, 1000);
}

START_TEST(timed_channel_waits_in_fibers_time_out_or_get_their_item)
{
    tch = weft_chan_new(0);
    weft_loop *loop = weft_loop_new();
    weft_future *r = weft_spawn(loop, timed_receiver, NULL);
    weft_future *s = weft_spawn(loop, timed_sender, NULL);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(weft_future_result(r, NULL), 0);
    ck_assert_int_eq(weft_future_result(s, NULL), 0);
    weft_future_release(r);
    weft_future_release(s);
    /* On the loop's thread but in no fiber: blocking would freeze it. */
    ck_assert_int_eq(weft_call_soon_threadsafe(loop, chan_outside_fibers, NULL),
                     0);
    ck_assert_int_eq(weft_loop_run_once(loop, 1000), 1); /* the callback */
    ck_assert_int_eq(outside_rc[0], -EDEADLK);
    ck_assert_int_eq(outside_rc[1], -EDEADLK);
    weft_loop_free(loop);
    ck_assert_int_eq(weft_chan_free(tch), 0); /* nobody left queued */
}
END_TEST

/* A producer thread, two consumer fibers, 1,000,000 items. */
struct prod {
    weft_chan *ch;
    long n;
};

static void *producer_thread(void *arg)
{
    struct prod *p = arg;
    for (long i = 1; i <= p->n; i++)
        ck_assert_int_eq(weft_chan_send(p->ch, (void *)(uintptr_t)i, -1), 0);
    ck_assert_int_eq(weft_chan_close(p->ch), 0);
    return NULL;
}

static void *summer(void *arg)
{
    weft_chan *ch = arg;
    uint64_t sum = 0;
    long count = 0;
    void *v;
    int rc;
    while ((rc = weft_chan_recv(ch, &v, -1)) == 0) {
        sum += (uintptr_t)v;
        count++;
    }
    ck_assert_int_eq(rc, -EPIPE);
    ck_assert_int_gt(count, 0);
    return (void *)(uintptr_t)sum;
}

START_TEST(a_producer_thread_feeds_two_consumer_fibers_a_million_items)
{
    struct prod p = {weft_chan_new(64), scaled(1000000, 50000)};
    weft_loop *loop = weft_loop_new();
    weft_future *a = weft_spawn(loop, summer, p.ch);
    weft_future *b = weft_spawn(loop, summer, p.ch);
    pthread_t th;
    pthread_create(&th, NULL, producer_thread, &p);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    pthread_join(th, NULL);
    void *sa, *sb;
    ck_assert_int_eq(weft_future_result(a, &sa), 0);
    ck_assert_int_eq(weft_future_result(b, &sb), 0);
    uint64_t n = (uint64_t)p.n;
    ck_assert_uint_eq((uintptr_t)sa + (uintptr_t)sb, n * (n + 1) / 2);
    weft_future_release(a);
    weft_future_release(b);
    weft_loop_free(loop);
    ck_assert_int_eq(weft_chan_free(p.ch), 0);
}
END_TEST

/* Fibers of two loops in two threads, and a plain thread, on one
 * unbuffered channel. */
static void *relay(void *arg)
{
    weft_chan **ch = arg;
    void *v;
    for (int i = 0; i < 2000; i++) {
        ck_assert_int_eq(weft_chan_recv(ch[0], &v, -1), 0);
        ck_assert_int_eq(weft_chan_send(ch[1], v, -1), 0);
    }
    return NULL;
}

START_TEST(channels_connect_fibers_of_different_loops_and_threads)
{
    /* plain thread -> in -> fiber of loop a -> mid -> fiber of loop b ->
     * out -> plain thread, all unbuffered. */
    weft_chan *in = weft_chan_new(0), *mid = weft_chan_new(0),
              *out = weft_chan_new(0);
    weft_loop *a, *b;
    ck_assert_int_eq(weft_loop_start_thread(&a), 0);
    ck_assert_int_eq(weft_loop_start_thread(&b), 0);
    weft_chan *ach[2] = {in, mid}, *bch[2] = {mid, out};
    weft_future *fa = weft_submit(a, relay, ach);
    weft_future *fb = weft_submit(b, relay, bch);
    for (uintptr_t i = 0; i < 2000; i++) {
        ck_assert_int_eq(weft_chan_send(in, (void *)i, 5000), 0);
        void *v;
        ck_assert_int_eq(weft_chan_recv(out, &v, 5000), 0);
        ck_assert_uint_eq((uintptr_t)v, i);
    }
    ck_assert_int_eq(weft_await(fa, NULL), 0);
    ck_assert_int_eq(weft_await(fb, NULL), 0);
    weft_future_release(fa);
    weft_future_release(fb);
    ck_assert_int_eq(weft_loop_join_thread(a), 0);
    ck_assert_int_eq(weft_loop_join_thread(b), 0);
    ck_assert_int_eq(weft_chan_free(in), 0);
    ck_assert_int_eq(weft_chan_free(mid), 0);
    ck_assert_int_eq(weft_chan_free(out), 0);
}
END_TEST

static void chan_after_free_child(void *arg)
{
    (void)arg;
    setenv("WEFT_DEBUG", "1", 1);
    weft_chan *ch = weft_chan_new(1);
    weft_chan_free(ch);
    int a = weft_chan_send(ch, NULL, 0);
    int b = weft_chan_recv(ch, NULL, -1); /* must not hang */
    _exit(a == -EINVAL && b == -EINVAL ? 0 : 1);
}

START_TEST(a_channel_used_after_free_is_named_in_debug_mode)
{
    char out[512];
    int st = run_child(chan_after_free_child, NULL, out, sizeof out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st,
                  out);
    ck_assert_ptr_nonnull(strstr(out, "weft: weft_chan_send: channel "));
    ck_assert_ptr_nonnull(strstr(out, "used after weft_chan_free"));
}
END_TEST

/* ---- cancelling each kind of wait ---- */

static weft_mutex *cmu;
static weft_cond *ccv;
static weft_sem *csem;
static weft_event *cev;
static weft_chan *cch_s, *cch_r; /* nobody receives / sends on them */
static weft_mutex *cmu2;         /* the cond's mutex */
static weft_future *cpromise;
static int csock[2];

enum {
    K_SLEEP,
    K_IO,
    K_AWAIT,
    K_MUTEX,
    K_COND,
    K_SEM,
    K_EVENT,
    K_SEND,
    K_RECV,
    K_GATHER,
    K_NKINDS
};
static const char *kind_name[] = {"sleep",     "io",    "await", "mutex",
                                  "cond",      "sem",   "event", "chan send",
                                  "chan recv", "gather"};
static int cleaned[K_NKINDS];

static void *suspend_in(void *arg)
{
    int k = (int)(intptr_t)arg;
    int rc = 0;
    char c;
    switch (k) {
    case K_SLEEP:
        rc = weft_sleep(100000);
        break;
    case K_IO:
        rc = (int)weft_read(csock[0], &c, 1, -1);
        break;
    case K_AWAIT:
        rc = weft_await(cpromise, NULL);
        break;
    case K_MUTEX:
        rc = weft_mutex_lock(cmu, -1); /* held by the holder fiber */
        break;
    case K_COND:
        ck_assert_int_eq(weft_mutex_lock(cmu2, -1), 0);
        rc = weft_cond_wait(ccv, cmu2, -1);
        ck_assert_int_eq(weft_mutex_unlock(cmu2), 0); /* held again */
        break;
    case K_SEM:
        rc = weft_sem_acquire(csem, -1);
        break;
    case K_EVENT:
        rc = weft_event_wait(cev, -1);
        break;
    case K_SEND:
        rc = weft_chan_send(cch_s, NULL, -1);
        break;
    case K_RECV:
        rc = weft_chan_recv(cch_r, NULL, -1);
        break;
    case K_GATHER:
        rc = weft_gather(&cpromise, 1, NULL, NULL, WEFT_GATHER_ALL);
        break;
    }
    if (rc == -ECANCELED)
        cleaned[k]++; /* it came back from its suspension point */
    return WEFT_ERR_PTR(rc);
}

static void *holder(void *arg)
{
    (void)arg;
    weft_mutex_lock(cmu, -1);
    weft_sleep(50); /* holds it while the others are cancelled */
    weft_mutex_unlock(cmu);
    return NULL;
}

static void *canceller(void *arg)
{
    weft_future **fs = arg;
    weft_sleep(10);
    for (int k = 0; k < K_NKINDS; k++)
        ck_assert_int_eq(weft_cancel(fs[k]), 0);
    return NULL;
}

START_TEST(every_kind_of_suspended_fiber_can_be_cancelled)
{
    cmu = weft_mutex_new();
    cmu2 = weft_mutex_new();
    ccv = weft_cond_new();
    cch_s = weft_chan_new(0);
    cch_r = weft_chan_new(0);
    csem = weft_sem_new(0);
    cev = weft_event_new();
    cpromise = weft_future_new();
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, csock), 0);
    memset(cleaned, 0, sizeof cleaned);
    weft_loop *loop = weft_loop_new();
    weft_go(loop, holder, NULL);
    weft_future *fs[K_NKINDS];
    for (int k = 0; k < K_NKINDS; k++)
        fs[k] = weft_spawn(loop, suspend_in, (void *)(intptr_t)k);
    weft_go(loop, canceller, fs);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    for (int k = 0; k < K_NKINDS; k++) {
        ck_assert_msg(cleaned[k] == 1, "%s: not cancelled", kind_name[k]);
        ck_assert_int_eq(weft_future_result(fs[k], NULL), -ECANCELED);
        weft_future_release(fs[k]);
    }
    weft_loop_free(loop);
    close(csock[0]);
    close(csock[1]);
    ck_assert_int_eq(weft_chan_free(cch_s), 0);
    ck_assert_int_eq(weft_chan_free(cch_r), 0);
    ck_assert_int_eq(weft_mutex_free(cmu2), 0);
    weft_future_release(cpromise);
    ck_assert_int_eq(weft_mutex_free(cmu), 0);
    ck_assert_int_eq(weft_cond_free(ccv), 0);
    ck_assert_int_eq(weft_sem_free(csem), 0);
    ck_assert_int_eq(weft_event_free(cev), 0);
}
END_TEST

/* Two fibers each waiting for the other's mutex: -EDEADLK, not a hang;
 * freeing the loop cancels them and their cleanup unlocks. */
static weft_mutex *dm[2];
static void *crosser(void *arg)
{
    int i = (int)(intptr_t)arg;
    ck_assert_int_eq(weft_mutex_lock(dm[i], -1), 0);
    weft_yield();
    int rc = weft_mutex_lock(dm[1 - i], -1);
    ck_assert_int_eq(rc, -ECANCELED);
    ck_assert_int_eq(weft_mutex_unlock(dm[i]), 0);
    return WEFT_ERR_PTR(rc);
}

START_TEST(a_mutex_deadlock_is_reported_by_run)
{
    dm[0] = weft_mutex_new();
    dm[1] = weft_mutex_new();
    weft_loop *loop = weft_loop_new();
    weft_go(loop, crosser, (void *)0);
    weft_go(loop, crosser, (void *)1);
    ck_assert_int_eq(weft_loop_run(loop), -EDEADLK);
    weft_loop_free(loop);
    ck_assert_int_eq(weft_mutex_free(dm[0]), 0);
    ck_assert_int_eq(weft_mutex_free(dm[1]), 0);
}
END_TEST

/* ---- a fiber that ends holding a mutex (issue 13) ---- */

static void *lock_and_return(void *arg)
{
    return WEFT_ERR_PTR(weft_mutex_lock(arg, -1)); /* and never unlock */
}

/* A later fiber, maybe at the quitter's old address: it must not be
 * taken for the owner. */
static void *later_locker(void *arg)
{
    weft_mutex *m = arg;
    if (weft_mutex_trylock(m) != -EBUSY)
        return WEFT_ERR_PTR(-100);
    if (weft_mutex_unlock(m) != -EPERM)
        return WEFT_ERR_PTR(-101);
    if (weft_mutex_lock(m, 20) != -ETIMEDOUT)
        return WEFT_ERR_PTR(-102);
    return NULL;
}

static void *lock_forever(void *arg)
{
    return WEFT_ERR_PTR(weft_mutex_lock(arg, -1));
}

static void abandoned_mutex_child(void *debug)
{
    int bad = 0;
    weft_loop *loop = weft_loop_new();
    weft_loop_set_debug(loop, debug != NULL);
    weft_mutex *m = weft_mutex_new();
    weft_spawn_opts o = {.name = "quitter"};
    weft_future *q = weft_spawn_ex(loop, lock_and_return, m, &o);
    bad |= weft_loop_run(loop) != 0;
    bad |= weft_future_result(q, NULL) != 0;
    weft_future_release(q);
    for (int i = 0; i < 4; i++) { /* a few, to reuse the quitter's memory */
        weft_future *l = weft_spawn(loop, later_locker, m);
        bad |= (weft_loop_run(loop) != 0) << 1;
        bad |= (weft_future_result(l, NULL) != 0) << 2;
        weft_future_release(l);
    }
    /* Nobody can ever unlock it: a locker without a timeout deadlocks,
     * and the report says whose mutex it was. */
    o.name = "stuck";
    weft_future *s = weft_spawn_ex(loop, lock_forever, m, &o);
    bad |= (weft_loop_run(loop) != -EDEADLK) << 3;
    bad |= (weft_mutex_free(m) != -EBUSY) << 4; /* waited on */
    weft_loop_free(loop);
    bad |= (weft_future_result(s, NULL) != -ECANCELED) << 5;
    weft_future_release(s);
    bad |= (weft_mutex_free(m) != -EBUSY) << 6; /* locked for good */
    _exit(bad);
}

START_TEST(a_fiber_that_ends_holding_a_mutex_leaves_it_locked_and_reported)
{
    char out[2048];
    int st = run_child(abandoned_mutex_child, "debug", out, sizeof out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st,
                  out);
    ck_assert_msg(strstr(out, "weft: fiber 'quitter' finished holding mutex "
                              "0x") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "weft:   fiber 'stuck' waits on mutex 0x") !=
                      NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "abandoned by fiber 'quitter'") != NULL, "%s",
                  out);
}
END_TEST

/* Outside debug mode nothing tracks the mutexes a fiber holds, and the
 * mutex is just as safe. */
START_TEST(a_mutex_abandoned_outside_debug_mode_is_never_inherited)
{
    char out[2048];
    int st = run_child(abandoned_mutex_child, NULL, out, sizeof out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st,
                  out);
    ck_assert_msg(out[0] == '\0', "%s", out); /* and silent */
}
END_TEST

/* ---- weft_loop_free and a condition waiter that cannot re-lock (14) ---- */

static weft_mutex *rm;
static weft_cond *rc_cv;
static weft_event *never;
static int relock_rc, relock_unlock_rc;

static void *cond_waiter(void *arg)
{
    (void)arg;
    weft_mutex_lock(rm, -1);
    relock_rc = weft_cond_wait(rc_cv, rm, -1);
    relock_unlock_rc = weft_mutex_unlock(rm);
    return NULL;
}

/* Takes the mutex while the waiter waits, and keeps it: cancelled, it
 * returns without unlocking (unlocks = 0), or unlocks in its cleanup. */
static void *mutex_keeper(void *arg)
{
    int unlocks = (int)(intptr_t)arg;
    weft_mutex_lock(rm, -1);
    weft_event_wait(never, -1);
    if (unlocks)
        weft_mutex_unlock(rm);
    return NULL;
}

static void relock_teardown_child(void *arg)
{
    (void)arg;
    signal(SIGALRM, SIG_DFL); /* not libcheck's handler, inherited */
    alarm(20);                /* a teardown that never ends fails the test */
    rm = weft_mutex_new();
    rc_cv = weft_cond_new();
    never = weft_event_new();
    weft_loop *loop = weft_loop_new();
    weft_loop_set_debug(loop, true);
    weft_spawn_opts a = {.name = "waiter"}, k = {.name = "keeper"};
    weft_future *fa = weft_spawn_ex(loop, cond_waiter, NULL, &a);
    weft_future *fk = weft_spawn_ex(loop, mutex_keeper, NULL, &k);
    int bad = weft_loop_run(loop) != -EDEADLK;
    weft_loop_free(loop); /* must end */
    /* It could not have the mutex back: -ECANCELED, not holding it. */
    bad |= (relock_rc != -ECANCELED) << 1;
    bad |= (relock_unlock_rc != -EPERM) << 2;
    bad |= (weft_future_result(fa, NULL) != 0) << 3;
    bad |= (weft_future_result(fk, NULL) != 0) << 4;
    weft_future_release(fa);
    weft_future_release(fk);
    bad |= (weft_cond_free(rc_cv) != 0) << 5;
    bad |= (weft_event_free(never) != 0) << 6;
    bad |= (weft_mutex_free(rm) != -EBUSY) << 7; /* abandoned */
    _exit(bad);
}

START_TEST(loop_free_ends_when_a_cond_waiter_can_never_relock)
{
    char out[4096];
    int st = run_child(relock_teardown_child, NULL, out, sizeof out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st,
                  out);
    ck_assert_msg(strstr(out, "weft: fiber 'keeper' finished holding mutex "
                              "0x") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "weft: weft_loop_free: fiber 'waiter' cannot "
                              "re-lock mutex 0x") != NULL,
                  "%s", out);
}
END_TEST

/* When the holder unlocks in its cleanup, the waiter gets the mutex back
 * during the teardown, as always. */
START_TEST(loop_free_lets_a_cond_waiter_relock_a_mutex_released_in_cleanup)
{
    rm = weft_mutex_new();
    rc_cv = weft_cond_new();
    never = weft_event_new();
    relock_rc = relock_unlock_rc = 1;
    weft_loop *loop = weft_loop_new();
    weft_go(loop, cond_waiter, NULL);
    weft_go(loop, mutex_keeper, (void *)1);
    ck_assert_int_eq(weft_loop_run(loop), -EDEADLK);
    weft_loop_free(loop);
    ck_assert_int_eq(relock_rc, -ECANCELED);
    ck_assert_int_eq(relock_unlock_rc, 0); /* it held the mutex again */
    ck_assert_int_eq(weft_cond_free(rc_cv), 0);
    ck_assert_int_eq(weft_event_free(never), 0);
    ck_assert_int_eq(weft_mutex_free(rm), 0);
}
END_TEST

/* A mutex a condition waiter will take again is in use: not freed. */
static void *cond_signaller_frees(void *arg)
{
    (void)arg;
    weft_yield(); /* the waiter waits */
    weft_cond_signal(rc_cv);
    return WEFT_ERR_PTR(weft_mutex_free(rm)); /* the waiter relocks it next */
}

START_TEST(a_mutex_a_cond_waiter_will_relock_is_not_freed)
{
    rm = weft_mutex_new();
    rc_cv = weft_cond_new();
    relock_rc = relock_unlock_rc = 1;
    weft_loop *loop = weft_loop_new();
    weft_go(loop, cond_waiter, NULL);
    weft_future *f = weft_spawn(loop, cond_signaller_frees, NULL);
    ck_assert_int_eq(weft_loop_run(loop), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), -EBUSY);
    weft_future_release(f);
    ck_assert_int_eq(relock_rc, 0);
    ck_assert_int_eq(relock_unlock_rc, 0);
    weft_loop_free(loop);
    ck_assert_int_eq(weft_cond_free(rc_cv), 0);
    ck_assert_int_eq(weft_mutex_free(rm), 0);
}
END_TEST

/* ---- freeing a channel whose waiters' wake-ups are in flight (16) ---- */

static void *chan_close_and_free(void *arg)
{
    weft_chan *ch = arg;
    if (weft_chan_close(ch) != 0)
        return WEFT_ERR_PTR(-100);
    return WEFT_ERR_PTR(weft_chan_free(ch));
}

static void *recv_one(void *arg)
{
    return WEFT_ERR_PTR(weft_chan_recv(arg, NULL, -1));
}

/* A fiber parked on ch; another thread closes ch (posting the fiber's
 * wake to its loop, not yet run) and frees it. Then the fiber is
 * cancelled (how 0) or its loop freed (how 1) before the wake arrives. */
static void chan_freed_with_wake_in_flight(int how)
{
    weft_chan *ch = weft_chan_new(0);
    weft_loop *loop = weft_loop_new();
    weft_future *f = weft_spawn(loop, recv_one, ch);
    ck_assert_int_eq(weft_loop_run_once(loop, 0), 1); /* it parks */
    ck_assert(!weft_future_done(f));
    pthread_t th;
    void *res;
    ck_assert_int_eq(pthread_create(&th, NULL, chan_close_and_free, ch), 0);
    ck_assert_int_eq(pthread_join(th, &res), 0);
    ck_assert_int_eq(WEFT_PTR_ERR(res), 0); /* freeing it is safe */
    if (how == 0) {
        ck_assert_int_eq(weft_cancel(f), 0);
        ck_assert_int_eq(weft_loop_run(loop), 0);
        ck_assert(weft_future_done(f));
    }
    weft_loop_free(loop);
    /* The close decided the wait first. */
    ck_assert_int_eq(weft_future_result(f, NULL), -EPIPE);
    weft_future_release(f);
}

START_TEST(a_channel_freed_while_a_wake_is_in_flight_then_cancel)
{
    chan_freed_with_wake_in_flight(0);
}
END_TEST

START_TEST(a_channel_freed_while_a_wake_is_in_flight_then_loop_free)
{
    chan_freed_with_wake_in_flight(1);
}
END_TEST

static Suite *sync_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("sync");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, mutex_hands_off_in_fifo_order_without_barging);
    tcase_add_test(tc, mutex_misuse_gets_an_error);
    tcase_add_test(tc, cond_wakes_waiters_and_they_hold_the_mutex_again);
    tcase_add_test(tc, semaphore_bounds_how_many_fibers_are_inside);
    tcase_add_test(tc, event_set_wakes_every_waiter);
    tcase_add_test(tc, unbuffered_channels_ping_pong_between_fibers);
    tcase_add_test(tc, a_closed_channel_drains_then_reports_epipe);
    tcase_add_test(tc,
                   timed_channel_waits_in_fibers_time_out_or_get_their_item);
    tcase_add_test(tc,
                   a_producer_thread_feeds_two_consumer_fibers_a_million_items);
    tcase_add_test(tc, channels_connect_fibers_of_different_loops_and_threads);
    tcase_add_test(tc, a_channel_used_after_free_is_named_in_debug_mode);
    tcase_add_test(tc, every_kind_of_suspended_fiber_can_be_cancelled);
    tcase_add_test(tc, a_mutex_deadlock_is_reported_by_run);
    tcase_add_test(
        tc, a_fiber_that_ends_holding_a_mutex_leaves_it_locked_and_reported);
    tcase_add_test(tc, a_mutex_abandoned_outside_debug_mode_is_never_inherited);
    tcase_add_test(tc, loop_free_ends_when_a_cond_waiter_can_never_relock);
    tcase_add_test(
        tc, loop_free_lets_a_cond_waiter_relock_a_mutex_released_in_cleanup);
    tcase_add_test(tc, a_mutex_a_cond_waiter_will_relock_is_not_freed);
    tcase_add_test(tc, a_channel_freed_while_a_wake_is_in_flight_then_cancel);
    tcase_add_test(tc,
                   a_channel_freed_while_a_wake_is_in_flight_then_loop_free);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(sync_suite());
}
