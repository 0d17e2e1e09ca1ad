/* SPDX-License-Identifier: MIT */
/*
 * The portable context switch (make ARCH=generic): the contract of
 * arch/context.h in C, for a CPU that has no assembly port yet, or to
 * compare against one (make bench).
 *
 * Mechanism: makecontext starts a context, _setjmp/_longjmp switch.
 *
 * - weft__make builds the context with getcontext + makecontext and runs
 *   it at once (setcontext) as far as a _setjmp in its first frame, which
 *   jumps straight back: from then on the context is a jmp_buf like any
 *   other, and the first switch into it is no different from the next.
 * - weft__switch saves the caller with _setjmp and resumes the other side
 *   with _longjmp: the callee-saved registers, the stack pointer and the
 *   resume address, and nothing else. _setjmp and _longjmp (not setjmp,
 *   not sigsetjmp) leave the signal mask alone, so it stays the thread's,
 *   as with the assembly ports.
 *
 * Why not swapcontext for every switch: it is the textbook way, and it
 * saves and restores the signal mask, one rt_sigprocmask system call per
 * switch (glibc on x86_64: 343 to 546 ns a round trip, against 6 ns for
 * the assembly switch and 43 ns for this one; make bench prints them). That
 * alone would be acceptable for a fallback; but it would also make the signal
 * mask a property of each fiber (a mask set in one fiber undone by the next
 * switch), and glibc's setcontext reloads the FP control state too, so the
 * default build would not behave like an assembly port. The cost here is the
 * system calls of getcontext and setcontext once per weft__make, none per
 * switch.
 *
 * Why _longjmp to another stack is sound here: every jmp_buf we jump to
 * was filled by a frame that is still live, suspended on its own stack
 * (the one-way jump C forbids is into a function that has returned).
 * GNU Pth and libco's sjlj backend switch this way. _FORTIFY_SOURCE would
 * swap in __longjmp_chk, which refuses a jump to another stack, so it is
 * turned off for this file.
 *
 * FP control state: _longjmp carries none, so the default build leaves it
 * alone like the assembly ports' default build. The FP-environment build
 * keeps what the CPU's port keeps, so that one conformance suite holds
 * for both: the control modes, with fegetmode/fesetmode (C23, from
 * ISO/IEC TS 18661-1; glibc 2.25), as the x86_64 and aarch64 ports keep
 * their control bits alone; on riscv64 the whole fcsr, flags included,
 * with fegetenv/fesetenv (one CSR each there), as its port does. A C
 * library without fegetmode gets fegetenv/fesetenv everywhere: the
 * status flags then travel with each context too (C11 7.6 gives the
 * environment thread storage duration, so that is still right), at a
 * price on x86_64, where they store and reload the whole x87 environment
 * (fnstenv/fldenv): 724 ns a round trip measured here, against 57 ns.
 *
 * Backtraces: the first frame is trampoline(), called by the C library's
 * context start (glibc's __start_context on x86_64, which marks the end
 * of the stack for unwinders); no CFI can be written in C.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#if defined(__APPLE__)
#define _XOPEN_SOURCE 700 /* macOS declares ucontext only then (not tried) */
#endif
#include <fenv.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "context.h"

#if defined(FE_DFL_MODE) && !defined(__riscv) /* fegetmode, fesetmode */
typedef femode_t fpstate;
#define FP_SAVE(p) fegetmode(p)
#define FP_LOAD(p) fesetmode(p)
#else
typedef fenv_t fpstate;
#define FP_SAVE(p) fegetenv(p)
#define FP_LOAD(p) fesetenv(p)
#endif

#ifndef WEFT__SYMSUFFIX
#define WEFT__SYMSUFFIX
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define SWITCH CAT(weft__switch, WEFT__SYMSUFFIX)
#define SWITCH_RET CAT(weft__switch_ret, WEFT__SYMSUFFIX)
#define MAKE CAT(weft__make, WEFT__SYMSUFFIX)
#define TRAMPOLINE CAT(weft__trampoline, WEFT__SYMSUFFIX)
#define STARTING CAT(weft__generic_starting, WEFT__SYMSUFFIX)

