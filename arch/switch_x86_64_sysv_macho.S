/* SPDX-License-Identifier: MIT */
/*
 * Context switch for x86_64, System V ABI, Mach-O (macOS on Intel).
 *
 * The same code as switch_x86_64_sysv_elf.S (macOS follows the SysV
 * AMD64 ABI for calls); what differs is the object format: C symbols
 * carry a leading underscore, .private_extern stands for .hidden, and
 * Mach-O has no .type, .size, ELF sections or GNU-stack note. No
 * .subsections_via_symbols: the trampoline's CFI range starts at the nop
 * before its label, which must stay with it. The switch's body is
 * written out twice, not a .macro: in Mach-O macros $8 names an argument.
 * Not here:
 * __x86_return_thunk and weft__resume_ra (core/config.h keeps
 * WEFT__RESUME_RETURN to ELF; clang has no function_return anyway).
 * Assembled by `make check-portability` (clang -target
 * x86_64-apple-macos); not run: there is no macOS machine here.
 *
 *   void *weft__switch(void **from_sp,   rdi
 *                      void *to_sp,      rsi
 *                      void *arg);       rdx   -> returned in rax
 *   void *weft__make(void *stack_top,    rdi
 *                    void (*entry)(void *),  rsi
 *                    void *arg);         rdx   -> new stack pointer in rax
 *
 * Saved frame, at the saved stack pointer (WEFT__FRAME_SIZE in context.h):
 *
 *   default  FPENV   what
 *   -------  -----   ------------------------------------------------
 *                0   MXCSR (4 bytes), x87 control word (2), pad (2)
 *        0       8   r15
 *        8      16   r14
 *       16      24   r13   (fresh context: the entry's argument)
 *       24      32   r12   (fresh context: the entry function)
 *       32      40   rbx
 *       40      48   rbp   (fresh context: 0, ends frame-pointer walks)
 *       48      56   resume address
 *       56      64   (frame size)
 *
 * SysV AMD64 ABI 3.2.1 (Figure 3.4): rbx, rbp, r12-r15 and rsp belong to
 * the caller; every xmm register is caller-saved. The control bits of
 * MXCSR and the x87 control word are callee-saved too (3.2.1), but real
 * code almost never changes them and reading MXCSR (stmxcsr) alone costs
 * about 40% of a switch, so they are saved only when WEFT_FPENV is 1.
 *
 * The resume is "pop r11; jmp *r11", not "ret": the return stack buffer
 * cannot predict a return into another stack, and a mispredicted ret costs
 * three times a jmp (17.8 against 5.8 ns a round trip, measured on AMD
 * Zen 5).
 *
 * No <cet.h>: a stack switch is not shadow-stack safe, and the object must
 * not claim it is.
 */
#include "context.h"

#ifndef WEFT__SYMSUFFIX
#define WEFT__SYMSUFFIX
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
/* Mach-O: the C name weft__switch is the symbol _weft__switch. */
#define SWITCH CAT(_weft__switch, WEFT__SYMSUFFIX)
#define SWITCH_RET CAT(_weft__switch_ret, WEFT__SYMSUFFIX)
#define MAKE CAT(_weft__make, WEFT__SYMSUFFIX)
#define TRAMPOLINE CAT(_weft__trampoline, WEFT__SYMSUFFIX)

#if WEFT_FPENV
#define FPCTL_BYTES 8 /* bytes of FP control state below the registers */
#else
#define FPCTL_BYTES 0
#endif
#define OFF_R13 (FPCTL_BYTES + 16)
#define OFF_R12 (FPCTL_BYTES + 24)
#define OFF_RBP (FPCTL_BYTES + 40)
#define OFF_RET (FPCTL_BYTES + 48)

#if OFF_RET + 8 != WEFT__FRAME_SIZE
#error "switch_x86_64_sysv_macho.S: frame layout disagrees with context.h"
#endif

    .text


    .globl SWITCH
    .private_extern SWITCH
    .p2align 4
SWITCH:
    .cfi_startproc
    /* The body both entry points share: save, swap stacks, restore. */
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
#if WEFT_FPENV
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movzwl 4(%rsp), %ecx        /* our x87 control word, forwarded from the store */
#endif
    movq %rsp, (%rdi)           /* publish our frame */
    movq %rsi, %rsp             /* now on the other stack: same frame shape, same CFI */
