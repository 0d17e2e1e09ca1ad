/* SPDX-License-Identifier: MIT */
/*
 * The poller contract: the whole interface between a loop and the
 * kernel's readiness API. One backend per API (io/poll_epoll.c on Linux,
 * io/poll_kqueue.c on BSD and macOS); the Makefile links exactly one,
 * chosen by `uname -s` or `make POLLER=epoll|kqueue`.
 *
 * Interest is one-shot: weft__poller_arm asks for the next readiness of
 * an fd, and after an event is reported for it the fd is disarmed until
 * armed again. One-shot interest survives a plain close() and the reuse
 * of the fd number: arming a stale registration re-registers it.
 *
 * Everything here is called on the loop's thread, except
 * weft__poller_wake, which any thread may call.
 */
#ifndef WEFT_IO_POLLER_H
#define WEFT_IO_POLLER_H

#include <stdatomic.h>
#include <stdint.h>

#define WEFT__POLL_IN 1u  /* = WEFT_READABLE */
#define WEFT__POLL_OUT 2u /* = WEFT_WRITABLE */
#define WEFT__POLL_ERR 4u /* error or hang-up: wakes every waiter */

struct weft__poller {
    int fd;                  /* epoll / kqueue descriptor */
    int wake_fd;             /* eventfd (epoll); -1 with EVFILT_USER */
    int timer_fd;            /* timerfd (epoll, embedding only); -1 */
    atomic_int wake_pending; /* 1 between a wake and the wait seeing it */
    void *events;            /* backend's event buffer */
    int nevents;             /* its capacity */
};

/* Called by weft__poller_wait for each ready fd: events is a mask of
 * WEFT__POLL_*. */
typedef void weft__poller_cb(void *ctx, int fd, unsigned events);

/* Opens the backend. 0 or -errno. */
int weft__poller_init(struct weft__poller *p);
void weft__poller_close(struct weft__poller *p);
/* Asks for one report when fd is ready for events (WEFT__POLL_IN/OUT),
 * replacing any earlier interest in fd. 0 or -errno (-EBADF, -EPERM for
 * a regular file, which is always ready). Reports may be spurious (an fd
 * reused after a plain close, an error): callers retry their syscall. */
int weft__poller_arm(struct weft__poller *p, int fd, unsigned events);
/* Forgets fd (before it is closed). Never fails. */
void weft__poller_disarm(struct weft__poller *p, int fd);
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

#endif /* WEFT_IO_POLLER_H */
