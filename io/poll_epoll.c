/* SPDX-License-Identifier: MIT */
/*
 * The epoll backend (Linux). An fd is registered once, edge-triggered
 * (EPOLLET), and changed only to add a direction: no epoll_ctl per wait.
 * EPOLL_CTL_ADD and EPOLL_CTL_MOD both report the fd's present readiness, so a
 * registration (or a check of one) never misses an edge that came before it.
 *
 * Cross-thread wake: an eventfd, written only on the 0->1 edge of
 * wake_pending. Embedding: a timerfd makes the epoll fd itself readable
 * when the next timer is due.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../core/internal.h"
#include "poller.h"

#define NEVENTS 256

/* Tags for our own descriptors in epoll_event.data: real fds are >= 0. */
#define TAG_WAKE ((uint64_t)-1)
#define TAG_TIMER ((uint64_t)-2)

static _Noreturn void die(const char *what)
{
    weft__die(what, errno);
}

const char *weft__poller_name(void)
{
    return "epoll";
}

int weft__poller_init(struct weft__poller *p)
{
    memset(p, 0, sizeof *p);
    p->timer_fd = -1;
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd < 0)
        return -errno;
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wake_fd < 0)
        goto fail_epoll;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
    if (epoll_ctl(p->fd, EPOLL_CTL_ADD, p->wake_fd, &ev) < 0)
        goto fail_wake;
    p->events = malloc(NEVENTS * sizeof(struct epoll_event));
    if (p->events == NULL) {
        errno = ENOMEM;
        goto fail_wake;
    }
    p->nevents = NEVENTS;
    atomic_init(&p->wake_pending, 0);
    return 0;

fail_wake:;
    int err = errno;
    close(p->wake_fd);
    errno = err;
fail_epoll:
    err = errno;
    close(p->fd);
    return -err;
}

void weft__poller_close(struct weft__poller *p)
{
    if (p->timer_fd >= 0)
        close(p->timer_fd);
    close(p->wake_fd);
    close(p->fd);
    free(p->events);
    p->events = NULL;
}

/* Edge-triggered. A peer's half-close (RDHUP) is asked for with input
 * only: it is news for readers, and as an edge it reports once, so a
 * waiting writer costs nothing while the peer does not read. Output is
 * asked for only once a writer has had to wait: on an AF_UNIX socket each
 * read by the peer would otherwise report an edge nobody waits for. */
static int ctl(struct weft__poller *p, int op, int fd, unsigned events)
{
    struct epoll_event ev = {.events = EPOLLET, .data.u64 = (uint64_t)fd};
    if (events & WEFT__POLL_IN)
        ev.events |= EPOLLIN | EPOLLRDHUP;
    if (events & WEFT__POLL_OUT)
        ev.events |= EPOLLOUT;
    return epoll_ctl(p->fd, op, fd, &ev) == 0 ? 0 : -errno;
}

int weft__poller_add(struct weft__poller *p, int fd, unsigned events)
{
    int rc = ctl(p, EPOLL_CTL_ADD, fd, events);
    if (rc == -EEXIST)
        rc = ctl(p, EPOLL_CTL_MOD, fd, events);
    return rc; /* EPERM: a regular file; EBADF: not open */
}

int weft__poller_check(struct weft__poller *p, int fd, unsigned events)
{
    int rc = ctl(p, EPOLL_CTL_MOD, fd, events);
    if (rc == -ENOENT) { /* closed and the number reused: a new file */
        rc = ctl(p, EPOLL_CTL_ADD, fd, events);
        if (rc == 0)
            rc = 1;
    }
    return rc;
}

void weft__poller_del(struct weft__poller *p, int fd)
{
    /* ENOENT (never registered) and EBADF (already closed) are both fine. */
    epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, NULL);
}

static void drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

int weft__poller_wait(struct weft__poller *p, int64_t timeout_ns,
                      weft__poller_cb *cb, void *ctx)
{
    struct epoll_event *evs = p->events;
    int n;
    static atomic_bool no_pwait2; /* the kernel (or valgrind) lacks it */
    if (timeout_ns > 0 && timeout_ns % 1000000 != 0 &&
        !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        /* Sub-millisecond precision where the kernel has it (5.11+). */
        struct timespec ts = {.tv_sec = timeout_ns / 1000000000,
                              .tv_nsec = timeout_ns % 1000000000};
        n = epoll_pwait2(p->fd, evs, p->nevents, &ts, NULL);
        if (n < 0 && errno == ENOSYS) {
            atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
            int64_t ms = timeout_ns / 1000000 + 1; /* rounded up, and
                                                     no overflow */
            n = epoll_wait(p->fd, evs, p->nevents,
                           ms > 0x7fffffff ? 0x7fffffff : (int)ms);
        }
    } else {
        int64_t ms = timeout_ns < 0 ? -1 : timeout_ns / 1000000;
        n = epoll_wait(p->fd, evs, p->nevents,
                       ms > 0x7fffffff ? 0x7fffffff : (int)ms);
    }
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        die("epoll_wait"); /* EBADF/EFAULT/EINVAL: our own bug */
    }
    int reported = 0;
    for (int i = 0; i < n; i++) {
        uint64_t tag = evs[i].data.u64;
        if (tag == TAG_WAKE) {
            drain(p->wake_fd);
            /* A full barrier, not a release store: the loop reads its
             * queues next, and a waker that still saw 1 skipped its
             * syscall (store-then-load, Dekker: both sides seq_cst). */
            atomic_exchange_explicit(&p->wake_pending, 0, memory_order_seq_cst);
            continue;
        }
        if (tag == TAG_TIMER) {
            drain(p->timer_fd);
            continue;
        }
        uint32_t e = evs[i].events;
        unsigned mask = 0;
        if (e & EPOLLIN)
            mask |= WEFT__POLL_IN;
        if (e & EPOLLRDHUP)
            mask |= WEFT__POLL_IN | WEFT__POLL_HUP;
        if (e & EPOLLOUT)
            mask |= WEFT__POLL_OUT;
        if (e & (EPOLLERR | EPOLLHUP))
            mask |= WEFT__POLL_ERR | WEFT__POLL_HUP | WEFT__POLL_IN |
                    WEFT__POLL_OUT;
        cb(ctx, (int)tag, mask);
        reported++;
    }
    return reported;
}

unsigned long weft__poller_wake_syscalls;

void weft__poller_wake(struct weft__poller *p)
{
    if (atomic_exchange_explicit(&p->wake_pending, 1, memory_order_seq_cst))
        return; /* a wake is already on its way */
    __atomic_fetch_add(&weft__poller_wake_syscalls, 1, __ATOMIC_RELAXED);
    uint64_t one = 1;
    while (write(p->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

int weft__poller_timer(struct weft__poller *p, int64_t deadline_ns)
{
    if (p->timer_fd < 0) {
        if (deadline_ns < 0)
            return 0;
        p->timer_fd =
            timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (p->timer_fd < 0)
            return -errno;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_TIMER};
        if (epoll_ctl(p->fd, EPOLL_CTL_ADD, p->timer_fd, &ev) < 0) {
            int err = errno;
            close(p->timer_fd);
            p->timer_fd = -1;
            return -err;
        }
    }
    struct itimerspec its = {0};
    if (deadline_ns >= 0) {
        if (deadline_ns == 0)
            deadline_ns = 1; /* 0 would disarm */
        its.it_value.tv_sec = deadline_ns / 1000000000;
        its.it_value.tv_nsec = deadline_ns % 1000000000;
    }
    if (timerfd_settime(p->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        return -errno;
    return 0;
}
