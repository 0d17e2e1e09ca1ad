/* SPDX-License-Identifier: MIT */
/*
 * The kqueue backend (FreeBSD, NetBSD, DragonFly, macOS; OpenBSD once it
 * has EVFILT_USER).
 *
 * Written against kqueue(2) and kevent(2). On Linux it runs the suites
 * on libkqueue, a userspace kqueue over epoll (`make test-kqueue`), and
 * is type-checked against FreeBSD's declarations (`make check-kqueue`);
 * it has not run on a BSD or macOS (README, "Platforms"). An fd is
 * registered once for its life, EV_CLEAR (edge-triggered), a filter
 * (EVFILT_READ, EVFILT_WRITE) once some fiber has waited for that
 * direction, with one kevent() call with EV_RECEIPT, so each change
 * answers for itself: an fd that cannot be watched fails at once, as on
 * epoll, instead of surfacing later where nobody can tell whose it was.
 * EV_ADD of a knote reports the fd's present state, as epoll's ADD and
 * MOD do. Closing an fd removes its knotes in the kernel: after a plain
 * close() the caller's "registered" is stale, and weft__poller_check
 * (the same registration) registers the new file. A regular file is
 * refused (-EPERM), as epoll does: kqueue would report it only below its
 * end, and a wait at EOF would never end.
 *
 * Cross-thread wake: EVFILT_USER (ident WAKE_IDENT), triggered with
 * NOTE_TRIGGER only on the 0->1 edge of wake_pending. Embedding: a
 * one-shot EVFILT_TIMER (ident TIMER_IDENT) makes the kqueue fd readable
 * when the next timer is due.
 */
#include <sys/types.h> /* first: older BSD <sys/event.h> needs u_int */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../core/internal.h"
#include "poller.h"

#if !defined(EVFILT_USER) || !defined(EV_RECEIPT)
#error "weft: this kqueue lacks EVFILT_USER or EV_RECEIPT (see README)"
#endif

#define NEVENTS 256
#define WAKE_IDENT 0
#define TIMER_IDENT 1

static _Noreturn void die(const char *what)
{
    weft__die(what, errno);
}

const char *weft__poller_name(void)
{
    return "kqueue";
}

int weft__poller_init(struct weft__poller *p)
{
    memset(p, 0, sizeof *p);
    p->wake_fd = -1;
    p->timer_fd = -1;
    p->fd = kqueue();
    if (p->fd < 0)
        return -errno;
    fcntl(p->fd, F_SETFD, FD_CLOEXEC);
    struct kevent ev;
    EV_SET(&ev, WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    if (kevent(p->fd, &ev, 1, NULL, 0, NULL) < 0)
        goto fail;
    p->events = malloc(NEVENTS * sizeof(struct kevent));
    if (p->events == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    p->nevents = NEVENTS;
    atomic_init(&p->wake_pending, 0);
    return 0;

fail:;
    int err = errno;
    close(p->fd);
    return -err;
}

void weft__poller_close(struct weft__poller *p)
{
    close(p->fd);
    free(p->events);
    p->events = NULL;
}

/* Applies n changes at once, each with EV_RECEIPT. Returns 0 or the first
 * error (-errno) of a change not marked "may fail" (ENOENT on a delete). */
static int apply(struct weft__poller *p, struct kevent *ch, int n)
{
    struct kevent out[4];
    for (int i = 0; i < n; i++)
        ch[i].flags |= EV_RECEIPT;
    int got;
    while ((got = kevent(p->fd, ch, n, out, n, NULL)) < 0 && errno == EINTR)
        ;
    if (got < 0)
        return -errno;
    for (int i = 0; i < got; i++) {
        int err = (out[i].flags & EV_ERROR) ? (int)out[i].data : 0;
        if (err == ENOENT && (ch[i].flags & EV_DELETE))
            continue; /* deleting interest that was not there */
        if (err != 0)
            return -err;
    }
    return 0;
}

/* Registers fd for events afresh, in one kevent() call: both filters are
 * deleted, then the wanted ones added (the caller only ever adds to what
 * it asked before, except after forgetting a registration, when a filter
 * left out is one nobody waits on). On FreeBSD and macOS EV_ADD alone
 * would do, and each EV_DELETE only costs a change entry (ENOENT when the
 * knote is not there, ignored). It is there for libkqueue (kqueue over
 * epoll on Linux, which `make test-kqueue` runs the suites on): it keeps
 * the knotes of a descriptor closed outside kevent(), so an EV_ADD under
 * a reused number would only "modify" the stale knote and never watch
 * the new file; and deleting one filter while the other's stale knote
 * stays makes the next EV_ADD fail there. The EV_ADD reports the fd's
 * present state. */
int weft__poller_add(struct weft__poller *p, int fd, unsigned events)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode))
        return -EPERM; /* always ready, as epoll says */
    struct kevent ch[4];
    int n = 0;
    EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
    EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    if (events & WEFT__POLL_IN)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0,
               NULL);
    if (events & WEFT__POLL_OUT)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0,
               NULL);
    return apply(p, ch, n);
}

