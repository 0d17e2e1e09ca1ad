/* SPDX-License-Identifier: MIT */
/*
 * Context switch for arm64, Apple's arm64 ABI, Mach-O (macOS on Apple
 * silicon).
 *
 * The same frame and code as switch_arm64_aapcs_elf.S. Apple's ABI
 * ("Writing ARM64 code for Apple platforms") keeps AAPCS64's
 * callee-saved set (x19-x28, fp, lr, the low halves of v8-v15) and
 * differs where it does not touch a switch: x18 is reserved for the
 * platform and must not be used (nothing here does, and the switch
 * neither saves nor changes it: it is the same in every thread's
 * contexts); fp must always point to a valid frame record (a fresh
 * context's is 0 with a zero record above, the end of the chain, as on
 * ELF); the red zone is 128 bytes, which a switch never crosses. No
 * PAC or BTI: arm64 (not arm64e) code has neither, and arm64e signs
 * return addresses with the B key, which would need its own variant.
 * The object format differs: C symbols carry a leading underscore,
 * .private_extern stands for .hidden, addresses come from
 * adrp/add with @PAGE/@PAGEOFF, and Mach-O has no .type, .size, ELF
 * sections, GNU-stack note or GNU property note. No
 * .subsections_via_symbols: the trampoline's CFI range starts at the
 * nop before its label, which must stay with it.
 * Assembled by `make check-portability` (clang -target
 * arm64-apple-macos); not run: there is no Mac here.
 *
 *   void *weft__switch(void **from_sp,   x0
 *                      void *to_sp,      x1
 *                      void *arg);       x2   -> returned in x0
 *   void *weft__make(void *stack_top,    x0
 *                    void (*entry)(void *),  x1
 *                    void *arg);         x2   -> new stack pointer in x0
 *
 * Saved frame, at the saved stack pointer (WEFT__FRAME_SIZE in context.h):
 *
 *   offset  what
 *   ------  ----------------------------------------------------------
 *        0  d8,  d9
 *       16  d10, d11
 *       32  d12, d13
 *       48  d14, d15
 *       64  x19, x20   (fresh context: entry function, its argument)
 *       80  x21, x22
 *       96  x23, x24
 *      112  x25, x26
 *      128  x27, x28
 *      144  x29, x30   (fp; lr = resume address)
 *      160  FPCR, pad  (WEFT_FPENV only)
 *  160/176  (frame size)
 *
 * AAPCS64 6.1.1: x19-x29 and sp are callee-saved, and x30 holds the return
 * address; 6.1.2: the low 64 bits of v8-v15 (d8-d15) are callee-saved.
 * FPCR is callee-saved too (6.1.2) but saved only when WEFT_FPENV is 1.
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

#if defined(__arm64e__)
#error "switch_arm64_aapcs_macho.S: arm64e signs return addresses; no port yet"
#endif

#if (WEFT_FPENV && WEFT__FRAME_SIZE != 176) || (!WEFT_FPENV && WEFT__FRAME_SIZE != 160)
#error "switch_arm64_aapcs_macho.S: frame layout disagrees with context.h"
#endif

    .text

    .globl SWITCH
    .private_extern SWITCH
    /* The switch already ends in ret (aarch64 has no cheaper way back),
     * so the ret-flavoured entry point of context.h is the same code. */
    .globl SWITCH_RET
    .private_extern SWITCH_RET
    .p2align 4
SWITCH:
SWITCH_RET:
    .cfi_startproc
    sub sp, sp, #WEFT__FRAME_SIZE
    .cfi_adjust_cfa_offset WEFT__FRAME_SIZE
    stp d8, d9, [sp, #0]
    stp d10, d11, [sp, #16]
    stp d12, d13, [sp, #32]
    stp d14, d15, [sp, #48]
    stp x19, x20, [sp, #64]
    stp x21, x22, [sp, #80]
    stp x23, x24, [sp, #96]
    stp x25, x26, [sp, #112]
    stp x27, x28, [sp, #128]
    stp x29, x30, [sp, #144]
    .cfi_rel_offset x19, 64
    .cfi_rel_offset x20, 72
    .cfi_rel_offset x21, 80
    .cfi_rel_offset x22, 88
    .cfi_rel_offset x23, 96
    .cfi_rel_offset x24, 104
    .cfi_rel_offset x25, 112
    .cfi_rel_offset x26, 120
    .cfi_rel_offset x27, 128
    .cfi_rel_offset x28, 136
    .cfi_rel_offset x29, 144
    .cfi_rel_offset x30, 152
#if WEFT_FPENV
    mrs x9, fpcr
    str x9, [sp, #160]
#endif
    mov x9, sp
    str x9, [x0]                /* publish our frame */
    mov sp, x1                  /* now on the other stack: same frame shape, same CFI */
#if WEFT_FPENV
    ldr x10, [sp, #160]         /* write FPCR only when it differs: the */
    cmp x9, x10                 /* write is the dear part, and contexts */
    b.eq 1f                     /* almost always agree */
    msr fpcr, x10
1:
#endif
    ldp d8, d9, [sp, #0]
    ldp d10, d11, [sp, #16]
    ldp d12, d13, [sp, #32]
    ldp d14, d15, [sp, #48]
    ldp x19, x20, [sp, #64]
    ldp x21, x22, [sp, #80]
    ldp x23, x24, [sp, #96]
    ldp x25, x26, [sp, #112]
    ldp x27, x28, [sp, #128]
    ldp x29, x30, [sp, #144]
    add sp, sp, #WEFT__FRAME_SIZE
    .cfi_adjust_cfa_offset -WEFT__FRAME_SIZE
    mov x0, x2                  /* the switch's arg is the other side's return value */
    ret
    .cfi_endproc

    .globl MAKE
    .private_extern MAKE
    .p2align 4
MAKE:
    .cfi_startproc
    and x0, x0, #-16            /* ABI alignment */
    sub x0, x0, #16             /* sp of the trampoline, with a zero frame record above */
    stp xzr, xzr, [x0]
    sub x3, x0, #WEFT__FRAME_SIZE
    adrp x9, TRAMPOLINE@PAGE
    add x9, x9, TRAMPOLINE@PAGEOFF
    stp xzr, xzr, [x3, #0]      /* d8-d15 */
    stp xzr, xzr, [x3, #16]
    stp xzr, xzr, [x3, #32]
    stp xzr, xzr, [x3, #48]
    stp x1, x2, [x3, #64]       /* x19 = entry, x20 = its argument */
    stp xzr, xzr, [x3, #80]
    stp xzr, xzr, [x3, #96]
    stp xzr, xzr, [x3, #112]
    stp xzr, xzr, [x3, #128]
    stp xzr, x9, [x3, #144]     /* fp = 0 ends frame-pointer walks; lr = trampoline */
#if WEFT_FPENV
    mrs x9, fpcr                /* a fresh context inherits its maker's FP control */
    stp x9, xzr, [x3, #160]
#endif
    mov x0, x3
    ret
    .cfi_endproc

/*
 * First frame of every context, reached by the switch's ret. lr undefined tells the unwinder the stack ends here; the nop
 * keeps "return address - 1" inside this CFI range.
 */
    .globl TRAMPOLINE
    .private_extern TRAMPOLINE
    .p2align 4
    .cfi_startproc
    .cfi_undefined x30
    nop
TRAMPOLINE:
    mov x0, x20
    blr x19                     /* entry(arg): never returns */
    brk #0x3e8
    .cfi_endproc
