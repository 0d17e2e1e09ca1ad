/* SPDX-License-Identifier: MIT */
/*
 * Coroutines: a body running on its own guarded stack, resumed by anyone
 * on its thread and yielding back to whoever resumed it.
 *
 * A coroutine's header lives at the top of its own stack mapping, so an
 * idle coroutine costs the pages its frames touched and nothing more. A
 * finished coroutine goes back, header and stack together, to a pool per
 * thread and per stack size (struct weft__pool_class).
 *
 * Every switch goes through weft__ctx_switch() (coro.h), which tells ASan
 * and TSan that the stack changes; Valgrind learns each stack when it is
 * mapped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#if WEFT__ASAN
#include <sanitizer/asan_interface.h>
#endif

WEFT__TLS struct weft__thread weft__thr;

static atomic_uint_fast64_t thread_seq;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* Room for the header at the top of the stack, cache-line aligned. */
#define HEADER_SIZE ((sizeof(struct weft_coro) + 63) & ~(size_t)63)

int weft_fpenv(void)
{
    return WEFT_FPENV;
}

/* ---- switching ---- */

/* First frame of every coroutine (below it: the arch trampoline). */
static void coro_entry(void *arg)
{
    struct weft_coro *co = arg;
#if WEFT__ASAN
    /* We came from the resumer; ASan tells us its bounds, which a
     * thread's own stack needs when we switch back to it. */
    const void *lo;
    size_t len;
    __sanitizer_finish_switch_fiber(NULL, &lo, &len);
    if (co->resumer->stack_lo == NULL) {
        co->resumer->stack_lo = lo;
        co->resumer->stack_len = len;
    }
#endif
    co->result = co->fn(co->arg);
    weft__coro_exit(co); /* a finished coroutine is never resumed */
}

/* ---- per-thread state ---- */

static void pool_drain(struct weft__thread *t)
{
    for (int i = 0; i < WEFT__POOL_CLASSES; i++) {
        struct weft__pool_class *c = &t->pool[i];
        struct weft_coro *lists[2] = {c->hot, c->cold};
        for (int l = 0; l < 2; l++) {
            struct weft_coro *co = lists[l];
            while (co != NULL) {
                struct weft_coro *next = co->next;
                struct weft__stack s = co->stack;
                weft__stack_unmap(&s);
                co = next;
            }
        }
        memset(c, 0, sizeof *c);
    }
}

/* Thread exit: give back pooled stacks and our alternate signal stack. */
static void thread_exit(void *unused)
{
    (void)unused;
    struct weft__thread *t = &weft__thr;
    pool_drain(t);
    if (t->altstack != NULL) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        munmap(t->altstack, t->altstack_size);
        t->altstack = NULL;
    }
    t->ready = false;
}

static void make_exit_key(void)
{
    pthread_key_create(&exit_key, thread_exit);
}

void weft__thread_init(void)
{
    struct weft__thread *t = &weft__thr;
    if (t->ready)
        return;
    memset(t, 0, sizeof *t);
    t->next_id = (atomic_fetch_add(&thread_seq, 1) + 1) << 40;
#if WEFT__TSAN
    t->root.tsan_fiber = __tsan_get_current_fiber();
#endif
    weft__overflow_init_thread();
    pthread_once(&exit_key_once, make_exit_key);
    pthread_setspecific(exit_key, t); /* non-NULL, so the destructor runs */
    t->ready = true;
}

/* ---- pool ---- */

static struct weft__pool_class *pool_class(struct weft__thread *t,
                                           size_t usable, bool create)
{
    for (int i = 0; i < WEFT__POOL_CLASSES; i++)
        if (t->pool[i].usable == usable)
            return &t->pool[i];
    if (create)
        for (int i = 0; i < WEFT__POOL_CLASSES; i++)
            if (t->pool[i].usable == 0) {
                t->pool[i].usable = usable;
                return &t->pool[i];
            }
    return NULL;
}

static struct weft_coro *pool_get(struct weft__thread *t, size_t usable)
{
    struct weft__pool_class *c = pool_class(t, usable, false);
    if (c == NULL)
        return NULL;
    struct weft_coro *co = c->hot;
    if (co != NULL) {
        c->hot = co->next;
        c->nhot--;
        return co;
    }
    co = c->cold;
    if (co != NULL) {
        c->cold = co->next;
        c->ncold--;
    }
    return co;
}

/* Pushes co on c's hot list if it has room (pool_put, and a fiber's end
 * on its own stack: weft__coro_retire). */
static bool pool_put_hot(struct weft__pool_class *c, struct weft_coro *co)
{
    if (c == NULL || c->nhot >= WEFT__POOL_HOT)
        return false;
    co->next = c->hot;
    c->hot = co;
    c->nhot++;
    return true;
}

static void pool_put(struct weft__thread *t, struct weft_coro *co,
                     size_t usable)
{
    struct weft__pool_class *c = pool_class(t, usable, true);
    if (pool_put_hot(c, co))
        return;
    if (c != NULL && c->ncold < WEFT__POOL_COLD) {
        /* Keep the mapping and its guard, give the pages back: all but the
         * top page, which holds the header and our link. */
        char *lo = weft__stack_lo(&co->stack);
        char *top = weft__stack_hi(&co->stack) - weft__page_size();
        if (top > lo)
            madvise(lo, (size_t)(top - lo), WEFT__MADV_RELEASE);
        if (co->stack.guard == WEFT__GUARD_CANARY)
            for (int i = 0; i < WEFT__CANARY_WORDS; i++)
                ((uint64_t *)lo)[i] = WEFT__CANARY;
        co->next = c->cold;
        c->cold = co;
        c->ncold++;
        return;
    }
    struct weft__stack s = co->stack;
    weft__stack_unmap(&s);
}