int weft__poller_check(struct weft__poller *p, int fd, unsigned events)
{
    /* The same: it creates the knotes of a new file or renews ours, and
     * reports the present state either way. */
    return weft__poller_add(p, fd, events);
}

void weft__poller_del(struct weft__poller *p, int fd)
{
    /* The close that follows removes fd's knotes (and the next
     * registration of the number deletes any an emulation kept). */
    (void)p;
    (void)fd;
}

int weft__poller_wait(struct weft__poller *p, int64_t timeout_ns,
                      weft__poller_cb *cb, void *ctx)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        int64_t sec = timeout_ns / 1000000000;
        ts.tv_sec = (time_t)(sec > INT32_MAX ? INT32_MAX : sec); /* 32-bit */
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    struct kevent *evs = p->events;
    int n = kevent(p->fd, NULL, 0, evs, p->nevents, tsp);
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        die("kevent");
    }
    int reported = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].filter == EVFILT_USER) {
            /* A full barrier, not a release store: the loop reads its
             * queues next, and a waker that still saw 1 skipped its
             * syscall (store-then-load, Dekker: both sides seq_cst). */
            atomic_exchange_explicit(&p->wake_pending, 0, memory_order_seq_cst);
            continue;
        }
        if (evs[i].filter == EVFILT_TIMER)
            continue;
        int fd = (int)evs[i].ident;
        unsigned mask;
        /* Each filter wakes its own waiters. EV_EOF alone is news for
         * that filter's side only: a peer's half-close (EVFILT_READ) says
         * nothing to a writer, who would only try, fail with EAGAIN and
         * wait again. With an error in fflags (a reset), every waiter's
         * call fails with it: wake them all. */
        if ((evs[i].flags & EV_ERROR) ||
            ((evs[i].flags & EV_EOF) && evs[i].fflags != 0))
            mask = WEFT__POLL_ERR | WEFT__POLL_HUP | WEFT__POLL_IN |
                   WEFT__POLL_OUT;
        else if (evs[i].filter == EVFILT_READ)
            mask =
                WEFT__POLL_IN | ((evs[i].flags & EV_EOF) ? WEFT__POLL_HUP : 0u);
        else
            mask = WEFT__POLL_OUT;
        cb(ctx, fd, mask);
        reported++;
    }
    return reported;
}

unsigned long weft__poller_wake_syscalls;

void weft__poller_wake(struct weft__poller *p)
{
    if (atomic_exchange_explicit(&p->wake_pending, 1, memory_order_seq_cst))
        return;
    __atomic_fetch_add(&weft__poller_wake_syscalls, 1, __ATOMIC_RELAXED);
    struct kevent ev;
    EV_SET(&ev, WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
    while (kevent(p->fd, &ev, 1, NULL, 0, NULL) < 0 && errno == EINTR)
        ;
}

int weft__poller_timer(struct weft__poller *p, int64_t deadline_ns)
{
    struct kevent ch;
    if (deadline_ns < 0) {
        EV_SET(&ch, TIMER_IDENT, EVFILT_TIMER, EV_DELETE, 0, 0, NULL);
        return apply(p, &ch, 1);
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t rel =
        deadline_ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
    if (rel < 1)
        rel = 1;
#ifdef NOTE_NSECONDS
    unsigned unit = NOTE_NSECONDS;
#else
    unsigned unit = 0; /* milliseconds, the default everywhere */
    rel = (rel + 999999) / 1000000;
#endif
    if (rel > (int64_t)INTPTR_MAX) /* the data field is 32-bit on some */
        rel = INTPTR_MAX;
    EV_SET(&ch, TIMER_IDENT, EVFILT_TIMER, EV_ADD | EV_ONESHOT, unit,
           (intptr_t)rel, NULL);
    return apply(p, &ch, 1);
}
