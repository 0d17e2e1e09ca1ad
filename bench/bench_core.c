/* SPDX-License-Identifier: MIT */
/*
 * The core layer against its baselines, in one process pinned to one CPU:
 *   - context switch round trip: weft (default and FP-environment builds
 *     of the switch) against Boost.Context's jump_fcontext when Debian's
 *     libboost-context-dev is installed; and the portable switch of make
 *     ARCH=generic (arch/switch_generic.c, linked here under other names)
 *     against glibc's swapcontext, what a CPU without a port pays;
 *   - coroutine create + run + finish on a pooled stack, against
 *     pthread_create + pthread_join;
 *   - two pthreads ping-ponging through a futex on the same CPU;
 *   - resident memory per idle coroutine, 100,000 of them, all guarded.
 */
#include "baselines.h"

#include <ucontext.h>
#include <unistd.h>

#include "../core/internal.h"
#include "weft.h"

#define ROUNDS 15 /* 5 with WEFT_BENCH_QUICK=1 */
static int rounds = ROUNDS;

/* ---- raw switch ---- */

static struct {
    void *main_sp, *ctx_sp;
} sw_state;

static char switch_stack[4][64 * 1024] __attribute__((aligned(64)));

/*
 * A context that switches straight back, and a timed loop of round trips
 * into it: one pair per switch, each calling it directly, as Boost's loop
 * calls jump_fcontext and as the scheduler calls weft__switch.
 */
#define SWITCH_ROUND(name, SW, MK, stack)                                      \
    static void name##_partner(void *arg)                                      \
    {                                                                          \
        (void)arg;                                                             \
        for (;;)                                                               \
            SW(&sw_state.ctx_sp, sw_state.main_sp, NULL);                      \
    }                                                                          \
    static double name##_round(long n)                                         \
    {                                                                          \
        sw_state.ctx_sp = MK(stack + sizeof stack, name##_partner, NULL);      \
        SW(&sw_state.main_sp, sw_state.ctx_sp, NULL); /* enter */              \
        uint64_t t0 = bench_now_ns();                                          \
        for (long i = 0; i < n; i++)                                           \
            SW(&sw_state.main_sp, sw_state.ctx_sp, NULL);                      \
        return (double)(bench_now_ns() - t0) / (double)n;                      \
    }

SWITCH_ROUND(plain, weft__switch, weft__make, switch_stack[0])
SWITCH_ROUND(fpenv, weft__switch_fpenv, weft__make_fpenv, switch_stack[1])

/* The portable switch, built a second time for this benchmark with the
 * suffixes _generic and _generic_fpenv (Makefile, BENCH_GENERIC_OBJ). */
void *weft__switch_generic(void **from_sp, void *to_sp, void *arg);
void *weft__make_generic(void *stack_top, void (*entry)(void *), void *arg);
void *weft__switch_generic_fpenv(void **from_sp, void *to_sp, void *arg);
void *weft__make_generic_fpenv(void *stack_top, void (*entry)(void *),
                               void *arg);
SWITCH_ROUND(generic, weft__switch_generic, weft__make_generic, switch_stack[2])
SWITCH_ROUND(generic_fpenv, weft__switch_generic_fpenv,
             weft__make_generic_fpenv, switch_stack[3])

/* The textbook portable switch: swapcontext, which also saves and restores
 * the signal mask (a system call each way). */
static ucontext_t uc_main, uc_ctx;
static char uc_stack[64 * 1024] __attribute__((aligned(64)));

static void uc_partner(void)
{
    for (;;)
        swapcontext(&uc_ctx, &uc_main);
}

static double swapcontext_round(long n)
{
    getcontext(&uc_ctx);
    uc_ctx.uc_stack.ss_sp = uc_stack;
    uc_ctx.uc_stack.ss_size = sizeof uc_stack;
    uc_ctx.uc_link = NULL;
    makecontext(&uc_ctx, uc_partner, 0);
    swapcontext(&uc_main, &uc_ctx); /* enter */
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_ctx);
    return (double)(bench_now_ns() - t0) / (double)n;
}

/* ---- create + run + finish ---- */

static void *noop(void *arg)
{
    return arg;
}

static double coro_create_round(long n)
{
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        weft_coro *co = weft_coro_new(noop, NULL, NULL);
        weft_coro_resume(co, NULL);
        weft_coro_free(co);
    }
    return (double)(bench_now_ns() - t0) / (double)n;
}

/* ---- memory per idle coroutine ---- */

static long count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (f == NULL)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void *idle(void *arg)
{
    (void)arg;
    weft_coro_yield();
    return NULL;
}

