/* SPDX-License-Identifier: MIT */
/*
 * Waiting on descriptors. A fiber that would block parks on its loop's
 * entry for the fd; the poller reports readiness and the fibers waiting
 * for it wake and retry their call. A plain thread waits in poll(2).
 * weft_close wakes the fd's waiters with -EBADF before closing it, and
 * wakes the fibers backing off in weft_accept, since a descriptor frees.
 *
 * An fd is registered with the poller once, edge-triggered, on its first
 * wait: no syscall per wait. Edges are remembered in the entry's ready
 * bits (reported since the last EAGAIN, or since a short read drained a
 * byte stream): a wait with its bit set returns at once, one without
 * parks for the next edge, which the kernel reports for any data that
 * comes after the EAGAIN.
 *
 * The entry is kept by number, and a plain close() and the reuse of the
 * number make it stale without a word: the kernel dropped the old file's
 * registration, and no edge will come for the new one. So a wait that
 * trusts a remembered registration goes on the loop's check list, and if
 * no report has come for the fd after WEFT__FD_CHECK_NS, fd_check
 * checks the registration (one epoll_ctl, which also reports the fd's
 * present readiness): a stale registration, or a short read that did not
 * drain after all, costs that much delay once, never a lost wake-up.
 * Each check that finds the registration sound doubles that fd's delay,
 * up to 64 times (640 ms), until the registration is made again: a
 * thousand busy connections whose waits pass 10 ms would otherwise cost
 * an epoll_ctl per message. The loop keeps one check list per interval,
 * each in the order its waits began, so a pass visits only the fds that
 * are due (and the first that is not).
 * A wait that ends by timeout or cancellation with nobody left waiting
 * forgets the registration (and what was learned with it), since a plain
 * close() may well come next; so do weft_close and a new descriptor from
 * weft_accept, weft_connect or weft_tcp_*.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../sched/internal.h"
#include "fdtable.h"
#include "internal.h"

static const struct weft__loop_hooks io_hooks;

/* loop's io state, made on first use (NULL on ENOMEM). */
static struct weft__io *io_get(struct weft_loop *loop)
{
    if (WEFT__LIKELY(loop->io != NULL))
        return loop->io;
    struct weft__io *io = calloc(1, sizeof *io);
    if (io == NULL)
        return NULL;
    loop->io = io;
    loop->io_hooks = &io_hooks;
    return io;
}

/* The loop's entry for fd (>= 0), grown on demand. NULL with *err set:
 * -EBADF if fd is not open, -ENOMEM. The table grows only for an open
 * descriptor (one fcntl, on growth only): a bad number, however large,
 * costs no memory. */
