/* SPDX-License-Identifier: MIT */
/*
 * The arch port contract: one context switch and one context maker per
 * CPU/ABI, in assembly (arch/switch_<abi>_<binfmt>.S). Nothing here knows
 * about fibers, stacks or loops; core/ builds those on top.
 *
 * A context is a saved stack pointer. The saved frame sits at that address
 * and holds the callee-saved registers the ABI requires, the resume
 * address, and (in FP-environment mode, WEFT_FPENV=1) the floating-point
 * control state. WEFT__FRAME_SIZE is the frame's size in bytes; each .S
 * file checks its layout against the same numbers.
 */
#ifndef WEFT__ARCH_CONTEXT_H
#define WEFT__ARCH_CONTEXT_H

#ifndef WEFT_FPENV
#define WEFT_FPENV 0
#endif

#if defined(WEFT_ARCH_GENERIC)
/* The portable fallback (arch/switch_generic.c, make ARCH=generic) keeps
 * its state in a C struct, not in a frame of fixed size. */
#elif defined(__x86_64__)
/* r15 r14 r13 r12 rbx rbp, resume address; FP mode adds MXCSR + x87 CW. */
#if WEFT_FPENV
#define WEFT__FRAME_SIZE 64
#else
#define WEFT__FRAME_SIZE 56
#endif
#elif defined(__aarch64__)
/* d8-d15, x19-x28, x29 (fp), x30 (lr); FP mode adds FPCR and padding. */
#if WEFT_FPENV
#define WEFT__FRAME_SIZE 176
#else
#define WEFT__FRAME_SIZE 160
#endif
#elif defined(__riscv) && __riscv_xlen == 64 &&                                \
    defined(__riscv_float_abi_double)
/* ra, s0-s11, fs0-fs11; fcsr in FP mode, padding otherwise. */
#define WEFT__FRAME_SIZE 208
#else
#error                                                                         \
    "weft: no context switch for this CPU; see arch/PORTING.md (or make ARCH=generic)"
#endif

#ifndef __ASSEMBLER__

/*
 * Saves the caller's context on its own stack, stores its stack pointer in
 * *from_sp, and resumes the context saved at to_sp. When some later switch
 * resumes the caller, weft__switch returns the arg that switch passed.
 */
void *weft__switch(void **from_sp, void *to_sp, void *arg);

/*
 * The same switch, returning with the CPU's return instruction instead of
 * an indirect jump. Cheaper when the context resumed suspended through the
 * same call site as the one leaving (the return predictor then holds the
 * right address): a scheduler's fiber-to-fiber hand-over. Where a port's
 * switch already ends in a return, both names are the same code.
 */
void *weft__switch_ret(void **from_sp, void *to_sp, void *arg);

/*
 * Builds a fresh context at the top of a stack (stack_top is the highest
 * address, need not be aligned) and returns its stack pointer. The first
 * switch to it calls entry(arg) on that stack with the ABI's alignment.
 * entry must never return: it ends by switching away for good.
 * The frame below the entry is marked so backtraces stop there.
 */
void *weft__make(void *stack_top, void (*entry)(void *), void *arg);

/* The FP-environment variants, linked beside the default ones by the
 * benchmarks and the conformance suite (built from the same source). */
void *weft__switch_fpenv(void **from_sp, void *to_sp, void *arg);
void *weft__switch_ret_fpenv(void **from_sp, void *to_sp, void *arg);
void *weft__make_fpenv(void *stack_top, void (*entry)(void *), void *arg);

#endif /* !__ASSEMBLER__ */
#endif /* WEFT__ARCH_CONTEXT_H */
