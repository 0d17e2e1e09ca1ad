/* SPDX-License-Identifier: MIT */
/*
 * tests/arch: the conformance suite every port of arch/ must pass before
 * anything is built on it. Plain C with no test framework (a new CPU may
 * not have libcheck yet); the only per-CPU code is the register probe,
 * tests/arch/probe_<abi>_<binfmt>.S.
 *
 * Each check runs against both builds of the switch linked here: the
 * default one (weft__switch) and the FP-environment one
 * (weft__switch_fpenv); the FP control state is checked in the latter.
 * Prints one "ok"/"not ok" line per check; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unwind.h>

#include "context.h"

#ifndef MAP_STACK
#define MAP_STACK 0 /* macOS has none: a plain mapping serves */
#endif

#if defined(__x86_64__)
#define NREGS 6
#elif defined(__aarch64__)
#define NREGS 19
#elif defined(__riscv)
#define NREGS 24 /* s0-s11, fs0-fs11 */
#else
#define NREGS 1 /* unused: no probe (WEFT_CONFORM_NO_PROBE) */
#endif

typedef void *(*switch_fn)(void **, void *, void *);
typedef void *(*make_fn)(void *, void (*)(void *), void *);

/* Used by the probes (probe_<abi>.S). */
switch_fn weft_probe_fn;
uintptr_t weft_probe_entry_sp;
void *weft_probe_switch(void **from_sp, void *to_sp, const uint64_t *in,
                        uint64_t *out, void *arg);
void weft_probe_entry(void *arg);
void weft_probe_entry_c(void *arg);
void weft_probe_backtrace_here(void);

extern char weft__trampoline[], weft__trampoline_fpenv[];

static int failures;
static int checks;

#if defined(WEFT_CONFORM_NO_PROBE)
/*
 * No register probe for this CPU (make ARCH=generic on a CPU without a
 * port): the entry is C, and records the address of a local the compiler
 * aligns to 16 bytes by trusting the ABI's stack alignment at entry (it
 * does not realign for it), so a misaligned entry shows as a misaligned
 * local. The register check is skipped.
 */
void weft_probe_entry(void *arg)
{
    char probe[16] __attribute__((aligned(16)));
    weft_probe_entry_sp = (uintptr_t)probe;
    weft_probe_entry_c(arg);
}

void *weft_probe_switch(void **from_sp, void *to_sp, const uint64_t *in,
                        uint64_t *out, void *arg)
{
    memcpy(out, in, NREGS * sizeof *in); /* unused: the check is skipped */
    return weft_probe_fn(from_sp, to_sp, arg);
}
#endif

static void report(int ok, const char *variant, const char *name)
{
    checks++;
    if (!ok)
        failures++;
    printf("%s %d - %s: %s\n", ok ? "ok" : "not ok", checks, variant, name);
    fflush(stdout);
}

/* One variant of the switch under test. */
struct variant {
    const char *name;
    switch_fn sw;
    make_fn make;
    const char *trampoline;
    int fpenv;
};

#define STACK_SIZE (256 * 1024)

