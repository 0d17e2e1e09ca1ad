/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target (clang -fsanitize=fuzzer,address): the input is a
 * program of fiber operations, run on a fresh loop. Each byte is an
 * opcode; fibers read the next bytes as their own script. Checked after
 * every run, besides what ASan and UBSan catch:
 *   - weft_loop_run returns 0 or -EDEADLK, never anything else;
 *   - after weft_loop_free, every task future is done;
 *   - every fiber that started also ran to its end;
 *   - a channel delivers exactly the items that were accepted: none lost,
 *     none twice, none made up;
 *   - every submission to a loop in another thread (which the program may
 *     stop at any time, and which is joined at the end) runs and finishes,
 *     cancelled or not, and its future is done after the join;
 *   - a descriptor closed with plain close() and its number reused for a
 *     new socket still wakes a reader of the new socket.
 * `make fuzz` runs it for FUZZ_TIME seconds (60 in CI).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft.h"

#define MAX_FUTURES 64
#define MAX_STEPS 64

struct world {
    const uint8_t *data;
    size_t len, pos;
    weft_loop *loop;
    weft_future *fs[MAX_FUTURES];
    int nfs;
    weft_chan *ch;
    weft_mutex *mu;
    weft_event *ev;
    long started, finished;
    uintptr_t next_item;                    /* a new number for each send */
    uint8_t accepted[4096], received[4096]; /* per item number */
    int timers;
    weft_loop *tl; /* a loop in its own thread, made on first use */
    weft_future *xfs[MAX_FUTURES]; /* submissions to it */
    int nxfs;
    int sp[2];    /* a socket pair, closed and remade by the program */
    int fdwaits;  /* fibers inside weft_wait_fd on sp[0] */
    bool reusing; /* a fiber is remaking sp */
};

static atomic_long xstarted, xfinished;

static void *xfiber(void *arg)
{
    atomic_fetch_add(&xstarted, 1);
    weft_sleep((intptr_t)arg % 3); /* -ECANCELED if cancelled or joined */
    atomic_fetch_add(&xfinished, 1);
    return NULL;
}

static struct world *W;

static int next_byte(void)
{
    if (W->pos >= W->len)
        return -1;
    return W->data[W->pos++];
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz invariant broken: %s\n", what);
    abort();
}

static void *fiber(void *arg);

static void write_byte(void *arg)
{
    (void)arg;
    if (write(W->sp[1], "x", 1) != 1)
        fail("write to the new socket");
}

/* Closes sp[0] (plain close() when no fiber waits on it) and makes a new
 * pair, which likely takes the same numbers; a reader of the new socket
 * must wake when a byte arrives. */
static void reuse_descriptors(int k)
{
    if (W->reusing)
        return;
    W->reusing = true;
    if (W->fdwaits == 0)
        close(W->sp[0]);
    else
        weft_close(W->sp[0]); /* wakes them with -EBADF */
    close(W->sp[1]);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, W->sp) < 0)
        fail("socketpair");
    if (weft_call_later(W->loop, k % 2, write_byte, NULL) == NULL)
        fail("call_later");
    char c;
    ssize_t n = weft_read(W->sp[0], &c, 1, 5000);
    if (n != 1 && n != -ECANCELED)
        fail("a reused descriptor did not wake its reader");
    W->reusing = false;
}

/* Cross-thread operations, on a loop in its own thread. */
static int cross_thread(int k)
{
    int rc = 0;
    switch (k % 6) {
    case 0: /* submit */
    case 1: /* submit, and cancel at once (racing the fiber's creation) */
        if (W->nxfs >= MAX_FUTURES)
            break;
        if (W->tl == NULL && weft_loop_start_thread(&W->tl) != 0)
            fail("start_thread");
        weft_future *f = weft_submit(W->tl, xfiber, (void *)(intptr_t)k);
        if (f == NULL)
            fail("submit");
        W->xfs[W->nxfs++] = f;
        if (k % 6 == 1)
            weft_cancel(f);
        break;
    case 2: /* stop it: later submissions wait for the join */
        if (W->tl != NULL)
            weft_loop_stop(W->tl);
        break;
    case 3: /* cancel a fiber before it ever runs: it still runs */
        if (W->nfs < MAX_FUTURES) {
            weft_spawn_opts o = {.stack_size = WEFT_STACK_MIN};
            weft_future *g = weft_spawn_ex(W->loop, fiber, NULL, &o);
            if (g == NULL)
                fail("spawn");
            W->fs[W->nfs++] = g;
            weft_cancel(g);
        }
        break;
    case 4: /* wait on a descriptor that may be closed and reused */
        W->fdwaits++;
        rc = weft_wait_fd(W->sp[0], WEFT_READABLE, k % 3);
        W->fdwaits--;
        break;
    case 5:
        reuse_descriptors(k);
        break;
    }
    return rc;
}

static void on_timer(void *arg)
{
    (void)arg;
    W->timers--;
}

