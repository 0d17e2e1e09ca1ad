/* SPDX-License-Identifier: MIT */
/*
 * tests/arch/smoke.c: the whole runtime on a new port, with nothing but
 * libc. The conformance suite (conform.c) proves the switch alone; this
 * proves what is built on it, for a CPU where libcheck cannot be
 * installed (riscv64 under qemu-user, say): fibers that spawn, sleep and
 * yield, socket IO between fibers, a plain thread submitting work into a
 * loop and blocking on the result, and a channel between fibers.
 *
 * Written against include/weft.h only, linked with libweft.a. Prints one
 * line per step and PASS at the end; on the first failure it says what
 * failed and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "smoke: FAIL at %s:%d: ", __FILE__, __LINE__);         \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        exit(1);                                                               \
    } while (0)
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            FAIL(__VA_ARGS__);                                                 \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- spawn, sleep, yield ---- */

enum { SLEEPERS = 50, YIELDERS = 100, YIELDS = 100 };

static void *sleeper(void *arg)
{
    int rc = weft_sleep(20);
    if (rc != 0)
        return WEFT_ERR_PTR(rc);
    return (char *)arg + 1;
}

static long yields_done;

static void *yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < YIELDS; i++) {
        int rc = weft_yield();
        if (rc != 0)
            return WEFT_ERR_PTR(rc);
        yields_done++; /* one loop thread: no race */
    }
    return NULL;
}

static void spawn_sleep_yield(void)
{
    weft_future *fs[SLEEPERS];
    void *results[SLEEPERS];
    int64_t t0 = now_ms();
    for (intptr_t i = 0; i < SLEEPERS; i++) {
        fs[i] = weft_spawn(NULL, sleeper, (void *)i);
        CHECK(fs[i] != NULL, "weft_spawn: %s", strerror(errno));
    }
    int rc = weft_gather(fs, SLEEPERS, results, NULL, WEFT_GATHER_ALL);
    int64_t took = now_ms() - t0;
    CHECK(rc == 0, "weft_gather of sleepers: %d", rc);
    for (intptr_t i = 0; i < SLEEPERS; i++) {
        CHECK(results[i] == (void *)(i + 1), "sleeper %ld returned %p", (long)i,
              results[i]);
        weft_future_release(fs[i]);
    }
    /* Concurrent, not one after another: about 20 ms, far below 50 * 20. */
    CHECK(took >= 19 && took < 500, "%d sleeps of 20 ms took %lld ms", SLEEPERS,
          (long long)took);

    weft_future *ys[YIELDERS];
    for (int i = 0; i < YIELDERS; i++) {
        ys[i] = weft_spawn(NULL, yielder, NULL);
        CHECK(ys[i] != NULL, "weft_spawn: %s", strerror(errno));
    }
    rc = weft_gather(ys, YIELDERS, NULL, NULL, WEFT_GATHER_ALL);
    CHECK(rc == 0, "weft_gather of yielders: %d", rc);
    CHECK(yields_done == (long)YIELDERS * YIELDS, "%ld yields, not %ld",
          yields_done, (long)YIELDERS * YIELDS);
    for (int i = 0; i < YIELDERS; i++)
        weft_future_release(ys[i]);
    printf("ok - %d fibers sleep concurrently (%lld ms), %d yield %d times\n",
           SLEEPERS, (long long)took, YIELDERS, YIELDS);
}

/* ---- socket IO between fibers ---- */

enum { IO_BYTES = 1 << 20, IO_CHUNK = 7919 };

static unsigned char byte_at(size_t i)
{
    return (unsigned char)(i * 131 + (i >> 9));
}

static void *writer(void *arg)
{
    int fd = *(int *)arg;
    unsigned char buf[IO_CHUNK];
    for (size_t off = 0; off < IO_BYTES;) {
        size_t n = IO_BYTES - off < IO_CHUNK ? IO_BYTES - off : IO_CHUNK;
        for (size_t i = 0; i < n; i++)
            buf[i] = byte_at(off + i);
        ssize_t w = weft_write(fd, buf, n, 10000);
        if (w < 0)
            return WEFT_ERR_PTR(w);
        off += n;
    }
    return NULL;
}

static void *reader(void *arg)
{
    int fd = *(int *)arg;
    unsigned char buf[4096];
    size_t off = 0;
    while (off < IO_BYTES) {
        ssize_t r = weft_read(fd, buf, sizeof buf, 10000);
        if (r < 0)
            return WEFT_ERR_PTR(r);
        if (r == 0)
            return WEFT_ERR_PTR(-EPIPE); /* ended early */
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != byte_at(off + (size_t)i))
                return WEFT_ERR_PTR(-EILSEQ);
        off += (size_t)r;
    }
    return (void *)off;
}

static void socket_io(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair: %s",
          strerror(errno));
    weft_future *fs[2] = {weft_spawn(NULL, reader, &sv[0]),
                          weft_spawn(NULL, writer, &sv[1])};
    CHECK(fs[0] != NULL && fs[1] != NULL, "weft_spawn: %s", strerror(errno));
    void *results[2];
    int errors[2];
    int rc = weft_gather(fs, 2, results, errors, WEFT_GATHER_ALL);
    CHECK(rc == 0, "socket IO: reader %d (%s), writer %d (%s)", errors[0],
          strerror(-errors[0]), errors[1], strerror(-errors[1]));
    CHECK(results[0] == (void *)(uintptr_t)IO_BYTES, "reader got %p bytes",
          results[0]);
    weft_future_release(fs[0]);
    weft_future_release(fs[1]);
    CHECK(weft_close(sv[0]) == 0 && weft_close(sv[1]) == 0, "weft_close");
    printf("ok - a megabyte between two fibers over a socketpair, in order\n");
}

