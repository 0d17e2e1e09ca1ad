/* SPDX-License-Identifier: MIT */
/* io/: shared internals of the fiber-aware descriptor calls. */
#ifndef WEFT_IO_INTERNAL_H
#define WEFT_IO_INTERNAL_H

#include <stdint.h>

/* The deadline for timeout_ms, on the loop's clock in a fiber. */
int64_t weft__io_deadline(int64_t timeout_ms);
/* Waits until fd may be ready for events (WEFT_READABLE/WRITABLE): a
 * fiber parks, a plain thread polls. Returns the ready subset (> 0), or
 * -ETIMEDOUT, -ECANCELED, -EBADF (weft_close), -ENOMEM. */
int weft__wait_fd(int fd, unsigned events, int64_t deadline);
/* Out of descriptors: waits until weft_close frees one on this loop or
 * backoff_ns passes (then retry). 0, -ETIMEDOUT once the deadline has
 * passed, -ECANCELED. */
int weft__wait_descriptor_frees(int64_t deadline, int64_t backoff_ns);

#endif /* WEFT_IO_INTERNAL_H */
