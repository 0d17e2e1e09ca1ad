/* SPDX-License-Identifier: MIT */
/*
 * The loop (sched/loop.c): its structure, the cross-thread call queue,
 * the run queue, and the thread's current loop and fiber.
 */
#ifndef WEFT__SCHED_LOOP_H
#define WEFT__SCHED_LOOP_H

#include "../core/internal.h"
#include "../io/poller.h"
#include "clock.h"
#include "fiber.h"
#include "timer.h"
#include "tpark.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weft__call {
    void (*cb)(void *);
    void *arg;
};

/* A call queued from another thread. */
struct weft__xcall {
    struct weft__xcall *next;
    void (*cb)(void *);
    void *arg;
};

/* A part of the loop that the scheduler drives without knowing it: io
 * (the descriptor table) installs these with its state, on first use. */
struct weft__loop_hooks {
    /* The poller's report: fd is ready for events (WEFT__POLL_*). */
    void (*ready)(struct weft_loop *loop, int fd, unsigned events);
    /* Its timed work, due at loop->io_due. */
    void (*due)(struct weft_loop *loop);
    /* The loop is being freed: frees the state. */
    void (*fini)(struct weft_loop *loop);
};

/* What outlives a loop for those that may post to it later: a
 * done-callback registered on the loop holds the anchor, not the loop.
 * The loop clears `loop` (under lock) when it is freed; a completion that
 * finds it cleared drops the callback. */
struct weft__anchor {
    atomic_int refs; /* the loop's, and one per callback registration */
    atomic_int lock; /* a spinlock; guards loop */
    struct weft_loop *loop;
};
/* The loop's anchor, made on first use (loop thread); NULL on ENOMEM. */
struct weft__anchor *weft__loop_anchor(struct weft_loop *loop);
void weft__anchor_release(struct weft__anchor *a);
/* Any thread: posts cb(arg) to the anchor's loop if it is still alive.
 * 0, -ESHUTDOWN (the loop is gone or going) or -ENOMEM. */
int weft__anchor_post(struct weft__anchor *a, void (*cb)(void *), void *arg);

struct weft_loop {
    pthread_t owner; /* the thread that runs it, once bound */
    bool bound;      /* owner is set */
    bool running;    /* inside weft_loop_run/run_once */
    bool forever;    /* runs until stopped (its own thread) */
    union {
        struct {
            bool closing;    /* weft_loop_free: every park cancels */
            bool embedded;   /* weft_loop_fd was asked for */
            bool debug;      /* debug mode (sched/debug.c) */
            bool until_done; /* run_until's future is done: come back */
        };
        uint32_t modes; /* any of them: see weft__may_refill */
    };
    uint64_t visit_nran; /* nran when the loop last ran an iteration */
    int64_t last_poll;   /* when it last asked the kernel (nfdwait > 0) */
    long owner_tid;      /* the owner's kernel thread id, for reports */
    int64_t slow_ns;     /* debug: a slice longer than this is slow */
    int64_t slice_start; /* debug: when the running fiber started */
    uint64_t slice_fp;   /* debug: the FP control state it found */
    bool threaded;       /* made by weft_loop_start_thread */
    pthread_t thread;    /* that thread */
    atomic_bool joining; /* weft_loop_join_thread: free it */
    struct weft__tpark join_park; /* the stopped thread waits here */
    /* The owner thread's live loops, most recently current first (the
     * head is weft__loop_tls): freeing the current one falls back to the
     * one the thread ran before. */
    struct weft_loop *thr_prev, *thr_next;
    bool listed;                 /* in that list */
    struct weft__anchor *anchor; /* NULL until a callback needs one */
    atomic_bool stop;            /* weft_loop_stop */
    int64_t now;                 /* monotonic ns, read once per iteration */
    bool now_valid;              /* now was read in this iteration */
    uint64_t nran;               /* fibers resumed, for run_once's count */
    uint64_t last_fiber_id;      /* the id of the newest fiber */
    struct weft_future *until;   /* what weft_loop_run_until waits for */

    struct weft__fiber *runq_head, *runq_tail; /* FIFO of ready fibers */
    struct weft__fiber *batch;   /* this iteration's fibers not yet run */
    struct weft__fiber *current; /* running fiber or NULL */
    struct weft_coro *exited;    /* a fiber's, ended on its own: to free */
    struct weft__task *spare;    /* a released task's block, for a spawn */
    struct weft__list fibers;    /* every live fiber, newest first */
    size_t nfibers;              /* live fibers */
    size_t nfdwait;              /* parked on fds */
    size_t nemfile;              /* parked in accept backoff */

    struct weft__call *calls; /* call_soon ring */
    size_t calls_head, calls_len, calls_cap;

    struct weft__heap_ent *heap; /* timer leaders: 4-ary min-heap */
    void *heap_mem;              /* its allocation (heap is offset in it) */
    size_t nheap, capheap;
    uint64_t timer_seq;

