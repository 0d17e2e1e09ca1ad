/* SPDX-License-Identifier: MIT */
/*
 * A waiter: what a fiber, a plain thread or a callback leaves in what it
 * waits on, a future (sched/future.c) or a channel (sched/chan.c).
 */
#ifndef WEFT__SCHED_WAITER_H
#define WEFT__SCHED_WAITER_H

#include "../core/internal.h"
#include "../core/list.h"
#include <stddef.h>

struct weft__fiber;
struct weft_loop;
struct weft__tpark;
struct weft__anchor;

/* A waiter on a future: a fiber (on its loop), a blocked thread, or a
 * callback. Lives in the waiting frame or in a small allocation. */
enum weft__waiter_kind {
    WEFT__WAITER_FIBER,    /* a fiber parked in an await */
    WEFT__WAITER_THREAD,   /* a plain thread blocked in an await */
    WEFT__WAITER_CALLBACK, /* weft_future_on_done */
    WEFT__WAITER_WAKE,     /* wakes a loop's poller (run_until) */
};
struct weft__waiter {
    struct weft__link link;    /* in what it waits in */
    unsigned kind;             /* enum weft__waiter_kind */
    bool done;                 /* a channel's: decided, under its lock */
    struct weft_loop *loop;    /* FIBER and WAKE (a channel's thread waiter:
                                  a mark no loop has, see chan.c) */
    struct weft__fiber *fiber; /* FIBER */
    struct weft__tpark *tp;    /* THREAD */
    /* The outcome, written before the wake (what is waited on may be gone
     * once the waiter runs again): a future's result and error; for a
     * channel, the item (a send's to give, a receive's received) and the
     * wait's result. */
    void *result;
    int err;
    union {
        struct {                               /* CALLBACK */
            struct weft__anchor *anchor;       /* its loop (NULL: any) */
            void (*cb)(weft_future *, void *); /* and its argument */
            void *arg;
        };
        struct {                  /* a channel's */
            struct weft_chan *ch; /* the channel, */
            struct weft__list *q; /* and its queue it waits in */
        };
    };
};

static inline struct weft__waiter *weft__waiter_of(struct weft__link *l)
{
    return l != NULL ? weft__container_of(l, struct weft__waiter, link) : NULL;
}

/* What a fiber waiting on several futures parks on. */
struct weft__multiwait {
    weft_future *const *fs;
    struct weft__waiter *ws; /* one per future, kind FIBER */
    size_t n;
};

#endif /* WEFT__SCHED_WAITER_H */
