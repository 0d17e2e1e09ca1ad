/* SPDX-License-Identifier: MIT */
/*
 * The fiber-aware descriptor calls. Every one has the same shape: try the
 * syscall without blocking; on EAGAIN wait for readiness (a fiber parks,
 * a plain thread polls) and try again; EINTR is retried.
 *
 * Sockets are used with MSG_DONTWAIT (and MSG_NOSIGNAL for sends), so
 * they need no flag changes and never raise SIGPIPE (macOS has no
 * MSG_NOSIGNAL: weft's own sockets get SO_NOSIGPIPE, and a send on any
 * other ignores SIGPIPE as a write to a pipe does). Other descriptors
 * (pipes, ttys) answer ENOTSOCK to that first try; they are switched to
 * O_NONBLOCK and used with read/write. That check is made on every call,
 * not cached: after a plain close() the same number may name another
 * file, and a cached "non-blocking" would then block the whole loop.
 * weft_accept alone skips it, within a burst of accepts by one fiber
 * (weft_accept_ex says when): a server's acceptor would otherwise pay a
 * syscall per connection that the epoll floor does not make.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../sched/internal.h"
#include "fdtable.h"
#include "internal.h"

/* Sets O_NONBLOCK on fd if it is not set. 0 or -errno. */
static int ensure_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Writes to a pipe whose reader is gone raise SIGPIPE, which kills the
 * process by default. Ignore it (once, only if nobody chose otherwise),
 * so the write returns -EPIPE instead. */
static void ignore_sigpipe(void)
{
    static atomic_bool done;
    if (atomic_load_explicit(&done, memory_order_relaxed))
        return;
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
        !(old.sa_flags & SA_SIGINFO)) {
        struct sigaction ign = {.sa_handler = SIG_IGN};
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, NULL);
    }
    atomic_store_explicit(&done, true, memory_order_relaxed);
}

/* ---- byte streams: read, write, readv, writev, recv, send ---- */

struct rw {
    struct iovec *iov; /* what is left to move */
    int iovcnt;
    int flags;             /* recv/send flags */
    struct sockaddr *from; /* recvfrom */
    socklen_t *fromlen;
    const struct sockaddr *to; /* sendto */
    socklen_t tolen;
    bool notsock; /* learned from ENOTSOCK */
};

static ssize_t attempt_in(int fd, void *arg)
{
    struct rw *op = arg;
    ssize_t n;
    if (!op->notsock) {
        /* One buffer and no address: recv, which the kernel serves with
         * less work than recvmsg (no message header or vector to copy
         * in). */
        if (op->iovcnt == 1 && op->from == NULL) {
            n = recv(fd, op->iov[0].iov_base, op->iov[0].iov_len,
                     op->flags | MSG_DONTWAIT);
        } else {
            struct msghdr m = {.msg_iov = op->iov,
                               .msg_iovlen = (size_t)op->iovcnt,
                               .msg_name = op->from,
                               .msg_namelen = op->fromlen ? *op->fromlen : 0};
            n = recvmsg(fd, &m, op->flags | MSG_DONTWAIT);
            if (n >= 0 && op->fromlen)
                *op->fromlen = m.msg_namelen;
        }
        if (n >= 0)
            return n;
        if (errno != ENOTSOCK)
            return -errno;
        if (op->flags != 0 || op->from != NULL)
            return -ENOTSOCK; /* recv/recvfrom on a non-socket */
        op->notsock = true;
    }
    int rc = ensure_nonblock(fd);
    if (rc < 0)
        return rc;
    n = op->iovcnt == 1 ? read(fd, op->iov[0].iov_base, op->iov[0].iov_len)
                        : readv(fd, op->iov, op->iovcnt);
    return n >= 0 ? n : -errno;
}

