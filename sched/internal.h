/* SPDX-License-Identifier: MIT */
/*
 * sched/: the per-thread loop, its fibers, timers, callbacks and futures.
 * Shared internals of the scheduler layer (and of io/, which parks fibers
 * on descriptors through weft__park).
 *
 * Threading: a loop and its fibers belong to one thread. Other threads
 * reach a loop only through its cross-thread call queue (xcall, under
 * xlock) and weft__poller_wake. Futures are the one object shared freely:
 * each has its own lock.
 */
#ifndef WEFT_SCHED_INTERNAL_H
#define WEFT_SCHED_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/internal.h"
#include "../io/poller.h"

/* ---- clock ---- */

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

/* ---- timers (sched/timer.c) ---- */

struct weft_timer {
    int64_t deadline; /* monotonic ns */
    uint64_t seq;     /* arming order: breaks deadline ties FIFO */
    struct weft_timer *prev, *next; /* ring of one deadline's timers */
    void (*cb)(void *);             /* runs on the loop, outside fibers */
    void *arg;
    struct weft_loop *loop;
    uint32_t idx; /* heap slot; WEFT__FOLLOWER or WEFT__IDLE */
    bool user;    /* made by weft_call_later: freed once fired or cancelled */
};
#define WEFT__IDLE UINT32_MAX           /* not armed */
#define WEFT__FOLLOWER (UINT32_MAX - 1) /* armed, behind its ring's leader */
#define WEFT__MAX_TIMER_SLOTS (UINT32_MAX - 1)

/* One heap slot, 16 bytes: four siblings share one cache line. Equal
 * deadlines in the heap are rare (repeats join a leader's ring), so the
 * sequence that breaks such ties is read from the timer itself. */
struct weft__heap_ent {
    int64_t deadline;
    struct weft_timer *t;
};

/* Direct-mapped by deadline: the newest leader of each deadline seen. */
#define WEFT__TCACHE 256

/* Arms t (idle) to fire at deadline. 0 or -ENOMEM. */
int weft__timer_arm(struct weft_loop *loop, struct weft_timer *t,
                    int64_t deadline);
/* Disarms t if armed. */
void weft__timer_disarm(struct weft_loop *loop, struct weft_timer *t);
/* Fires every timer due at loop->now; returns how many fired. */
int weft__timers_run(struct weft_loop *loop);
/* Frees the heap, and the user timers still armed (never fired). */
void weft__timers_free(struct weft_loop *loop);
/* The earliest deadline, or -1 with no timers. */
static inline int64_t weft__timers_next(const struct weft_loop *loop);

/* ---- fibers (sched/fiber.c) ---- */

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

/* A plain thread's way to block: a flag under a private mutex, so that
 * wakers from any thread can reach it with a fixed lock order (the
 * waker's structure lock, then this). */
struct weft__tpark {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    bool woken;
    int rc;
};
void weft__tpark_init(struct weft__tpark *p);
void weft__tpark_destroy(struct weft__tpark *p);
/* Any thread. */
void weft__tpark_wake(struct weft__tpark *p, int rc);
/* Blocks until woken (returns the rc given) or deadline (monotonic ns;
 * < 0: none) passes (-ETIMEDOUT). Clears woken for the next wait. */
int weft__tpark_wait(struct weft__tpark *p, int64_t deadline);

/* A waiter on a future: a fiber (on its loop), a blocked thread, or a
 * callback. Lives in the waiting frame or in a small allocation. */
enum weft__waiter_kind {
    WEFT__WAITER_FIBER,    /* a fiber parked in an await */
    WEFT__WAITER_THREAD,   /* a plain thread blocked in an await */
    WEFT__WAITER_CALLBACK, /* weft_future_on_done */
    WEFT__WAITER_WAKE,     /* wakes a loop's poller (run_until) */
};
struct weft__waiter {
    struct weft__waiter *next, *prev;
    unsigned kind;
    struct weft_loop *loop;            /* FIBER and WAKE */
    struct weft__anchor *anchor;       /* CALLBACK: its loop (NULL: any) */
    struct weft__fiber *fiber;         /* FIBER */
    struct weft__tpark *tp;            /* THREAD */
    void (*cb)(weft_future *, void *); /* CALLBACK */
    void *arg;
    void *result; /* FIBER: the outcome, written before the wake (the */
    int err;      /* future may be gone once the fiber runs again) */
};

