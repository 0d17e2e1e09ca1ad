/* SPDX-License-Identifier: MIT */
/*
 * Debug mode (sched/debug.c): all of it behind loop->debug, or WEFT_DEBUG=1
 * in the environment.
 */
#ifndef WEFT__SCHED_DEBUG_H
#define WEFT__SCHED_DEBUG_H

#include "../core/internal.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct weft_loop;
struct weft__fiber;
struct weft_future;

/* The running fiber of loop stops running (parks, yields, returns):
 * reports it if its slice was slow. */
void weft__debug_slice_end(struct weft_loop *loop, struct weft__fiber *f);
/* A fiber starts running on loop. */
void weft__debug_slice_start(struct weft_loop *loop);
/* Times a callback; reports it if it was slow. */
void weft__debug_callback(struct weft_loop *loop, void (*cb)(void *), void *arg,
                          const char *kind);
/* "weft: <call>: <what> belongs to the loop of thread X, called from
 * thread Y" when loop is in debug mode. */
void weft__debug_wrong_thread(const struct weft_loop *loop, const char *call,
                              const char *what);
/* Lists the blocked fibers of a deadlocked loop. */
void weft__debug_deadlock(struct weft_loop *loop);
/* Lists the fibers still alive when the loop is freed. */
void weft__debug_leaks(struct weft_loop *loop);
/* Stack high-water: paint a new fiber's stack, check it at its end. */
void weft__debug_paint_stack(struct weft__fiber *f);
void weft__debug_check_stack(struct weft__fiber *f);
/* What a sync primitive is, for reports ("mutex 0x.. held by 'x'"). */
void weft__sync_describe(void *prim, char *out, size_t len);
/* f finishes holding mutexes it locked in debug mode (f->held): reports
 * each (they stay locked for good, abandoned, in any mode). */
void weft__mutexes_abandon(struct weft__fiber *f);
/* weft_loop_free, when only fibers re-locking a mutex in weft_cond_wait
 * are left (parked, nocancel, WEFT__WAIT_SYNC) and so none can ever
 * unlock one: ends f's wait, which then returns -ECANCELED without the
 * mutex (reported in debug mode). */
void weft__relock_give_up(struct weft__fiber *f);
/* Reports a failed future nobody awaited, at its last release. */
void weft__debug_unobserved(struct weft_future *f);
/* A fiber's display name into buf (32 bytes). */
const char *weft__fiber_name(const struct weft__fiber *f, char *buf);

/* True when WEFT_DEBUG=1 is in the environment (read once). */
extern atomic_int weft__debug_env; /* -1 until read */
bool weft__debug_slow(void);
static inline bool weft__debug(void)
{
    int v = atomic_load_explicit(&weft__debug_env, memory_order_relaxed);
    return WEFT__LIKELY(v >= 0) ? v != 0 : weft__debug_slow();
}

#endif /* WEFT__SCHED_DEBUG_H */