static ssize_t attempt_out(int fd, void *arg)
{
    struct rw *op = arg;
    ssize_t n;
    if (!op->notsock) {
#ifdef MSG_NOSIGNAL
        int fl = op->flags | MSG_DONTWAIT | MSG_NOSIGNAL;
#else
        /* macOS: weft's own sockets have SO_NOSIGPIPE; for the others a
         * closed peer must not kill the process either. */
        ignore_sigpipe();
        int fl = op->flags | MSG_DONTWAIT;
#endif
        if (op->iovcnt == 1 && op->to == NULL) {
            n = send(fd, op->iov[0].iov_base, op->iov[0].iov_len, fl);
        } else {
            struct msghdr m = {.msg_iov = op->iov,
                               .msg_iovlen = (size_t)op->iovcnt,
                               .msg_name = (void *)op->to,
                               .msg_namelen = op->tolen};
            n = sendmsg(fd, &m, fl);
        }
        if (n >= 0)
            return n;
        if (errno != ENOTSOCK)
            return -errno;
        if (op->flags != 0 || op->to != NULL)
            return -ENOTSOCK;
        op->notsock = true;
        ignore_sigpipe();
    }
    int rc = ensure_nonblock(fd);
    if (rc < 0)
        return rc;
    n = op->iovcnt == 1 ? write(fd, op->iov[0].iov_base, op->iov[0].iov_len)
                        : writev(fd, op->iov, op->iovcnt);
    return n >= 0 ? n : -errno;
}

static ssize_t do_in(int fd, struct rw *op, int64_t timeout_ms)
{
    if (fd < 0)
        return -EBADF;
    int64_t deadline = weft__wait_deadline(timeout_ms);
    bool waited = false;
    if (weft__fd_wait_first(fd)) {
        int rc = weft__wait_fd(fd, WEFT_READABLE, deadline, false);
        if (rc < 0 && rc != -ETIMEDOUT)
            return rc;
        waited = true; /* timed out: still try once, data may be there */
    }
    size_t asked = 0;
    for (int i = 0; i < op->iovcnt; i++)
        asked += op->iov[i].iov_len;
    for (;;) {
        ssize_t n = attempt_in(fd, op);
        if (n >= 0) {
            weft__fd_read_done(fd, waited,
                               n > 0 && (size_t)n < asked &&
                                   !(op->flags & MSG_PEEK));
            return n;
        }
        if (n == -EINTR)
            continue;
        if (n != -EAGAIN && n != -EWOULDBLOCK)
            return n;
        waited = true;
        int rc = weft__wait_fd(fd, WEFT_READABLE, deadline, true);
        if (rc < 0)
            return rc;
    }
}

/* Sends everything in op->iov (which it consumes). Datagram sockets send
 * it as one datagram, so a short count never happens there. */
static ssize_t do_out(int fd, struct rw *op, int64_t timeout_ms)
{
    if (fd < 0)
        return -EBADF;
    size_t total = 0;
    for (int i = 0; i < op->iovcnt; i++)
        total += op->iov[i].iov_len;
    /* One deadline for the whole write, however many rounds it takes. */
    int64_t deadline = weft__wait_deadline(timeout_ms);
    size_t done = 0;
    for (;;) {
        ssize_t n = attempt_out(fd, op);
        if (n == -EINTR)
            continue;
        if (n == -EAGAIN || n == -EWOULDBLOCK) {
            int rc = weft__wait_fd(fd, WEFT_WRITABLE, deadline, true);
            if (rc < 0)
                return rc;
            continue;
        }
        if (n < 0)
            return n;
        done += (size_t)n;
        if (done >= total)
            return (ssize_t)total;
        /* Short write: step past what went out. */
        size_t skip = (size_t)n;
        while (op->iovcnt > 0 && skip >= op->iov[0].iov_len) {
            skip -= op->iov[0].iov_len;
            op->iov++;
            op->iovcnt--;
        }
        op->iov[0].iov_base = (char *)op->iov[0].iov_base + skip;
        op->iov[0].iov_len -= skip;
    }
}

ssize_t weft_read(int fd, void *buf, size_t n, int64_t timeout_ms)
{
    struct iovec v = {buf, n};
    struct rw op = {.iov = &v, .iovcnt = 1};
    return do_in(fd, &op, timeout_ms);
}

