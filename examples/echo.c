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
 * exits 0 (common.h).
 *
 * Try it: examples/echo --port 7000, then `nc 127.0.0.1 7000`.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include <weft.h>

#include "common.h"

/* One connection: what comes in goes back out. */
static void echo(struct server *s, int fd)
{
    s->served++;
    char buf[16384];
    for (;;) {
        ssize_t n =
            weft_read(fd, buf, sizeof buf, s->stopping ? DRAIN_MS : IDLE_MS);
        if (draining(s, n))
            continue; /* nothing was read: wait again, shorter */
        if (n <= 0)
            break; /* end of file, idle, reset, or the stop's end */
        if (send_all(s, fd, buf, (size_t)n) < 0)
            break;
    }
}

int main(int argc, char **argv)
{
    struct options o;
    return serve(argc, argv, "echo", echo, &o);
}
