/* SPDX-License-Identifier: MIT */
/*
 * sched/: the per-thread loop, its fibers, timers, callbacks and futures.
 * This header includes the scheduler's headers, one per noun, for the
 * .c files of sched/ and io/ (docs/architecture.md lists them):
 *
 *   clock.h    the monotonic clock and deadlines
 *   spin.h     the spinlock
 *   tpark.h    how a plain thread blocks
 *   timer.h    timers
 *   waiter.h   a waiter on a future
 *   fiber.h    fibers, what they wait on, the wait queue
 *   future.h   futures and the task block
 *   loop.h     the loop
 *   debug.h    debug mode
 *   park.h     park, wake and the hand-over: the hot path of every wait
 *   block.h    a wait from anywhere: a fiber parks, a plain thread blocks
 *
 * Threading: a loop and its fibers belong to one thread. Other threads
 * reach a loop only through its cross-thread call queue (xcall, under
 * xlock) and weft__poller_wake. Futures and channels are shared freely:
 * each has its own lock. docs/threading.md has the lock order.
 */
#ifndef WEFT__SCHED_INTERNAL_H
#define WEFT__SCHED_INTERNAL_H

#include "../core/internal.h"
#include "../core/tunables.h"
#include "block.h"
#include "clock.h"
#include "debug.h"
#include "fiber.h"
#include "future.h"
#include "loop.h"
#include "park.h"
#include "spin.h"
#include "timer.h"
#include "tpark.h"
#include "waiter.h"

#endif /* WEFT__SCHED_INTERNAL_H */
