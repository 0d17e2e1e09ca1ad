/* SPDX-License-Identifier: MIT */
/*
 * core/: coroutines on guarded, pooled stacks, the per-thread state, the
 * stack-overflow handler, and the hooks that tell ASan, TSan and Valgrind
 * about stack switches. Shared internals of the core layer.
 */
#ifndef WEFT__CORE_INTERNAL_H
#define WEFT__CORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../arch/context.h"
#include "../include/weft.h"
#include "tunables.h"

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif
#ifndef WEFT__ASAN
#define WEFT__ASAN 0
#endif
#ifndef WEFT__TSAN
#define WEFT__TSAN 0
#endif

#if WEFT__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if WEFT__TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define WEFT__LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * For a function that parks its fiber and returns straight to user code
 * when the fiber resumes: return through __x86_return_thunk
 * (arch/switch_x86_64_sysv_elf.S) instead of a plain ret.
 *
 * After a switch the CPU's return stack holds the return addresses of the
 * fiber that switched away. Where both fibers had called from the same
 * place (the same function, or the same helper) that is right and ret is
 * the best return there is. Where they had not (a producer and a
 * consumer), ret mispredicts on every switch; an indirect jump is
 * predicted from the branch history, which tells the fibers apart. The
 * thunk picks: every switch_away records in weft__resume_ra its
 * function's return address, which is what the return stack will offer
 * the fiber resumed next; the thunk returns with ret when that is its own
 * return address, and with pop + jmp otherwise. A channel ping-pong
 * between two different functions went from 48 to 36 ns per round trip,
 * and one between two fibers of the same function through helpers kept
 * its ret (a jump alone cost it 15 ns there); `make bench` measures both.
 * GCC on x86_64 only (clang 14 lacks the attribute); empty elsewhere.
 */
#if !defined(WEFT__RESUME_RETURN) && defined(__x86_64__) &&                    \
    defined(__has_attribute)
#if __has_attribute(function_return)
#define WEFT__RESUME_RETURN __attribute__((function_return("thunk-extern")))
#define WEFT__RESUME_HINT 1 /* keep weft__resume_ra for the thunk */
#endif
#endif
#ifndef WEFT__RESUME_RETURN
#define WEFT__RESUME_RETURN
#endif
#ifndef WEFT__RESUME_HINT
#define WEFT__RESUME_HINT 0
#endif

/* Thread-local state that signal handlers and hot paths read: static TLS,
 * no __tls_get_addr call even in the shared library. */
#define WEFT__TLS __thread __attribute__((tls_model("initial-exec")))

/* ---- allocator for the runtime's own objects (core/alloc.c) ---- */
/* Ends the process with "weft: <what>: <strerror(err)>" on stderr: the
 * one way out for what the contract has no error return for (out of
 * memory for a wake-up already promised, a poller that stops working). */
_Noreturn void weft__die(const char *what, int err);
void *weft__alloc(size_t size);  /* NULL on ENOMEM; not zeroed */
void *weft__zalloc(size_t size); /* zeroed */
void weft__free(void *p, size_t size);

/* ---- stacks (core/stack.c) ---- */

/* How a stack is protected against overflow. */
enum weft__guard {
    WEFT__GUARD_MADVISE,  /* MADV_GUARD_INSTALL: no extra mapping */
    WEFT__GUARD_MPROTECT, /* PROT_NONE page: one more mapping */
    WEFT__GUARD_CANARY,   /* kernel refused: canary checked at each switch */
};

/* One slot of a slab (stack.c): [guard][stack ........ top]. */
struct weft__stack {
    char *map;               /* lowest address; the guard starts here */
    size_t map_size;         /* whole slot, guard included */
    unsigned guard;          /* enum weft__guard */
    unsigned valgrind_id;    /* VALGRIND_STACK_REGISTER id, 0 if none */
    struct weft__slab *slab; /* the mapping it was carved from (stack.c) */
};

#define WEFT__CANARY 0x5745465443414e59ull /* "WEFTCANY" */
#define WEFT__CANARY_WORDS 8

extern atomic_size_t weft__page_bytes; /* 0 until first asked */
size_t weft__page_size_slow(void);
/* The page size (sysconf once): a load on the spawn path. */
static inline size_t weft__page_size(void)
{
    size_t ps = atomic_load_explicit(&weft__page_bytes, memory_order_relaxed);
    return WEFT__LIKELY(ps != 0) ? ps : weft__page_size_slow();
}
/* The guard below every stack: 64 KiB (or a page, where pages are bigger).
 * A frame larger than the guard can store below it without touching it
 * first, so this is the largest frame (array, VLA, alloca) a store of which
 * always faults in the guard; -fstack-clash-protection probes larger frames
 * page by page. With MADV_GUARD_INSTALL the guard costs neither memory nor
 * a mapping; with mprotect it is PROT_NONE address space (no RSS, no
 * commit charge) and the same two mappings a page would take. */
#define WEFT__GUARD_BYTES (64 * 1024)
static inline size_t weft__guard_size(void)
{
    size_t ps = weft__page_size();
    return ps > WEFT__GUARD_BYTES ? ps : WEFT__GUARD_BYTES;
}
/* The guard new stacks get (probed once); tests may force a weaker one. */
int weft__stack_guard_mode(void);
void weft__stack_force_guard(int mode);
/* Maps a stack with usable bytes above its guard, from a slab. 0 or
 * -ENOMEM. Unmap gives it back to its slab (any thread). */
int weft__stack_map(struct weft__stack *s, size_t usable);
void weft__stack_unmap(struct weft__stack *s);
/* Lowest usable address (just above the guard). */
static inline char *weft__stack_lo(const struct weft__stack *s)
{
    return s->map + weft__guard_size();
}
static inline char *weft__stack_hi(const struct weft__stack *s)
{
    return s->map + s->map_size;
}
/* Canary-guarded stacks only: true while the canary is intact. */
bool weft__stack_canary_ok(const struct weft__stack *s);
/* Writes "weft: stack overflow in fiber '<name>' (stack <N> bytes)" to
 * stderr with async-signal-safe calls, then aborts. */
_Noreturn void weft__overflow_abort(const char *name, size_t stack_bytes);
/* Installs the SIGSEGV handler (once per process) and this thread's
 * alternate signal stack (once per thread). */
void weft__overflow_init_thread(void);

/* ---- execution contexts and coroutines (core/coro.c) ---- */

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

#endif /* WEFT__CORE_INTERNAL_H */