ssize_t weft_write(int fd, const void *buf, size_t n, int64_t timeout_ms)
{
    if (n == 0)
        return 0;
    struct iovec v = {(void *)buf, n};
    struct rw op = {.iov = &v, .iovcnt = 1};
    return do_out(fd, &op, timeout_ms);
}

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt,
                   int64_t timeout_ms)
{
    if (iovcnt < 0 || (iovcnt > 0 && iov == NULL))
        return -EINVAL;
    struct rw op = {.iov = (struct iovec *)iov, .iovcnt = iovcnt};
    return do_in(fd, &op, timeout_ms);
}

ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt,
                    int64_t timeout_ms)
{
    if (iovcnt < 0 || (iovcnt > 0 && iov == NULL) || iovcnt > IOV_MAX)
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return 0;
    /* A private copy: short writes advance it, the caller's stays. */
    struct iovec small[16], *copy = small;
    if (iovcnt > 16 && (copy = malloc((size_t)iovcnt * sizeof *copy)) == NULL)
        return -ENOMEM;
    memcpy(copy, iov, (size_t)iovcnt * sizeof *copy);
    struct rw op = {.iov = copy, .iovcnt = iovcnt};
    ssize_t rc = do_out(fd, &op, timeout_ms);
    if (copy != small)
        free(copy);
    return rc;
}

ssize_t weft_recv(int fd, void *buf, size_t n, int flags, int64_t timeout_ms)
{
    struct iovec v = {buf, n};
    struct rw op = {.iov = &v, .iovcnt = 1, .flags = flags};
    return do_in(fd, &op, timeout_ms);
}

ssize_t weft_send(int fd, const void *buf, size_t n, int flags,
                  int64_t timeout_ms)
{
    struct iovec v = {(void *)buf, n};
    struct rw op = {.iov = &v, .iovcnt = 1, .flags = flags};
    return do_out(fd, &op, timeout_ms);
}

ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags,
                      struct sockaddr *from, socklen_t *fromlen,
                      int64_t timeout_ms)
{
    if (from != NULL && fromlen == NULL)
        return -EINVAL;
    struct iovec v = {buf, n};
    struct rw op = {.iov = &v,
                    .iovcnt = 1,
                    .flags = flags,
                    .from = from,
                    .fromlen = from ? fromlen : NULL};
    return do_in(fd, &op, timeout_ms);
}

ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
                    const struct sockaddr *to, socklen_t tolen,
                    int64_t timeout_ms)
{
    struct iovec v = {(void *)buf, n};
    struct rw op = {
        .iov = &v, .iovcnt = 1, .flags = flags, .to = to, .tolen = tolen};
    return do_out(fd, &op, timeout_ms);
}

/* ---- accept and connect ---- */

/* fd, made non-blocking and close-on-exec, and SO_NOSIGPIPE where that
 * is how sends avoid SIGPIPE; or -errno (fd closed). */
static int new_socket(int fd, bool flags_set)
{
    if (fd < 0)
        return -errno;
    if (!flags_set && (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
                       fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0))
        goto fail;
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on) < 0)
        goto fail;
#endif
    return fd;

fail:;
    int err = errno;
    close(fd);
    return -err;
}

int weft__socket(int family, int type, int protocol)
{
#ifdef SOCK_NONBLOCK
    return new_socket(
        socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol), true);
#else
    return new_socket(socket(family, type, protocol), false);
#endif
}

int weft__accept(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
#ifdef SOCK_NONBLOCK /* accept4 comes with it (Linux, the BSDs) */
    return new_socket(accept4(lfd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC),
                      true);
#else
    return new_socket(accept(lfd, addr, addrlen), false);
#endif
}

/* Errors accept reports for a connection that died in the queue, or for
 * the network under it (accept(2), "Error handling"): try the next one. */
static bool accept_retry(int err)
{
    switch (err) {
    case ECONNABORTED:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
#ifdef ENONET /* Linux */
    case ENONET:
#endif
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ENETDOWN:
        return true;
    default:
        return false;
    }
}

