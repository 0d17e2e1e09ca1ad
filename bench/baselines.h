/* SPDX-License-Identifier: MIT */
/*
 * What weft is measured against, shared by the benchmarks: the pthread
 * equivalent of each of weft's hand-overs, and Boost.Context's switch.
 *
 * Every pthread measure takes `cpu`, where the second thread of the pair
 * runs: the caller is pinned to CPU 0 by the benchmark, so cpu 0 means
 * "both on one CPU" (where a loop's fibers are) and cpu 1 "on two CPUs";
 * BENCH_ANY_CPU lets it run on any CPU, and -1 leaves it as its creator
 * is (the benchmarks' main thread: CPU 0).
 */
#ifndef WEFT_BENCH_BASELINES_H
#define WEFT_BENCH_BASELINES_H

#include "bench.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>

enum { BENCH_ANY_CPU = -2 };

/* Starts fn(arg) in a thread with a 64 KiB stack on `cpu`. */
static inline pthread_t bench_thread(void *(*fn)(void *), void *arg, int cpu)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    if (cpu != -1) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (cpu == BENCH_ANY_CPU || i == cpu)
                CPU_SET(i, &set);
        pthread_attr_setaffinity_np(&a, sizeof set, &set);
    }
    pthread_t th;
    int err = pthread_create(&th, &a, fn, arg);
    pthread_attr_destroy(&a);
    if (err != 0) {
        fprintf(stderr, "pthread_create: %s\n", strerror(err));
        exit(1);
    }
    return th;
}

static inline double bench_per_op(uint64_t t0, long n)
{
    return (double)(bench_now_ns() - t0) / (double)n;
}

/* ---- a hand-over through a futex: the least a thread pair can do ---- */

static atomic_int bench_turn; /* 0: caller's turn, 1: partner's */

static void *bench_futex_partner(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        while (atomic_load(&bench_turn) != 1)
            syscall(SYS_futex, &bench_turn, FUTEX_WAIT_PRIVATE, 0, NULL, NULL,
                    0);
        atomic_store(&bench_turn, 0);
        syscall(SYS_futex, &bench_turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

/* ns per round trip: the caller wakes the partner, which wakes it back. */
static inline double pt_futex_round(long n, int cpu)
{
    atomic_store(&bench_turn, 0);
    pthread_t th = bench_thread(bench_futex_partner, &n, cpu);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        atomic_store(&bench_turn, 1);
        syscall(SYS_futex, &bench_turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        while (atomic_load(&bench_turn) != 0)
            syscall(SYS_futex, &bench_turn, FUTEX_WAIT_PRIVATE, 1, NULL, NULL,
                    0);
    }
    double ns = bench_per_op(t0, n);
    pthread_join(th, NULL);
    return ns;
}

/* ---- sched_yield between two threads of one CPU (weft_yield's peer) ---- */

static void *bench_yielder(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        sched_yield();
    return NULL;
}

/* ns per round trip (a yield each); both threads on the caller's CPU 0. */
static inline double pt_yield_round(long n)
{
    pthread_t th = bench_thread(bench_yielder, &n, 0);
    uint64_t t0 = bench_now_ns();
    bench_yielder(&n);
    pthread_join(th, NULL);
    return bench_per_op(t0, n);
}

/* ---- a token handed back and forth: mutex + two condvars ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv[2];
    int turn; /* whose turn: 0 or 1 */
    long n;
} bench_hand = {PTHREAD_MUTEX_INITIALIZER,
                {PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER},
                0,
                0};

static void *bench_hand_partner(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&bench_hand.mu);
    for (long i = 0; i < bench_hand.n; i++) {
        while (bench_hand.turn != 1)
            pthread_cond_wait(&bench_hand.cv[1], &bench_hand.mu);
        bench_hand.turn = 0;
        pthread_cond_signal(&bench_hand.cv[0]);
    }
    pthread_mutex_unlock(&bench_hand.mu);
    return NULL;
}

/* ns per round trip (the channel ping-pong's peer). */
static inline double pt_condvar_round(long n, int cpu)
{
    bench_hand.n = n;
    bench_hand.turn = 0;
    pthread_t th = bench_thread(bench_hand_partner, NULL, cpu);
    uint64_t t0 = bench_now_ns();
    pthread_mutex_lock(&bench_hand.mu);
    for (long i = 0; i < n; i++) {
        bench_hand.turn = 1;
        pthread_cond_signal(&bench_hand.cv[1]);
        while (bench_hand.turn != 0)
            pthread_cond_wait(&bench_hand.cv[0], &bench_hand.mu);
    }
    pthread_mutex_unlock(&bench_hand.mu);
    double ns = bench_per_op(t0, n);
    pthread_join(th, NULL);
    return ns;
}

