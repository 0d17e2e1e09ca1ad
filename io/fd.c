/* SPDX-License-Identifier: MIT */
/*
 * Waiting on descriptors. A fiber that would block parks on its loop's
 * entry for the fd; the poller reports readiness (one-shot) and the
 * fibers waiting for it wake. A plain thread waits in poll(2) instead.
 * weft_close wakes the fd's waiters with -EBADF before closing it, and
 * wakes the fibers backing off in weft_accept, since a descriptor frees.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../sched/internal.h"
#include "internal.h"

/* The loop's entry for fd (>= 0), grown on demand. NULL with *err set:
 * -EBADF if fd is not open, -ENOMEM. The table grows only for an open
 * descriptor (one fcntl, on growth only): a bad number, however large,
 * costs no memory. */
static struct weft__fdent *fdent(struct weft_loop *loop, int fd, int *err)
{
    if ((size_t)fd >= loop->nfds) {
        if (fcntl(fd, F_GETFD) < 0) {
            *err = -errno;
            return NULL;
        }
        *err = -ENOMEM;
        size_t n = loop->nfds ? loop->nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct weft__fdent *t = realloc(loop->fds, n * sizeof *t);
        if (t == NULL)
            return NULL;
        memset(t + loop->nfds, 0, (n - loop->nfds) * sizeof *t);
        loop->fds = t;
        loop->nfds = n;
    }
    return &loop->fds[fd];
}

static unsigned interest(const struct weft__fdent *e)
{
    unsigned want = 0;
    for (const struct weft__fiber *f = e->waiters.head; f; f = f->fd_next)
        want |= f->wait_events;
    return want;
}

/* Asks the poller for what e's waiters want, unless it already has it. */
static int rearm(struct weft_loop *loop, int fd, struct weft__fdent *e)
{
    unsigned want = interest(e);
    if (want == 0 || (e->armed & want) == want)
        return 0;
    int rc = weft__poller_arm(&loop->poller, fd, want);
    if (rc == 0)
        e->armed = want;
    return rc;
}

void weft__fd_ready(void *ctx, int fd, unsigned events)
{
    struct weft_loop *loop = ctx;
    if (fd < 0 || (size_t)fd >= loop->nfds)
        return;
    struct weft__fdent *e = &loop->fds[fd];
    e->armed = 0; /* one-shot: the report used it up */
    struct weft__fiber *f = e->waiters.head;
    while (f != NULL) {
        struct weft__fiber *next = f->fd_next;
        unsigned got = (events & WEFT__POLL_ERR) ? f->wait_events
                                                 : events & f->wait_events;
        if (got) {
            weft__waitq_del(&e->waiters, f);
            weft__wake(f, (int)got);
        }
        f = next;
    }
    if (e->waiters.head != NULL && rearm(loop, fd, e) < 0) {
        /* The fd went bad under its waiters: let them see why. */
        while ((f = weft__waitq_pop(&e->waiters)) != NULL)
            weft__wake(f, (int)f->wait_events);
    }
}

/* A wait ends by timeout or cancellation. The last waiter to leave drops
 * the armed state: with nobody waiting, a plain close() and the reuse of
 * the number can come next, and the kernel forgets the registration with
 * the file (epoll, kqueue), so the next wait must register again instead
 * of trusting a stale "armed". The registration itself, if still there,
 * costs nothing: at worst it reports once to an fd nobody waits on. */
static bool fd_unlink(struct weft__fiber *f)
{
    struct weft__fdent *e = &f->loop->fds[f->wait_fd];
    weft__waitq_del(&e->waiters, f);
    if (e->waiters.head == NULL)
        e->armed = 0;
    return true;
}

static bool emfile_unlink(struct weft__fiber *f)
{
    weft__waitq_del(f->wait_obj, f);
    return true;
}

/* ---- debug mode: which loop watches which fd ----
 * Process-wide, kept only while some debug loop waits on an fd: closing
 * an fd from another thread than the loop waiting on it leaves that loop's
 * fibers waiting forever (only weft_close on their loop wakes them), and
 * two loops waiting on one fd each get every event. Both fail with
 * -EPERM in debug mode, with a report. */
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
            call, fd, (void *)w->loop, w->loop->owner_tid,
            (long)syscall(SYS_gettid));
}

/* A fiber of loop starts waiting on fd. False (reported) if a fiber of
 * another loop waits on it. */
static bool watch_begin(struct weft_loop *loop, int fd, const char *what)
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

static void watch_end(int fd)
{
    pthread_mutex_lock(&watch_lock);
    if ((size_t)fd < nwatches && watches[fd].waiters > 0)
        watches[fd].waiters--;
    pthread_mutex_unlock(&watch_lock);
}

