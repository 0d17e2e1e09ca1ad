/* SPDX-License-Identifier: MIT */
/*
 * What the example servers share: their command line; one loop per
 * thread, each with its own listening socket on the shared port; a fiber
 * per connection; and the graceful stop on SIGINT or SIGTERM: every loop
 * stops accepting, every connection goes on until its client has been
 * quiet for DRAIN_MS (what it sent is answered), what still runs after
 * GRACE_MS is cancelled, and the process exits 0. Header-only, to keep
 * each example one file plus this.
 */
#ifndef WEFT_EXAMPLES_COMMON_H
#define WEFT_EXAMPLES_COMMON_H

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

struct options {
    const char *host; /* 127.0.0.1 unless --host */
    char port[16];    /* the port; "0" picks one, then holds it */
    int loops;        /* --loops, default one per CPU */
    const char *root; /* --root (http only) */
};

static void usage(FILE *to, const char *name, bool with_root)
{
    fprintf(to,
            "usage: examples/%s --port P [--host H] [--loops N]%s\n"
            "  --port P   TCP port to listen on (0: any free one)\n"
            "  --host H   address to listen on (default 127.0.0.1)\n"
            "  --loops N  event loops, one thread each (default: one per "
            "CPU)\n"
            "%s"
            "  --help     this text\n",
            name, with_root ? " [--root DIR]" : "",
            with_root ? "  --root DIR directory of static files (default: "
                        "none)\n"
                      : "");
}

/* Parses argv into o. -1 to go on; otherwise the exit status (0 after
 * --help, 2 for a bad command line, with a message). */
static int parse_options(int argc, char **argv, const char *name,
                         struct options *o)
{
    bool with_root = strcmp(name, "http") == 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (struct options){.host = "127.0.0.1",
                          .loops = cpus > 0 ? (int)cpus : 1};
    bool have_port = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, name, with_root);
            return 0;
        }
        bool takes_value = strcmp(a, "--port") == 0 ||
                           strcmp(a, "--host") == 0 ||
                           strcmp(a, "--loops") == 0 ||
                           (with_root && strcmp(a, "--root") == 0);
        if (!takes_value) {
            fprintf(stderr, "%s: unknown option '%s' (try --help)\n", name, a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", name, a);
            return 2;
        }
        const char *v = argv[++i];
        char *end;
        if (strcmp(a, "--port") == 0) {
            long p = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || p < 0 || p > 65535) {
                fprintf(stderr, "%s: --port: not a port: '%s'\n", name, v);
                return 2;
            }
            snprintf(o->port, sizeof o->port, "%ld", p);
            have_port = true;
        } else if (strcmp(a, "--host") == 0) {
            o->host = v;
        } else if (strcmp(a, "--loops") == 0) {
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > 1024) {
                fprintf(stderr, "%s: --loops: not 1 to 1024: '%s'\n", name, v);
                return 2;
            }
            o->loops = (int)n;
        } else {
            o->root = v;
        }
    }
    if (!have_port) {
        fprintf(stderr, "%s: --port is required (try --help)\n", name);
        return 2;
    }
    return -1;
}

/* ---- the server ---- */

#define GRACE_MS 5000 /* stopping: what may still run after the signal */
#define DRAIN_MS 200  /* stopping: a quiet connection is done */
#define IDLE_MS 60000 /* a connection quiet this long is closed */

/* A connection, on its loop's list, for the stop to find. */
struct conn {
    struct conn *prev, *next;
    weft_future *fiber;
};

struct server;
/* An example's work on one connection, in its own fiber; fd is closed
 * after it returns. */
typedef void conn_fn(struct server *s, int fd);

/* One loop's server: touched by that loop's fibers only. */
struct server {
    weft_loop *loop;
    int lfd;
    conn_fn *handle;
    const struct options *opts;
    bool stopping;      /* no more accepts; connections drain */
    bool hard_stop;     /* the grace period is over */
    struct conn *conns; /* live connections */
    int nconns;
    unsigned long served; /* requests answered (echo: connections) */
};

static void conn_add(struct server *s, struct conn *c)
{
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
}

static void conn_del(struct server *s, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
}

struct conn_arg {
    struct server *srv;
    int fd;
};

/* Stopping, a connection is cancelled out of its wait (not closed): it
 * goes on echoing until the client has been quiet for DRAIN_MS, so what
 * is in flight comes back whole. */
static bool draining(const struct server *s, ssize_t rc)
{
    return rc == -ECANCELED && s->stopping && !s->hard_stop;
}

/* Sends all of buf. Written with send and weft_wait_fd rather than
 * weft_write so that a cancellation (the stop, asking to drain) is not an
 * error: we know exactly what went out, and go on. */
static int send_all(struct server *s, int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = weft_wait_fd(fd, WEFT_WRITABLE, IDLE_MS);
        if (rc < 0 && !draining(s, rc))
            return rc;
    }
    return 0;
}

static void *connection(void *arg)
{
    struct conn_arg a = *(struct conn_arg *)arg;
    free(arg);
    struct conn c = {.fiber = weft_self()};
    conn_add(a.srv, &c);
    a.srv->handle(a.srv, a.fd);
    conn_del(a.srv, &c);
    weft_close(a.fd);
    return NULL;
}

