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
#include "baselines.h"

#include "weft.h"

#define ROUNDS 9 /* 3 with WEFT_BENCH_QUICK=1 */
static int rounds = ROUNDS;

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
    if (bench_quick())
        rounds = 3;
    int pass = 1;
    printf("# weft futures benchmarks: medians of %d interleaved rounds\n",
           rounds);

    /* Channel ping-pong: the loop on CPU 0; the pthread pair free. */
    cpu_set_t all;
    sched_getaffinity(0, sizeof all, &all);
    weft_loop *loop = weft_loop_new();
    double ch[ROUNDS], hd[ROUNDS];
    chan_round(loop, 100000);
    for (int r = 0; r < rounds; r++) {
        bench_pin(0);
        chan_round(loop, 100000); /* back to speed after the pthread round */
        ch[r] = chan_round(loop, 1000000);
        sched_setaffinity(0, sizeof all, &all);
        hd[r] = pt_condvar_round(20000, -1);
    }
    weft_loop_free(loop);
    double m_ch = bench_median(ch, rounds), m_hd = bench_median(hd, rounds);
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
    for (int r = 0; r < rounds; r++) {
        sa[r] = submit_round(server, 20000);
        rq[r] = pt_request_round(20000, -1);
    }
    double m_sa = bench_median(sa, rounds), m_rq = bench_median(rq, rounds);
    bench_line("submit_await_roundtrip_from_thread", m_sa, "ns");
    bench_line("pthread_mutex_condvar_request_response", m_rq, "ns");

    /* One producer thread calling into the loop. */
    double cs[ROUNDS];
    calls_round(server, 100000);
    for (int r = 0; r < rounds; r++)
        cs[r] = calls_round(server, 2000000);
    double m_cs = bench_median(cs, rounds);
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