/* False (reported) if fibers of a loop other than loop wait on fd. */
static bool watched_elsewhere_ok(struct weft_loop *loop, int fd,
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

/* Plain thread: poll(2) until ready or deadline. */
static int poll_wait(int fd, unsigned events, int64_t deadline)
{
    struct pollfd p = {.fd = fd};
    if (events & WEFT_READABLE)
        p.events |= POLLIN;
    if (events & WEFT_WRITABLE)
        p.events |= POLLOUT;
    for (;;) {
        int64_t ms = weft__ms_until(deadline);
        int n = poll(&p, 1, ms > INT_MAX ? INT_MAX : (int)ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ETIMEDOUT;
        if (p.revents & POLLNVAL)
            return -EBADF;
        unsigned got = 0;
        if (p.revents & (POLLERR | POLLHUP))
            got = events;
        if (p.revents & POLLIN)
            got |= WEFT_READABLE;
        if (p.revents & POLLOUT)
            got |= WEFT_WRITABLE;
        got &= events;
        if (got)
            return (int)got;
    }
}

int weft__wait_fd(int fd, unsigned events, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    events &= WEFT_READABLE | WEFT_WRITABLE;
    if (events == 0)
        return -EINVAL;
    struct weft__fiber *f = weft__fiber_current();
    if (f == NULL)
        return poll_wait(fd, events, deadline);

    struct weft_loop *loop = f->loop;
    int rc;
    struct weft__fdent *e = fdent(loop, fd, &rc);
    if (e == NULL)
        return rc;
    if (WEFT_UNLIKELY(loop->debug) && !watch_begin(loop, fd, "a wait"))
        return -EPERM;
    f->wait_fd = fd;
    f->wait_events = events;
    weft__waitq_push(&e->waiters, f);
    rc = rearm(loop, fd, e);
    if (rc < 0) {
        weft__waitq_del(&e->waiters, f);
        if (WEFT_UNLIKELY(loop->debug))
            watch_end(fd);
        if (rc == -EPERM) /* a regular file: always ready */
            return (int)events;
        return rc;
    }
    rc = weft__park(f, WEFT__WAIT_FD, e, deadline, fd_unlink);
    if (WEFT_UNLIKELY(loop->debug))
        watch_end(fd);
    return rc;
}

int weft__wait_descriptor_frees(int64_t deadline, int64_t backoff_ns)
{
    struct weft__fiber *f = weft__fiber_current();
    int64_t now = f ? weft__loop_now(f->loop) : weft__now_ns();
    if (deadline >= 0 && now >= deadline)
        return -ETIMEDOUT;
    if (f == NULL)
        return weft__pause(deadline, backoff_ns);
    int64_t until = now + backoff_ns;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    struct weft__waitq *head = &f->loop->emfile_waiters;
    weft__waitq_push(head, f);
    int rc = weft__park(f, WEFT__WAIT_EMFILE, head, until, emfile_unlink);
    return rc == -ETIMEDOUT ? 0 : rc;
}

int weft__pause(int64_t deadline, int64_t pause_ns)
{
    struct weft__fiber *f = weft__fiber_current();
    int64_t now = f ? weft__loop_now(f->loop) : weft__now_ns();
    if (deadline >= 0 && now >= deadline)
        return -ETIMEDOUT;
    int64_t until = now + pause_ns;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    if (f == NULL) {
        struct timespec ts = {.tv_sec = (until - now) / 1000000000,
                              .tv_nsec = (until - now) % 1000000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        return 0;
    }
    int rc = weft__park(f, WEFT__WAIT_SLEEP, NULL, until, NULL);
    return rc == -ETIMEDOUT ? 0 : rc;
}

bool weft__fd_wait_first(int fd)
{
    struct weft__fiber *f = weft__fiber_current();
    return f != NULL && fd >= 0 && (size_t)fd < f->loop->nfds &&
           f->loop->fds[fd].wait_first;
}

void weft__fd_set_wait_first(int fd, bool wait_first)
{
    struct weft__fiber *f = weft__fiber_current();
    if (f == NULL || fd < 0)
        return;
    int err;
    struct weft__fdent *e = wait_first ? fdent(f->loop, fd, &err)
                            : (size_t)fd < f->loop->nfds ? &f->loop->fds[fd]
                                                         : NULL;
    if (e != NULL)
        e->wait_first = wait_first;
}

int weft_wait_fd(int fd, unsigned events, int64_t timeout_ms)
{
    return weft__wait_fd(fd, events, weft__wait_deadline(timeout_ms));
}

int weft_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    struct weft_loop *loop = weft__loop_tls;
    if (!watched_elsewhere_ok(loop, fd, "weft_close"))
        return -EPERM;
    if (loop != NULL) {
        if ((size_t)fd < loop->nfds) {
            struct weft__fdent *e = &loop->fds[fd];
            struct weft__fiber *f;
            while ((f = weft__waitq_pop(&e->waiters)) != NULL)
                weft__wake(f, -EBADF);
            weft__poller_disarm(&loop->poller, fd);
            e->armed = 0;
            e->wait_first = false;
        }
        struct weft__fiber *f;
        while ((f = weft__waitq_pop(&loop->emfile_waiters)) != NULL)
            weft__wake(f, 0);
    }
    /* Linux closes the fd even when close fails with EINTR: never retry. */
    if (close(fd) < 0 && errno != EINTR)
        return -errno;
    return 0;
}
