/* SPDX-License-Identifier: MIT */
/* io/: shared internals of the fiber-aware descriptor calls. */
#ifndef WEFT__IO_INTERNAL_H
#define WEFT__IO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Waits until fd may be ready for events (WEFT_READABLE/WRITABLE): a
 * fiber parks, a plain thread polls. Returns the ready subset (> 0), or
 * -ETIMEDOUT, -ECANCELED, -EBADF (not open, or weft_close), -ENOMEM.
 * again: the caller's call just failed with EAGAIN for events, so an
 * edge the loop remembers is used up; without it, a remembered edge
 * returns at once (the caller has yet to try). */
int weft__wait_fd(int fd, unsigned events, int64_t deadline, bool again);
/* Out of descriptors: waits until weft_close frees one on this loop or
 * backoff_ns passes (then retry). 0, -ETIMEDOUT once the deadline has
 * passed, -ECANCELED. */
int weft__wait_descriptor_frees(int64_t deadline, int64_t backoff_ns);
/* Sleeps (a fiber parks) until pause_ns from now or deadline, whichever
 * is first, for a retry with nothing to wait on. 0, -ETIMEDOUT if the
 * deadline had passed already, -ECANCELED. */
int weft__pause(int64_t deadline, int64_t pause_ns);

/* Sockets weft makes (io/io.c): non-blocking and close-on-exec, by the
 * flags of socket() and accept4() where the system has them (Linux, the
 * BSDs), by fcntl after a plain socket() or accept() where it does not
 * (macOS); with SO_NOSIGPIPE where send() has no MSG_NOSIGNAL (macOS).
 * The descriptor, or -errno. */
int weft__socket(int family, int type, int protocol);
int weft__accept(int lfd, struct sockaddr *addr, socklen_t *addrlen);

/* weft_connect with a deadline (monotonic ns; < 0: none) in place of a
 * timeout. */
int weft__connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                  int64_t deadline);

/* A fiber's loop remembers whether the last read of fd found nothing at
 * first and had to wait (request/response traffic: it always does). The
 * next read then waits for readiness before its first try, saving a
 * syscall that would fail with EAGAIN. Only a hint: the wait returns at
 * once if an edge came since the last EAGAIN or draining read, and a read
 * that finds data on its first try turns the hint off. */
bool weft__fd_wait_first(int fd);
/* A read of fd returned data: waited says whether it had to wait,
 * short_read that it returned less than asked (and was no peek). */
void weft__fd_read_done(int fd, bool waited, bool short_read);

/* What the calling fiber's loop remembers of fd (io/fd.c: it is dropped
 * with the registration, by weft_close and by a wait that ends by timeout
 * or cancellation): whether weft made it non-blocking, and its kind
 * (WEFT__FD_*, learned with one getsockopt if not known yet). A plain
 * thread knows nothing: false, WEFT__FD_UNKNOWN. */
bool weft__fd_nonblock(int fd);
void weft__fd_set_nonblock(int fd);
/* Whether a fiber's weft_accept on fd is in a burst, and the start of one:
 * see weft_accept_ex in io.c. */
bool weft__fd_in_accept_burst(int fd);
void weft__fd_accepted(int fd);
int weft__fd_kind(int fd);
/* fd is a new descriptor (accepted, or a socket weft just made or
 * connects): whatever the loop remembers of its number is stale. */
void weft__fd_fresh(int fd, int kind, bool nonblock);

/* Debug mode's registry of which loop waits on which fd (watch.c). A
 * fiber of loop starts waiting on fd: false (reported) if a fiber of
 * another loop waits on it. */
struct weft_loop;
bool weft__watch_begin(struct weft_loop *loop, int fd, const char *what);
void weft__watch_end(int fd);
/* False (reported) if fibers of a loop other than loop wait on fd. */
bool weft__watched_elsewhere_ok(struct weft_loop *loop, int fd,
                                const char *call);

#endif /* WEFT__IO_INTERNAL_H */
