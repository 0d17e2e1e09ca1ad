/* SPDX-License-Identifier: MIT */
/*
 * Spawning at scale: for N = 1k, 10k, 100k, 1M fibers inside weft_run,
 * each fiber parks once on an event; once all have parked the main fiber
 * sets the event (one call wakes them all) and waits for the last to
 * finish. Timed: spawn + park, wake + finish, total; RSS per fiber at the
 * peak (/proc/self/statm, every fiber parked).
 *
 * Beside it, in the same process, rounds interleaved, the floor of any
 * design with one stack per fiber: N separate mappings the size of a
 * default weft stack and its guard, one page of each touched; and, when
 * Go is installed (bench/go/spawn.go, built as go_spawn next to this
 * binary), the same with N goroutines parking on a channel; and the same
 * with N pthreads (stacks the size of a fiber's) blocking once on a
 * condition, as far as the machine allows: kernel.pid_max,
 * kernel.threads-max, vm.max_map_count and memory stop them, and the
 * benchmark says where (no larger size is tried).
 *
 * Two figures per N go to the table: time per unit (create, block once,
 * finish) and resident memory per unit at the peak, from the first round
 * (later rounds reuse what the stack pool and the allocators kept).
 *
 * WEFT_BENCH_SCALE_MAX caps N (default 1,000,000); WEFT_BENCH_QUICK=1
 * stops at 100,000, with one or two rounds per size.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "weft.h"

#define GUARD (64 * 1024)

/* ---- the page-touch floor ---- */

/* N mappings of stack + guard bytes, one page touched in each (the top
 * page, where a fiber's first frames go), then all unmapped. Returns the
 * seconds the maps and touches took; the unmapping is not timed. */
static double floor_round(long n)
{
    size_t size = (size_t)WEFT_STACK_DEFAULT + GUARD;
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    char **maps = malloc((size_t)n * sizeof *maps);
    if (maps == NULL) {
        perror("malloc");
        exit(1);
    }
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        maps[i] = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (maps[i] == MAP_FAILED) {
            perror("mmap");
            exit(1);
        }
        maps[i][size - ps] = 1;
    }
    double s = (double)(bench_now_ns() - t0) / 1e9;
    for (long i = 0; i < n; i++)
        munmap(maps[i], size);
    free(maps);
    return s;
}

/* ---- weft: spawn, park, finish ---- */

static struct {
    long n;
    long left; /* fibers not finished yet */
    weft_event *go, *done;
    double spawn_park_s, wake_finish_s;
    long peak_rss;
} sc;

static void *parker(void *arg)
{
    (void)arg;
    weft_event_wait(sc.go, -1);
    if (--sc.left == 0)
        weft_event_set(sc.done);
    return NULL;
}

static void *scale_main(void *arg)
{
    (void)arg;
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < sc.n; i++)
        if (weft_go(NULL, parker, NULL) < 0) {
            perror("weft_go");
            exit(1);
        }
    /* Behind every fiber just spawned in the run queue: when we run
     * again, each has run once and parked. */
    weft_yield();
    uint64_t t1 = bench_now_ns();
    sc.peak_rss = bench_rss_bytes();
    uint64_t t2 = bench_now_ns();
    weft_event_set(sc.go);
    weft_event_wait(sc.done, -1);
    uint64_t t3 = bench_now_ns();
    sc.spawn_park_s = (double)(t1 - t0) / 1e9;
    sc.wake_finish_s = (double)(t3 - t2) / 1e9;
    return NULL;
}