/* context.h's prototypes, under whichever names this build gives them
 * (make bench builds this file again with other suffixes). */
void *SWITCH(void **from_sp, void *to_sp, void *arg);
void *SWITCH_RET(void **from_sp, void *to_sp, void *arg);
void *MAKE(void *stack_top, void (*entry)(void *), void *arg);

/*
 * A suspended context: what the "stack pointer" of context.h points at.
 * A running context's lives in the frame of the weft__switch that will
 * suspend it; a fresh one's at the top of its stack.
 */
struct context {
    jmp_buf jb; /* registers, stack pointer, resume address */
    void *arg;  /* what the switch that resumes it hands over */
#if WEFT_FPENV
    fpstate env; /* its FP control modes while suspended */
#endif
    void (*entry)(void *); /* fresh context: what it runs first */
    void *entry_arg;
};

/* makecontext takes a stack base and size, and glibc uses only their sum
 * (the top); weft__make is given only the top. So we declare a window of
 * this many bytes below it: inside any stack weft makes (WEFT_STACK_MIN
 * is 16 KiB), and above MINSIGSTKSZ (2 to 5 KiB on Linux) for a libc that
 * checks the size. The context may grow past it. Only glibc (x86_64,
 * riscv64) has been tried. */
#define START_WINDOW 8192

/* weft__make to trampoline(), on this thread, across setcontext
 * (makecontext's int arguments cannot portably carry a pointer). */
static __thread struct context *STARTING;
static __thread jmp_buf *CAT(maker, WEFT__SYMSUFFIX);
#define MAKER CAT(maker, WEFT__SYMSUFFIX)

void TRAMPOLINE(void);
void TRAMPOLINE(void)
{
    struct context *c = STARTING;
    /* _setjmp returns 0 now, and again when the first switch into c
     * lands here. */
    if (_setjmp(c->jb) == 0)
        _longjmp(*MAKER, 1); /* built: back to weft__make */
#if WEFT_FPENV
    FP_LOAD(&c->env);
#endif
    c->entry(c->entry_arg);
    abort(); /* entry never returns: it switches away for good */
}

void *SWITCH(void **from_sp, void *to_sp, void *arg)
{
    struct context self;
    struct context *to = to_sp;
#if WEFT_FPENV
    FP_SAVE(&self.env);
#endif
    *from_sp = &self; /* publish our context */
    to->arg = arg;
    /* _setjmp returns 0 now, and again when a switch resumes us, having
     * set self.arg. */
    if (_setjmp(self.jb) == 0)
        _longjmp(to->jb, 1); /* now on the other stack */
#if WEFT_FPENV
    FP_LOAD(&self.env);
#endif
    return ((volatile struct context *)&self)->arg;
}

/* No return instruction to choose here: the same switch. */
void *SWITCH_RET(void **from_sp, void *to_sp, void *arg)
{
    return SWITCH(from_sp, to_sp, arg);
}

void *MAKE(void *stack_top, void (*entry)(void *), void *arg)
{
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)63;
    struct context *c = (struct context *)(top - ((sizeof *c + 63) & ~63u));
    c->entry = entry;
    c->entry_arg = arg;
    c->arg = NULL;
#if WEFT_FPENV
    FP_SAVE(&c->env); /* a fresh context inherits its maker's */
#endif
    ucontext_t uc;
    jmp_buf back;
    if (getcontext(&uc) != 0)
        abort();
    uc.uc_link = NULL;
    uc.uc_stack.ss_sp = (char *)c - START_WINDOW;
    uc.uc_stack.ss_size = START_WINDOW;
    makecontext(&uc, TRAMPOLINE, 0);
    STARTING = c;
    MAKER = &back;
    if (_setjmp(back) == 0) {
        setcontext(&uc); /* runs trampoline() up to its _setjmp */
        abort();
    }
    return c;
}