static char *stack_new(void)
{
    char *p = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static void stack_free(char *p)
{
    munmap(p, STACK_SIZE);
}

/* State shared by main and the context under test. */
static struct {
    const struct variant *v;
    void *main_sp;
    void *ctx_sp;
    int test;       /* which body the entry runs */
    int failed;     /* set by the context side */
    void *seen_arg; /* what the context received */
    long count;
    int rounds;
    int bt_status;
    int bt_frames;
    uintptr_t bt_last_ip;
    uintptr_t bt_tramp; /* the variant's trampoline */
    int bt_saw_tramp;   /* a frame's ip fell inside it */
} g;

static uint64_t pattern(int side, int round, int reg)
{
    /* Distinct, nonzero, and different in every byte lane and on both
     * sides, so that a register restored from the wrong frame shows. */
    uint64_t x =
        0x9e3779b97f4a7c15ull * (uint64_t)(side * 1000 + round * 31 + reg + 1);
    return x ^ ((uint64_t)reg << 56) ^ 0x0101010101010101ull;
}

static void fill(uint64_t *in, int side, int round)
{
    for (int i = 0; i < NREGS; i++)
        in[i] = pattern(side, round, i);
}

static int same(const uint64_t *a, const uint64_t *b)
{
    return memcmp(a, b, NREGS * sizeof *a) == 0;
}

enum { T_REGS, T_ARGS, T_ALIGN, T_PINGPONG, T_BACKTRACE, T_FPCTRL, T_FPFIELDS };

#if defined(__x86_64__)
static unsigned read_mxcsr_rc(void)
{
    unsigned m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return (m >> 13) & 3;
}

static unsigned read_x87_rc(void)
{
    unsigned short cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return (cw >> 10) & 3;
}
#endif

#if defined(__x86_64__)
#define RM(fe) ((fe) >> 10) /* <fenv.h> value to the 2-bit RC field */
#else
#define RM(fe) (fe)
#endif

/* Reads the rounding mode from every place the ABI keeps FP control:
 * MXCSR and the x87 control word on x86_64, FPCR on aarch64. Returns -1
 * when the places disagree. */
static int rounding_mode(void)
{
#if defined(__x86_64__)
    unsigned a = read_mxcsr_rc(), b = read_x87_rc();
    return a == b ? (int)a : -1;
#else
    return fegetround();
#endif
}

/*
 * The whole FP control state, raw, as the ABI asks a switch to keep it.
 * A switch may skip the dear write of the control registers when both
 * sides agree, so each field must be seen to differ on its own.
 */
struct fpctl {
    uint32_t a; /* MXCSR without its exception flags; FPCR; frm */
    uint32_t b; /* x87 control word; unused; fflags */
};

#if defined(__x86_64__)
static struct fpctl fpctl_get(void)
{
    unsigned m;
    unsigned short cw;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(m), "=m"(cw));
    return (struct fpctl){m & ~0x3fu, cw};
}

/* flags: MXCSR exception flags to raise too (they are not control). */
static void fpctl_set(struct fpctl c, unsigned flags)
{
    unsigned m = c.a | flags;
    unsigned short cw = (unsigned short)c.b;
    __asm__ volatile("ldmxcsr %0\n\tfldcw %1" ::"m"(m), "m"(cw));
}

/* Each differs from the first in one field. */
static const struct fpctl fp_states[] = {
    {0x1f80, 0x037f},          /* the power-on state */
    {0x1f80 | 0x0040, 0x037f}, /* MXCSR DAZ, the lowest control bit */
    {0x1f80 | 0x8000, 0x037f}, /* MXCSR FTZ, the highest */
    {0x1f80 | 0x6000, 0x037f}, /* MXCSR rounding alone */
    {0x1f80, 0x0f7f},          /* x87 rounding alone */
    {0x1f80, 0x027f},          /* x87 precision: 53 bits */
};
#define FP_FLAGS 0x3fu
#elif defined(__aarch64__)
static struct fpctl fpctl_get(void)
{
    uint64_t r;
    __asm__ volatile("mrs %0, fpcr" : "=r"(r));
    return (struct fpctl){(uint32_t)r, 0};
}

static void fpctl_set(struct fpctl c, unsigned flags)
{
    (void)flags; /* FPSR, where the flags live, is not switched */
    uint64_t r = c.a;
    __asm__ volatile("msr fpcr, %0" ::"r"(r));
}

static const struct fpctl fp_states[] = {
    {0, 0},        {1u << 22, 0}, /* RMode: toward +infinity */
    {1u << 24, 0},                /* FZ */
    {1u << 25, 0},                /* DN */
    {1u << 26, 0},                /* AHP */
};
#define FP_FLAGS 0u
#elif defined(__riscv)
/*
 * The psABI gives all of fcsr thread storage duration (C11 7.6), so the
 * FP-environment switch keeps each context's fflags too: here they are
 * state that must survive like frm, not noise raised on the side.
 */
static struct fpctl fpctl_get(void)
{
    unsigned long frm, fflags;
    __asm__ volatile("frrm %0\n\tfrflags %1" : "=r"(frm), "=r"(fflags));
    return (struct fpctl){(uint32_t)frm, (uint32_t)fflags};
}

