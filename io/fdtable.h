/* SPDX-License-Identifier: MIT */
/*
 * io's state in a loop: what it knows of each descriptor number (io/fd.c
 * says how entries are kept and checked). The loop holds it as an opaque
 * pointer (loop->io) with io's hooks, made on first use.
 */
#ifndef WEFT__IO_FDTABLE_H
#define WEFT__IO_FDTABLE_H

#include "../core/tunables.h"
#include "../sched/fiber.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weft_loop;
struct weft__fiber;

/* What the loop knows of an fd (by number: after a plain close() and the
 * reuse of the number it is stale, see io/fd.c). */
struct weft__fdent {
    struct weft__waitq waiters; /* parked on this fd */
    int64_t since;              /* when its unchecked wait began */
    int check_next;             /* next on its check list, + 1 (0: end) */
    unsigned char ready;        /* WEFT__POLL_IN/OUT reported since the
                                   last EAGAIN, HUP since registration */
    unsigned char kind;         /* WEFT__FD_UNKNOWN, _STREAM, _OTHER */
    unsigned char reg;          /* WEFT__POLL_IN/OUT registered with the
                                   poller (0: not registered) */
    bool proven;                /* the registration reported, or was made
                                   or checked, during the current wait */
    bool checking;              /* on one of the loop's check lists */
    bool nonblock;              /* weft set O_NONBLOCK (kept with reg) */
    bool wait_first;            /* the last read found nothing at first:
                                   the next one likely will too */
    unsigned char check_shift;  /* checks wait WEFT__FD_CHECK_NS << this */
    uint64_t accepted;          /* a listening socket: the loop's nran + 1
                                   when a fiber's weft_accept on it last
                                   returned a connection (0: never) */
};
#define WEFT__FD_UNKNOWN 0
#define WEFT__FD_STREAM 1 /* a short read drains it: SOCK_STREAM, a pipe */
#define WEFT__FD_OTHER 2

struct weft__io {
    struct weft__fdent *fds; /* indexed by fd */
    size_t nfds;
    /* The check lists, one per check interval (an fd's check_shift when
     * queued), each in the order the waits began, so in due order: a
     * pass visits only what is due. Links are fd + 1 (0: empty). The
     * next pass is due at loop->io_due. */
    int check_head[WEFT__FD_CHECK_MAX_SHIFT + 1];
    int check_tail[WEFT__FD_CHECK_MAX_SHIFT + 1];
    size_t ncheck;                     /* queued on them all */
    struct weft__waitq emfile_waiters; /* weft_accept backing off */
};

#endif /* WEFT__IO_FDTABLE_H */
