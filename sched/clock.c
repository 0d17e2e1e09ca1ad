/* SPDX-License-Identifier: MIT */
/*
 * The monotonic clock, and deadlines from the millisecond timeouts of the
 * public API. The loop reads the clock once per iteration (loop.h,
 * weft__loop_now); a plain thread reads it at each wait.
 */
#include <stdint.h>
#include <time.h>

#include "clock.h"

int64_t weft__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft__deadline(int64_t now_ns, int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    if (timeout_ms > (INT64_MAX - now_ns) / 1000000)
        return -1; /* centuries away: forever */
    return now_ns + timeout_ms * 1000000;
}
