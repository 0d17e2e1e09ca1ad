/* SPDX-License-Identifier: MIT */
/*
 * Channels for any thread: fibers of any loop and plain threads send and
 * receive, buffered or not (capacity 0: a send waits for its receiver).
 *
 * A spinlock guards each channel; critical sections are a few stores.
 * Every wait is decided under it: whoever completes a waiter (hands it an
 * item, takes its item, or closes the channel) marks it done with its
 * result and wakes it. A waiting thread is woken through its tpark; a
 * fiber of the calling thread's loop directly; a fiber of another loop by
 * a call posted to that loop, and until that call arrives the fiber stays
 * parked: its timeout or a cancellation finds the wait done and leaves it
 * alone (the unlink returns false), so a transferred item is never lost.
 *
 * Such a wake in flight (a posted call, or a thread's tpark) holds a
 * reference to the channel, and the unlink or the thread's re-check may
 * still lock it: weft_chan_free drops the user's reference, and the
 * memory goes with the last one. So closing a channel and freeing it at
 * once is safe, wherever its woken waiters are.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHAN_LIVE 0x4348414eu /* "CHAN" */
#define CHAN_DEAD 0x44454144u /* "DEAD" */

struct weft_chan {
    uint32_t magic;  /* CHAN_LIVE, CHAN_DEAD after free */
    atomic_int lock; /* spinlock */
    atomic_int refs; /* 1 until weft_chan_free, + each wake in flight */
    bool closed;
    size_t cap, len, head; /* ring of buffered items */
    void **buf;
    struct weft__list sendq, recvq; /* waiting senders, receivers: FIFO */
};

static inline bool trylock(weft_chan *ch)
{
    return weft__spin_trylock(&ch->lock);
}

static inline void lock(weft_chan *ch)
{
    weft__spin_lock(&ch->lock);
}

static inline void unlock(weft_chan *ch)
{
    weft__spin_unlock(&ch->lock);
}

static inline struct weft__waiter *first(const struct weft__list *q)
{
    return weft__waiter_of(q->head);
}

/* The memory of a channel nobody references any more. */
static void chan_destroy(weft_chan *ch)
{
    if (weft__debug()) /* quarantined: later misuse is caught for sure */
        return;
    if (ch->buf)
        weft__free(ch->buf, ch->cap * sizeof *ch->buf);
    weft__free(ch, sizeof *ch);
}

static void chan_unref(weft_chan *ch)
{
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) == 1)
        chan_destroy(ch);
}

/* On the waiter's loop: the fiber leaves its wait, which touches the
 * channel no more (its unlink is only called while it is parked). */
static void wake_remote(void *arg)
{
    struct weft__waiter *w = arg;
    weft_chan *ch = w->ch;
    weft__wake(w->fiber, w->err);
    chan_unref(ch);
}

/* The loop of a waiting plain thread: never any thread's loop, so that
 * "a fiber of this thread's loop" is one comparison. */
static char thread_mark;
#define THREAD_LOOP ((struct weft_loop *)&thread_mark)

/* True when the waiter first in q is a fiber of this thread's loop with
 * no deadline: complete_first_here() can finish it without a call. (Such
 * a waiter is parked: its fiber queued it and parked without a switch in
 * between, and only this thread completes it.) */
static inline bool first_is_here(const struct weft__list *q)
{
    const struct weft__waiter *w = first(q);
    return w->loop == weft__loop_tls && w->fiber->timeout.idx == WEFT__IDLE &&
           w->loop->running; /* not a host's call between its runs */
}

/* Under ch's lock, when first_is_here(q): complete() for the first waiter
 * without a call, so that the calls handing over to a fiber of their own
 * loop (the common case) stay leaf functions. */
static inline void complete_first_here(struct weft__list *q, int rc)
{
    struct weft__waiter *w = weft__waiter_of(weft__list_pop(q));
    w->done = true;
    w->err = rc;
    struct weft__fiber *f = w->fiber;
    f->wake_rc = rc;
    weft__runq_push(w->loop, f);
}

/* Under ch's lock: w's wait is over with rc. */
static inline void complete(struct weft__list *q, struct weft__waiter *w,
                            int rc)
{
    weft__list_del(q, &w->link);
    w->done = true;
    w->err = rc;
    if (WEFT__LIKELY(w->loop == weft__loop_tls)) {
        weft__wake(w->fiber, rc); /* our own loop: just queue it */
        return;
    }
    /* Until the waiter has its wake, the channel must stay. */
    atomic_fetch_add_explicit(&w->ch->refs, 1, memory_order_relaxed);
    if (w->tp != NULL)
        weft__tpark_wake(w->tp, rc);
    else {
        int err = weft__loop_post(w->loop, wake_remote, w);
        if (err < 0)
            /* It cannot fail but for memory: the parked fiber keeps its
             * loop from closing its queue (weft_loop_free drains until
             * no fiber is left). */
            weft__die("waking a fiber of another loop", -err);
    }
}