static void fpctl_set(struct fpctl c, unsigned flags)
{
    (void)flags; /* the flags are in c.b */
    unsigned long frm = c.a, fflags = c.b;
    __asm__ volatile("fsrm %0\n\tfsflags %1" ::"r"(frm), "r"(fflags));
}

static const struct fpctl fp_states[] = {
    {0, 0},    {1, 0},    /* frm: toward zero */
    {2, 0},               /* frm: down */
    {3, 0},               /* frm: up */
    {4, 0},               /* frm: to nearest, ties to max magnitude */
    {0, 0x10}, {0, 0x01}, /* fflags: invalid (NV), inexact (NX) alone */
    {0, 0x1f},            /* fflags: every one */
};
#define FP_FLAGS 0u
#endif
#define NFP_STATES (int)(sizeof fp_states / sizeof fp_states[0])

static int fpctl_eq(struct fpctl x, struct fpctl y)
{
    return x.a == y.a && x.b == y.b;
}

/* How far into the trampoline its call to the entry may be: a few
 * instructions in assembly, a small C function in the generic switch. */
#if defined(WEFT_ARCH_GENERIC)
#define TRAMPOLINE_SPAN 256
#else
#define TRAMPOLINE_SPAN 32
#endif

static _Unwind_Reason_Code bt_step(struct _Unwind_Context *ctx, void *arg)
{
    (void)arg;
    uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
    g.bt_frames++;
    if (ip != 0) /* libgcc reports the end as one last frame with ip 0 */
        g.bt_last_ip = ip;
    if (ip > g.bt_tramp && ip < g.bt_tramp + TRAMPOLINE_SPAN)
        g.bt_saw_tramp = 1;
    return g.bt_frames > 64 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

/* Called inside a context; a gdb script breaks here too. */
__attribute__((noinline)) void weft_probe_backtrace_here(void)
{
    g.bt_frames = 0;
    g.bt_status = _Unwind_Backtrace(bt_step, NULL);
    __asm__ volatile("" ::: "memory");
}

static void back(void *arg)
{
    g.v->sw(&g.ctx_sp, g.main_sp, arg);
}

void weft_probe_entry_c(void *arg)
{
    const struct variant *v = g.v;
    uint64_t in[NREGS], out[NREGS];

    g.seen_arg = arg;
    switch (g.test) {
    case T_REGS:
        /* Context side: load its own patterns, switch back, and check
         * they survived main's run; main checks the other direction. */
        weft_probe_fn = v->sw;
        for (int r = 0; r < g.rounds; r++) {
            fill(in, 2, r);
            weft_probe_switch(&g.ctx_sp, g.main_sp, in, out, NULL);
            if (!same(in, out))
                g.failed = 1;
        }
        break;
    case T_ARGS:
        for (;;) {
            void *got = v->sw(&g.ctx_sp, g.main_sp, (void *)(uintptr_t)0x5eed);
            if (got == NULL)
                break;
            /* Answer with the value plus one. */
            v->sw(&g.ctx_sp, g.main_sp, (char *)got + 1);
        }
        break;
    case T_ALIGN:
        break;
    case T_PINGPONG:
        for (;;) {
            g.count++;
            v->sw(&g.ctx_sp, g.main_sp, NULL);
        }
    case T_BACKTRACE:
        weft_probe_backtrace_here();
        break;
    case T_FPCTRL:
        /* The fresh context inherited main's mode at make time. */
        if (rounding_mode() != RM(FE_TOWARDZERO))
            g.failed = 1;
        fesetround(FE_UPWARD);
        v->sw(&g.ctx_sp, g.main_sp, NULL);
        if (rounding_mode() != RM(FE_UPWARD))
            g.failed = 1;
        fesetround(FE_TONEAREST);
        break;
    case T_FPFIELDS: {
        /* g.rounds indexes this side's state; main holds g.count's. */
        struct fpctl mine = fp_states[g.rounds];
        fpctl_set(mine, 0);
        for (int r = 0; r < 3; r++) {
            v->sw(&g.ctx_sp, g.main_sp, NULL);
            if (!fpctl_eq(fpctl_get(), mine))
                g.failed = 1;
            fpctl_set(mine, FP_FLAGS); /* flags differ, control does not */
        }
        fpctl_set(fp_states[0], 0);
        break;
    }
    }
    back(NULL);
    abort(); /* never resumed after the final switch */
}

/* Starts a fresh context running test t on its own stack, with the stack
 * top misaligned by skew bytes. */
static char *start(const struct variant *v, int t, size_t skew, void *arg)
{
    char *stack = stack_new();
    g.v = v;
    g.test = t;
    g.failed = 0;
    g.seen_arg = NULL;
    g.ctx_sp = v->make(stack + STACK_SIZE - skew, weft_probe_entry, arg);
    return stack;
}

static void check_registers(const struct variant *v)
{
    uint64_t in[NREGS], out[NREGS];
    int ok = 1;

#if defined(WEFT_CONFORM_NO_PROBE)
    printf("ok %d - %s: callee-saved registers survive # SKIP no register "
           "probe for this CPU (tests/arch/probe_<cpu>_<abi>_<binfmt>.S)\n",
           ++checks, v->name);
    return;
#endif
    g.rounds = 1000;
    char *stack = start(v, T_REGS, 0, NULL);
    weft_probe_fn = v->sw;
    /* Round 0 enters the context; each later round resumes it. */
    for (int r = 0; r <= g.rounds; r++) {
        fill(in, 1, r);
        weft_probe_switch(&g.main_sp, g.ctx_sp, in, out, NULL);
        if (!same(in, out))
            ok = 0;
    }
    report(ok, v->name, "callee-saved registers survive, caller side");
    report(!g.failed, v->name, "callee-saved registers survive, context side");
    stack_free(stack);
}

static void check_args(const struct variant *v)
{
    int ok = 1;
    char *stack = start(v, T_ARGS, 0, (void *)(uintptr_t)0xabcdef);
    /* Entering: the entry gets make's arg; the context answers 0x5eed. */
    void *r = v->sw(&g.main_sp, g.ctx_sp, (void *)1);
    ok &= g.seen_arg == (void *)(uintptr_t)0xabcdef;
    ok &= r == (void *)(uintptr_t)0x5eed;
    for (uintptr_t i = 100; i < 110 && ok; i++) {
        r = v->sw(&g.main_sp, g.ctx_sp, (void *)i);
        ok &= r == (void *)(i + 1);
        r = v->sw(&g.main_sp, g.ctx_sp, (void *)1);
        ok &= r == (void *)(uintptr_t)0x5eed;
    }
    v->sw(&g.main_sp, g.ctx_sp, NULL); /* let it finish */
    report(ok, v->name, "argument and return value pass both ways");
    stack_free(stack);
}

static void check_alignment(const struct variant *v)
{
    int ok = 1;
    for (size_t skew = 0; skew < 48; skew++) {
        char *stack = start(v, T_ALIGN, skew, NULL);
        weft_probe_entry_sp = 1;
        v->sw(&g.main_sp, g.ctx_sp, NULL);
#if defined(__x86_64__) && !defined(WEFT_CONFORM_NO_PROBE)
        /* SysV: rsp + 8 is 16-aligned at a function's first instruction. */
        ok &= (weft_probe_entry_sp + 8) % 16 == 0;
#else
        ok &= weft_probe_entry_sp % 16 == 0;
#endif
        ok &= weft_probe_entry_sp < (uintptr_t)(stack + STACK_SIZE - skew);
        stack_free(stack);
    }
    report(ok, v->name, "16-byte stack alignment at entry, any stack top");
}

static void check_pingpong(const struct variant *v)
{
    const long n = 1000000;
    char *stack = start(v, T_PINGPONG, 0, NULL);
    g.count = 0;
    for (long i = 0; i < n; i++)
        v->sw(&g.main_sp, g.ctx_sp, NULL);
    report(g.count == n, v->name, "a million ping-pongs");
    stack_free(stack); /* the context is parked forever; drop its stack */
}

static void check_backtrace(const struct variant *v)
{
    char *stack = start(v, T_BACKTRACE, 0, NULL);
    uintptr_t t = (uintptr_t)v->trampoline;
    g.bt_status = -1;
    g.bt_tramp = t;
    g.bt_saw_tramp = 0;
    v->sw(&g.main_sp, g.ctx_sp, NULL);
#if defined(WEFT_ARCH_GENERIC)
    /* The C trampoline is called by the C library's context start, which
     * is where the stack ends (glibc marks it): the walk must pass
     * through the trampoline and then end, not run into garbage. */
    int ok =
        g.bt_status == _URC_END_OF_STACK && g.bt_frames < 16 && g.bt_saw_tramp;
#else
    int ok = g.bt_status == _URC_END_OF_STACK && g.bt_frames < 16 &&
             g.bt_last_ip > t - 16 && g.bt_last_ip < t + 32;
#endif
    if (!ok)
        printf("# unwind status %d, %d frames, last ip %#lx, trampoline %#lx\n",
               g.bt_status, g.bt_frames, (unsigned long)g.bt_last_ip,
               (unsigned long)t);
#if defined(WEFT_ARCH_GENERIC)
    report(ok, v->name,
           "a backtrace inside a context passes its first frame and ends");
#else
    report(ok, v->name, "a backtrace inside a context ends at its first frame");
#endif
    stack_free(stack);
}

static void check_fp_control(const struct variant *v)
{
    fesetround(FE_TOWARDZERO);
    char *stack = start(v, T_FPCTRL, 0, NULL);
    v->sw(&g.main_sp, g.ctx_sp, NULL); /* the context sets FE_UPWARD */
    int ok = rounding_mode() == RM(FE_TOWARDZERO);
    fesetround(FE_DOWNWARD);
    v->sw(&g.main_sp, g.ctx_sp, NULL); /* it checks FE_UPWARD is back */
    ok &= rounding_mode() == RM(FE_DOWNWARD);
    ok &= !g.failed;
    fesetround(FE_TONEAREST);
    report(ok, v->name, "FP control state survives switches both ways");
    stack_free(stack);
}

/* Every pair of states, each field alone on either side and both sides
 * alike: each side must get its own back after every switch. */
static void check_fp_fields(const struct variant *v)
{
    int ok = 1;
    for (int i = 0; i < NFP_STATES; i++)
        for (int j = 0; j < NFP_STATES; j++) {
            struct fpctl mine = fp_states[i];
            char *stack = start(v, T_FPFIELDS, 0, NULL);
            g.rounds = j;
            fpctl_set(mine, 0);
            for (int r = 0; r < 4; r++) { /* enter, resume three times */
                v->sw(&g.main_sp, g.ctx_sp, NULL);
                if (!fpctl_eq(fpctl_get(), mine)) {
                    printf("# main in state %d, context in %d: main got "
                           "%#x/%#x back\n",
                           i, j, fpctl_get().a, fpctl_get().b);
                    ok = 0;
                }
                fpctl_set(mine, r & 1 ? FP_FLAGS : 0);
            }
            if (g.failed) {
                printf("# main in state %d, context in %d: the context's "
                       "changed\n",
                       i, j);
                ok = 0;
            }
            fpctl_set(fp_states[0], 0);
            stack_free(stack);
        }
#if defined(__riscv)
    report(ok, v->name, "frm and fflags each survive switches, alone");
#else
    report(ok, v->name, "each FP control field survives switches, alone");
#endif
}

int main(void)
{
    static const struct variant variants[] = {
        {"default", weft__switch, weft__make, weft__trampoline, WEFT_FPENV},
        {"fpenv", weft__switch_fpenv, weft__make_fpenv, weft__trampoline_fpenv,
         1},
        {"default-ret", weft__switch_ret, weft__make, weft__trampoline,
         WEFT_FPENV},
        {"fpenv-ret", weft__switch_ret_fpenv, weft__make_fpenv,
         weft__trampoline_fpenv, 1},
    };

    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        const struct variant *v = &variants[i];
        check_registers(v);
        check_args(v);
        check_alignment(v);
        check_pingpong(v);
        check_backtrace(v);
        if (v->fpenv) {
            check_fp_control(v);
            check_fp_fields(v);
        }
    }
    printf("%s: %d checks, %d failed\n", failures ? "FAIL" : "PASS", checks,
           failures);
    return failures ? 1 : 0;
}
