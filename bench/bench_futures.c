/* SPDX-License-Identifier: MIT */
/*
 * The futures layer against pthreads, in one process, rounds interleaved:
 *   - an unbuffered channel ping-pong between two fibers of one loop,
 *     beside two pthreads doing the same with a mutex and two condvars;
 *   - weft_submit + weft_await from a plain thread to a loop in its own
 *     thread, beside a pthread request/response through mutex + condvar;
 *   - weft_call_soon_threadsafe from one producer thread into a loop.
 * The thread pairs run as programs run them, free to use both CPUs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "bench.h"
#include "weft.h"

#define ROUNDS 9

/* ---- channel ping-pong ---- */

static long chan_n;

static void *chan_ponger(void *arg)
{
    weft_chan **ch = arg;
    void *v;
    for (long i = 0; i < chan_n; i++) {
        weft_chan_recv(ch[0], &v, -1);
        weft_chan_send(ch[1], v, -1);
    }
    return NULL;
}

static void *chan_pinger(void *arg)
{
    weft_chan **ch = arg;
    void *v = NULL;
    for (long i = 0; i < chan_n; i++) {
        weft_chan_send(ch[0], v, -1);
        weft_chan_recv(ch[1], &v, -1);
    }
    return NULL;
}

static double chan_round(weft_loop *loop, long n)
{
    weft_chan *ch[2] = {weft_chan_new(0), weft_chan_new(0)};
    chan_n = n;
    weft_go(loop, chan_ponger, ch);
    weft_go(loop, chan_pinger, ch);
    uint64_t t0 = bench_now_ns();
    weft_loop_run(loop);
    double ns = (double)(bench_now_ns() - t0) / (double)n;
    weft_chan_free(ch[0]);
    weft_chan_free(ch[1]);
    return ns;
}

/* Two pthreads handing a token back and forth: mutex + condvar. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv[2];
    int turn; /* whose turn: 0 or 1; 2 = stop */
    long n;
} hand = {PTHREAD_MUTEX_INITIALIZER,
          {PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER},
          0,
          0};

static void *hand_partner(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hand.mu);
    for (long i = 0; i < hand.n; i++) {
        while (hand.turn != 1)
            pthread_cond_wait(&hand.cv[1], &hand.mu);
        hand.turn = 0;
        pthread_cond_signal(&hand.cv[0]);
    }
    pthread_mutex_unlock(&hand.mu);
    return NULL;
}

static double hand_round(long n)
{
    hand.n = n;
    hand.turn = 0;
    pthread_t th;
    pthread_create(&th, NULL, hand_partner, NULL);
    uint64_t t0 = bench_now_ns();
    pthread_mutex_lock(&hand.mu);
    for (long i = 0; i < n; i++) {
        hand.turn = 1;
        pthread_cond_signal(&hand.cv[1]);
        while (hand.turn != 0)
            pthread_cond_wait(&hand.cv[0], &hand.mu);
    }
    pthread_mutex_unlock(&hand.mu);
    double ns = (double)(bench_now_ns() - t0) / (double)n;
    pthread_join(th, NULL);
    return ns;
}

/* ---- submit + await from a plain thread ---- */

static void *add_one(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

static double submit_round(weft_loop *loop, long n)
{
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        weft_future *f = weft_submit(loop, add_one, (void *)(uintptr_t)i);
        void *r;
        if (f == NULL || weft_await(f, &r) != 0 ||
            (uintptr_t)r != (uintptr_t)i + 1) {
            fprintf(stderr, "submit round trip failed\n");
            exit(1);
        }
        weft_future_release(f);
    }
    return (double)(bench_now_ns() - t0) / (double)n;
}