/* What a fiber waiting on several futures parks on. */
struct weft__multiwait {
    weft_future *const *fs;
    struct weft__waiter *ws; /* one per future, kind FIBER */
    size_t n;
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
    struct weft__fiber *next;                /* run queue link */
    struct weft__fiber *prev_all, *next_all; /* the loop's live fibers */
    unsigned state;                          /* enum weft__fiber_state */
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
    /* fd waits (io/fd.c) */
    int wait_fd;
    unsigned wait_events;                  /* WEFT__POLL_IN/OUT wanted */
    struct weft__fiber *fd_next, *fd_prev; /* the fd's waiter list */
};

/* A FIFO of parked fibers, linked through fd_next/fd_prev (a fiber waits
 * on one thing at a time): an fd's waiters, accept's back-off, a mutex,
 * condition, semaphore or event. */
struct weft__waitq {
    struct weft__fiber *head, *tail;
};

static inline void weft__waitq_push(struct weft__waitq *q,
                                    struct weft__fiber *f)
{
    f->fd_next = NULL;
    f->fd_prev = q->tail;
    if (q->tail)
        q->tail->fd_next = f;
    else
        q->head = f;
    q->tail = f;
}

static inline void weft__waitq_del(struct weft__waitq *q, struct weft__fiber *f)
{
    if (f->fd_prev)
        f->fd_prev->fd_next = f->fd_next;
    else
        q->head = f->fd_next;
    if (f->fd_next)
        f->fd_next->fd_prev = f->fd_prev;
    else
        q->tail = f->fd_prev;
    f->fd_next = f->fd_prev = NULL;
}

/* The longest waiter, taken off the queue; NULL if empty. */
static inline struct weft__fiber *weft__waitq_pop(struct weft__waitq *q)
{
    struct weft__fiber *f = q->head;
    if (f)
        weft__waitq_del(q, f);
    return f;
}

/* Parks the running fiber until weft__wake(f, rc) (returns rc), its
 * deadline passes (-ETIMEDOUT; deadline < 0: none) or it is cancelled
 * (-ECANCELED). A pending cancellation returns -ECANCELED at once. The
 * caller has linked f into what it waits on; unlink undoes that. Inline,
 * below the loop's definition: every wait in weft goes through it. */
__attribute__((always_inline)) static inline int
weft__park(struct weft__fiber *f, unsigned wait, void *wait_obj,
           int64_t deadline, weft__unlink_fn *unlink);
/* Loop thread: ends f's park with rc (no-op unless parked). */
static inline void weft__wake(struct weft__fiber *f, int rc);
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

/* ---- callbacks: a ring of (cb, arg) ---- */
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

/* ---- fd table (io/fd.c) ---- */

/* The poller's callback: wakes the fibers waiting on fd for events. */
void weft__fd_ready(void *ctx, int fd, unsigned events);
/* Checks the registrations the loop trusted for waits that have had no
 * report for WEFT__FD_CHECK_NS (io/fd.c): due at loop->fdcheck_at. */
void weft__fd_check(struct weft_loop *loop);
#define WEFT__FD_CHECK_NS 10000000 /* 10 ms */
/* Each check that finds the registration sound doubles the fd's interval,
 * up to WEFT__FD_CHECK_NS << WEFT__FD_CHECK_MAX_SHIFT (640 ms): a busy
 * connection whose waits often pass 10 ms (a thousand of them, say)
 * would otherwise cost an epoll_ctl per message. */
#define WEFT__FD_CHECK_MAX_SHIFT 6

/* What the loop knows of an fd (by number: after a plain close() and the
 * reuse of the number it is stale, see io/fd.c). */
