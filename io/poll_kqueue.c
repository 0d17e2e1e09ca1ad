/* SPDX-License-Identifier: MIT */
/*
 * The kqueue backend (FreeBSD, OpenBSD, NetBSD, DragonFly, macOS).
 *
 * Written against kqueue(2) and kevent(2); it has not been compiled or
 * run on these Linux machines (README, "Platforms"). Interest is
 * EV_ADD | EV_ONESHOT per filter (EVFILT_READ, EVFILT_WRITE). Changes are
 * not sent one syscall at a time: they are batched into the changelist of
 * the next kevent() wait, so arming costs no syscall at all. A change that
 * fails comes back as an EV_ERROR event and is reported to the loop as an
 * error on that fd, which makes its waiters retry their syscall and see
 * the real error. Closing an fd removes its knotes in the kernel, so a
 * plain close() leaves nothing stale behind.
 *
 * Cross-thread wake: EVFILT_USER (ident WAKE_IDENT), triggered with
 * NOTE_TRIGGER only on the 0->1 edge of wake_pending. Embedding: a
 * one-shot EVFILT_TIMER (ident TIMER_IDENT) makes the kqueue fd readable
 * when the next timer is due.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "poller.h"

#define NEVENTS 256
#define WAKE_IDENT 0
#define TIMER_IDENT 1

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "weft: %s: %s\n", what, strerror(errno));
    abort();
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
#ifdef FD_CLOEXEC
    fcntl(p->fd, F_SETFD, FD_CLOEXEC);
#endif
    struct kevent ev;
    EV_SET(&ev, WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    if (kevent(p->fd, &ev, 1, NULL, 0, NULL) < 0)
        goto fail;
    p->events = malloc(NEVENTS * sizeof(struct kevent));
    p->changes = malloc(64 * sizeof(struct kevent));
    if (p->events == NULL || p->changes == NULL) {
        free(p->events);
        free(p->changes);
        errno = ENOMEM;
        goto fail;
    }
    p->nevents = NEVENTS;
    p->maxchanges = 64;
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
    free(p->changes);
    p->events = p->changes = NULL;
}

/* Queues one change for the next wait. 0 or -ENOMEM. */
static int change(struct weft__poller *p, uintptr_t ident, short filter,
                  unsigned short flags, unsigned fflags, intptr_t data)
{
    if (p->nchanges == p->maxchanges) {
        int cap = p->maxchanges * 2;
        void *grown = realloc(p->changes, (size_t)cap * sizeof(struct kevent));
        if (grown == NULL)
            return -ENOMEM;
        p->changes = grown;
        p->maxchanges = cap;
    }
    struct kevent *ev = (struct kevent *)p->changes + p->nchanges++;
    EV_SET(ev, ident, filter, flags, fflags, data, NULL);
    return 0;
}

int weft__poller_arm(struct weft__poller *p, int fd, unsigned events)
{
    int rc = 0;
    if (events & WEFT__POLL_IN)
        rc = change(p, (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0);
    if (rc == 0 && (events & WEFT__POLL_OUT))
        rc = change(p, (uintptr_t)fd, EVFILT_WRITE, EV_ADD | EV_ONESHOT, 0, 0);
    return rc;
}

void weft__poller_disarm(struct weft__poller *p, int fd)
{
    /* Drop queued changes for fd: the fd is about to close, and a change
     * that reached the kernel after the number is reused would arm the
     * wrong file. Registered knotes go away with the close itself. */
    struct kevent *ch = p->changes;
    int j = 0;
    for (int i = 0; i < p->nchanges; i++)
        if (ch[i].ident != (uintptr_t)fd)
            ch[j++] = ch[i];
    p->nchanges = j;
}

int weft__poller_wait(struct weft__poller *p, int64_t timeout_ns,
                      weft__poller_cb *cb, void *ctx)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    struct kevent *evs = p->events;
    int n = kevent(p->fd, p->changes, p->nchanges, evs, p->nevents, tsp);
    p->nchanges = 0; /* applied, or reported back as EV_ERROR events */
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
            atomic_exchange_explicit(&p->wake_pending, 0,
                                     memory_order_seq_cst);
            continue;
        }
        if (evs[i].filter == EVFILT_TIMER)
            continue;
        int fd = (int)evs[i].ident;
        unsigned mask;
        if (evs[i].flags & EV_ERROR) {
            if (evs[i].data == ENOENT)
                continue; /* deleting what was not there */
            mask = WEFT__POLL_ERR | WEFT__POLL_IN | WEFT__POLL_OUT;
        } else if (evs[i].filter == EVFILT_READ) {
            mask = WEFT__POLL_IN;
        } else {
            mask = WEFT__POLL_OUT;
        }
        if (evs[i].flags & EV_EOF)
            mask |= WEFT__POLL_IN | WEFT__POLL_OUT;
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
    int rc;
    if (deadline_ns < 0) {
        rc = change(p, TIMER_IDENT, EVFILT_TIMER, EV_DELETE, 0, 0);
    } else {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t rel =
            deadline_ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        rc = change(p, TIMER_IDENT, EVFILT_TIMER, EV_ADD | EV_ONESHOT,
                    NOTE_NSECONDS, (intptr_t)(rel < 1 ? 1 : rel));
    }
    if (rc < 0)
        return rc;
    /* The host loop, not weft, waits next: send the batched changes now.
     * EV_RECEIPT makes each change answer for itself without draining
     * ready events, which stay queued for the host to see. */
    struct kevent *ch = p->changes;
    for (int i = 0; i < p->nchanges; i++)
        ch[i].flags |= EV_RECEIPT;
    struct kevent *out = malloc((size_t)p->nchanges * sizeof *out);
    if (out == NULL)
        return -ENOMEM;
    int n = kevent(p->fd, ch, p->nchanges, out, p->nchanges, NULL);
    int err = n < 0 ? errno : 0;
    p->nchanges = 0;
    for (int i = 0; i < n; i++) /* ENOENT: deleting an absent timer */
        if (out[i].data != 0 && out[i].data != ENOENT && err == 0)
            err = (int)out[i].data;
    free(out);
    return -err;
}