/* What a call on a NULL or freed channel returns; a freed one is
 * reported, not touched (its memory stays mapped in debug mode,
 * WEFT_DEBUG=1, so this is reliable there). */
__attribute__((cold, noinline)) static int bad_chan(weft_chan *ch,
                                                    const char *call)
{
    if (ch != NULL)
        fprintf(stderr, "weft: %s: channel %p used after weft_chan_free\n",
                call, (void *)ch);
    return -EINVAL;
}

static inline bool usable(const weft_chan *ch)
{
    return WEFT__LIKELY(ch != NULL && ch->magic == CHAN_LIVE);
}

weft_chan *weft_chan_new(size_t capacity)
{
    if (capacity > ((size_t)1 << 40)) {
        errno = EINVAL;
        return NULL;
    }
    weft_chan *ch = weft__zalloc(sizeof *ch);
    if (ch == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (capacity > 0 &&
        (ch->buf = weft__alloc(capacity * sizeof *ch->buf)) == NULL) {
        weft__free(ch, sizeof *ch);
        errno = ENOMEM;
        return NULL;
    }
    ch->cap = capacity;
    ch->magic = CHAN_LIVE;
    atomic_init(&ch->lock, 0);
    atomic_init(&ch->refs, 1);
    return ch;
}

int weft_chan_free(weft_chan *ch)
{
    if (!usable(ch))
        return bad_chan(ch, "weft_chan_free");
    lock(ch);
    if (!weft__list_empty(&ch->sendq) || !weft__list_empty(&ch->recvq)) {
        unlock(ch);
        return -EBUSY;
    }
    ch->magic = CHAN_DEAD;
    unlock(ch);
    chan_unref(ch); /* wakes still in flight keep it a little longer */
    return 0;
}

static bool chan_unlink(struct weft__fiber *f)
{
    struct weft__waiter *w = f->wait_obj;
    weft_chan *ch = w->ch;
    lock(ch);
    bool pending = !w->done;
    if (pending)
        weft__list_del(w->q, &w->link);
    unlock(ch);
    return pending;
}

/* Under ch's lock: w waits in q for ch, with item to give (a send). */
static inline void waiter_push(struct weft__waiter *w, weft_chan *ch,
                               struct weft__list *q, void *item)
{
    w->ch = ch;
    w->q = q;
    w->result = item;
    w->err = 0;
    w->done = false;
    weft__list_push(q, &w->link);
}

/* wait_on for a plain thread: blocks on a tpark. */
__attribute__((noinline)) static int thread_wait(weft_chan *ch,
                                                 struct weft__list *q,
                                                 void *item, void **got,
                                                 int64_t timeout_ms)
{
    struct weft__blocker b;           /* a thread's: b.fiber is NULL */
    if (weft__blocker_init(&b) < 0) { /* a loop's thread outside fibers */
        unlock(ch);
        return -EDEADLK;
    }
    struct weft__waiter w;
    w.kind = WEFT__WAITER_THREAD;
    w.fiber = NULL;
    w.loop = THREAD_LOOP;
    w.tp = &b.tp;
    waiter_push(&w, ch, q, item);
    unlock(ch);
    /* The clock is read after the lock is dropped: a clock read is not
     * short enough to hold a spinlock over. */
    int rc = weft__block(&b, WEFT__WAIT_CHAN, &w,
                         weft__wait_deadline(timeout_ms), NULL);
    bool done = true; /* woken: by whoever completed the wait */
    if (rc == -ETIMEDOUT) {
        lock(ch); /* alive: w is queued, or its completion holds a ref */
        done = w.done;
        if (done)
            rc = w.err; /* completed as the time ran out */
        else
            weft__list_del(q, &w.link);
        unlock(ch);
    }
    if (done)
        chan_unref(ch); /* the completion's reference */
    weft__blocker_fini(&b);
    if (rc == 0 && got != NULL)
        *got = w.result;
    return rc;
}

/*
 * The waiting half of a send (item) or a receive (into *got), apart so
 * that the calls that hand over at once carry no waiter in their frames.
 * Entered with ch locked and nothing to take or give; queues the caller
 * on q, unlocks, and waits until it is done or the time is up. Returns
 * the wait's result, -ETIMEDOUT, -ECANCELED, or -EDEADLK on a loop's
 * thread outside its fibers.
 */
WEFT__RESUME_RETURN __attribute__((noinline)) static int
wait_on(weft_chan *ch, struct weft__list *q, void *item, void **got,
        int64_t timeout_ms)
{
    struct weft__fiber *f = weft__fiber_current();
    if (WEFT__UNLIKELY(timeout_ms == 0)) {
        unlock(ch);
        return -ETIMEDOUT;
    }
    if (WEFT__UNLIKELY(f == NULL))
        return thread_wait(ch, q, item, got, timeout_ms);
    struct weft__waiter w;
    w.kind = WEFT__WAITER_FIBER;
    w.fiber = f;
    w.loop = f->loop;
    w.tp = NULL;
    waiter_push(&w, ch, q, item);
    unlock(ch);
    int rc = weft__park(f, WEFT__WAIT_CHAN, &w, weft__wait_deadline(timeout_ms),
                        chan_unlink);
    if (rc == 0 && got != NULL)
        *got = w.result;
    return rc;
}

/* A send with ch locked, every case. */
__attribute__((noinline)) static int send_locked(weft_chan *ch, void *item,
                                                 int64_t timeout_ms)
{
    /* A closed channel has no waiting receivers: close completed them. */
    struct weft__waiter *r = first(&ch->recvq);
    if (r != NULL) { /* a receiver waits: hand it over */
        r->result = item;
        complete(&ch->recvq, r, 0);
        unlock(ch);
        return 0;
    }
    if (ch->closed) {
        unlock(ch);
        return -EPIPE;
    }
    if (ch->len < ch->cap) {
        ch->buf[(ch->head + ch->len++) % ch->cap] = item;
        unlock(ch);
        return 0;
    }
    return wait_on(ch, &ch->sendq, item, NULL, timeout_ms);
}

__attribute__((noinline)) static int send_contended(weft_chan *ch, void *item,
                                                    int64_t timeout_ms)
{
    weft__spin_lock_contended(&ch->lock);
    return send_locked(ch, item, timeout_ms);
}

/*
 * The public calls are the common case, written so that they call nothing
 * and so save no registers: an uncontended lock and a hand-over to a fiber
 * of this loop, or a tail call into the wait. Everything else goes to
 * send_locked/recv_locked.
 */
int weft_chan_send(weft_chan *ch, void *item, int64_t timeout_ms)
{
    if (!usable(ch))
        return bad_chan(ch, "weft_chan_send");
    if (WEFT__UNLIKELY(!trylock(ch)))
        return send_contended(ch, item, timeout_ms);
    if (!weft__list_empty(&ch->recvq) &&
        WEFT__LIKELY(first_is_here(&ch->recvq))) {
        first(&ch->recvq)->result = item;
        complete_first_here(&ch->recvq, 0);
        unlock(ch);
        return 0;
    }
    return send_locked(ch, item, timeout_ms);
}

/* A receive with ch locked, every case. */
__attribute__((noinline)) static int recv_locked(weft_chan *ch, void **item,
                                                 int64_t timeout_ms)
{
    void *got;
    /* A closed channel has no waiting senders: close completed them. */
    struct weft__waiter *s = first(&ch->sendq);
    if (ch->len > 0) {
        got = ch->buf[ch->head];
        ch->head = (ch->head + 1) % ch->cap;
        ch->len--;
        if (s != NULL) { /* a sender waits for room: take its item */
            ch->buf[(ch->head + ch->len++) % ch->cap] = s->result;
            complete(&ch->sendq, s, 0);
        }
    } else if (s != NULL) { /* unbuffered: take it from the sender */
        got = s->result;
        complete(&ch->sendq, s, 0);
    } else if (ch->closed) {
        unlock(ch);
        return -EPIPE;
    } else {
        return wait_on(ch, &ch->recvq, NULL, item, timeout_ms);
    }
    unlock(ch);
    if (item != NULL)
        *item = got;
    return 0;
}

__attribute__((noinline)) static int recv_contended(weft_chan *ch, void **item,
                                                    int64_t timeout_ms)
{
    weft__spin_lock_contended(&ch->lock);
    return recv_locked(ch, item, timeout_ms);
}

int weft_chan_recv(weft_chan *ch, void **item, int64_t timeout_ms)
{
    if (!usable(ch))
        return bad_chan(ch, "weft_chan_recv");
    if (WEFT__UNLIKELY(!trylock(ch)))
        return recv_contended(ch, item, timeout_ms);
    if (ch->len == 0) {
        struct weft__waiter *s = first(&ch->sendq);
        if (s == NULL && !ch->closed)
            return wait_on(ch, &ch->recvq, NULL, item, timeout_ms);
        if (s != NULL && WEFT__LIKELY(first_is_here(&ch->sendq))) {
            void *got = s->result;
            complete_first_here(&ch->sendq, 0);
            unlock(ch);
            if (item != NULL)
                *item = got;
            return 0;
        }
    }
    return recv_locked(ch, item, timeout_ms);
}

int weft_chan_close(weft_chan *ch)
{
    if (!usable(ch))
        return bad_chan(ch, "weft_chan_close");
    lock(ch);
    if (ch->closed) {
        unlock(ch);
        return -EPIPE;
    }
    ch->closed = true;
    /* Receivers wait only on an empty buffer: nothing more will come. */
    while (!weft__list_empty(&ch->recvq))
        complete(&ch->recvq, first(&ch->recvq), -EPIPE);
    while (!weft__list_empty(&ch->sendq))
        complete(&ch->sendq, first(&ch->sendq), -EPIPE);
    unlock(ch);
    return 0;
}
