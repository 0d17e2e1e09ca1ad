/* SPDX-License-Identifier: MIT */
/*
 * Execution contexts and coroutines (core/coro.c): the coroutine's layout,
 * the per-thread state and stack pool, and the switch wrappers that tell
 * ASan and TSan about every switch.
 */
#ifndef WEFT__CORE_CORO_H
#define WEFT__CORE_CORO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../arch/context.h"
#include "../include/weft.h"
#include "config.h"
#include "stack.h"
#include "tunables.h"

/* Anything that can be switched to: a coroutine or a thread's own stack. */
struct weft__ctx {
    void *sp;             /* saved stack pointer while switched out */
    void *asan_fake;      /* ASan fake stack saved while switched out */
    const void *stack_lo; /* bounds, for ASan's switch annotations */
    size_t stack_len;
    void *tsan_fiber; /* TSan's fiber handle */
};

enum weft__coro_state {
    WEFT__CORO_NEW,       /* created, never resumed */
    WEFT__CORO_RUNNING,   /* on the CPU, or resuming another coroutine */
    WEFT__CORO_SUSPENDED, /* yielded */
    WEFT__CORO_DONE,      /* fn returned */
};

struct weft_coro {
    struct weft__ctx ctx;      /* must stay first */
    struct weft__ctx *resumer; /* who to yield to; valid while running */
    weft_fn fn;                /* body */
    void *arg;
    void *result;             /* fn's return value once done */
    struct weft__stack stack; /* the coroutine lives at its stack's top */
    uint64_t id;              /* per-process sequence number */
    unsigned state;           /* enum weft__coro_state */
    struct weft_coro *next;   /* stack pool link while free */
    void *user;               /* owned by the layer above (the loop) */
    char name[32];            /* NUL-terminated; empty = "fiber#<id>" */
};

/* Free coroutines of one stack size, kept by this thread for reuse (the
 * sizes are in core/tunables.h). */
struct weft__pool_class {
    size_t usable;         /* usable bytes of each stack here; 0 = unused */
    struct weft_coro *hot; /* LIFO: the last freed is warmest */
    struct weft_coro *cold;
    unsigned nhot, ncold;
};

/* Per-thread core state. */
struct weft__thread {
    struct weft_coro *current; /* running coroutine; NULL on own stack */
    struct weft__ctx root;     /* the thread's own stack */
    bool ready;                /* the fields below are set up */
    uint64_t next_id;          /* coroutine ids: thread number << 40 | n */
    struct weft__pool_class pool[WEFT__POOL_CLASSES];
    void *altstack; /* our sigaltstack mapping, or NULL */
    size_t altstack_size;
};

extern WEFT__TLS struct weft__thread weft__thr;
/* What the return stack offers next: see WEFT__RESUME_RETURN. Defined
 * beside the thunk that reads it (arch/switch_x86_64_sysv_elf.S), so the
 * arch layer links alone; kept only where WEFT__RESUME_HINT is 1. */
extern WEFT__TLS void *weft__resume_ra;

void weft__thread_init(void);

/* Sets up this thread's core state (idempotent, cheap after the first). */
static inline struct weft__thread *weft__thread_get(void)
{
    if (WEFT__UNLIKELY(!weft__thr.ready))
        weft__thread_init();
    return &weft__thr;
}

/* Aborts with the overflow message if co's canary was overwritten. */
void weft__coro_check_canary(struct weft_coro *co);

/* Saves the running context in from and resumes to. last: from will never
 * run again (ASan then frees its fake stack). sym: both sides suspend
 * through the same call site, so the ret-ending switch predicts better
 * (arch/context.h, weft__switch_ret). */
static inline void weft__ctx_switch(struct weft__ctx *from,
                                    struct weft__ctx *to, bool last, bool sym)
{
#if WEFT__ASAN
    __sanitizer_start_switch_fiber(last ? NULL : &from->asan_fake, to->stack_lo,
                                   to->stack_len);
#else
    (void)last;
#endif
#if WEFT__TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    if (sym)
        weft__switch_ret(&from->sp, to->sp, NULL);
    else
        weft__switch(&from->sp, to->sp, NULL);
#if WEFT__ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}

/* Switches from the running coroutine `from` straight to `to` (suspended),
 * handing over from's resumer: when `to` yields, control returns where
 * from's yield would have. Schedulers use it to go from one ready fiber to
 * the next without passing through their own context. */
static inline void weft__coro_transfer(struct weft_coro *from,
                                       struct weft_coro *to)
{
    if (WEFT__UNLIKELY(from->stack.guard == WEFT__GUARD_CANARY))
        weft__coro_check_canary(from);
    to->resumer = from->resumer;
    to->state = WEFT__CORO_RUNNING;
    from->state = WEFT__CORO_SUSPENDED;
    weft__thr.current = to;
    weft__ctx_switch(&from->ctx, &to->ctx, false, true);
    /* Resumed: whoever switched here set weft__thr.current to us. */
}

/* The running coroutine co, whose body is over (its fn will not be
 * returned to), gives its stack back to the thread's pool while still on
 * it: nothing runs on this thread between that and the switch away, and
 * the pool only links the header. Only the hot pool takes it (the cold
 * one gives pages back, and we stand on them). False, nothing done, when
 * it is full or under a sanitizer (which must see the stack die after the
 * switch). Then the caller ends co the ordinary way. */
bool weft__coro_retire(struct weft_coro *co);

/* Ends co, retired above, by a switch to `to` (suspended or new), which
 * inherits co's resumer as in weft__coro_transfer. Does not return. */
__attribute__((noreturn)) static inline void
weft__coro_exit_transfer(struct weft_coro *co, struct weft_coro *to)
{
    to->resumer = co->resumer;
    to->state = WEFT__CORO_RUNNING;
    weft__thr.current = to;
    weft__ctx_switch(&co->ctx, &to->ctx, true, true);
    abort(); /* a finished coroutine is never resumed */
}

/* Ends co, whose body is over, by a switch back to its resumer, as if its
 * function had returned (the resumer frees it). Does not return. */
__attribute__((noreturn)) static inline void
weft__coro_exit(struct weft_coro *co)
{
    co->state = WEFT__CORO_DONE;
    weft__ctx_switch(&co->ctx, co->resumer, true, false);
    abort(); /* a finished coroutine is never resumed */
}

/* Writes the coroutine's display name into buf (at least 32 bytes). */
const char *weft__coro_name(const struct weft_coro *co, char *buf);

#endif /* WEFT__CORE_CORO_H */