/* ---- a contended mutex: each holder yields before it unlocks ---- */

static pthread_mutex_t bench_mu = PTHREAD_MUTEX_INITIALIZER;

static void *bench_mutex_user(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&bench_mu);
        sched_yield(); /* the other one comes to the lock and waits */
        pthread_mutex_unlock(&bench_mu);
    }
    return NULL;
}

/* ns per lock held (two threads, n holds each). */
static inline double pt_mutex_round(long n, int cpu)
{
    pthread_t th = bench_thread(bench_mutex_user, &n, cpu);
    uint64_t t0 = bench_now_ns();
    bench_mutex_user(&n);
    pthread_join(th, NULL);
    return bench_per_op(t0, 2 * n);
}

/* ---- a thread per task: create + join ---- */

static void *bench_empty(void *arg)
{
    return arg;
}

static inline double pt_spawn_round(long n, int cpu)
{
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        pthread_join(bench_thread(bench_empty, NULL, cpu), NULL);
    return bench_per_op(t0, n);
}

/* ---- request and response to a server thread: mutex + condvar ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t req, resp;
    bool has_req, has_resp, stop;
    uintptr_t in, out;
} bench_rr = {PTHREAD_MUTEX_INITIALIZER,
              PTHREAD_COND_INITIALIZER,
              PTHREAD_COND_INITIALIZER,
              false,
              false,
              false,
              0,
              0};

static void *bench_rr_server(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&bench_rr.mu);
    for (;;) {
        while (!bench_rr.has_req && !bench_rr.stop)
            pthread_cond_wait(&bench_rr.req, &bench_rr.mu);
        if (bench_rr.stop)
            break;
        bench_rr.has_req = false;
        bench_rr.out = bench_rr.in + 1;
        bench_rr.has_resp = true;
        pthread_cond_signal(&bench_rr.resp);
    }
    pthread_mutex_unlock(&bench_rr.mu);
    return NULL;
}

/* ns per request answered (weft_submit's and the executor's peer). */
static inline double pt_request_round(long n, int cpu)
{
    bench_rr.stop = bench_rr.has_req = bench_rr.has_resp = false;
    pthread_t th = bench_thread(bench_rr_server, NULL, cpu);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&bench_rr.mu);
        bench_rr.in = (uintptr_t)i;
        bench_rr.has_req = true;
        pthread_cond_signal(&bench_rr.req);
        while (!bench_rr.has_resp)
            pthread_cond_wait(&bench_rr.resp, &bench_rr.mu);
        bench_rr.has_resp = false;
        if (bench_rr.out != (uintptr_t)i + 1)
            exit(1);
        pthread_mutex_unlock(&bench_rr.mu);
    }
    double ns = bench_per_op(t0, n);
    pthread_mutex_lock(&bench_rr.mu);
    bench_rr.stop = true;
    pthread_cond_signal(&bench_rr.req);
    pthread_mutex_unlock(&bench_rr.mu);
    pthread_join(th, NULL);
    return ns;
}

/* ---- calls posted to a consumer thread: a locked queue + condvar ---- */

enum { BENCH_QCAP = 4096 };
static struct {
    pthread_mutex_t mu;
    pthread_cond_t nonempty;
    void (*fn[BENCH_QCAP])(void *);
    long head, tail, ran, total;
} bench_q = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0, 0};

static void bench_count(void *arg)
{
    (*(long *)arg)++;
}

static void *bench_consumer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&bench_q.mu);
    while (bench_q.ran < bench_q.total) {
        while (bench_q.head == bench_q.tail)
            pthread_cond_wait(&bench_q.nonempty, &bench_q.mu);
        while (bench_q.head != bench_q.tail) {
            void (*fn)(void *) = bench_q.fn[bench_q.head++ % BENCH_QCAP];
            pthread_mutex_unlock(&bench_q.mu);
            fn(&bench_q.ran); /* only this thread writes ran */
            pthread_mutex_lock(&bench_q.mu);
        }
    }
    pthread_mutex_unlock(&bench_q.mu);
    return NULL;
}

/* Calls per second, from posting the first to running the last (the
 * queue is unbounded in spirit: a full ring only makes the producer
 * yield, as a growing queue would not). */
