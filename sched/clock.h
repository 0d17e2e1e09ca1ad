/* SPDX-License-Identifier: MIT */
/*
 * The monotonic clock in nanoseconds, deadlines, and conversions from the
 * millisecond timeouts of the public API (sched/loop.c).
 */
#ifndef WEFT__SCHED_CLOCK_H
#define WEFT__SCHED_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds (the clock timerfd and kqueue use). */
int64_t weft__now_ns(void);
/* Deadline for a timeout: -1 (none) for timeout_ms < 0. */
int64_t weft__deadline(int64_t now_ns, int64_t timeout_ms);
/* ms in nanoseconds, saturating: a huge timeout means "very long", never
 * a wrapped, negative or tiny one. */
static inline int64_t weft__ms_to_ns(int64_t ms)
{
    if (ms > INT64_MAX / 1000000)
        return INT64_MAX;
    if (ms < INT64_MIN / 1000000)
        return INT64_MIN;
    return ms * 1000000;
}

/* Milliseconds left until deadline (monotonic ns), rounded up so that a
 * wait of that long does not end early; 0 once it has passed, -1 for no
 * deadline (deadline < 0). */
static inline int64_t weft__ms_until(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - weft__now_ns();
    return left <= 0 ? 0 : (left + 999999) / 1000000;
}

#endif /* WEFT__SCHED_CLOCK_H */