static void spawn_one(void)
{
    if (W->nfs >= MAX_FUTURES)
        return;
    weft_spawn_opts o = {.stack_size = WEFT_STACK_MIN};
    weft_future *f = weft_spawn_ex(W->loop, fiber, NULL, &o);
    if (f == NULL)
        fail("spawn");
    W->fs[W->nfs++] = f;
}

static void *fiber(void *arg)
{
    (void)arg;
    W->started++;
    for (int step = 0; step < MAX_STEPS; step++) {
        int op = next_byte();
        if (op < 0)
            break;
        int rc = 0;
        int k = op >> 4; /* operand */
        switch (op & 15) {
        case 0:
            spawn_one();
            break;
        case 1:
            rc = weft_yield();
            break;
        case 2:
            rc = weft_sleep(k % 3);
            break;
        case 3:
            if (W->nfs > 0) {
                weft_future *f = W->fs[k % W->nfs];
                if (f != weft_self())
                    rc = weft_await_timeout(f, k % 4, NULL);
            }
            break;
        case 4:
            if (W->nfs > 0)
                weft_cancel(W->fs[k % W->nfs]);
            break;
        case 5: {
            uintptr_t item = W->next_item++ % 4096;
            rc = weft_chan_send(W->ch, (void *)item, k % 3);
            if (rc == 0)
                W->accepted[item]++;
            break;
        }
        case 6: {
            void *v;
            rc = weft_chan_recv(W->ch, &v, k % 3);
            if (rc == 0)
                W->received[(uintptr_t)v % 4096]++;
            break;
        }
        case 7:
            if (weft_mutex_lock(W->mu, k % 3) == 0) {
                weft_yield();
                if (weft_mutex_unlock(W->mu) != 0)
                    fail("unlock");
            }
            break;
        case 8:
            rc = weft_event_wait(W->ev, k % 3);
            break;
        case 9:
            weft_event_set(W->ev);
            break;
        case 10:
            weft_event_clear(W->ev);
            break;
        case 11:
            if (weft_call_later(W->loop, k % 3, on_timer, NULL) != NULL)
                W->timers++;
            break;
        case 12:
            if (W->nfs > 1) {
                weft_future *two[2] = {W->fs[k % W->nfs],
                                       W->fs[(k + 1) % W->nfs]};
                if (two[0] != weft_self() && two[1] != weft_self())
                    rc = weft_wait(two, 2, 1 + k % 3, k % 3);
            }
            break;
        case 13:
            W->finished++;
            return WEFT_ERR_PTR(-EIO); /* a failed task */
        case 14:
            rc = cross_thread(k);
            break;
        default:
            break;
        }
        if (rc == -ECANCELED)
            break; /* cancelled: clean up and go */
    }
    W->finished++;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct world w = {.data = data, .len = len};
    W = &w;
    w.loop = weft_loop_new();
    w.ch = weft_chan_new(len % 3); /* unbuffered or small */
    w.mu = weft_mutex_new();
    w.ev = weft_event_new();
    if (!w.loop || !w.ch || !w.mu || !w.ev ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, w.sp) < 0)
        fail("setup");
    atomic_store(&xstarted, 0);
    atomic_store(&xfinished, 0);
    spawn_one();
    spawn_one();
    int rc = weft_loop_run(w.loop);
    if (rc != 0 && rc != -EDEADLK)
        fail("weft_loop_run returned something else");
    weft_loop_free(w.loop); /* cancels whatever is left */
    for (int i = 0; i < w.nfs; i++) {
        if (!weft_future_done(w.fs[i]))
            fail("a task future is pending after weft_loop_free");
        weft_future_release(w.fs[i]);
    }
    if (w.started > w.nfs)
        fail("more fibers started than spawned");
    if (w.finished != w.started)
        fail("a fiber started but never finished");
    if (w.tl != NULL && weft_loop_join_thread(w.tl) != 0)
        fail("join_thread");
    for (int i = 0; i < w.nxfs; i++) {
        if (!weft_future_done(w.xfs[i]))
            fail("a submission is pending after the join");
        weft_future_release(w.xfs[i]);
    }
    if (atomic_load(&xstarted) != w.nxfs || atomic_load(&xfinished) != w.nxfs)
        fail("a submission never ran, or never finished");
    close(w.sp[0]);
    close(w.sp[1]);
    /* Drain the channel: whatever was accepted and not received. */
    void *v;
    while (weft_chan_recv(w.ch, &v, 0) == 0)
        w.received[(uintptr_t)v % 4096]++;
    if (memcmp(w.accepted, w.received, sizeof w.accepted) != 0)
        fail("the channel lost, duplicated or made up an item");
    if (weft_chan_free(w.ch) != 0 || weft_mutex_free(w.mu) != 0 ||
        weft_event_free(w.ev) != 0)
        fail("a primitive still busy after the loop is gone");
    return 0;
}
