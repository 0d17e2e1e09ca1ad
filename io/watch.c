/* SPDX-License-Identifier: MIT */
/*
 * Debug mode: which loop watches which fd. Process-wide, kept only while
 * some debug loop waits on an fd: closing an fd from another thread than
 * the loop waiting on it leaves that loop's fibers waiting forever (only
 * weft_close on their loop wakes them), and two loops waiting on one fd
 * each get every event. Both fail with -EPERM in debug mode, with a
 * report.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../sched/internal.h"
#include "internal.h"

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch {
    struct weft_loop *loop; /* the loop with fibers waiting on the fd */
    int waiters;
} * watches;
static size_t nwatches;
static atomic_bool watch_used; /* some debug loop waited on an fd */

static void report_watched(const struct watch *w, int fd, const char *call)
{
    fprintf(stderr,
            "weft: %s: fd %d is watched by loop %p of thread %ld, called "
            "from thread %ld; use it from that loop "
            "(weft_call_soon_threadsafe)\n",
            call, fd, (void *)w->loop, w->loop->owner_tid, weft__thread_id());
}

/* A fiber of loop starts waiting on fd. False (reported) if a fiber of
 * another loop waits on it. */
bool weft__watch_begin(struct weft_loop *loop, int fd, const char *what)
{
    (void)what;
    bool ok = true;
    pthread_mutex_lock(&watch_lock);
    atomic_store_explicit(&watch_used, true, memory_order_relaxed);
    if ((size_t)fd >= nwatches) {
        size_t n = nwatches ? nwatches : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct watch *t = realloc(watches, n * sizeof *t);
        if (t != NULL) {
            memset(t + nwatches, 0, (n - nwatches) * sizeof *t);
            watches = t;
            nwatches = n;
        }
    }
    if ((size_t)fd < nwatches) {
        struct watch *w = &watches[fd];
        if (w->waiters > 0 && w->loop != loop) {
            report_watched(w, fd, "weft_wait_fd");
            ok = false;
        } else {
            w->loop = loop;
            w->waiters++;
        }
    }
    pthread_mutex_unlock(&watch_lock);
    return ok;
}

void weft__watch_end(int fd)
{
    pthread_mutex_lock(&watch_lock);
    if ((size_t)fd < nwatches && watches[fd].waiters > 0)
        watches[fd].waiters--;
    pthread_mutex_unlock(&watch_lock);
}

/* False (reported) if fibers of a loop other than loop wait on fd. */
bool weft__watched_elsewhere_ok(struct weft_loop *loop, int fd,
                                const char *call)
{
    if (!atomic_load_explicit(&watch_used, memory_order_relaxed))
        return true; /* no debug loop ever waited on an fd */
    bool ok = true;
    pthread_mutex_lock(&watch_lock);
    if ((size_t)fd < nwatches && watches[fd].waiters > 0 &&
        watches[fd].loop != loop) {
        report_watched(&watches[fd], fd, call);
        ok = false;
    }
    pthread_mutex_unlock(&watch_lock);
    return ok;
}
