/* SPDX-License-Identifier: MIT */
/*
 * The loop's timers (sched/timer.c): a fiber's park deadline,
 * weft_call_later. How the heap works is told in timer.c.
 */
#ifndef WEFT__SCHED_TIMER_H
#define WEFT__SCHED_TIMER_H

#include "../core/tunables.h"
#include <stdbool.h>
#include <stdint.h>

struct weft_loop;

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

/* Arms t (idle) to fire at deadline. 0 or -ENOMEM. */
int weft__timer_arm(struct weft_loop *loop, struct weft_timer *t,
                    int64_t deadline);
/* Disarms t if armed. */
void weft__timer_disarm(struct weft_loop *loop, struct weft_timer *t);
/* Fires every timer due at loop->now; returns how many fired. */
int weft__timers_run(struct weft_loop *loop);
/* Frees the heap, and the user timers still armed (never fired). */
void weft__timers_free(struct weft_loop *loop);

#endif /* WEFT__SCHED_TIMER_H */
