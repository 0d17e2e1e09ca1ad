/* SPDX-License-Identifier: MIT */
/*
 * Debug mode: the reports that name the bug at the call that causes it
 * (asyncio's debug mode, in C). Everything here runs only when a loop's
 * debug flag is set (WEFT_DEBUG=1, or weft_loop_set_debug); the hot paths
 * pay one predictable branch for it.
 *
 * Every report is one line on stderr starting "weft: ", so that tests and
 * people can grep for it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define STACK_PAINT 0x57454654u /* "WEFT", repeated over a fresh stack */

int weft_loop_set_debug(weft_loop *loop, bool on)
{
    if (loop == NULL)
        return -EINVAL;
    loop->debug = on;
    return 0;
}

int weft_loop_set_slow_ms(weft_loop *loop, int64_t slow_ms)
{
    if (loop == NULL || slow_ms < 0)
        return -EINVAL;
    loop->slow_ns = weft__ms_to_ns(slow_ms); /* huge: never slow */
    return 0;
}

const char *weft__fiber_name(const struct weft__fiber *f, char *buf)
{
    if (f->co != NULL)
        return weft__coro_name(f->co, buf);
    if (f->name[0] != '\0')
        return f->name;
    return "(not started)";
}

/* The FP control state: the control bits of MXCSR and the x87 control
 * word on x86_64, FPCR on aarch64, frm (the rounding mode of fcsr) on
 * riscv64. */
static uint64_t fp_control(void)
{
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return (uint64_t)(mxcsr & ~0x3fu) << 16 | cw; /* without status flags */
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#elif defined(__riscv)
    unsigned long frm;
    __asm__ volatile("frrm %0" : "=r"(frm));
    return frm;
#else
    return 0; /* a CPU without a port (ARCH=generic): not checked */
#endif
}

void weft__debug_slice_start(struct weft_loop *loop)
{
    loop->slice_start = weft__now_ns();
    loop->slice_fp = fp_control();
}

void weft__debug_slice_end(struct weft_loop *loop, struct weft__fiber *f)
{
    if (!WEFT_FPENV) {
        /* Switches do not carry the FP control state in this build: a
         * fiber that leaves it changed changes it for whoever runs next. */
        uint64_t fp = fp_control();
        if (fp != loop->slice_fp) {
            char buf[32];
            fprintf(stderr,
                    "weft: fiber '%s' changed the FP control state across a "
                    "switch (%#llx -> %#llx); restore it before suspending, "
                    "or build with FPENV=1\n",
                    weft__fiber_name(f, buf),
                    (unsigned long long)loop->slice_fp, (unsigned long long)fp);
        }
    }
    int64_t ran = weft__now_ns() - loop->slice_start;
    if (ran <= loop->slow_ns)
        return;
    char buf[32];
    fprintf(stderr,
            "weft: slow fiber '%s' ran %lld ms without yielding "
            "(slow_ms %lld)\n",
            weft__fiber_name(f, buf), (long long)(ran / 1000000),
            (long long)(loop->slow_ns / 1000000));
}

/* The symbol of a code address, when the dynamic linker knows it. */
static const char *symbol(void *addr)
{
    Dl_info info;
    if (dladdr(addr, &info) && info.dli_sname != NULL)
        return info.dli_sname;
    return "?";
}

void weft__debug_callback(struct weft_loop *loop, void (*cb)(void *), void *arg,
                          const char *kind)
{
    int64_t t0 = weft__now_ns();
    cb(arg);
    int64_t ran = weft__now_ns() - t0;
    if (ran > loop->slow_ns) {
        void *addr;
        memcpy(&addr, &cb, sizeof addr);
        fprintf(stderr,
                "weft: slow %s %p (%s) ran %lld ms without returning "
                "(slow_ms %lld)\n",
                kind, addr, symbol(addr), (long long)(ran / 1000000),
                (long long)(loop->slow_ns / 1000000));
    }
}

void weft__debug_wrong_thread(const struct weft_loop *loop, const char *call,
                              const char *what)
{
    if (loop == NULL || !loop->debug)
        return;
    fprintf(stderr,
            "weft: %s: %s belongs to loop %p of thread %ld, called from "
            "thread %ld; use weft_submit or weft_call_soon_threadsafe\n",
            call, what, (const void *)loop, loop->owner_tid, weft__thread_id());
}