/* ---- pthreads: a thread per unit, each blocking once ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t go_cv, parked_cv;
    long parked;
    bool go;
} pt = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
        PTHREAD_COND_INITIALIZER, 0, false};

static void *pt_parker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pt.mu);
    pt.parked++;
    pthread_cond_signal(&pt.parked_cv);
    while (!pt.go)
        pthread_cond_wait(&pt.go_cv, &pt.mu);
    pthread_mutex_unlock(&pt.mu);
    return NULL;
}

/* One round of n threads (stacks the size of a fiber's), each blocking
 * once on a condition until all have blocked, then all woken and joined.
 * The seconds that took (creating and blocking, waking and joining, as
 * for fibers), RSS per thread at the peak in *rss_per; or -1 when
 * pthread_create failed, with how many were made in *made and the error
 * in *err (those are woken and joined all the same). */
static double pthread_round(long n, long *rss_per, long *made, int *err)
{
    pthread_t *ts = malloc((size_t)n * sizeof *ts);
    if (ts == NULL) {
        perror("malloc");
        exit(1);
    }
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, WEFT_STACK_DEFAULT);
    long rss0 = bench_rss_bytes();
    pt.parked = 0;
    pt.go = false;
    uint64_t t0 = bench_now_ns();
    long m = 0;
    int rc = 0;
    while (m < n && (rc = pthread_create(&ts[m], &a, pt_parker, NULL)) == 0)
        m++;
    pthread_mutex_lock(&pt.mu);
    while (pt.parked < m)
        pthread_cond_wait(&pt.parked_cv, &pt.mu);
    pthread_mutex_unlock(&pt.mu);
    uint64_t t1 = bench_now_ns();
    long rss = bench_rss_bytes();
    uint64_t t2 = bench_now_ns();
    pthread_mutex_lock(&pt.mu);
    pt.go = true;
    pthread_cond_broadcast(&pt.go_cv);
    pthread_mutex_unlock(&pt.mu);
    for (long i = 0; i < m; i++)
        pthread_join(ts[i], NULL);
    uint64_t t3 = bench_now_ns();
    pthread_attr_destroy(&a);
    free(ts);
    *made = m;
    *err = rc;
    if (m < n)
        return -1;
    *rss_per = (rss - rss0) / n;
    return (double)((t1 - t0) + (t3 - t2)) / 1e9;
}

/* A /proc/sys value, for saying where threads stopped; -1 if unreadable. */
static long sysctl_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* ---- Go's goroutines (bench/go/spawn.go, built beside us) ---- */

static char go_path[4096];

/* Finds go_spawn next to this binary; false if it was not built. */
static bool go_find(void)
{
    ssize_t len = readlink("/proc/self/exe", go_path, sizeof go_path - 16);
    if (len <= 0)
        return false;
    go_path[len] = '\0';
    char *slash = strrchr(go_path, '/');
    if (slash == NULL)
        return false;
    strcpy(slash + 1, "go_spawn");
    return access(go_path, X_OK) == 0;
}

/* One round of n goroutines, in a child that inherits our CPU affinity
 * (one CPU: the Go runtime then runs one P). Total seconds, or -1; the
 * child's RSS per goroutine at the peak in *rss_per. */
static double go_round(long n, long *rss_per)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' %ld", go_path, n);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    double sp = -1, wf = -1;
    long rss0 = 0, rss = 0;
    int got = fscanf(p, "%lf %lf %ld %ld", &sp, &wf, &rss0, &rss);
    if (pclose(p) != 0 || got != 4)
        return -1;
    *rss_per = (rss - rss0) / n;
    return sp + wf;
}

/* One round with n fibers; returns the total seconds. */
static double scale_round(long n, long *rss_per_fiber)
{
    long rss0 = bench_rss_bytes();
    sc.n = n;
    sc.left = n;
    sc.go = weft_event_new();
    sc.done = weft_event_new();
    int rc = weft_run(scale_main, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "weft_run: %s\n", strerror(-rc));
        exit(1);
    }
    weft_event_free(sc.go);
    weft_event_free(sc.done);
    *rss_per_fiber = (sc.peak_rss - rss0) / n;
    return sc.spawn_park_s + sc.wake_finish_s;
}