    struct weft__poller poller;
    /* io's state (io/fd.c: the descriptor table), made by io on first
     * use, and its hooks: the loop knows neither its layout nor io's
     * functions. io_due: when io's timed work is due (monotonic ns; -1:
     * none). */
    void *io;
    const struct weft__loop_hooks *io_hooks;
    int64_t io_due;

    pthread_mutex_t xlock; /* guards xhead/xtail and xclosed */
    struct weft__xcall *xhead, *xtail;
    bool xclosed;          /* being freed: posts fail with -ESHUTDOWN */
    atomic_size_t nxcalls; /* queued cross-thread calls */
    atomic_int refs;       /* 1 + threads inside a post or stop */

    struct { /* see sched/timer.c; last, away from the hot fields */
        int64_t deadline;
        struct weft_timer *leader; /* NULL: empty */
    } tcache[WEFT__TCACHE];
};

/* The earliest deadline, or -1 with no timers. */
static inline int64_t weft__timers_next(const struct weft_loop *loop)
{
    return loop->nheap ? loop->heap[0].deadline : -1;
}

/* The loop's clock: read at most once per iteration, when first needed. */
static inline int64_t weft__loop_now(struct weft_loop *loop)
{
    if (!loop->now_valid) {
        loop->now = weft__now_ns();
        loop->now_valid = true;
    }
    return loop->now;
}

/* The loop bound to this thread, or NULL. */
extern WEFT__TLS struct weft_loop *weft__loop_tls;

/* The running fiber of this thread's loop, or NULL. */
static inline struct weft__fiber *weft__fiber_current(void)
{
    struct weft_loop *loop = weft__loop_tls;
    return loop ? loop->current : NULL;
}

/* The deadline of a wait of timeout_ms starting now: on the loop's clock
 * in a fiber, the real one in a plain thread; -1 (no clock read at all)
 * for timeout_ms < 0. */
static inline int64_t weft__wait_deadline(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    struct weft__fiber *f = weft__fiber_current();
    return weft__deadline(f ? weft__loop_now(f->loop) : weft__now_ns(),
                          timeout_ms);
}

/* Any thread: queues cb(arg) to run on loop's thread and wakes it.
 * 0, -ENOMEM, or -ESHUTDOWN once weft_loop_free has drained the queue
 * for the last time (the call would never run). */
int weft__loop_post(struct weft_loop *loop, void (*cb)(void *), void *arg);
/* Runs the cross-thread calls queued so far, on the loop's thread
 * (xthread.c); returns how many. */
int weft__xcalls_run(struct weft_loop *loop);
/* Deadlock detection (deadlock.c): true if something other than a fiber
 * of this loop (the kernel, a timer, another thread) can still wake one
 * of its parked fibers. */
bool weft__loop_can_be_woken(struct weft_loop *loop);
/* weft_loop_free with nothing ready and every live fiber in a wait that
 * nothing can end: ends one such wait with -ECANCELED. False if some
 * fiber can still make progress. */
bool weft__loop_give_up_one(struct weft_loop *loop);
/* Binds loop to the calling thread and makes it the current loop. */
void weft__loop_bind(struct weft_loop *loop);
/* True when the calling thread is loop's thread (or loop is unbound). */
bool weft__loop_is_mine(const struct weft_loop *loop);
/* Each live fiber of loop, as f, newest first. */
#define weft__loop_each_fiber(f, loop)                                         \
    for (struct weft__fiber *f = weft__fiber_of_all((loop)->fibers.head);      \
         f != NULL; f = weft__fiber_of_all(f->all.next))
static inline struct weft__fiber *weft__fiber_of_all(struct weft__link *l)
{
    return l != NULL ? weft__container_of(l, struct weft__fiber, all) : NULL;
}

/* Pushes f at the tail of the run queue. */
static inline void weft__runq_push(struct weft_loop *loop,
                                   struct weft__fiber *f)
{
    f->state = WEFT__FIBER_READY;
    f->next = NULL;
    /* Branch-free, so callers keep a single path (and call site) after
     * it: see switch_away in fiber.c. */
    struct weft__fiber **link =
        loop->runq_tail ? &loop->runq_tail->next : &loop->runq_head;
    *link = f;
    loop->runq_tail = f;
}

/* Work was made ready while loop is not running: by the host of an
 * embedded loop between its weft_loop_run_once calls (a channel send, a
 * promise resolved, a spawn, weft_call_soon), whose view of the loop's
 * fd must then turn readable, or it may never come back. Called from the
 * paths a host can take (weft__wake, a spawn, weft_call_soon), which
 * check !loop->running first, not from a yield. */
void weft__loop_readied(struct weft_loop *loop);

#endif /* WEFT__SCHED_LOOP_H */
