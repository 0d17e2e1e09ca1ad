/* SPDX-License-Identifier: MIT */
/*
 * Blocking the caller, whoever it is: a fiber parks (its loop runs on), a
 * plain thread blocks on its tpark, a flag under a private mutex that any
 * thread can set (block.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "internal.h"

void weft__tpark_init(struct weft__tpark *p)
{
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &a);
    pthread_condattr_destroy(&a);
    p->woken = false;
    p->rc = 0;
}

void weft__tpark_destroy(struct weft__tpark *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

void weft__tpark_wake(struct weft__tpark *p, int rc)
{
    pthread_mutex_lock(&p->mu);
    p->woken = true;
    p->rc = rc;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int weft__tpark_wait(struct weft__tpark *p, int64_t deadline)
{
    struct timespec ts = {.tv_sec = deadline / 1000000000,
                          .tv_nsec = deadline % 1000000000};
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->woken) {
        if (deadline < 0) {
            pthread_cond_wait(&p->cv, &p->mu);
        } else if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT &&
                   !p->woken) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    if (p->woken)
        rc = p->rc;
    p->woken = false;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int weft__sleep_until(int64_t deadline)
{
    struct weft__fiber *f = weft__fiber_current();
    if (f != NULL) {
        int rc = weft__park(f, WEFT__WAIT_SLEEP, NULL, deadline, NULL);
        return rc == -ETIMEDOUT ? 0 : rc;
    }
    for (;;) {
        int64_t left = deadline < 0 ? INT64_MAX : deadline - weft__now_ns();
        if (left <= 0)
            return 0;
        struct timespec ts = {.tv_sec = left / 1000000000,
                              .tv_nsec = left % 1000000000};
        nanosleep(&ts, NULL); /* EINTR: the loop measures what is left */
    }
}