struct weft__fdent {
    struct weft__waitq waiters; /* parked on this fd */
    int64_t since;              /* when its unchecked wait began */
    int check_next;             /* next on its check list, + 1 (0: end) */
    unsigned char ready;        /* WEFT__POLL_IN/OUT reported since the
                                   last EAGAIN, HUP since registration */
    unsigned char kind;         /* WEFT__FD_UNKNOWN, _STREAM, _OTHER */
    unsigned char reg;          /* WEFT__POLL_IN/OUT registered with the
                                   poller (0: not registered) */
    bool proven;                /* the registration reported, or was made
                                   or checked, during the current wait */
    bool checking;              /* on one of the loop's check lists */
    bool nonblock;              /* weft set O_NONBLOCK (kept with reg) */
    bool wait_first;            /* the last read found nothing at first:
                                   the next one likely will too */
    unsigned char check_shift;  /* checks wait WEFT__FD_CHECK_NS << this */
    uint64_t accepted;          /* a listening socket: the loop's nran + 1
                                   when a fiber's weft_accept on it last
                                   returned a connection (0: never) */
};
#define WEFT__FD_UNKNOWN 0
#define WEFT__FD_STREAM 1 /* a short read drains it: SOCK_STREAM, a pipe */
#define WEFT__FD_OTHER 2

/* ---- the loop ---- */

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
    struct weft__fiber *fibers;  /* every live fiber */
    size_t nfibers;              /* live fibers */
    size_t nfdwait;              /* parked on fds */
    size_t nemfile;              /* parked in accept backoff */
    struct weft__waitq emfile_waiters; /* them */

    struct weft__call *calls; /* call_soon ring */
    size_t calls_head, calls_len, calls_cap;

    struct weft__heap_ent *heap; /* timer leaders: 4-ary min-heap */
    void *heap_mem;              /* its allocation (heap is offset in it) */
    size_t nheap, capheap;
    uint64_t timer_seq;

    struct weft__poller poller;
    struct weft__fdent *fds; /* indexed by fd */
    size_t nfds;
    /* The check lists, one per check interval (an fd's check_shift when
     * queued), each in the order the waits began, so in due order: a
     * pass visits only what is due. Links are fd + 1 (0: empty). */
    int fdcheck_head[WEFT__FD_CHECK_MAX_SHIFT + 1];
    int fdcheck_tail[WEFT__FD_CHECK_MAX_SHIFT + 1];
    size_t fdcheck_n;   /* queued on them all */
    int64_t fdcheck_at; /* when to run weft__fd_check */

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
extern WEFT_TLS struct weft_loop *weft__loop_tls;

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

/* Any thread: queues cb(arg) to run on loop's thread and wakes it.
 * 0, -ENOMEM, or -ESHUTDOWN once weft_loop_free has drained the queue
 * for the last time (the call would never run). */
int weft__loop_post(struct weft_loop *loop, void (*cb)(void *), void *arg);
/* Binds loop to the calling thread and makes it the current loop. */
void weft__loop_bind(struct weft_loop *loop);
/* True when the calling thread is loop's thread (or loop is unbound). */
bool weft__loop_is_mine(const struct weft_loop *loop);
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

/* ---- debug mode (sched/debug.c): all of it behind loop->debug ---- */

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

/* ---- parking and waking: the hot path of every wait ---- */

/* The poll policy. While fibers are ready, they hand over to each other
 * directly, and the loop itself runs (firing due timers, running
 * callbacks) once every WEFT__RUNS_PER_VISIT fiber runs; at such a visit
 * it asks the kernel for IO only if WEFT__POLL_NS have passed since it
 * last did. When nothing is ready it blocks in the kernel at once. A
 * descriptor that turns ready while fibers hand over without pause is
 * thus noticed within WEFT__POLL_NS plus 64 runs. */
#define WEFT__RUNS_PER_VISIT 64
#define WEFT__POLL_NS (250 * 1000)

/* True when a fiber may start the next batch itself, without a trip
 * through the loop: no callback or cross-thread call is queued, the loop
 * is not stopping, closing, embedded or debugging (in debug mode the loop
 * runs each fiber itself, to time it), and its visit is not due (it is
 * never due while no timer is armed and no fiber waits on the kernel). */
static inline bool weft__may_refill(struct weft_loop *loop)
{
    return (loop->calls_len |
            atomic_load_explicit(&loop->nxcalls, memory_order_relaxed) |
            loop->modes |
            (size_t)atomic_load_explicit(&loop->stop, memory_order_relaxed)) ==
               0 &&
           ((loop->nheap | loop->nfdwait | loop->nemfile) == 0 ||
            loop->nran - loop->visit_nran < WEFT__RUNS_PER_VISIT);
}