static void *acceptor(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int fd = weft_accept_ex(s->lfd, NULL, NULL, -1, WEFT_ACCEPT_NODELAY);
        if (fd < 0) {
            if (s->stopping || fd == -ECANCELED || fd == -EBADF)
                break;
            continue; /* a connection that died in the queue */
        }
        struct conn_arg *a = malloc(sizeof *a);
        if (a == NULL) {
            close(fd);
            continue;
        }
        *a = (struct conn_arg){s, fd};
        if (weft_go(NULL, connection, a) < 0) {
            free(a);
            close(fd);
        }
    }
    return NULL;
}

/* On the server's loop: stop accepting, let every connection drain, and
 * cancel what is left after the grace period. */
static void *stop_server(void *arg)
{
    struct server *s = arg;
    s->stopping = true;
    weft_close(s->lfd); /* the acceptor wakes with -EBADF */
    for (struct conn *c = s->conns; c != NULL; c = c->next)
        weft_cancel(c->fiber); /* out of a long wait, into draining */
    for (int waited = 0; s->nconns > 0 && waited < GRACE_MS; waited += 10)
        weft_sleep(10);
    s->hard_stop = true;
    for (struct conn *c = s->conns; c != NULL; c = c->next)
        weft_cancel(c->fiber);
    return NULL;
}

struct shutdown {
    struct server *servers;
    int n;
    const char *name;
};

/* On the first loop: waits for SIGINT or SIGTERM, then stops every
 * server on its own loop and waits until all have stopped. */
static void *on_signal(void *arg)
{
    struct shutdown *sd = arg;
    int sigs[] = {SIGINT, SIGTERM};
    int sig = weft_signal_wait(sigs, 2, -1);
    if (sig < 0)
        return NULL;
    fprintf(stderr, "%s: %s, stopping\n", sd->name, strsignal(sig));
    weft_future *done[sd->n];
    for (int i = 0; i < sd->n; i++)
        done[i] =
            weft_submit(sd->servers[i].loop, stop_server, &sd->servers[i]);
    for (int i = 0; i < sd->n; i++)
        if (done[i] != NULL) {
            weft_await(done[i], NULL);
            weft_future_release(done[i]);
        }
    /* What each loop did: with --loops N, the kernel's spread. */
    for (int i = 0; i < sd->n; i++)
        fprintf(stderr, "%s: loop %d of %d served %lu\n", sd->name, i + 1,
                sd->n, sd->servers[i].served);
    return NULL;
}

/* One listening socket per loop, all on o->port (SO_REUSEPORT), in each
 * server's lfd. Port 0 picks a free port for the first; o->port then
 * holds it. 0, or -1 with a message. */
static int listen_all(struct options *o, const char *name,
                      struct server *servers)
{
    for (int i = 0; i < o->loops; i++) {
        int fd = weft_tcp_listen_ex(o->host, o->port, 0, WEFT_LISTEN_REUSEPORT);
        if (fd < 0) {
            fprintf(stderr, "%s: cannot listen on %s port %s: %s\n", name,
                    o->host, o->port, strerror(-fd));
            return -1;
        }
        if (i == 0 && strcmp(o->port, "0") == 0) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
                int p = ss.ss_family == AF_INET6
                            ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
                snprintf(o->port, sizeof o->port, "%d", p);
            }
        }
        servers[i].lfd = fd;
    }
    return 0;
}

/* The whole of an example server's main: the command line (into *o), one
 * loop per --loops on its own thread with its own listening socket, a
 * fiber per connection running handle (ctx in each server), and the
 * graceful stop on SIGINT/SIGTERM. Returns the exit status. */
static int serve(int argc, char **argv, const char *name, conn_fn *handle,
                 struct options *o)
{
    int rc = parse_options(argc, argv, name, o);
    if (rc >= 0)
        return rc;
    /* Before any thread: every thread inherits the mask. */
    int sigs[] = {SIGINT, SIGTERM};
    weft_signal_block(sigs, 2);

    struct server *servers = calloc((size_t)o->loops, sizeof *servers);
    if (servers == NULL)
        return 1;
    if (listen_all(o, name, servers) < 0)
        return 1;
    weft_loop *first = weft_loop_new();
    if (first == NULL) {
        fprintf(stderr, "%s: weft_loop_new: %s\n", name, strerror(errno));
        return 1;
    }
    for (int i = 0; i < o->loops; i++) {
        servers[i].handle = handle;
        servers[i].opts = o;
        int err = i == 0 ? 0 : weft_loop_start_thread(&servers[i].loop);
        if (i == 0)
            servers[i].loop = first;
        if (err < 0) {
            fprintf(stderr, "%s: weft_loop_start_thread: %s\n", name,
                    strerror(-err));
            return 1;
        }
    }
    for (int i = 0; i < o->loops; i++) {
        weft_future *f = weft_submit(servers[i].loop, acceptor, &servers[i]);
        if (f == NULL) {
            fprintf(stderr, "%s: weft_submit: %s\n", name, strerror(errno));
            return 1;
        }
        weft_future_release(f);
    }
    struct shutdown sd = {servers, o->loops, name};
    weft_go(first, on_signal, &sd);
    printf("%s: listening on %s port %s with %d loop%s\n", name, o->host,
           o->port, o->loops, o->loops == 1 ? "" : "s");
    fflush(stdout);
    rc = weft_loop_run(first);
    for (int i = 1; i < o->loops; i++)
        weft_loop_join_thread(servers[i].loop);
    weft_loop_free(first);
    free(servers);
    if (rc < 0) {
        fprintf(stderr, "%s: weft_loop_run: %s\n", name, strerror(-rc));
        return 1;
    }
    return 0;
}

#endif /* WEFT_EXAMPLES_COMMON_H */
