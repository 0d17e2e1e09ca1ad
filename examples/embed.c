/* SPDX-License-Identifier: MIT */
/*
 * examples/embed: weft inside a program that has an event loop of its own.
 *
 * The host here is a plain poll() loop that owns standard input and a
 * once-a-second tick. weft's loop is one more descriptor in its poll set
 * (weft_loop_fd): when it polls readable, the host calls
 * weft_loop_run_once(loop, 0), which runs what is ready and returns.
 * Inside, fibers do blocking-style work: one echoes each line typed on
 * standard input back after a weft_sleep (the host keeps ticking
 * meanwhile), another counts seconds with weft_sleep. End of input (or
 * "quit") ends the program; so do SIGINT and SIGTERM, which the host
 * takes from a fiber with weft_signal_wait.
 *
 * Try it: examples/embed, type lines, then ^D.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

static bool done; /* set by the fibers, read by the host: one thread */

/* A fiber: reads lines that the host hands over through a channel, and
 * answers each after a pause, without blocking the host's loop. */
static void *answers(void *arg)
{
    weft_chan *lines = arg;
    void *item;
    while (weft_chan_recv(lines, &item, -1) == 0) {
        char *line = item;
        weft_sleep(200); /* slow work, as far as the host can tell */
        printf("weft: you said '%s'\n", line);
        fflush(stdout);
        bool quit = strcmp(line, "quit") == 0;
        free(line);
        if (quit)
            break;
    }
    done = true;
    return NULL;
}

static void *counts(void *arg)
{
    (void)arg;
    for (int s = 1; !done; s++) {
        if (weft_sleep(1000) < 0)
            break;
        if (!done)
            fprintf(stderr, "weft: %d s in fibers\n", s);
    }
    return NULL;
}

static void *on_signal(void *arg)
{
    (void)arg;
    int sigs[] = {SIGINT, SIGTERM};
    if (weft_signal_wait(sigs, 2, -1) > 0)
        done = true;
    return NULL;
}

int main(void)
{
    int sigs[] = {SIGINT, SIGTERM};
    weft_signal_block(sigs, 2);
    weft_loop *loop = weft_loop_new();
    weft_chan *lines = weft_chan_new(16);
    if (loop == NULL || lines == NULL) {
        perror("embed");
        return 1;
    }
    weft_go(loop, answers, lines);
    weft_future *counter = weft_spawn(loop, counts, NULL);
    weft_future *sig = weft_spawn(loop, on_signal, NULL);
    int wfd = weft_loop_fd(loop);
    if (wfd < 0) {
        fprintf(stderr, "embed: weft_loop_fd: %s\n", strerror(-wfd));
        return 1;
    }
    printf("embed: type lines (\"quit\" or end of input to stop)\n");
    fflush(stdout);

    /* The host's own loop: its descriptors, plus weft's. */
    char buf[4096];
    size_t have = 0;
    bool input_open = true;
    int ticks = 0;
    while (!done) {
        struct pollfd p[2] = {{.fd = input_open ? 0 : -1, .events = POLLIN},
                              {.fd = wfd, .events = POLLIN}};
        int n = poll(p, 2, 500);
        if (n < 0 && errno != EINTR) {
            perror("embed: poll");
            return 1;
        }
        if (n == 0 && ++ticks % 2 == 0)
            fprintf(stderr, "host: tick\n");
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(0, buf + have, sizeof buf - 1 - have);
            if (r <= 0) {
                input_open = false;
                weft_chan_close(lines); /* answers ends after the rest */
            } else {
                have += (size_t)r;
                char *nl;
                while ((nl = memchr(buf, '\n', have)) != NULL) {
                    *nl = '\0';
                    char *line = strdup(buf);
                    /* Any thread may send; a full channel would wait:
                     * from the host, try without waiting. */
                    if (line != NULL && weft_chan_send(lines, line, 0) != 0)
                        free(line);
                    have -= (size_t)(nl + 1 - buf);
                    memmove(buf, nl + 1, have);
                }
                if (have == sizeof buf - 1)
                    have = 0; /* a line too long: dropped */
            }
        }
        if (p[1].revents & POLLIN)
            weft_loop_run_once(loop, 0);
    }
    /* Let the fibers see done and end: cancel the waits that would not. */
    weft_cancel(sig);
    weft_cancel(counter);
    while (weft_loop_run_once(loop, 10) > 0 || !weft_future_done(counter) ||
           !weft_future_done(sig))
        ;
    weft_future_release(counter);
    weft_future_release(sig);
    weft_chan_close(lines);
    weft_loop_free(loop);
    weft_chan_free(lines);
    printf("embed: done\n");
    return 0;
}