/* The batch is empty: makes the run queue the batch if the policy allows
 * (weft__may_refill), and returns its head; NULL if not (or empty). */
static inline struct weft__fiber *weft__refill(struct weft_loop *loop)
{
    if (loop->runq_head == NULL || !weft__may_refill(loop))
        return NULL;
    struct weft__fiber *next = loop->batch = loop->runq_head;
    loop->runq_head = loop->runq_tail = NULL;
    loop->now_valid = false; /* a new iteration, in effect */
    return next;
}

/* Takes next, the head of the batch, off it as the running fiber, before
 * a switch to it (weft__hand_over, and a fiber's end in fiber.c). */
__attribute__((always_inline)) static inline void
weft__take_next(struct weft_loop *loop, struct weft__fiber *next)
{
    /* The fiber after next: its coroutine's header, at the top of its own
     * stack (with many fibers, a cache and TLB miss at its resume
     * otherwise), found through its fiber, which the hand-over before
     * fetched; and the fiber after that, for the next hand-over. */
    struct weft__fiber *after = next->next;
    if (after != NULL) {
        __builtin_prefetch(after->co, 1);
        __builtin_prefetch(after->next, 0);
    }
    loop->batch = next->next;
    next->state = WEFT__FIBER_RUNNING;
    loop->current = next;
    loop->nran++;
}

/* The running fiber f switches to next, the head of the batch, which has
 * its coroutine. Returns when f runs again. */
__attribute__((always_inline)) static inline void
weft__hand_over(struct weft_loop *loop, struct weft__fiber *f,
                struct weft__fiber *next)
{
    weft__take_next(loop, next);
    weft__coro_transfer(f->co, next->co);
}

/* The running fiber f has queued or parked itself: switch to the next
 * fiber of the batch, or back to the loop. Returns when f runs again. */
__attribute__((always_inline)) static inline void
weft__switch_away(struct weft__fiber *f)
{
    struct weft_loop *loop = f->loop;
    struct weft__fiber *next = loop->batch;
#if WEFT__RESUME_HINT
    /* Whoever runs next, this fiber again included, finds this function's
     * return address on top of the return stack (WEFT__RESUME_RETURN). */
    weft__resume_ra = __builtin_return_address(0);
#endif
    if (next == NULL)
        next = weft__refill(loop);
    if (next == f) { /* alone: keep running */
        loop->batch = f->next;
        f->state = WEFT__FIBER_RUNNING;
        loop->nran++;
        return;
    }
    if (next != NULL && next->co != NULL) {
        weft__hand_over(loop, f, next);
        return;
    }
    /* A fiber that never ran starts by a switch too (out of line). */
    if (next != NULL && weft__fiber_start_from(f, next))
        return;
    weft_coro_yield(); /* to the loop */
}

static inline void weft__clear_wait(struct weft__fiber *f)
{
    f->wait = WEFT__WAIT_NONE;
    f->wait_obj = NULL;
    f->unlink = NULL;
}

/* Always inline: the switch must happen in the function that called
 * weft__park, whose return address switch_away records for the thunk
 * (WEFT__RESUME_RETURN). */
__attribute__((always_inline)) static inline int
weft__park(struct weft__fiber *f, unsigned wait, void *wait_obj,
           int64_t deadline, weft__unlink_fn *unlink)
{
    struct weft_loop *loop = f->loop;
    f->wait = wait;
    f->wait_obj = wait_obj;
    f->unlink = unlink;
    bool timed = deadline >= 0;
    if (WEFT_UNLIKELY((f->cancel || loop->closing) && !f->nocancel)) {
        if (unlink == NULL || unlink(f)) {
            f->cancel = false;
            weft__clear_wait(f);
            return -ECANCELED;
        }
        /* It completed under us and its wake is on its way: wait for
         * that; the cancellation stays pending for the next park. */
        f->cancel = true;
        timed = false;
    }
    if (timed) {
        f->timeout.cb = weft__park_timeout;
        f->timeout.arg = f;
        f->timeout.user = false;
        if (weft__timer_arm(loop, &f->timeout, deadline) < 0 &&
            (unlink == NULL || unlink(f))) {
            weft__clear_wait(f);
            return -ENOMEM;
        }
    }
    f->state = WEFT__FIBER_PARKED;
    if (WEFT_UNLIKELY(wait >= WEFT__WAIT_FD)) {
        if (wait == WEFT__WAIT_FD)
            loop->nfdwait++;
        else if (wait == WEFT__WAIT_EMFILE)
            loop->nemfile++;
    }
    weft__switch_away(f);
    return f->wake_rc;
}

