/* SPDX-License-Identifier: MIT */
/*
 * examples/echo: a TCP echo server on weft, one fiber per connection.
 *
 *     examples/echo --port P [--host H] [--loops N]
 *
 * N loops (default: one per CPU) on N threads each accept on their own
 * listening socket; the sockets share the port (SO_REUSEPORT), so the
 * kernel spreads connections over the loops. SIGINT or SIGTERM stops it
 * gracefully: every loop stops accepting, every connection echoes what
 * its client sent until the client has been quiet for 200 ms (or closes),
 * what still runs after the grace period (5 s) is cancelled; then it
 * exits 0.
 *
 * Try it: examples/echo --port 7000, then `nc 127.0.0.1 7000`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

#include "common.h"

#define GRACE_MS 5000 /* stopping: what may still run after the signal */
#define DRAIN_MS 200  /* stopping: a quiet connection is done */
#define IDLE_MS 60000 /* a connection quiet this long is closed */

/* A connection, on its loop's list, for the stop to find. */
struct conn {
    struct conn *prev, *next;
    weft_future *fiber;
};

/* One loop's server: touched by that loop's fibers only. */
struct server {
    weft_loop *loop;
    int lfd;
    bool stopping;      /* no more accepts; connections drain */
    bool hard_stop;     /* the grace period is over */
    struct conn *conns; /* live connections */
    int nconns;
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
static int send_all(struct server *s, int fd, const char *p, size_t n)
{
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
    char buf[16384];
    for (;;) {
        ssize_t n = weft_read(a.fd, buf, sizeof buf,
                              a.srv->stopping ? DRAIN_MS : IDLE_MS);
        if (draining(a.srv, n))
            continue; /* nothing was read: wait again, shorter */
        if (n <= 0)
            break; /* end of file, idle, reset, or the stop's end */
        if (send_all(a.srv, a.fd, buf, (size_t)n) < 0)
            break;
    }
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
    fprintf(stderr, "echo: %s, stopping\n", strsignal(sig));
    weft_future *done[sd->n];
    for (int i = 0; i < sd->n; i++)
        done[i] =
            weft_submit(sd->servers[i].loop, stop_server, &sd->servers[i]);
    for (int i = 0; i < sd->n; i++)
        if (done[i] != NULL) {
            weft_await(done[i], NULL);
            weft_future_release(done[i]);
        }
    return NULL;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_options(argc, argv, "echo", &o);
    if (rc >= 0)
        return rc;
    /* Before any thread: every thread inherits the mask. */
    int sigs[] = {SIGINT, SIGTERM};
    weft_signal_block(sigs, 2);

    struct server *servers = calloc((size_t)o.loops, sizeof *servers);
    if (servers == NULL)
        return 1;
    if (listen_all(&o, "echo", servers, sizeof *servers,
                   offsetof(struct server, lfd)) < 0)
        return 1;
    weft_loop *first = weft_loop_new();
    if (first == NULL) {
        perror("echo: weft_loop_new");
        return 1;
    }
    servers[0].loop = first;
    for (int i = 1; i < o.loops; i++) {
        int err = weft_loop_start_thread(&servers[i].loop);
        if (err < 0) {
            fprintf(stderr, "echo: weft_loop_start_thread: %s\n",
                    strerror(-err));
            return 1;
        }
    }
    for (int i = 0; i < o.loops; i++) {
        weft_future *f = weft_submit(servers[i].loop, acceptor, &servers[i]);
        if (f == NULL) {
            perror("echo: weft_submit");
            return 1;
        }
        weft_future_release(f);
    }
    struct shutdown sd = {servers, o.loops};
    weft_go(first, on_signal, &sd);
    printf("echo: listening on %s port %s with %d loop%s\n", o.host, o.port,
           o.loops, o.loops == 1 ? "" : "s");
    fflush(stdout);
    rc = weft_loop_run(first);
    for (int i = 1; i < o.loops; i++)
        weft_loop_join_thread(servers[i].loop);
    weft_loop_free(first);
    free(servers);
    if (rc < 0) {
        fprintf(stderr, "echo: weft_loop_run: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}
