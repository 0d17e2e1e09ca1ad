/* SPDX-License-Identifier: MIT */
/*
 * Benchmark helpers. Every benchmark prints "name value unit" lines and
 * measures its baselines in the same process, rounds interleaved, so the
 * ratios hold even on a noisy shared machine; values are medians.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The process's resident memory in bytes (/proc/self/statm), or < 0. */
static inline long bench_rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    if (f)
        fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* Pins the calling thread (and threads it creates later) to one CPU. */
static inline int bench_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

static inline void bench_line(const char *name, double value, const char *unit)
{
    printf("%-40s %12.2f %s\n", name, value, unit);
    fflush(stdout);
}

/* A target line: "target <what> <measured> <op> <limit> PASS|MISS". */
static inline int bench_target(const char *what, double measured,
                               const char *op, double limit)
{
    int ok = op[0] == '<' ? measured <= limit : measured >= limit;
    printf("target %-46s %10.2f %s %-8g %s\n", what, measured, op, limit,
           ok ? "PASS" : "MISS");
    return ok;
}

/* ---- figures for the table: bench/results/latest.csv ----
 *
 * A figure is one thing measured in one condition, by weft and by each
 * comparator that has an equivalent, in interleaved rounds. bench_emit
 * prints it and, when WEFT_BENCH_CSV names a file (bench/run.sh sets
 * it), appends its row there: name, condition, unit, the median of weft
 * and of each comparator ("-" where there is none), the ratio, weft's
 * rounds, min and max. The ratio says how many times better weft does
 * than the better of the two pthread figures (their time over weft's, or
 * weft's rate over theirs): above 1, weft wins. */

enum bench_who {
    BENCH_WEFT,
    BENCH_PT,    /* pthreads, the pair on one CPU (where a loop runs) */
    BENCH_PT2,   /* pthreads, the pair on two CPUs */
    BENCH_BOOST, /* Boost.Context, fcontext */
    BENCH_ST,    /* State Threads */
    BENCH_GO,    /* Go's goroutines */
    BENCH_FLOOR, /* the least the OS can do (page touch, epoll server) */
    BENCH_NWHO
};

#define BENCH_CSV_HEADER                                                       \
    "name,condition,unit,weft,pthreads,pthreads_2cpu,boost_context,"           \
    "state_threads,go,floor,ratio,rounds,min,max"

enum { BENCH_MAX_ROUNDS = 32 };

struct bench_fig {
    const char *name, *cond, *unit;
    bool higher_is_better;
    int n[BENCH_NWHO];
    double v[BENCH_NWHO][BENCH_MAX_ROUNDS];
};

/* Adds one round's value; a negative value means "not measured". */
static inline void bench_add(struct bench_fig *f, enum bench_who who, double v)
{
    if (v >= 0 && !isnan(v) && f->n[who] < BENCH_MAX_ROUNDS)
        f->v[who][f->n[who]++] = v;
}

/* The median of who's rounds, or NAN if it has none. */
static inline double bench_fig_median(const struct bench_fig *f,
                                      enum bench_who who)
{
    double v[BENCH_MAX_ROUNDS];
    if (f->n[who] == 0)
        return NAN;
    memcpy(v, f->v[who], sizeof v);
    return bench_median(v, f->n[who]);
}

static inline double bench_fig_ratio(const struct bench_fig *f)
{
    double w = bench_fig_median(f, BENCH_WEFT);
    double p1 = bench_fig_median(f, BENCH_PT),
           p2 = bench_fig_median(f, BENCH_PT2);
    double p = isnan(p1)             ? p2
               : isnan(p2)           ? p1
               : f->higher_is_better ? fmax(p1, p2)
                                     : fmin(p1, p2);
    if (isnan(p) || isnan(w) || w <= 0 || p <= 0)
        return NAN;
    return f->higher_is_better ? w / p : p / w;
}

/* v with `digits` significant digits, or "-" for NAN. */
static inline void bench_fmt(char *buf, size_t size, double v, int digits)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.*g", digits, v);
}

/* Prints f, and appends its row to WEFT_BENCH_CSV (with the header
 * first when the file is empty). */
