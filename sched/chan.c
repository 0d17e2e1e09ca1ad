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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define CHAN_LIVE 0x4348414eu /* "CHAN" */
#define CHAN_DEAD 0x44454144u /* "DEAD" */

struct cwaiter {
    struct cwaiter *next, *prev;
    weft_chan *ch;
    struct cq *q;              /* the queue it waits in */
    struct weft__fiber *fiber; /* a fiber, or NULL for a thread */
    struct weft_loop *loop;    /* the fiber's */
    struct weft__tpark *tp;    /* the thread's */
    void *item;                /* send: to give; recv: received */
    int rc;                    /* the result, once done */
    bool done;                 /* decided under the channel's lock */
};

struct cq {
    struct cwaiter *head, *tail;
};

struct weft_chan {
    uint32_t magic;  /* CHAN_LIVE, CHAN_DEAD after free */
    atomic_int lock; /* spinlock */
    bool closed;
    size_t cap, len, head; /* ring of buffered items */
    void **buf;
    struct cq sendq, recvq; /* waiting senders, receivers: FIFO */
};

static inline void lock(weft_chan *ch)
{
    for (unsigned spins = 0;; spins++) {
        if (!atomic_exchange_explicit(&ch->lock, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(&ch->lock, memory_order_relaxed)) {
            if (++spins > 64)
                sched_yield(); /* the holder may be descheduled */
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        }
    }
}

static inline void unlock(weft_chan *ch)
{
    atomic_store_explicit(&ch->lock, 0, memory_order_release);
}

static void cq_push(struct cq *q, struct cwaiter *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
}

static void cq_del(struct cq *q, struct cwaiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
}

static _Noreturn void out_of_memory(void)
{
    fprintf(stderr, "weft: out of memory waking a fiber of another loop\n");
    abort();
}

static void wake_remote(void *arg)
{
    struct cwaiter *w = arg;
    weft__wake(w->fiber, w->rc);
}

/* Under ch's lock: w's wait is over with rc. */
static inline void complete(struct cq *q, struct cwaiter *w, int rc)
{
    cq_del(q, w);
    w->done = true;
    w->rc = rc;
    if (WEFT_LIKELY(w->loop == weft__loop_tls && w->loop != NULL))
        weft__wake(w->fiber, rc); /* our own loop: just queue it */
    else if (w->tp != NULL)
        weft__tpark_wake(w->tp, rc);
    else if (weft__loop_post(w->loop, wake_remote, w) < 0)
        out_of_memory();
}

/* Checks ch before use; a freed channel is reported, not touched (its
 * memory stays mapped in debug mode, WEFT_DEBUG=1, so this is reliable
 * there). */
static int usable(weft_chan *ch, const char *call)
{
    if (ch == NULL)
        return -EINVAL;
    if (ch->magic != CHAN_LIVE) {
        fprintf(stderr, "weft: %s: channel %p used after weft_chan_free\n",
                call, (void *)ch);
        return -EINVAL;
    }
    return 0;
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
    return ch;
}

int weft_chan_free(weft_chan *ch)
{
    int rc = usable(ch, "weft_chan_free");
    if (rc < 0)
        return rc;
    lock(ch);
    if (ch->sendq.head != NULL || ch->recvq.head != NULL) {
        unlock(ch);
        return -EBUSY;
    }
    ch->magic = CHAN_DEAD;
    unlock(ch);
    if (weft__debug()) /* quarantined: later misuse is caught for sure */
        return 0;
    if (ch->buf)
        weft__free(ch->buf, ch->cap * sizeof *ch->buf);
    weft__free(ch, sizeof *ch);
    return 0;
}

static bool chan_unlink(struct weft__fiber *f)
{
    struct cwaiter *w = f->wait_obj;
    weft_chan *ch = w->ch;
    lock(ch);
    bool pending = !w->done;
    if (pending)
        cq_del(w->q, w);
    unlock(ch);
    return pending;
}

/* Under ch's lock: fills in how the caller waits (a fiber parks, a plain
 * thread blocks on tp). 0, or -EDEADLK on a loop's thread outside its
 * fibers: blocking there would freeze the loop. */
static int waiter_init(struct cwaiter *w, weft_chan *ch, void *item,
                       struct weft__tpark *tp)
{
    w->ch = ch;
    w->item = item;
    w->rc = 0;
    w->done = false;
    w->tp = NULL;
    w->fiber = weft__fiber_current();
    if (w->fiber != NULL) {
        w->loop = w->fiber->loop;
        return 0;
    }
    w->loop = NULL;
    if (weft__loop_tls != NULL)
        return -EDEADLK;
    weft__tpark_init(tp);
    w->tp = tp;
    return 0;
}

/*
 * Called with ch locked and w ready; queues w on q, unlocks, and waits
 * until w is done or the deadline passes. Returns w's result, -ETIMEDOUT
 * or -ECANCELED.
 */
static int block(weft_chan *ch, struct cq *q, struct cwaiter *w,
                 int64_t deadline)
{
    w->q = q;
    cq_push(q, w);
    unlock(ch);
    if (w->fiber != NULL)
        return weft__park(w->fiber, WEFT__WAIT_CHAN, w, deadline, chan_unlink);
    int rc = weft__tpark_wait(w->tp, deadline);
    if (rc == -ETIMEDOUT) {
        lock(ch);
        if (w->done)
            rc = w->rc; /* completed as the time ran out */
        else
            cq_del(q, w);
        unlock(ch);
    }
    weft__tpark_destroy(w->tp);
    return rc;
}

/* A send's waiting half, apart so that a send that hands over or buffers
 * carries no waiter in its frame. Called with ch locked. */
__attribute__((noinline)) static int send_wait(weft_chan *ch, void *item,
                                               int64_t deadline)
{
    struct cwaiter w;
    struct weft__tpark tp;
    int rc = waiter_init(&w, ch, item, &tp);
    if (rc < 0) {
        unlock(ch);
        return rc;
    }
    return block(ch, &ch->sendq, &w, deadline);
}

int weft_chan_send(weft_chan *ch, void *item, int64_t timeout_ms)
{
    int rc = usable(ch, "weft_chan_send");
    if (rc < 0)
        return rc;
    int64_t deadline = weft__wait_deadline(timeout_ms);
    lock(ch);
    if (ch->closed) {
        unlock(ch);
        return -EPIPE;
    }
    struct cwaiter *r = ch->recvq.head;
    if (r != NULL) { /* a receiver waits: hand it over */
        r->item = item;
        complete(&ch->recvq, r, 0);
        unlock(ch);
        return 0;
    }
    if (ch->len < ch->cap) {
        ch->buf[(ch->head + ch->len++) % ch->cap] = item;
        unlock(ch);
        return 0;
    }
    if (timeout_ms == 0) {
        unlock(ch);
        return -ETIMEDOUT;
    }
    return send_wait(ch, item, deadline);
}

int weft_chan_recv(weft_chan *ch, void **item, int64_t timeout_ms)
{
    int rc = usable(ch, "weft_chan_recv");
    if (rc < 0)
        return rc;
    int64_t deadline = weft__wait_deadline(timeout_ms);
    void *got;
    lock(ch);
    struct cwaiter *s = ch->sendq.head;
    if (ch->len > 0) {
        got = ch->buf[ch->head];
        ch->head = (ch->head + 1) % ch->cap;
        ch->len--;
        if (s != NULL) { /* a sender waits for room: take its item */
            ch->buf[(ch->head + ch->len++) % ch->cap] = s->item;
            complete(&ch->sendq, s, 0);
        }
    } else if (s != NULL) { /* unbuffered: take it from the sender */
        got = s->item;
        complete(&ch->sendq, s, 0);
    } else if (ch->closed) {
        unlock(ch);
        return -EPIPE;
    } else {
        struct cwaiter w;
        struct weft__tpark tp;
        if (timeout_ms == 0 || (rc = waiter_init(&w, ch, NULL, &tp)) < 0) {
            unlock(ch);
            return timeout_ms == 0 ? -ETIMEDOUT : rc;
        }
        rc = block(ch, &ch->recvq, &w, deadline);
        if (rc < 0)
            return rc;
        if (item != NULL)
            *item = w.item;
        return 0;
    }
    unlock(ch);
    if (item != NULL)
        *item = got;
    return 0;
}

int weft_chan_close(weft_chan *ch)
{
    int rc = usable(ch, "weft_chan_close");
    if (rc < 0)
        return rc;
    lock(ch);
    if (ch->closed) {
        unlock(ch);
        return -EPIPE;
    }
    ch->closed = true;
    /* Receivers wait only on an empty buffer: nothing more will come. */
    while (ch->recvq.head != NULL)
        complete(&ch->recvq, ch->recvq.head, -EPIPE);
    while (ch->sendq.head != NULL)
        complete(&ch->sendq, ch->sendq.head, -EPIPE);
    unlock(ch);
    return 0;
}
