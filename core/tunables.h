/* SPDX-License-Identifier: MIT */
/*
 * Every tunable constant of weft, each with the reason for its value.
 * Changing one changes no contract, only costs: measure with make bench.
 */
#ifndef WEFT__CORE_TUNABLES_H
#define WEFT__CORE_TUNABLES_H

/* ---- stacks (core/coro.c, core/stack.c) ---- */

/* Free coroutines of one stack size, kept by each thread for reuse. Hot
 * ones keep their pages (a spawn after a fiber's end reuses a warm stack
 * and its header without a page fault); past WEFT__POOL_HOT they are cold
 * (pages given back with madvise: a server's idle burst does not keep its
 * peak memory); past WEFT__POOL_COLD they are unmapped. A program uses
 * one or two stack sizes: four classes are plenty, and a size with no
 * class skips the pool. */
#define WEFT__POOL_CLASSES 4
#define WEFT__POOL_HOT 64
#define WEFT__POOL_COLD 4096

/* Stacks are carved from slabs of about WEFT__SLAB_BYTES (the target
 * mapping size), at most WEFT__SLAB_SLOTS stacks each: a million stacks
 * cost some 16,000 mmap and munmap calls, not a million of each, whose
 * TLB flushes dominated finishing a million fibers. A freed stack keeps
 * its pages while fewer than WEFT__SLAB_DIRTY such stacks are kept. */
#define WEFT__SLAB_BYTES (8u << 20)
#define WEFT__SLAB_SLOTS 64
#define WEFT__SLAB_DIRTY 256

/* ---- the poll policy (sched/park.h, sched/loop.c) ----
 * While fibers are ready, they hand over to each other directly, and the
 * loop itself runs (firing due timers, running callbacks) once every
 * WEFT__RUNS_PER_VISIT fiber runs; at such a visit it asks the kernel for
 * IO only if WEFT__POLL_NS have passed since it last did. When nothing is
 * ready it blocks in the kernel at once. A descriptor that turns ready
 * while fibers hand over without pause is thus noticed within
 * WEFT__POLL_NS plus 64 runs: the README promises 1 ms. 64 runs between
 * visits keep the loop's own overhead under 2% of a 20 ns hand-over;
 * 250 us between polls keep epoll_wait off the hand-over's cost. */
#define WEFT__RUNS_PER_VISIT 64
#define WEFT__POLL_NS (250 * 1000)

/* ---- timers (sched/timer.c) ---- */

/* Direct-mapped by deadline: the newest leader of each deadline seen.
 * 256 entries cover the distinct deadlines a loop arms in one iteration
 * in practice (one per timeout value in use); a miss only costs a heap
 * slot. */
#define WEFT__TCACHE 256

/* ---- descriptors (io/fd.c, io/io.c) ---- */

/* A wait that trusts a remembered registration (which a plain close()
 * and the reuse of the number may have made stale) is checked after
 * WEFT__FD_CHECK_NS without a report: the longest extra delay the first
 * wait on a reused number can see. */
#define WEFT__FD_CHECK_NS 10000000 /* 10 ms */
/* Each check that finds the registration sound doubles the fd's interval,
 * up to WEFT__FD_CHECK_NS << WEFT__FD_CHECK_MAX_SHIFT (640 ms): a busy
 * connection whose waits often pass 10 ms (a thousand of them, say)
 * would otherwise cost an epoll_ctl per message. */
#define WEFT__FD_CHECK_MAX_SHIFT 6

/* weft_accept out of descriptors (EMFILE, ENFILE) retries after a
 * weft_close on its loop or this back-off, doubling from MIN to MAX: the
 * listening socket stays readable, so waiting for readiness would spin,
 * and a descriptor freed by another thread or process is not seen. */
#define WEFT__ACCEPT_BACKOFF_MIN_NS 1000000   /* 1 ms */
#define WEFT__ACCEPT_BACKOFF_MAX_NS 256000000 /* 256 ms */
/* weft_connect to a full Unix-domain backlog (EAGAIN) retries after this
 * pause, doubling: nothing polls ready when the listener makes room. */
#define WEFT__CONNECT_BACKOFF_MIN_NS 1000000  /* 1 ms */
#define WEFT__CONNECT_BACKOFF_MAX_NS 64000000 /* 64 ms */

#endif /* WEFT__CORE_TUNABLES_H */
