/* SPDX-License-Identifier: MIT */
/*
 * Benchmark helpers. Every benchmark prints "name value unit" lines and
 * measures its baselines in the same process, rounds interleaved, so the
 * ratios hold even on a noisy shared machine; values are medians.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#endif
