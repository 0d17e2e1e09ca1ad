/* SPDX-License-Identifier: MIT */
/*
 * A fiber: its states, what it waits on, and the queue of parked fibers
 * every primitive waits in (sched/fiber.c; docs/fibers.md tells the
 * transitions).
 */
#ifndef WEFT__SCHED_FIBER_H
#define WEFT__SCHED_FIBER_H

#include "../core/internal.h"
#include "../core/list.h"
#include "timer.h"
#include "waiter.h"
#include <stdbool.h>
#include <stdint.h>

struct weft__fiber;
struct weft_loop;

enum weft__fiber_state {
    WEFT__FIBER_READY,   /* in the run queue */
    WEFT__FIBER_RUNNING, /* on the CPU */
    WEFT__FIBER_PARKED,  /* suspended in weft__park */
    WEFT__FIBER_DONE,
};

/* What a parked fiber waits on, for deadlock detection and debugging. */
enum weft__wait {
    WEFT__WAIT_NONE,
    WEFT__WAIT_SLEEP,   /* a timer only */
    WEFT__WAIT_FUTURE,  /* a future (wait_obj) */
    WEFT__WAIT_FUTURES, /* several (wait_obj: struct weft__multiwait) */
    WEFT__WAIT_SYNC,    /* a mutex, cond, semaphore or event of its loop */
    WEFT__WAIT_CHAN,    /* a channel: any thread may wake it */
    /* Counted by the loop (nfdwait, nemfile): these two stay last. */
    WEFT__WAIT_FD,     /* a descriptor: the kernel can wake it */
    WEFT__WAIT_EMFILE, /* weft_accept backing off */
};

/* Removes a parked fiber from whatever it waits in, when its timeout or a
 * cancellation comes first. Returns false if the wait has completed in
 * the meantime (another thread decided it, and the wake is on its way):
 * the fiber then stays parked for that wake. */
typedef bool weft__unlink_fn(struct weft__fiber *f);

struct weft__fiber {
    weft_coro *co;           /* the stack it runs on */
    struct weft_loop *loop;  /* home, for its whole life */
    uint64_t id;             /* unique in its loop, never reused */
    struct weft_future *fut; /* its task future (the loop's reference) */
    weft_fn fn;              /* body */
    void *arg;
    struct weft__fiber *next;  /* run queue link */
    struct weft__link all;     /* in the loop's live fibers */
    unsigned state;            /* enum weft__fiber_state */
    bool cancel;               /* a cancellation waits for a park */
    bool nocancel;             /* parks ignore cancellation (it waits) */
    int wake_rc;               /* what weft__park returns */
    unsigned wait;             /* enum weft__wait, while parked */
    void *wait_obj;            /* the future or fd entry waited on */
    weft__unlink_fn *unlink;   /* see above; NULL: nothing to unlink */
    struct weft_timer timeout; /* the park's deadline */
    struct weft__waiter fw;    /* its entry while awaiting a future */
    char name[32];             /* until the coroutine exists */
    size_t stack_size;         /* idem */
    struct weft_mutex *held;   /* debug: the mutexes it holds (sync.c) */
    int wait_fd;               /* an fd wait (io/fd.c): the fd, */
    unsigned wait_events;      /* and the WEFT__POLL_IN/OUT wanted */
    struct weft__link wq;      /* in the weft__waitq it is parked in, if any */
};

/* A FIFO of parked fibers, linked through wq (a fiber waits on one thing
 * at a time): an fd's waiters, accept's back-off, a mutex, condition,
 * semaphore or event. */
struct weft__waitq {
    struct weft__list fibers;
};

static inline struct weft__fiber *weft__waitq_fiber(struct weft__link *l)
{
    return l != NULL ? weft__container_of(l, struct weft__fiber, wq) : NULL;
}

static inline void weft__waitq_push(struct weft__waitq *q,
                                    struct weft__fiber *f)
{
    weft__list_push(&q->fibers, &f->wq);
}

static inline void weft__waitq_del(struct weft__waitq *q, struct weft__fiber *f)
{
    weft__list_del(&q->fibers, &f->wq);
}

static inline bool weft__waitq_empty(const struct weft__waitq *q)
{
    return weft__list_empty(&q->fibers);
}

/* The longest waiter; NULL if empty. */
static inline struct weft__fiber *weft__waitq_first(struct weft__waitq *q)
{
    return weft__waitq_fiber(q->fibers.head);
}

/* The waiter after f. */
static inline struct weft__fiber *weft__waitq_next(struct weft__fiber *f)
{
    return weft__waitq_fiber(f->wq.next);
}

/* The longest waiter, taken off the queue; NULL if empty. */
static inline struct weft__fiber *weft__waitq_pop(struct weft__waitq *q)
{
    return weft__waitq_fiber(weft__list_pop(&q->fibers));
}

/* The timer callback of a park's deadline. */
void weft__park_timeout(void *arg);
/* Loop thread: cancels f (see weft_cancel). */
void weft__fiber_cancel(struct weft__fiber *f);

/* Creates a fiber and queues it. Its future is fut (weft_submit's, whose
 * reference passes to the loop) or a new one, with a reference for the
 * caller if with_future. NULL and errno. */
struct weft__fiber *weft__fiber_new(struct weft_loop *loop, weft_fn fn,
                                    void *arg, const weft_spawn_opts *opts,
                                    bool with_future, weft_future *fut);
/* Runs f until it parks or returns (loop thread, outside fibers). */
void weft__fiber_run(struct weft__fiber *f);
/* Gives a fiber that never ran its coroutine (and stack); false on
 * ENOMEM (the loop then finishes it with -ENOMEM). */
bool weft__fiber_make_coro(struct weft__fiber *f);
/* The running fiber f hands over to next, the head of the batch, which
 * never ran: makes its coroutine and switches to it (its coroutine
 * returns to the loop when it ends). True once f runs again; false, with
 * nothing done, on ENOMEM. */
__attribute__((noinline, cold)) bool
weft__fiber_start_from(struct weft__fiber *f, struct weft__fiber *next);

#endif /* WEFT__SCHED_FIBER_H */