int main(void)
{
    if (bench_quick())
        rounds = 5;
    int pass = 1;
    if (bench_pin(0) != 0)
        perror("sched_setaffinity (numbers will be noisier)");

    printf("# weft core benchmarks: medians of %d interleaved rounds, "
           "pinned to CPU 0\n",
           rounds);

    /* Switch round trips. */
    double sw[ROUNDS], swf[ROUNDS], bst[ROUNDS];
    const long nsw = 2000000;
    plain_round(nsw / 10); /* warm up */
    for (int r = 0; r < rounds; r++) {
        sw[r] = plain_round(nsw);
        swf[r] = fpenv_round(nsw);
#ifdef WEFT_HAVE_BOOST
        bst[r] = boost_switch_round(nsw);
#else
        bst[r] = 0;
#endif
    }
    double m_sw = bench_median(sw, rounds), m_swf = bench_median(swf, rounds);
    double m_bst = bench_median(bst, rounds);
    bench_line("switch_roundtrip_weft", m_sw, "ns");
    bench_line("switch_roundtrip_weft_fpenv", m_swf, "ns");
#ifdef WEFT_HAVE_BOOST
    bench_line("switch_roundtrip_boost_fcontext", m_bst, "ns");
#else
    (void)m_bst;
    printf("# Boost.Context not installed (apt-get install "
           "libboost-context-dev): no fcontext comparison\n");
#endif

    /* The portable switch and swapcontext: fewer round trips, as they
     * are slower (swapcontext makes two system calls per round trip). */
    double gs[ROUNDS], gsf[ROUNDS], uc[ROUNDS];
    generic_round(nsw / 20); /* warm up */
    for (int r = 0; r < rounds; r++) {
        gs[r] = generic_round(nsw / 4);
        gsf[r] = generic_fpenv_round(nsw / 20);
        uc[r] = swapcontext_round(nsw / 40);
    }
    double m_gs = bench_median(gs, rounds), m_gsf = bench_median(gsf, rounds);
    double m_uc = bench_median(uc, rounds);
    bench_line("switch_roundtrip_generic", m_gs, "ns");
    bench_line("switch_roundtrip_generic_fpenv", m_gsf, "ns");
    bench_line("switch_roundtrip_glibc_swapcontext", m_uc, "ns");
    printf("# the portable switch (make ARCH=generic) costs %.1fx the "
           "assembly one (%.1fx in FP-environment builds); swapcontext "
           "%.0fx\n",
           m_gs / m_sw, m_gsf / m_swf, m_uc / m_sw);

    /* Create + run + finish, pooled; pthread_create + join. */
    double cc[ROUNDS], pc[ROUNDS];
    coro_create_round(100000);
    for (int r = 0; r < rounds; r++) {
        cc[r] = coro_create_round(1000000);
        pc[r] = pt_spawn_round(1000, -1);
    }
    double m_cc = bench_median(cc, rounds), m_pc = bench_median(pc, rounds);
    bench_line("coro_create_run_finish_pooled", m_cc, "ns");
    bench_line("pthread_create_join", m_pc, "ns");

    /* Futex ping-pong, both threads on CPU 0. */
    double fx[5];
    for (int r = 0; r < 5; r++)
        fx[r] = pt_futex_round(20000, 0);
    double m_fx = bench_median(fx, 5);
    bench_line("pthread_futex_pingpong_one_cpu", m_fx, "ns");

    /* The table's row for the portable switch, beside the same
     * comparators as bench_micro's switch row (pthreads on one CPU). */
    struct bench_fig gen = {.name = "switch round trip, ARCH=generic",
                            .cond = "no loop (the portable C switch)",
                            .unit = "ns"};
    for (int r = 0; r < rounds; r++) {
        bench_add(&gen, BENCH_WEFT, gs[r]);
#ifdef WEFT_HAVE_BOOST
        bench_add(&gen, BENCH_BOOST, bst[r]);
#endif
    }
    for (int r = 0; r < 5; r++)
        bench_add(&gen, BENCH_PT, fx[r]);
    bench_emit(&gen);

    /* Idle coroutines. */
    enum { IDLE = 100000 };
    static weft_coro *co[IDLE];
    long maps0 = count_mappings();
    long rss0 = bench_rss_bytes();
    unsigned guard = 0;
    for (int i = 0; i < IDLE; i++) {
        co[i] = weft_coro_new(idle, NULL, NULL);
        if (co[i] == NULL) {
            perror("weft_coro_new");
            return 1;
        }
        weft_coro_resume(co[i], NULL);
        guard |= 1u << co[i]->stack.guard;
    }
    double per = (double)(bench_rss_bytes() - rss0) / IDLE;
    long maps = count_mappings() - maps0;
    for (int i = 0; i < IDLE; i++) {
        weft_coro_resume(co[i], NULL);
        weft_coro_free(co[i]);
    }
    bench_line("idle_coro_rss_per_fiber_64k_stack", per, "bytes");
    bench_line("idle_coro_new_mappings_per_fiber", (double)maps / IDLE,
               "mappings");
    printf("# guards used: %s%s%s\n",
           guard & 1u << WEFT__GUARD_MADVISE ? "MADV_GUARD_INSTALL " : "",
           guard & 1u << WEFT__GUARD_MPROTECT ? "mprotect " : "",
           guard & 1u << WEFT__GUARD_CANARY ? "canary(unguarded) " : "");

    printf("\n# targets (issue 2), measured in this run\n");
#ifdef WEFT_HAVE_BOOST
    pass &= bench_target("switch weft/boost (default build)", m_sw / m_bst,
                         "<=", 0.65);
    pass &= bench_target("switch weft_fpenv/boost", m_swf / m_bst, "<=", 1.0);
#endif
    pass &= bench_target("create+run+finish pooled (ns)", m_cc, "<=", 60);
    pass &= bench_target("pthread_create+join / coro create", m_pc / m_cc,
                         ">=", 300);
    pass &=
        bench_target("RSS per idle guarded fiber (KiB)", per / 1024, "<=", 4.5);
    pass &= bench_target("every idle fiber guarded (1=yes)",
                         (guard & 1u << WEFT__GUARD_CANARY) ? 0 : 1, ">=", 1);
    return pass ? 0 : 2;
}