static struct weft__fdent *fdent(struct weft_loop *loop, int fd, int *err)
{
    struct weft__io *io = io_get(loop);
    if (io == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    if ((size_t)fd >= io->nfds) {
        if (fcntl(fd, F_GETFD) < 0) {
            *err = -errno;
            return NULL;
        }
        *err = -ENOMEM;
        size_t n = io->nfds ? io->nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct weft__fdent *t = realloc(io->fds, n * sizeof *t);
        if (t == NULL)
            return NULL;
        memset(t + io->nfds, 0, (n - io->nfds) * sizeof *t);
        io->fds = t;
        io->nfds = n;
    }
    return &io->fds[fd];
}

/* Forgets what was learned of the file fd named (forget: and its
 * registration, so the next wait registers it again; EEXIST is fine). */
static void forget_file(struct weft__fdent *e)
{
    e->ready = 0;
    e->kind = WEFT__FD_UNKNOWN;
    e->nonblock = false;
    e->check_shift = 0;
    e->accepted = 0;
}

static void forget(struct weft__fdent *e)
{
    e->reg = 0;
    forget_file(e);
}

/* How long a wait on e trusts its remembered registration unchecked. */
static int64_t check_ns(const struct weft__fdent *e)
{
    return (int64_t)WEFT__FD_CHECK_NS << e->check_shift;
}

static void check_push(struct weft_loop *loop, struct weft__fdent *e, int fd)
{
    int k = e->check_shift;
    e->checking = true;
    e->check_next = 0;
    int64_t due = e->since + check_ns(e);
    struct weft__io *io = loop->io;
    if (io->check_tail[k] != 0)
        io->fds[io->check_tail[k] - 1].check_next = fd + 1;
    else
        io->check_head[k] = fd + 1;
    io->check_tail[k] = fd + 1;
    if (io->ncheck++ == 0 || due < loop->io_due)
        loop->io_due = due;
}

/* Wakes every waiter on e to retry its call (and see what went wrong). */
static void wake_all(struct weft__fdent *e)
{
    struct weft__fiber *f;
    while ((f = weft__waitq_pop(&e->waiters)) != NULL)
        weft__wake(f, (int)f->wait_events);
}

/* The poller's report (io_hooks.ready): wakes the fibers waiting on fd
 * for events. */
static void fd_ready(struct weft_loop *loop, int fd, unsigned events)
{
    struct weft__io *io = loop->io;
    if (fd < 0 || (size_t)fd >= io->nfds)
        return;
    struct weft__fdent *e = &io->fds[fd];
    e->ready |= (unsigned char)(events & (WEFT__POLL_IN | WEFT__POLL_OUT |
                                          WEFT__POLL_HUP));
    e->proven = true;
    struct weft__fiber *f = weft__waitq_first(&e->waiters);
    while (f != NULL) {
        struct weft__fiber *next = weft__waitq_next(f);
        unsigned got = (events & WEFT__POLL_ERR) ? f->wait_events
                                                 : events & f->wait_events;
        if (got) {
            weft__waitq_del(&e->waiters, f);
            weft__wake(f, (int)got);
        }
        f = next;
    }
}

/* Checks the registrations the loop trusted for waits that have had no
 * report for their check interval (io_hooks.due, at loop->io_due). */
static void fd_check(struct weft_loop *loop)
{
    struct weft__io *io = loop->io;
    int64_t now = weft__loop_now(loop);
    int64_t next = INT64_MAX;
    for (int k = 0; k <= WEFT__FD_CHECK_MAX_SHIFT; k++) {
        int i;
        while ((i = io->check_head[k]) != 0) {
            int fd = i - 1;
            struct weft__fdent *e = &io->fds[fd];
            bool live =
                !weft__waitq_empty(&e->waiters) && !e->proven && e->reg != 0;
            if (live && now - e->since < check_ns(e)) {
                /* Not due, nor anything behind it in this list. */
                if (e->since + check_ns(e) < next)
                    next = e->since + check_ns(e);
                break;
            }
            io->check_head[k] = e->check_next;
            if (e->check_next == 0)
                io->check_tail[k] = 0;
            io->ncheck--;
            e->checking = false;
            e->check_next = 0;
            if (!live)
                continue; /* nothing to check, or a report came */
            e->proven = true;
            int rc = weft__poller_check(&loop->poller, fd, e->reg);
            if (rc == 0 && e->check_shift < WEFT__FD_CHECK_MAX_SHIFT) {
                e->check_shift++; /* sound again: check it less often */
            } else if (rc > 0) {  /* a new file, registered just now */
                forget_file(e);
            } else if (rc < 0) { /* closed, or a regular file now */
                forget(e);
                wake_all(e);
            }
        }
    }
    /* The next pass: when the first fd still queued is due, but not
     * sooner than in 5 ms. */
    if (next < now + WEFT__FD_CHECK_NS / 2)
        next = now + WEFT__FD_CHECK_NS / 2;
    loop->io_due = io->ncheck != 0 ? next : -1;
}

/* The loop is being freed (io_hooks.fini). */
static void io_fini(struct weft_loop *loop)
{
    struct weft__io *io = loop->io;
    free(io->fds);
    free(io);
    loop->io = NULL;
    loop->io_due = -1;
}

static const struct weft__loop_hooks io_hooks = {
    .ready = fd_ready,
    .due = fd_check,
    .fini = io_fini,
};

/* A wait ends by timeout or cancellation. The last waiter to leave drops
 * the registration state: with nobody waiting, a plain close() and the
 * reuse of the number can come next, and the kernel forgets the
 * registration with the file (epoll, kqueue), so the next wait registers
 * again instead of trusting a stale one. The registration itself, if
 * still there, costs nothing: at worst it reports to an fd nobody waits
 * on. */
static bool fd_unlink(struct weft__fiber *f)
{
    struct weft__io *io = f->loop->io;
    struct weft__fdent *e = &io->fds[f->wait_fd];
    weft__waitq_del(&e->waiters, f);
    if (weft__waitq_empty(&e->waiters))
        forget(e);
    return true;
}

static bool emfile_unlink(struct weft__fiber *f)
{
    weft__waitq_del(f->wait_obj, f);
    return true;
}

/* poll(2) once, for up to ms (-1: forever): the ready subset of events,
 * 0 if none came in time, or -errno. */
static int poll_once(int fd, unsigned events, int ms)
{
    struct pollfd p = {.fd = fd};
    if (events & WEFT_READABLE)
        p.events |= POLLIN;
    if (events & WEFT_WRITABLE)
        p.events |= POLLOUT;
    int n = poll(&p, 1, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (n == 0)
        return 0;
    if (p.revents & POLLNVAL)
        return -EBADF;
    unsigned got = 0;
    if (p.revents & (POLLERR | POLLHUP))
        got = events;
    if (p.revents & POLLIN)
        got |= WEFT_READABLE;
    if (p.revents & POLLOUT)
        got |= WEFT_WRITABLE;
    return (int)(got & events);
}

/* Plain thread: poll(2) until ready or deadline. */
static int poll_wait(int fd, unsigned events, int64_t deadline)
{
    for (;;) {
        int64_t ms = weft__ms_until(deadline);
        int got = poll_once(fd, events, ms > INT_MAX ? INT_MAX : (int)ms);
        if (got != 0)
            return got;
        if (ms == 0)
            return -ETIMEDOUT; /* looked once more at the deadline */
    }
}

int weft__wait_fd(int fd, unsigned events, int64_t deadline, bool again)
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
    if (again) /* the caller's EAGAIN is newer than any edge remembered */
        e->ready &= (unsigned char)~events;
    if ((e->reg & events) != events) {
        /* A first wait, or the first for this direction. */
        unsigned want = e->reg | events;
        rc = e->reg ? weft__poller_check(&loop->poller, fd, want)
                    : weft__poller_add(&loop->poller, fd, want);
        if (rc < 0) {
            /* The fd went bad (or is a new file) under any waiters: let
             * them retry and see. */
            forget(e);
            wake_all(e);
            if (rc == -EPERM) /* a regular file: always ready */
                return (int)events;
            return rc;
        }
        /* The registration reports what is ready now. */
        if (rc > 0) /* a new file under the number */
            forget(e);
        if (e->reg == 0)
            e->ready = 0;
        e->ready &= (unsigned char)~events;
        e->reg = (unsigned char)want;
        e->proven = true;
    } else if (e->ready & events) {
        return e->ready & (int)events; /* an edge not yet used: retry */
    } else if (weft__waitq_empty(&e->waiters)) {
        /* A remembered registration, maybe of a file closed since. Still
         * queued from an earlier wait, it keeps that wait's start: its
         * list stays in due order (a check may come early, never late). */
        e->proven = false;
        if (!e->checking) {
            e->since = weft__loop_now(loop);
            check_push(loop, e, fd);
        }
    }
    if (WEFT__UNLIKELY(loop->debug) && !weft__watch_begin(loop, fd, "a wait"))
        return -EPERM;
    f->wait_fd = fd;
    f->wait_events = events;
    weft__waitq_push(&e->waiters, f);
    rc = weft__park(f, WEFT__WAIT_FD, e, deadline, fd_unlink);
    if (WEFT__UNLIKELY(loop->debug))
        weft__watch_end(fd);
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
    struct weft__io *io = io_get(f->loop);
    if (io == NULL)
        return weft__pause(deadline, backoff_ns);
    struct weft__waitq *head = &io->emfile_waiters;
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
    return weft__sleep_until(until);
}

/* The calling fiber's entry for fd, if the table has one. */
static struct weft__fdent *known(int fd)
{
    struct weft__fiber *f = weft__fiber_current();
    struct weft__io *io = f != NULL ? f->loop->io : NULL;
    if (io == NULL || fd < 0 || (size_t)fd >= io->nfds)
        return NULL;
    return &io->fds[fd];
}

/* SOCK_STREAM sockets and pipes: a short read took all there was. */
static unsigned char learn_kind(int fd)
{
    int type;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
        return type == SOCK_STREAM ? WEFT__FD_STREAM : WEFT__FD_OTHER;
    struct stat st;
    if (errno == ENOTSOCK && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
        return WEFT__FD_STREAM;
    return WEFT__FD_OTHER;
}

bool weft__fd_wait_first(int fd)
{
    struct weft__fdent *e = known(fd);
    return e != NULL && e->wait_first;
}

void weft__fd_read_done(int fd, bool waited, bool short_read)
{
    struct weft__fdent *e = known(fd);
    if (e == NULL)
        return;
    e->wait_first = waited;
    /* A short read of a byte stream drained it: the next edge comes with
     * the next data, as after an EAGAIN. Not after the peer's half-close
     * (no edge comes for the EOF after the data), and not for a datagram
     * or a tty, which return one message or line at a time. Should a
     * stream keep data back after all (an AF_UNIX stream with
     * credentials, TCP urgent data), the check gets the wait going. */
    if (!short_read || !(e->reg & WEFT__POLL_IN) || (e->ready & WEFT__POLL_HUP))
        return;
    if (e->kind == WEFT__FD_UNKNOWN)
        e->kind = learn_kind(fd);
    if (e->kind == WEFT__FD_STREAM)
        e->ready &= (unsigned char)~WEFT__POLL_IN;
}

bool weft__fd_nonblock(int fd)
{
    struct weft__fdent *e = known(fd);
    return e != NULL && e->nonblock;
}

void weft__fd_set_nonblock(int fd)
{
    struct weft__fdent *e = known(fd);
    if (e != NULL)
        e->nonblock = true;
}

/* An accept burst (io.c, weft_accept_ex): fd's last weft_accept returned a
 * connection to the running fiber, and no fiber has run since. */
bool weft__fd_in_accept_burst(int fd)
{
    struct weft__fiber *f = weft__fiber_current();
    struct weft__fdent *e = known(fd);
    return f != NULL && e != NULL && e->accepted == f->loop->nran + 1;
}

void weft__fd_accepted(int fd)
{
    struct weft__fiber *f = weft__fiber_current();
    int err;
    struct weft__fdent *e = f != NULL ? fdent(f->loop, fd, &err) : NULL;
    if (e != NULL)
        e->accepted = f->loop->nran + 1;
}

int weft__fd_kind(int fd)
{
    struct weft__fdent *e = known(fd);
    if (e == NULL)
        return WEFT__FD_UNKNOWN;
    if (e->kind == WEFT__FD_UNKNOWN)
        e->kind = learn_kind(fd);
    return e->kind;
}

void weft__fd_fresh(int fd, int kind, bool nonblock)
{
    struct weft__fiber *f = weft__fiber_current();
    if (f == NULL || fd < 0)
        return;
    int err;
    struct weft__fdent *e = fdent(f->loop, fd, &err);
    if (e == NULL)
        return;
    forget(e);
    e->kind = (unsigned char)kind;
    e->nonblock = nonblock;
    e->wait_first = false;
}

int weft_wait_fd(int fd, unsigned events, int64_t timeout_ms)
{
    int64_t deadline = weft__wait_deadline(timeout_ms);
    if (fd >= 0 && weft__fiber_current() != NULL) {
        /* The caller's own calls are unknown to the loop: ask the kernel
         * whether fd is ready now, then wait for the next edge. */
        int got = poll_once(fd, events, 0);
        if (got != 0)
            return got;
        return weft__wait_fd(fd, events, deadline, true);
    }
    return weft__wait_fd(fd, events, deadline, false);
}

int weft_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    struct weft_loop *loop = weft__loop_tls;
    if (!weft__watched_elsewhere_ok(loop, fd, "weft_close"))
        return -EPERM;
    struct weft__io *io = loop != NULL ? loop->io : NULL;
    if (io != NULL) {
        if ((size_t)fd < io->nfds) {
            struct weft__fdent *e = &io->fds[fd];
            struct weft__fiber *f;
            while ((f = weft__waitq_pop(&e->waiters)) != NULL)
                weft__wake(f, -EBADF);
            if (e->reg != 0)
                weft__poller_del(&loop->poller, fd);
            forget(e);
            e->wait_first = false;
        }
        struct weft__fiber *f;
        while ((f = weft__waitq_pop(&io->emfile_waiters)) != NULL)
            weft__wake(f, 0);
    }
    /* Linux closes the fd even when close fails with EINTR: never retry. */
    if (close(fd) < 0 && errno != EINTR)
        return -errno;
    return 0;
}
