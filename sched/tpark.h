/* SPDX-License-Identifier: MIT */
/*
 * How a plain thread (not a fiber) blocks in a weft call, and how any
 * thread wakes it (sched/block.c).
 */
#ifndef WEFT__SCHED_TPARK_H
#define WEFT__SCHED_TPARK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

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

#endif /* WEFT__SCHED_TPARK_H */
