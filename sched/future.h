/* SPDX-License-Identifier: MIT */
/*
 * Futures (sched/future.c), and the task block: a spawned fiber and its
 * future in one allocation.
 */
#ifndef WEFT__SCHED_FUTURE_H
#define WEFT__SCHED_FUTURE_H

#include "../core/internal.h"
#include "fiber.h"
#include "waiter.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

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
    struct weft__list waiters; /* newest first */
    /* Fibers of task_loop awaiting this task (await_local): touched only
     * on that loop's thread, which alone completes a task, so no lock. */
    struct weft__list local;
};

/* A fiber of weft_spawn or weft_go and its future, in one allocation: the
 * future's last release frees both (the fiber holds a reference until it
 * has finished, so the fiber part is never freed under it). */
struct weft__task {
    struct weft_future fut;
    struct weft__fiber fib;
};

/* Sets up every field of f (fresh from the allocator, or a task block
 * being reused): pending, no waiters, one reference; debug: made in debug
 * mode. Inline: every spawn sets up its task's future through it. */
static inline void weft__future_init(struct weft_future *f, bool debug)
{
    _Static_assert(sizeof(struct weft_future) == 120,
                   "a field was added: set it in weft__future_init");
    f->magic = WEFT__FUTURE_LIVE;
    atomic_init(&f->observed, false);
    f->debug = debug;
    f->name[0] = '\0';
    atomic_init(&f->refs, 1);
    atomic_init(&f->lock, 0);
    atomic_init(&f->done, false);
    f->err = 0;
    f->result = NULL;
    f->task = NULL;
    f->task_loop = NULL;
    f->cancel_req = false;
    f->in_task = false;
    f->waiters = (struct weft__list){NULL, NULL};
    f->local = (struct weft__list){NULL, NULL};
}

/* Creates a future with one reference; NULL and errno ENOMEM. */
weft_future *weft__future_new(void);
void weft__future_retain(weft_future *f);
/* Adds w to f's waiters; false (w not added) if f is already done. */
bool weft__future_add_waiter(weft_future *f, struct weft__waiter *w);
/* Removes w if it is still there. */
void weft__future_remove_waiter(weft_future *f, struct weft__waiter *w);
/* Completes f (err 0: result); -EINVAL if already done. Any thread. */
int weft__future_complete(weft_future *f, void *result, int err);

#endif /* WEFT__SCHED_FUTURE_H */