/* What a parked fiber waits on, in words. */
static void describe_wait(const struct weft__fiber *f, char *out, size_t len)
{
    char buf[32];
    switch (f->wait) {
    case WEFT__WAIT_SLEEP:
        snprintf(out, len, "a sleep");
        break;
    case WEFT__WAIT_FD:
        snprintf(out, len, "fd %d", f->wait_fd);
        break;
    case WEFT__WAIT_EMFILE:
        snprintf(out, len, "a free descriptor (accept out of fds)");
        break;
    case WEFT__WAIT_FUTURE: {
        const struct weft_future *fut = f->wait_obj;
        if (fut->task_loop == f->loop && fut->task != NULL)
            snprintf(out, len, "the future of fiber '%s'",
                     weft__fiber_name(fut->task, buf));
        else if (fut->task_loop != NULL)
            snprintf(out, len, "a task of loop %p", (void *)fut->task_loop);
        else
            snprintf(out, len, "promise %p", (const void *)fut);
        break;
    }
    case WEFT__WAIT_FUTURES:
        snprintf(out, len, "several futures (gather/wait)");
        break;
    case WEFT__WAIT_SYNC:
        weft__sync_describe(f->wait_obj, out, len);
        break;
    case WEFT__WAIT_CHAN:
        snprintf(out, len, "a channel");
        break;
    default:
        snprintf(out, len, "nothing known");
        break;
    }
}

void weft__debug_deadlock(struct weft_loop *loop)
{
    size_t n = 0;
    weft__loop_each_fiber (f, loop)
        n += f->state == WEFT__FIBER_PARKED;
    fprintf(stderr,
            "weft: deadlock: loop %p has %zu blocked fibers and nothing "
            "that could wake them\n",
            (void *)loop, n);
    weft__loop_each_fiber (f, loop) {
        if (f->state != WEFT__FIBER_PARKED)
            continue;
        char buf[32], what[160];
        describe_wait(f, what, sizeof what);
        fprintf(stderr, "weft:   fiber '%s' waits on %s\n",
                weft__fiber_name(f, buf), what);
    }
}

void weft__debug_leaks(struct weft_loop *loop)
{
    if (loop->nfibers == 0)
        return;
    fprintf(stderr,
            "weft: weft_loop_free: %zu fibers still alive on loop %p, "
            "cancelling them\n",
            loop->nfibers, (void *)loop);
    weft__loop_each_fiber (f, loop) {
        char buf[32], what[160];
        if (f->state == WEFT__FIBER_PARKED)
            describe_wait(f, what, sizeof what);
        else
            snprintf(what, sizeof what, "nothing (ready to run)");
        fprintf(stderr, "weft:   fiber '%s' waits on %s\n",
                weft__fiber_name(f, buf), what);
    }
}

/* ---- stack high-water mark ---- */

/* These read and write a stack's unused part, which ASan may still hold
 * poisoned from frames that never returned: not theirs to check. */
#if defined(__GNUC__)
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

/* Where painting starts: the stack's lowest byte, or on a stack that fell
 * back to a canary (no guard to be had) just above the canary, which the
 * paint must not overwrite: every switch checks it. */
static uint32_t *paint_lo(const struct weft__fiber *f)
{
    char *lo = (char *)f->co->ctx.stack_lo;
    if (f->co->stack.guard == WEFT__GUARD_CANARY)
        lo += WEFT__CANARY_WORDS * sizeof(uint64_t);
    return (uint32_t *)lo;
}

NO_ASAN void weft__debug_paint_stack(struct weft__fiber *f)
{
    /* Everything below the fresh context's frame, which sits at sp. */
    uint32_t *hi = (uint32_t *)f->co->ctx.sp - 64; /* leave a margin */
    for (uint32_t *p = paint_lo(f); p < hi; p++)
        *p = STACK_PAINT;
}

NO_ASAN void weft__debug_check_stack(struct weft__fiber *f)
{
    const uint32_t *lo = f->co->ctx.stack_lo;
    size_t len = f->co->ctx.stack_len;
    const uint32_t *p = paint_lo(f);
    const uint32_t *end = lo + len / sizeof *lo;
    while (p < end && *p == STACK_PAINT)
        p++;
    /* Against the size the fiber was given: the coroutine's header at the
     * top of the stack counts as used. */
    size_t size = weft_coro_stack_size(f->co);
    size_t used = size - (size_t)((const char *)p - (const char *)lo);
    if (used * 4 > size * 3) {
        char buf[32];
        fprintf(stderr,
                "weft: fiber '%s' used %zu of its %zu stack bytes (%zu%%); "
                "give it a bigger stack_size\n",
                weft__fiber_name(f, buf), used, size, used * 100 / size);
    }
}
