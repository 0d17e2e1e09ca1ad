/* SPDX-License-Identifier: MIT */
/* io/: shared internals of the fiber-aware descriptor calls. */
#ifndef WEFT_IO_INTERNAL_H
#define WEFT_IO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Waits until fd may be ready for events (WEFT_READABLE/WRITABLE): a
 * fiber parks, a plain thread polls. Returns the ready subset (> 0), or
 * -ETIMEDOUT, -ECANCELED, -EBADF (not open, or weft_close), -ENOMEM. */
int weft__wait_fd(int fd, unsigned events, int64_t deadline);
/* Out of descriptors: waits until weft_close frees one on this loop or
 * backoff_ns passes (then retry). 0, -ETIMEDOUT once the deadline has
 * passed, -ECANCELED. */
int weft__wait_descriptor_frees(int64_t deadline, int64_t backoff_ns);
/* Sleeps (a fiber parks) until pause_ns from now or deadline, whichever
 * is first, for a retry with nothing to wait on. 0, -ETIMEDOUT if the
 * deadline had passed already, -ECANCELED. */
int weft__pause(int64_t deadline, int64_t pause_ns);

/* weft_connect with a deadline (monotonic ns; < 0: none) in place of a
 * timeout. */
int weft__connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                  int64_t deadline);

/* A fiber's loop remembers whether the last read of fd found nothing at
 * first and had to wait (request/response traffic: it always does). The
 * next read then waits for readiness before its first try, saving a
 * syscall that would fail with EAGAIN. Only a hint: the wait arms the
 * poller, which reports at once if data is already there, and a read
 * that finds data on its first try turns the hint off. */
bool weft__fd_wait_first(int fd);
void weft__fd_set_wait_first(int fd, bool wait_first);

#endif /* WEFT_IO_INTERNAL_H */
