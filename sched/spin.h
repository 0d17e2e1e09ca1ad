/* SPDX-License-Identifier: MIT */
/*
 * A spinlock, for state any thread may touch briefly: futures, channels,
 * anchors. The contended path is in sched/xthread.c.
 */
#ifndef WEFT__SCHED_SPIN_H
#define WEFT__SCHED_SPIN_H

#include "../core/internal.h"
#include <stdatomic.h>
#include <stdbool.h>

/* Critical sections under it are a few stores, at most a wake-up call:
 * a futex-backed mutex would cost more to take than they cost to run. */
static inline bool weft__spin_trylock(atomic_int *l)
{
    return !atomic_exchange_explicit(l, 1, memory_order_acquire);
}
/* Spins, then yields (the holder may be descheduled). */
void weft__spin_lock_contended(atomic_int *l);
static inline void weft__spin_lock(atomic_int *l)
{
    if (WEFT__UNLIKELY(!weft__spin_trylock(l)))
        weft__spin_lock_contended(l);
}
static inline void weft__spin_unlock(atomic_int *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

#endif /* WEFT__SCHED_SPIN_H */
