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
 *     none twice, none made up.
 * `make fuzz` runs it for FUZZ_TIME seconds (60 in CI).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

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
    if (!w.loop || !w.ch || !w.mu || !w.ev)
        fail("setup");
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