int weft_accept_ex(int lfd, struct sockaddr *addr, socklen_t *addrlen,
                   int64_t timeout_ms, unsigned flags)
{
    if (lfd < 0)
        return -EBADF;
    if (flags & ~(unsigned)WEFT_ACCEPT_NODELAY)
        return -EINVAL;
    /* O_NONBLOCK is checked (one fcntl) unless this call continues a
     * burst: the same fiber's last weft_accept on lfd returned a
     * connection and no fiber has run since, so only that fiber's own
     * code ran in between. Without the check, a listening socket closed
     * with plain close() and its number reused for a new, blocking one
     * would block the loop's thread in accept. A server's acceptor,
     * which takes every queued connection before it waits, makes one
     * fcntl per burst instead of one per connection. */
    if (!weft__fd_in_accept_burst(lfd)) {
        int nb = ensure_nonblock(lfd);
        if (nb < 0)
            return nb;
        weft__fd_set_nonblock(lfd); /* until the loop finds a new file */
    }
    int64_t deadline = weft__wait_deadline(timeout_ms);
    int64_t backoff = WEFT__ACCEPT_BACKOFF_MIN_NS;
    for (;;) {
        int fd = weft__accept(lfd, addr, addrlen);
        if (fd >= 0) {
            if (flags & WEFT_ACCEPT_NODELAY) {
                int on = 1;
                if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) <
                        0 &&
                    errno != EOPNOTSUPP && errno != ENOPROTOOPT) {
                    int err = errno;
                    close(fd);
                    return -err;
                }
            }
            /* An accepted socket has its listener's type. */
            weft__fd_fresh(fd, weft__fd_kind(lfd), true);
            weft__fd_accepted(lfd);
            return fd;
        }
        int err = -fd;
        if (err == EINTR || accept_retry(err))
            continue;
        if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
            /* The pending connection stays queued and the listening fd
             * stays readable: waiting for readiness would spin. Wait for
             * a descriptor to free instead. */
            int rc = weft__wait_descriptor_frees(deadline, backoff);
            if (rc == -ETIMEDOUT)
                return -err;
            if (rc < 0)
                return rc;
            if (backoff < WEFT__ACCEPT_BACKOFF_MAX_NS)
                backoff *= 2;
            continue;
        }
        if (err != EAGAIN && err != EWOULDBLOCK)
            return -err;
        backoff = WEFT__ACCEPT_BACKOFF_MIN_NS;
        int rc = weft__wait_fd(lfd, WEFT_READABLE, deadline, true);
        if (rc < 0)
            return rc;
        if (!weft__fd_nonblock(lfd)) { /* the wait found a new file */
            rc = ensure_nonblock(lfd);
            if (rc < 0)
                return rc;
            weft__fd_set_nonblock(lfd);
        }
    }
}

int weft_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen,
                int64_t timeout_ms)
{
    return weft_accept_ex(lfd, addr, addrlen, timeout_ms, 0);
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                 int64_t timeout_ms)
{
    return weft__connect(fd, addr, addrlen, weft__wait_deadline(timeout_ms));
}

int weft__connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                  int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (addr == NULL)
        return -EINVAL;
    int rc = ensure_nonblock(fd);
    if (rc < 0)
        return rc;
    /* A socket about to connect is new: what the loop remembers of its
     * number belongs to an earlier file. */
    weft__fd_fresh(fd, WEFT__FD_UNKNOWN, true);
    int64_t backoff = WEFT__CONNECT_BACKOFF_MIN_NS;
    for (;;) {
        if (connect(fd, addr, addrlen) == 0)
            return 0;
        int err = errno;
        if (err == EISCONN)
            return 0;
        if (err == EAGAIN) {
            /* A full Unix-domain backlog (or, elsewhere, a full routing
             * cache). Unlike TCP's EINPROGRESS, nothing goes on in the
             * background, and nothing polls ready when the listener makes
             * room: the unconnected socket polls writable (and hung up)
             * at once, so waiting for it would spin. Retry after a pause
             * instead, until the deadline. */
            rc = weft__pause(deadline, backoff);
            if (rc < 0)
                return rc;
            if (backoff < WEFT__CONNECT_BACKOFF_MAX_NS)
                backoff *= 2;
            continue;
        }
        /* EINTR: the connection goes on in the background. */
        if (err != EINPROGRESS && err != EINTR && err != EALREADY)
            return -err;
        break;
    }
    rc = weft__wait_fd(fd, WEFT_WRITABLE, deadline, true);
    if (rc < 0)
        return rc;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    return -soerr;
}
