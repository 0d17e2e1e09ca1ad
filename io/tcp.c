/* SPDX-License-Identifier: MIT */
/*
 * TCP by name: weft_tcp_listen and weft_tcp_connect.
 *
 * Numeric hosts and ports are resolved in place (getaddrinfo with
 * AI_NUMERICHOST | AI_NUMERICSERV never blocks). A name needs the
 * resolver, which may block for seconds: a fiber hands it to the default
 * executor and waits without blocking its loop; a plain thread calls it
 * itself; a loop's thread outside its fibers gets -EDEADLK, as for any
 * wait there. A fiber that stops waiting (timeout, cancellation) leaves
 * the lookup to finish on the executor; whichever side lets go last
 * frees it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../sched/internal.h"
#include "fdtable.h"
#include "internal.h"

/* getaddrinfo's verdict as a negative errno. */
static int gai_errno(int gai, int saved_errno)
{
    switch (gai) {
    case 0:
        return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENOENT; /* no such host (or service name) */
    case EAI_SERVICE:
        return -EINVAL; /* not a TCP port */
    case EAI_AGAIN:
        return -EAGAIN; /* the resolver is unreachable for now */
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return saved_errno > 0 ? -saved_errno : -EIO;
    default:
        return -EIO; /* EAI_FAIL and the like */
    }
}

/* A lookup handed to the executor. */
struct lookup {
    atomic_int refs; /* the waiting caller and the job */
    size_t size;     /* of the allocation */
    int gai, err;    /* getaddrinfo's result and errno */
    struct addrinfo hints;
    struct addrinfo *res;
    char *host; /* NULL, or into names */
    char *port; /* into names */
    char names[];
};

static void lookup_release(struct lookup *l)
{
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (l->res != NULL)
        freeaddrinfo(l->res);
    weft__free(l, l->size);
}

static void *lookup_job(void *arg)
{
    struct lookup *l = arg;
    l->gai = getaddrinfo(l->host, l->port, &l->hints, &l->res);
    l->err = errno;
    lookup_release(l); /* before the future completes: the caller still
                          holds its reference if it is waiting */
    return NULL;
}

/* A fiber's lookup: on the executor, awaited until deadline. */
static int lookup_in_executor(const char *host, const char *port,
                              const struct addrinfo *hints, int64_t deadline,
                              struct addrinfo **res)
{
    size_t hl = host ? strlen(host) + 1 : 0, pl = strlen(port) + 1;
    struct lookup *l = weft__alloc(sizeof *l + hl + pl);
    if (l == NULL)
        return -ENOMEM;
    atomic_init(&l->refs, 2);
    l->size = sizeof *l + hl + pl;
    l->gai = EAI_FAIL;
    l->err = 0;
    l->hints = *hints;
    l->res = NULL;
    l->host = host ? memcpy(l->names, host, hl) : NULL;
    l->port = memcpy(l->names + hl, port, pl);
    weft_future *f = weft_run_in_executor(NULL, lookup_job, l);
    if (f == NULL) {
        int err = errno;
        weft__free(l, l->size);
        return -err;
    }
    /* weft_wait cancels nothing: a job that has started is not stopped,
     * and one that has not must still run, to drop its reference. */
    int rc = weft_wait(&f, 1, WEFT_ALL_COMPLETED, weft__ms_until(deadline));
    weft_future_release(f);
    if (rc == 1) {
        rc = gai_errno(l->gai, l->err);
        if (rc == 0) {
            *res = l->res;
            l->res = NULL;
        }
    } else if (rc == 0) {
        rc = -ETIMEDOUT;
    }
    lookup_release(l);
    return rc;
}

/* Resolves host:port for TCP (passive: to listen). 0 and *res, or -errno. */
static int resolve(const char *host, const char *port, bool passive,
                   int64_t deadline, struct addrinfo **res)
{
    if (port == NULL || *port == '\0')
        return -EINVAL;
    if (host != NULL && (*host == '\0' || strcmp(host, "*") == 0))
        host = NULL; /* every local address */
    /* glibc wraps numeric ports above 65535: refuse them. */
    if (strspn(port, "0123456789") == strlen(port) &&
        (strlen(port) > 5 || atoi(port) > 65535))
        return -EINVAL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP,
                             .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo numeric = hints;
    numeric.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &numeric, res);
    if (gai != EAI_NONAME)
        return gai_errno(gai, errno);
    /* A name: the resolver may block. */
    if (weft_in_fiber())
        return lookup_in_executor(host, port, &hints, deadline, res);
    if (weft__loop_tls != NULL)
        return -EDEADLK; /* a loop's thread outside its fibers */
    return gai_errno(getaddrinfo(host, port, &hints, res), errno);
}

/* What to do with a fresh socket for address a: 0, or -errno. */
typedef int use_fn(int fd, const struct addrinfo *a, int64_t deadline,
                   const void *arg);

/*
 * Resolves host:port and gives a fresh socket (non-blocking,
 * close-on-exec) for each address in turn to use(), until one succeeds:
 * that socket, or the last error. A timeout or a cancellation ends the
 * tries: the time is up for every address.
 */
static int first_address(const char *host, const char *port, bool passive,
                         int64_t deadline, use_fn *use, const void *arg)
{
    struct addrinfo *res;
    int rc = resolve(host, port, passive, deadline, &res);
    if (rc < 0)
        return rc;
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = weft__socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            rc = fd;
            continue;
        }
        rc = use(fd, a, deadline, arg);
        if (rc == 0) {
            freeaddrinfo(res);
            return fd;
        }
        weft_close(fd);
        if (rc == -ETIMEDOUT || rc == -ECANCELED)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

struct listen_opts {
    int backlog;
    unsigned flags;
};

static int use_to_listen(int fd, const struct addrinfo *a, int64_t deadline,
                         const void *arg)
{
    (void)deadline;
    const struct listen_opts *o = arg;
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
        return -errno;
#ifdef SO_REUSEPORT
    if ((o->flags & WEFT_LISTEN_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0)
        return -errno;
#else
    if (o->flags & WEFT_LISTEN_REUSEPORT)
        return -EOPNOTSUPP;
#endif
    if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 ||
        listen(fd, o->backlog > 0 ? o->backlog : SOMAXCONN) < 0)
        return -errno;
    weft__fd_fresh(fd, WEFT__FD_STREAM, true); /* weft__socket: non-blocking */
    return 0;
}

static int use_to_connect(int fd, const struct addrinfo *a, int64_t deadline,
                          const void *arg)
{
    (void)arg;
    int rc = weft__connect(fd, a->ai_addr, a->ai_addrlen, deadline);
    if (rc == 0) {
        int on = 1; /* requests and replies go out at once */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    return rc;
}

int weft_tcp_listen_ex(const char *host, const char *port, int backlog,
                       unsigned flags)
{
    if (flags & ~(unsigned)WEFT_LISTEN_REUSEPORT)
        return -EINVAL;
    struct listen_opts o = {backlog, flags};
    return first_address(host, port, true, -1, use_to_listen, &o);
}

int weft_tcp_listen(const char *host, const char *port, int backlog)
{
    return weft_tcp_listen_ex(host, port, backlog, 0);
}

int weft_tcp_connect(const char *host, const char *port, int64_t timeout_ms)
{
    if (host == NULL)
        return -EINVAL;
    return first_address(host, port, false, weft__wait_deadline(timeout_ms),
                         use_to_connect, NULL);
}