static inline double pt_calls_round(long n, int cpu)
{
    bench_q.head = bench_q.tail = bench_q.ran = 0;
    bench_q.total = n;
    pthread_t th = bench_thread(bench_consumer, NULL, cpu);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&bench_q.mu);
        while (bench_q.tail - bench_q.head == BENCH_QCAP) {
            pthread_mutex_unlock(&bench_q.mu);
            sched_yield();
            pthread_mutex_lock(&bench_q.mu);
        }
        bool was_empty = bench_q.head == bench_q.tail;
        bench_q.fn[bench_q.tail++ % BENCH_QCAP] = bench_count;
        pthread_mutex_unlock(&bench_q.mu);
        if (was_empty)
            pthread_cond_signal(&bench_q.nonempty);
    }
    pthread_join(th, NULL);
    return (double)n / ((double)(bench_now_ns() - t0) / 1e9);
}

/* ---- timed wake-ups: CPU per wake-up of threads sleeping 1 ms ---- */

static inline double bench_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct {
    pthread_barrier_t go;
    atomic_llong cpu_ns;
    int times;
} bench_tw;

static void *bench_sleeper(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&bench_tw.go);
    double c0 = bench_thread_cpu_ns();
    for (int i = 0; i < bench_tw.times; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    atomic_fetch_add(&bench_tw.cpu_ns, (long long)(bench_thread_cpu_ns() - c0));
    return NULL;
}

/* ns of CPU per wake-up: `units` threads on `cpu` (BENCH_ANY_CPU: on
 * every CPU), each sleeping 1 ms
 * `times` times; each thread's own CPU time over its sleeps, summed. */
static inline double pt_timer_round(int units, int times, int cpu)
{
    pthread_t *th = malloc((size_t)units * sizeof *th);
    pthread_barrier_init(&bench_tw.go, NULL, (unsigned)units);
    atomic_store(&bench_tw.cpu_ns, 0);
    bench_tw.times = times;
    for (int i = 0; i < units; i++)
        th[i] = bench_thread(bench_sleeper, NULL, cpu);
    for (int i = 0; i < units; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bench_tw.go);
    free(th);
    return (double)atomic_load(&bench_tw.cpu_ns) / ((double)units * times);
}

/* ---- the load, for threads: blocked on silent sockets, and asleep ---- */

struct pt_load {
    int (*sp)[2];
    pthread_t *th;
    long parked, n;
};

static void *bench_pt_parked(void *arg)
{
    char c;
    if (read((int)(intptr_t)arg, &c, 1) < 0)
        perror("read");
    return NULL;
}

static void *bench_pt_asleep(void *arg)
{
    (void)arg;
    sleep(3600);
    return NULL;
}

static inline void pt_load_start(struct pt_load *l, long parked, long asleep)
{
    l->parked = parked;
    l->n = parked + asleep;
    l->sp = calloc((size_t)parked, sizeof *l->sp);
    l->th = calloc((size_t)l->n, sizeof *l->th);
    for (long i = 0; i < l->n; i++) {
        if (i < parked && socketpair(AF_UNIX, SOCK_STREAM, 0, l->sp[i]) < 0) {
            perror("socketpair");
            exit(1);
        }
        l->th[i] = i < parked ? bench_thread(bench_pt_parked,
                                             (void *)(intptr_t)l->sp[i][0], -1)
                              : bench_thread(bench_pt_asleep, NULL, -1);
    }
    usleep(10000); /* let them all block */
}

static inline void pt_load_stop(struct pt_load *l)
{
    for (long i = 0; i < l->n; i++) {
        pthread_cancel(l->th[i]);
        pthread_join(l->th[i], NULL);
    }
    for (long i = 0; i < l->parked; i++) {
        close(l->sp[i][0]);
        close(l->sp[i][1]);
    }
    free(l->sp);
    free(l->th);
}

/* ---- Boost.Context's switch (libboost-context-dev) ---- */

#ifdef WEFT_HAVE_BOOST
/* Its C-linkage fcontext API (boost/context/detail/fcontext.hpp). */
typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

static char boost_stack[64 * 1024] __attribute__((aligned(64)));

static void boost_partner(transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, NULL);
}

/* ns per round trip into a context that jumps straight back. */
static inline double boost_switch_round(long n)
{
    fcontext_t ctx = make_fcontext(boost_stack + sizeof boost_stack,
                                   sizeof boost_stack, boost_partner);
    transfer_t t = jump_fcontext(ctx, NULL); /* enter */
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        t = jump_fcontext(t.fctx, NULL);
    return bench_per_op(t0, n);
}
#endif

#endif