static const char *label(long n)
{
    static char buf[32];
    if (n >= 1000000 && n % 1000000 == 0)
        snprintf(buf, sizeof buf, "%ldM", n / 1000000);
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, sizeof buf, "%ldk", n / 1000);
    else
        snprintf(buf, sizeof buf, "%ld", n);
    return buf;
}

int main(void)
{
    long max = 1000000;
    const char *e = getenv("WEFT_BENCH_SCALE_MAX");
    if (e != NULL && *e)
        max = strtol(e, NULL, 10);
    bool quick = bench_quick();
    if (quick && max > 100000)
        max = 100000;
    if (bench_pin(0) != 0)
        perror("sched_setaffinity (numbers will be noisier)");
    printf("# weft at scale: N fibers spawned inside weft_run, each parks "
           "once on an event, then all are woken and finish; beside each, "
           "N %d KiB mappings with one page touched (the floor)\n",
           (WEFT_STACK_DEFAULT + GUARD) / 1024);

    bool go = go_find();
    if (!go)
        printf("# Go comparator not built (install golang-go; make bench "
               "does): no Go column\n");
    static const long sizes[] = {1000, 10000, 100000, 1000000};
    double ratio_1m = -1, go_ratio_1m = -1;
    bool threads = true;   /* until pthread_create fails at some size */
    char th_stop[96] = ""; /* where, for the larger sizes' conditions */
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        long n = sizes[k];
        if (n > max)
            break;
        /* Medians of a few rounds (1M: two, a few seconds each), in the
         * order floor, weft, weft, floor, ...: the first touch of memory
         * the process has not used yet costs more, and much more on some
         * hosts (a VM whose guest memory the host has not backed yet), so
         * neither side may always come first. */
        int rounds = n <= 10000 ? 8 : n <= 100000 ? 4 : 2;
        if (quick)
            rounds = n <= 10000 ? 2 : 1;
        double fl[8], tot[8], sp[8], wf[8], gt[8], th[8];
        long rss = 0, th_rss = 0, th_made = 0, go_rss = 0;
        char cond[160];
        snprintf(cond, sizeof cond, "N=%ld%s", n, th_stop);
        struct bench_fig per = {.name = "scale: create + block once + finish",
                                .cond = cond,
                                .unit = "ns per unit"},
                         mem = {.name = "scale: memory per unit",
                                .cond = cond,
                                .unit = "bytes (RSS)"};
        int th_err = 0;
        for (int r = 0; r < rounds; r++) {
            if (r % 2 == 0)
                fl[r] = floor_round(n);
            tot[r] = scale_round(n, &rss);
            bench_add(&per, BENCH_WEFT, tot[r] * 1e9 / (double)n);
            /* Memory from the first round only: later ones reuse what the
             * stack pool and the allocators kept from it. */
            if (r == 0)
                bench_add(&mem, BENCH_WEFT, (double)rss);
            sp[r] = sc.spawn_park_s;
            wf[r] = sc.wake_finish_s;
            if (r % 2 == 1)
                fl[r] = floor_round(n);
            if (go && (gt[r] = go_round(n, &go_rss)) < 0) {
                fprintf(stderr, "bench_scale: %s failed: no Go column\n",
                        go_path);
                go = false;
            }
            if (go) {
                bench_add(&per, BENCH_GO, gt[r] * 1e9 / (double)n);
                bench_add(&mem, BENCH_GO, (double)go_rss);
            }
            if (threads &&
                (th[r] = pthread_round(n, &th_rss, &th_made, &th_err)) < 0)
                threads = false; /* and no larger size either */
            if (threads) {
                bench_add(&per, BENCH_PT, th[r] * 1e9 / (double)n);
                if (r == 0) /* glibc keeps stacks too */
                    bench_add(&mem, BENCH_PT, (double)th_rss);
            }
        }
        for (int r = 0; r < rounds; r++)
            bench_add(&per, BENCH_FLOOR, fl[r] * 1e9 / (double)n);
        double m_fl = bench_median(fl, rounds);
        double m_tot = bench_median(tot, rounds);
        double m_sp = bench_median(sp, rounds);
        double m_wf = bench_median(wf, rounds);
        char name[96];
        const char *l = label(n);
        snprintf(name, sizeof name, "scale_%s_spawn_park", l);
        bench_line(name, m_sp * 1e3, "ms");
        snprintf(name, sizeof name, "scale_%s_wake_finish", l);
        bench_line(name, m_wf * 1e3, "ms");
        snprintf(name, sizeof name, "scale_%s_total", l);
        bench_line(name, m_tot * 1e3, "ms");
        snprintf(name, sizeof name, "scale_%s_per_fiber", l);
        bench_line(name, m_tot * 1e9 / (double)n, "ns");
        snprintf(name, sizeof name, "scale_%s_rss_per_fiber", l);
        bench_line(name, (double)rss, "bytes");
        snprintf(name, sizeof name, "scale_%s_page_touch_floor", l);
        bench_line(name, m_fl * 1e3, "ms");
        snprintf(name, sizeof name, "scale_%s_total/floor", l);
        bench_line(name, m_tot / m_fl, "x");
        if (go) {
            double m_go = bench_median(gt, rounds);
            snprintf(name, sizeof name, "scale_%s_go_goroutines_total", l);
            bench_line(name, m_go * 1e3, "ms");
            snprintf(name, sizeof name, "scale_%s_total/go", l);
            bench_line(name, m_tot / m_go, "x");
            if (n == 1000000)
                go_ratio_1m = m_tot / m_go;
        }
        if (threads) {
            double m_th = bench_median(th, rounds);
            snprintf(name, sizeof name, "scale_%s_pthreads_total", l);
            bench_line(name, m_th * 1e3, "ms");
            snprintf(name, sizeof name, "scale_%s_pthreads_rss_per_thread", l);
            bench_line(name, (double)th_rss, "bytes");
            snprintf(name, sizeof name, "scale_%s_total/pthreads", l);
            bench_line(name, m_tot / m_th, "x");
        } else if (th_made > 0 || th_err != 0) {
            printf("# pthreads stopped at %ld of %s: pthread_create: %s "
                   "(kernel.pid_max %ld, kernel.threads-max %ld, "
                   "vm.max_map_count %ld)\n",
                   th_made, l, strerror(th_err),
                   sysctl_long("/proc/sys/kernel/pid_max"),
                   sysctl_long("/proc/sys/kernel/threads-max"),
                   sysctl_long("/proc/sys/vm/max_map_count"));
            snprintf(th_stop, sizeof th_stop,
                     "; pthreads stopped at %ld (%s; kernel.pid_max %ld)",
                     th_made, strerrorname_np(th_err),
                     sysctl_long("/proc/sys/kernel/pid_max"));
            snprintf(cond, sizeof cond, "N=%ld%s", n, th_stop);
            snprintf(name, sizeof name, "scale_%s_pthreads_total", l);
            printf("%-40s %12s ms\n", name, "-");
            th_made = 0;
            th_err = 0;
        }
        if (n == 1000000)
            ratio_1m = m_tot / m_fl;
        bench_emit(&per);
        bench_emit(&mem);
    }

    int pass = 1;
    printf("\n# targets (issue 11), measured in this run\n");
    if (ratio_1m >= 0)
        pass &= bench_target("1M spawned, parked, finished / page-touch floor",
                             ratio_1m, "<=", 1.3);
    else
        printf("# 1M not run (WEFT_BENCH_SCALE_MAX or WEFT_BENCH_QUICK): "
               "no target\n");
    if (go_ratio_1m >= 0)
        pass &= bench_target("1M spawned, parked, finished / Go's goroutines",
                             go_ratio_1m, "<=", 1.0);
    return pass ? 0 : 2;
}