static inline void bench_emit(const struct bench_fig *f)
{
    static const char *const who[BENCH_NWHO] = {
        "weft", "pthreads", "pthreads_2cpu", "boost", "st", "go", "floor"};
    double med[BENCH_NWHO], lo = NAN, hi = NAN;
    for (int i = 0; i < f->n[BENCH_WEFT]; i++) {
        double v = f->v[BENCH_WEFT][i];
        lo = isnan(lo) || v < lo ? v : lo;
        hi = isnan(hi) || v > hi ? v : hi;
    }
    for (int i = 0; i < BENCH_NWHO; i++)
        med[i] = bench_fig_median(f, (enum bench_who)i);
    double ratio = bench_fig_ratio(f);
    char a[32], b[32], c[32];
    bench_fmt(a, sizeof a, med[BENCH_WEFT], 4);
    bench_fmt(b, sizeof b, lo, 4);
    bench_fmt(c, sizeof c, hi, 4);
    printf("%s [%s] %s: weft %s (%s..%s, %d rounds)", f->name, f->cond, f->unit,
           a, b, c, f->n[BENCH_WEFT]);
    for (int i = 1; i < BENCH_NWHO; i++)
        if (f->n[i]) {
            bench_fmt(a, sizeof a, med[i], 4);
            printf(", %s %s", who[i], a);
        }
    bench_fmt(a, sizeof a, ratio, 3);
    printf(", ratio %s\n", a);
    fflush(stdout);

    const char *path = getenv("WEFT_BENCH_CSV");
    FILE *csv = path && *path ? fopen(path, "a") : NULL;
    if (csv == NULL)
        return;
    fseek(csv, 0, SEEK_END);
    if (ftell(csv) == 0)
        fprintf(csv, "%s\n", BENCH_CSV_HEADER);
    fprintf(csv, "%s,%s,%s", f->name, f->cond, f->unit);
    for (int i = 0; i < BENCH_NWHO; i++) {
        bench_fmt(a, sizeof a, med[i], 6);
        fprintf(csv, ",%s", a);
    }
    bench_fmt(a, sizeof a, ratio, 4);
    bench_fmt(b, sizeof b, lo, 6);
    bench_fmt(c, sizeof c, hi, 6);
    fprintf(csv, ",%s,%d,%s,%s\n", a, f->n[BENCH_WEFT], b, c);
    fclose(csv);
}

/* Whether WEFT_BENCH_QUICK asks for short runs (make bench QUICK=1). */
static inline bool bench_quick(void)
{
    const char *q = getenv("WEFT_BENCH_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

/* ---- a server in a child process (bench_echo, bench_http) ---- */

/* The running server child, killed with the benchmark (bench_on_signal)
 * so an interrupted run leaves no server behind. */
static volatile sig_atomic_t bench_server_pid;

/* Forks a server child that dies with the benchmark: 0 in the child (its
 * SIGINT and SIGTERM back to their defaults, SIGPIPE ignored), the
 * child's pid in the parent, -1 if fork failed. */
static inline pid_t bench_fork_server(void)
{
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
    }
    return pid;
}

/* Stops the server child with sig (SIGKILL, or SIGTERM for a graceful
 * stop) and reaps it. */
static inline void bench_server_stop(pid_t pid, int sig)
{
    kill(pid, sig);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    bench_server_pid = 0;
}

static inline void bench_on_signal(int sig)
{
    if (bench_server_pid > 0) {
        kill(bench_server_pid, SIGKILL);
        waitpid(bench_server_pid, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A process's CPU time so far, all threads, in ns: its CPU clock, or
 * /proc/PID/stat's utime + stime where that clock is not readable. */
static inline double bench_process_cpu_ns(pid_t pid)
{
    clockid_t clk;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &clk) == 0 && clock_gettime(clk, &ts) == 0)
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *s = strrchr(line, ')'); /* the name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (s == NULL || sscanf(s + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%lu %lu",
                            &ut, &st) != 2)
        return 0;
    return (double)(ut + st) * 1e9 / (double)sysconf(_SC_CLK_TCK);
}

#endif