#if WEFT_FPENV
    /*
     * stmxcsr is the dear instruction here (about 10 cycles on Zen 5,
     * measured) and has no cheaper substitute; ldmxcsr is cheap, and so is
     * skipping fldcw when both sides' x87 control words agree, as they
     * nearly always do. (Skipping ldmxcsr the same way would need a read
     * back of what stmxcsr stored, which does not forward and costs more
     * than the load it saves.)
     */
    ldmxcsr (%rsp)
    cmpw 4(%rsp), %cx
    je 1f
    fldcw 4(%rsp)
1:
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
#endif
    popq %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    popq %r11                   /* resume address */
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %r11
    movq %rdx, %rax             /* the switch's arg is the other side's return value */
    jmpq *%r11
    .cfi_endproc

/*
 * The same switch ending in ret. A ret is predicted by the return stack,
 * which holds the return addresses of the stack we left: right when both
 * sides suspended through the same call site (a scheduler handing over
 * from fiber to fiber), wrong otherwise, and then a jmp is cheaper. The
 * scheduler uses this one for fiber-to-fiber transfers.
 */
    .globl SWITCH_RET
    .private_extern SWITCH_RET
    .p2align 4
SWITCH_RET:
    .cfi_startproc
    /* The same body as above. */
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
#if WEFT_FPENV
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movzwl 4(%rsp), %ecx        /* our x87 control word, forwarded from the store */
#endif
    movq %rsp, (%rdi)           /* publish our frame */
    movq %rsi, %rsp             /* now on the other stack: same frame shape, same CFI */
#if WEFT_FPENV
    /*
     * stmxcsr is the dear instruction here (about 10 cycles on Zen 5,
     * measured) and has no cheaper substitute; ldmxcsr is cheap, and so is
     * skipping fldcw when both sides' x87 control words agree, as they
     * nearly always do. (Skipping ldmxcsr the same way would need a read
     * back of what stmxcsr stored, which does not forward and costs more
     * than the load it saves.)
     */
    ldmxcsr (%rsp)
    cmpw 4(%rsp), %cx
    je 1f
    fldcw 4(%rsp)
1:
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
#endif
    popq %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    movq %rdx, %rax
    ret
    .cfi_endproc

    .globl MAKE
    .private_extern MAKE
    .p2align 4
MAKE:
    .cfi_startproc
    movq %rdi, %rax
    andq $-16, %rax             /* ABI alignment */
    subq $16, %rax              /* rsp of the trampoline: 16-aligned, so entry sees rsp+8 aligned */
    subq $WEFT__FRAME_SIZE, %rax
    xorl %ecx, %ecx
    movq %rcx, FPCTL_BYTES + 0(%rax) /* r15 */
    movq %rcx, FPCTL_BYTES + 8(%rax) /* r14 */
    movq %rdx, OFF_R13(%rax)    /* entry's argument */
    movq %rsi, OFF_R12(%rax)    /* entry */
    movq %rcx, FPCTL_BYTES + 32(%rax)    /* rbx */
    movq %rcx, OFF_RBP(%rax)    /* rbp = 0: frame-pointer walks stop here */
    leaq TRAMPOLINE(%rip), %rcx
    movq %rcx, OFF_RET(%rax)
    movq $0, WEFT__FRAME_SIZE(%rax) /* a zero word above: no bogus return address */
#if WEFT_FPENV
    stmxcsr (%rax)              /* a fresh context inherits its maker's FP control */
    fnstcw 4(%rax)
    movw $0, 6(%rax)
#endif
    ret
    .cfi_endproc

/*
 * First frame of every context. The resume address undefined tells the
 * unwinder (gdb, libgcc) that the stack ends here. The nop puts an
 * instruction before the label, so "return address - 1" still falls in
 * this CFI range.
 */
    .private_extern TRAMPOLINE
    .globl TRAMPOLINE
    .p2align 4
    .cfi_startproc
    .cfi_undefined %rip
    nop
TRAMPOLINE:
    movq %r13, %rdi
    callq *%r12                 /* entry(arg): never returns */
    ud2
    .cfi_endproc
