/* SPDX-License-Identifier: MIT */
/*
 * A waiter on a future: what a fiber, a thread or a callback leaves on the
 * future's list while it waits (sched/future.c).
 */
#ifndef WEFT__SCHED_WAITER_H
#define WEFT__SCHED_WAITER_H

#include "../core/internal.h"
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

#endif /* WEFT__SCHED_WAITER_H */
