/* SPDX-License-Identifier: MIT */
/*
 * The poller contract: the whole interface between a loop and the
 * kernel's readiness API. One backend per API (io/poll_epoll.c on Linux,
 * io/poll_kqueue.c on BSD and macOS); the Makefile links exactly one,
 * chosen by `uname -s` or `make POLLER=epoll|kqueue`.
 *
 * Interest is edge-triggered and registered once for an fd's life
 * (weft__poller_add), a direction once something has waited for it: a
 * report says the fd became ready since the last one. The kernel drops a
 * registration with the file, so after a plain close() and the reuse of the
 * number the caller's "registered" is stale: weft__poller_check re-registers if
 * needed and reports the fd's present readiness again.
 *
 * Everything here is called on the loop's thread, except
 * weft__poller_wake, which any thread may call.
 */
#ifndef WEFT__IO_POLLER_H
#define WEFT__IO_POLLER_H

#include <stdatomic.h>
#include <stdint.h>

#define WEFT__POLL_IN 1u  /* = WEFT_READABLE */
#define WEFT__POLL_OUT 2u /* = WEFT_WRITABLE */
#define WEFT__POLL_ERR 4u /* error or hang-up: wakes every waiter */
#define WEFT__POLL_HUP 8u /* the peer will send nothing more (with IN) */

struct weft__poller {
    int fd;                  /* epoll / kqueue descriptor */
    int wake_fd;             /* eventfd (epoll); -1 with EVFILT_USER */
    int timer_fd;            /* timerfd (epoll, embedding only); -1 */
    atomic_int wake_pending; /* 1 between a wake and the wait seeing it */
    void *events;            /* backend's event buffer */
    int nevents;             /* its capacity */
};

/* Called by weft__poller_wait for each ready fd: events is a mask of
 * WEFT__POLL_* (ERR comes with IN and OUT, HUP with IN). */
typedef void weft__poller_cb(void *ctx, int fd, unsigned events);

/* Opens the backend. 0 or -errno. */
int weft__poller_init(struct weft__poller *p);
void weft__poller_close(struct weft__poller *p);
/* Registers fd, edge-triggered, for events (WEFT__POLL_IN/OUT; the caller
 * only ever adds to what it asked before): a report comes now if it is
 * ready, and then each time it becomes ready again. An fd registered
 * already is kept (and reports its readiness again). 0 or
 * -errno (-EBADF, -EPERM for a regular file, which is always ready).
 * Reports may be spurious (an fd reused after a plain close, an error):
 * callers retry their syscall. */
int weft__poller_add(struct weft__poller *p, int fd, unsigned events);
/* For an fd the caller believes registered: makes sure it is, for events
 * (the number may name a new file, or a direction be new), and reports
 * its present readiness again. 0, 1 if
 * it had to register a new file (where the backend can tell), or -errno
 * as weft__poller_add. */
int weft__poller_check(struct weft__poller *p, int fd, unsigned events);
/* Forgets fd (before it is closed). Never fails. */
void weft__poller_del(struct weft__poller *p, int fd);
/* Waits up to timeout_ns (< 0: forever; 0: just look) and reports ready
 * fds to cb. A wake from any thread ends the wait. Returns the number of
 * fds reported, or -errno (not -EINTR: an interrupted wait returns 0). */
int weft__poller_wait(struct weft__poller *p, int64_t timeout_ns,
                      weft__poller_cb *cb, void *ctx);
/* Any thread. Ends the current or next wait. The syscall is made only on
 * the 0->1 edge of wake_pending; the waiting side clears it. */
void weft__poller_wake(struct weft__poller *p);
/* How many wake-ups made a syscall, process-wide (for tests; read it
 * with __atomic_load_n). */
extern unsigned long weft__poller_wake_syscalls;
/* Makes the poller's own fd (p->fd) poll readable at the monotonic time
 * deadline_ns (< 0: never), so a host loop watching it wakes for timers.
 * 0 or -errno. */
int weft__poller_timer(struct weft__poller *p, int64_t deadline_ns);
/* "epoll" or "kqueue". */
const char *weft__poller_name(void);

#endif /* WEFT__IO_POLLER_H */