/* The pthread equivalent: a server thread waits for a request under a
 * mutex + condvar, computes, and signals the response back. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t req, resp;
    bool has_req, has_resp, stop;
    uintptr_t in, out;
} rr = {PTHREAD_MUTEX_INITIALIZER,
        PTHREAD_COND_INITIALIZER,
        PTHREAD_COND_INITIALIZER,
        false,
        false,
        false,
        0,
        0};

static void *rr_server(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rr.mu);
    for (;;) {
        while (!rr.has_req && !rr.stop)
            pthread_cond_wait(&rr.req, &rr.mu);
        if (rr.stop)
            break;
        rr.has_req = false;
        rr.out = (uintptr_t)add_one((void *)rr.in);
        rr.has_resp = true;
        pthread_cond_signal(&rr.resp);
    }
    pthread_mutex_unlock(&rr.mu);
    return NULL;
}

static double rr_round(long n)
{
    rr.stop = rr.has_req = rr.has_resp = false;
    pthread_t th;
    pthread_create(&th, NULL, rr_server, NULL);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&rr.mu);
        rr.in = (uintptr_t)i;
        rr.has_req = true;
        pthread_cond_signal(&rr.req);
        while (!rr.has_resp)
            pthread_cond_wait(&rr.resp, &rr.mu);
        rr.has_resp = false;
        if (rr.out != (uintptr_t)i + 1)
            exit(1);
        pthread_mutex_unlock(&rr.mu);
    }
    double ns = (double)(bench_now_ns() - t0) / (double)n;
    pthread_mutex_lock(&rr.mu);
    rr.stop = true;
    pthread_cond_signal(&rr.req);
    pthread_mutex_unlock(&rr.mu);
    pthread_join(th, NULL);
    return ns;
}

/* ---- call_soon_threadsafe throughput ---- */

static atomic_long calls_run;

static void count_call(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&calls_run, 1, memory_order_relaxed);
}

/* Calls per second, from posting the first to running the last. */
static double calls_round(weft_loop *loop, long n)
{
    atomic_store(&calls_run, 0);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        if (weft_call_soon_threadsafe(loop, count_call, NULL) != 0) {
            fprintf(stderr, "weft_call_soon_threadsafe failed\n");
            exit(1);
        }
    while (atomic_load_explicit(&calls_run, memory_order_relaxed) < n)
        ;
    return (double)n / ((double)(bench_now_ns() - t0) / 1e9);
}

int main(void)
{
    int pass = 1;
    printf("# weft futures benchmarks: medians of %d interleaved rounds\n",
           ROUNDS);

    /* Channel ping-pong: the loop on CPU 0; the pthread pair free. */
    cpu_set_t all;
    sched_getaffinity(0, sizeof all, &all);
    weft_loop *loop = weft_loop_new();
    double ch[ROUNDS], hd[ROUNDS];
    chan_round(loop, 100000);
    for (int r = 0; r < ROUNDS; r++) {
        bench_pin(0);
        chan_round(loop, 100000); /* back to speed after the pthread round */
        ch[r] = chan_round(loop, 1000000);
        sched_setaffinity(0, sizeof all, &all);
        hd[r] = hand_round(20000);
    }
    weft_loop_free(loop);
    double m_ch = bench_median(ch, ROUNDS), m_hd = bench_median(hd, ROUNDS);
    bench_line("chan_unbuffered_pingpong_two_fibers", m_ch, "ns");
    bench_line("pthread_mutex_condvar_pingpong", m_hd, "ns");

    /* Submit + await from a plain thread, to a loop in its own thread. */
    weft_loop *server;
    if (weft_loop_start_thread(&server) != 0) {
        perror("weft_loop_start_thread");
        return 1;
    }
    double sa[ROUNDS], rq[ROUNDS];
    submit_round(server, 2000);
    for (int r = 0; r < ROUNDS; r++) {
        sa[r] = submit_round(server, 20000);
        rq[r] = rr_round(20000);
    }
    double m_sa = bench_median(sa, ROUNDS), m_rq = bench_median(rq, ROUNDS);
    bench_line("submit_await_roundtrip_from_thread", m_sa, "ns");
    bench_line("pthread_mutex_condvar_request_response", m_rq, "ns");

    /* One producer thread calling into the loop. */
    double cs[ROUNDS];
    calls_round(server, 100000);
    for (int r = 0; r < ROUNDS; r++)
        cs[r] = calls_round(server, 2000000);
    double m_cs = bench_median(cs, ROUNDS);
    bench_line("call_soon_threadsafe_calls_per_second", m_cs, "calls/s");
    weft_loop_join_thread(server);

    printf("\n# targets (issue 4), measured in this run\n");
    pass &= bench_target("unbuffered chan ping-pong, two fibers (ns)", m_ch,
                         "<=", 50);
    pass &= bench_target("submit+await / pthread request-response", m_sa / m_rq,
                         "<=", 2.0);
    pass &=
        bench_target("call_soon_threadsafe (M calls/s)", m_cs / 1e6, ">=", 2.0);
    return pass ? 0 : 2;
}