bool weft__coro_retire(struct weft_coro *co)
{
#if WEFT__ASAN || WEFT__TSAN
    (void)co;
    return false;
#else
    if (WEFT__UNLIKELY(co->stack.guard == WEFT__GUARD_CANARY))
        weft__coro_check_canary(co);
    co->state = WEFT__CORO_DONE;
    return pool_put_hot(pool_class(&weft__thr, weft_coro_stack_size(co), true),
                        co);
#endif
}

/* ---- public ---- */

weft_coro *weft_coro_new(weft_fn fn, void *arg, const weft_spawn_opts *opts)
{
    size_t size = opts && opts->stack_size ? opts->stack_size
                                           : (size_t)WEFT_STACK_DEFAULT;
    if (fn == NULL || size < WEFT_STACK_MIN || size > WEFT_STACK_MAX) {
        errno = EINVAL;
        return NULL;
    }
    size_t ps = weft__page_size();
    size_t usable = (size + ps - 1) & ~(ps - 1);

    struct weft__thread *t = weft__thread_get();
    struct weft_coro *co = pool_get(t, usable);
    if (co == NULL) {
        struct weft__stack s;
        if (weft__stack_map(&s, usable) < 0) {
            errno = ENOMEM;
            return NULL;
        }
        co = (struct weft_coro *)(weft__stack_hi(&s) - HEADER_SIZE);
        co->stack = s;
    }
#if WEFT__ASAN
    /* A reused stack may carry poison from frames that never returned. */
    ASAN_UNPOISON_MEMORY_REGION(
        weft__stack_lo(&co->stack),
        (size_t)((char *)co - weft__stack_lo(&co->stack)));
#endif
    co->ctx.sp = weft__make(co, coro_entry, co);
    co->ctx.asan_fake = NULL;
    co->ctx.stack_lo = weft__stack_lo(&co->stack);
    co->ctx.stack_len = (size_t)((char *)co - (char *)co->ctx.stack_lo);
#if WEFT__TSAN
    co->ctx.tsan_fiber = __tsan_create_fiber(0);
#else
    co->ctx.tsan_fiber = NULL;
#endif
    co->resumer = NULL;
    co->fn = fn;
    co->arg = arg;
    co->result = NULL;
    co->id = ++t->next_id;
    co->state = WEFT__CORO_NEW;
    co->next = NULL;
    co->user = NULL;
    co->name[0] = '\0';
    if (opts && opts->name) {
        size_t n = strnlen(opts->name, sizeof co->name - 1);
        memcpy(co->name, opts->name, n);
        co->name[n] = '\0';
    }
    return co;
}

int weft_coro_resume(weft_coro *co, void **result)
{
    if (co == NULL ||
        (co->state != WEFT__CORO_NEW && co->state != WEFT__CORO_SUSPENDED))
        return -EINVAL;
    struct weft__thread *t = weft__thread_get();
    struct weft_coro *prev = t->current;
    struct weft__ctx *from = prev ? &prev->ctx : &t->root;

    co->resumer = from;
    co->state = WEFT__CORO_RUNNING;
    t->current = co;
    weft__ctx_switch(from, &co->ctx, false, false);
    t->current = prev;

    if (WEFT__UNLIKELY(co->stack.guard == WEFT__GUARD_CANARY))
        weft__coro_check_canary(co);
    if (co->state != WEFT__CORO_DONE)
        return 0;
    if (result != NULL)
        *result = co->result;
    return 1;
}

int weft_coro_yield(void)
{
    struct weft_coro *co = weft__thr.current;
    if (co == NULL)
        return -EPERM;
    co->state = WEFT__CORO_SUSPENDED;
    weft__ctx_switch(&co->ctx, co->resumer, false, false);
    return 0;
}

void weft__coro_check_canary(struct weft_coro *co)
{
    if (!weft__stack_canary_ok(&co->stack)) {
        char buf[32];
        weft__overflow_abort(weft__coro_name(co, buf),
                             weft_coro_stack_size(co));
    }
}

weft_coro *weft_coro_current(void)
{
    return weft__thr.current;
}

const char *weft__coro_name(const struct weft_coro *co, char *buf)
{
    if (co->name[0] != '\0')
        return co->name;
    /* "fiber#<id>", built without stdio: this runs in signal handlers. */
    char tmp[24];
    int n = 0;
    uint64_t v = co->id;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    memcpy(buf, "fiber#", 6);
    int i = 6;
    while (n > 0)
        buf[i++] = tmp[--n];
    buf[i] = '\0';
    return buf;
}

const char *weft_coro_name(weft_coro *co)
{
    if (co == NULL)
        return NULL;
    if (co->name[0] == '\0') {
        char buf[32];
        weft__coro_name(co, buf);
        memcpy(co->name, buf, sizeof co->name);
    }
    return co->name;
}

size_t weft_coro_stack_size(const weft_coro *co)
{
    return co ? co->stack.map_size - weft__guard_size() : 0;
}

bool weft_coro_done(const weft_coro *co)
{
    return co != NULL && co->state == WEFT__CORO_DONE;
}

void weft_coro_free(weft_coro *co)
{
    if (co == NULL)
        return;
    if (co->state == WEFT__CORO_RUNNING) {
        char buf[32];
        fprintf(stderr,
                "weft: weft_coro_free: coroutine '%s' is running; not freed\n",
                weft__coro_name(co, buf));
        return;
    }
#if WEFT__TSAN
    __tsan_destroy_fiber(co->ctx.tsan_fiber);
#endif
    co->state = WEFT__CORO_DONE;
    struct weft__thread *t = weft__thread_get();
    pool_put(t, co, weft_coro_stack_size(co));
}
