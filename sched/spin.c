/* SPDX-License-Identifier: MIT */
/*
 * The contended path of the spinlock (spin.h): spin a while, then yield
 * the CPU, since the holder may have been descheduled.
 */
#include <sched.h>
#include <stdatomic.h>

#include "spin.h"

void weft__spin_lock_contended(atomic_int *l)
{
    for (unsigned spins = 0;; spins++) {
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            if (++spins > 64)
                sched_yield(); /* the holder may be descheduled */
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        }
        if (weft__spin_trylock(l))
            return;
    }
}