/* ---- a plain thread submits into the loop ---- */

struct submitter {
    weft_loop *loop;
    weft_future *done; /* a promise the thread resolves with its result */
};

static void *triple(void *arg)
{
    int rc = weft_sleep(1); /* suspend once on the target loop */
    if (rc != 0)
        return WEFT_ERR_PTR(rc);
    return (void *)((uintptr_t)arg * 3);
}

static void *submit_thread(void *arg)
{
    struct submitter *s = arg;
    uintptr_t sum = 0;
    for (uintptr_t i = 1; i <= 100; i++) {
        weft_future *f = weft_submit(s->loop, triple, (void *)i);
        if (f == NULL) {
            weft_future_fail(s->done, -errno);
            return NULL;
        }
        void *out;
        int rc = weft_await(f, &out); /* a plain thread: blocks */
        weft_future_release(f);
        if (rc != 0) {
            weft_future_fail(s->done, rc);
            return NULL;
        }
        sum += (uintptr_t)out;
    }
    weft_future_resolve(s->done, (void *)sum);
    return NULL;
}

static void submit_from_a_thread(void)
{
    struct submitter s = {weft_loop_current(), weft_future_new()};
    CHECK(s.loop != NULL && s.done != NULL, "no loop or promise");
    pthread_t th;
    CHECK(pthread_create(&th, NULL, submit_thread, &s) == 0, "pthread_create");
    void *sum;
    int rc = weft_await(s.done, &sum); /* the loop runs the submissions */
    CHECK(rc == 0, "submissions from a thread failed: %d (%s)", rc,
          strerror(-rc));
    CHECK(sum == (void *)(uintptr_t)(3 * 5050), "sum %lu, not %d",
          (unsigned long)(uintptr_t)sum, 3 * 5050);
    pthread_join(th, NULL);
    weft_future_release(s.done);
    printf("ok - a plain thread submits 100 fibers into the loop and awaits "
           "each\n");
}

/* ---- channel ---- */

enum { ITEMS = 10000 };

static void *producer(void *arg)
{
    weft_chan *ch = arg;
    for (uintptr_t i = 1; i <= ITEMS; i++) {
        int rc = weft_chan_send(ch, (void *)i, 10000);
        if (rc != 0)
            return WEFT_ERR_PTR(rc);
    }
    int rc = weft_chan_close(ch);
    return rc != 0 ? WEFT_ERR_PTR(rc) : NULL;
}

static void *consumer(void *arg)
{
    weft_chan *ch = arg;
    uintptr_t sum = 0, n = 0;
    for (;;) {
        void *item;
        int rc = weft_chan_recv(ch, &item, 10000);
        if (rc == -EPIPE)
            break; /* closed and drained */
        if (rc != 0)
            return WEFT_ERR_PTR(rc);
        if ((uintptr_t)item != n + 1)
            return WEFT_ERR_PTR(-EILSEQ); /* out of order */
        n++;
        sum += (uintptr_t)item;
    }
    return n == ITEMS ? (void *)sum : WEFT_ERR_PTR(-ENODATA);
}

static void channel(size_t capacity)
{
    weft_chan *ch = weft_chan_new(capacity);
    CHECK(ch != NULL, "weft_chan_new: %s", strerror(errno));
    weft_future *fs[2] = {weft_spawn(NULL, consumer, ch),
                          weft_spawn(NULL, producer, ch)};
    CHECK(fs[0] != NULL && fs[1] != NULL, "weft_spawn: %s", strerror(errno));
    void *results[2];
    int errors[2];
    int rc = weft_gather(fs, 2, results, errors, WEFT_GATHER_ALL);
    CHECK(rc == 0, "channel (capacity %zu): consumer %d, producer %d", capacity,
          errors[0], errors[1]);
    uintptr_t want = (uintptr_t)ITEMS * (ITEMS + 1) / 2;
    CHECK(results[0] == (void *)want, "channel sum %p", results[0]);
    weft_future_release(fs[0]);
    weft_future_release(fs[1]);
    CHECK(weft_chan_free(ch) == 0, "weft_chan_free");
    printf("ok - %d items in order through a channel of capacity %zu\n", ITEMS,
           capacity);
}

static void *smoke_main(void *arg)
{
    (void)arg;
    CHECK(weft_in_fiber(), "weft_run's main is not a fiber");
    spawn_sleep_yield();
    socket_io();
    submit_from_a_thread();
    channel(0);
    channel(16);
    return (void *)(uintptr_t)0x600d;
}

int main(void)
{
    void *result = NULL;
    int rc = weft_run(smoke_main, NULL, &result);
    CHECK(rc == 0, "weft_run: %d (%s)", rc, strerror(-rc));
    CHECK(result == (void *)(uintptr_t)0x600d, "main returned %p", result);
    printf("PASS: smoke (%s switch)\n",
           weft_fpenv() ? "FP-environment" : "default");
    return 0;
}