static inline void weft__wake(struct weft__fiber *f, int rc)
{
    if (f->state != WEFT__FIBER_PARKED)
        return;
    struct weft_loop *loop = f->loop;
    if (f->timeout.idx != WEFT__IDLE)
        weft__timer_disarm(loop, &f->timeout);
    if (WEFT_UNLIKELY(f->wait >= WEFT__WAIT_FD)) {
        if (f->wait == WEFT__WAIT_FD)
            loop->nfdwait--;
        else if (f->wait == WEFT__WAIT_EMFILE)
            loop->nemfile--;
    }
    /* wait, wait_obj and unlink stay stale: only read while parked. */
    f->wake_rc = rc;
    weft__runq_push(loop, f);
}

/* ---- a spinlock, for state any thread may touch briefly ---- */

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
    if (WEFT_UNLIKELY(!weft__spin_trylock(l)))
        weft__spin_lock_contended(l);
}
static inline void weft__spin_unlock(atomic_int *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* ---- futures (sched/future.c) ---- */

#define WEFT__FUTURE_LIVE 0x46555452u /* "FUTR" */
#define WEFT__FUTURE_DEAD 0x44454144u /* "DEAD" */

struct weft_future {
    uint32_t magic;       /* WEFT__FUTURE_LIVE until the last release */
    atomic_bool observed; /* its outcome was read (await, result, ...) */
    bool debug;           /* made in debug mode: report if failed, unobserved */
    char name[32];        /* debug: the task's name, kept past its fiber */
    atomic_int refs;
    atomic_int lock; /* a spinlock; guards everything below */
    atomic_bool done;
    int err; /* 0 or a negative errno, once done */
    void *result;
    struct weft__fiber *task;    /* the fiber computing it, until done */
    struct weft_loop *task_loop; /* its loop (stays set when done) */
    bool cancel_req; /* weft_cancel of a submission whose fiber did not
                        exist yet: the fiber starts cancelled */
    bool in_task;    /* the head of a struct weft__task: frees it */
    struct weft__waiter *waiters;
    /* Fibers of task_loop awaiting this task (await_local): touched only
     * on that loop's thread, which alone completes a task, so no lock. */
    struct weft__waiter *local;
};

/* A fiber of weft_spawn or weft_go and its future, in one allocation: the
 * future's last release frees both (the fiber holds a reference until it
 * has finished, so the fiber part is never freed under it). */
struct weft__task {
    struct weft_future fut;
    struct weft__fiber fib;
};

/* Sets up a zeroed future with one reference. */
void weft__future_init(struct weft_future *f);

/* Creates a future with one reference; NULL and errno ENOMEM. */
weft_future *weft__future_new(void);
void weft__future_retain(weft_future *f);
/* Adds w to f's waiters; false (w not added) if f is already done. */
bool weft__future_add_waiter(weft_future *f, struct weft__waiter *w);
/* Removes w if it is still there. */
void weft__future_remove_waiter(weft_future *f, struct weft__waiter *w);
/* Completes f (err 0: result); -EINVAL if already done. Any thread. */
int weft__future_complete(weft_future *f, void *result, int err);

/* True when WEFT_DEBUG=1 is in the environment (read once). */
extern atomic_int weft__debug_env; /* -1 until read */
bool weft__debug_slow(void);
static inline bool weft__debug(void)
{
    int v = atomic_load_explicit(&weft__debug_env, memory_order_relaxed);
    return WEFT_LIKELY(v >= 0) ? v != 0 : weft__debug_slow();
}

#endif /* WEFT_SCHED_INTERNAL_H */
