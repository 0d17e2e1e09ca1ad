/* SPDX-License-Identifier: MIT */
/*
 * Context switch for aarch64, AAPCS64, ELF.
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
 *      144  x29, x30   (fp; lr = resume address, PAC-signed when enabled)
 *      160  FPCR, pad  (WEFT_FPENV only)
 *  160/176  (frame size)
 *
 * AAPCS64 6.1.1: x19-x29 and sp are callee-saved, and x30 holds the return
 * address; 6.1.2: the low 64 bits of v8-v15 (d8-d15) are callee-saved.
 * FPCR is callee-saved too (6.1.2) but saved only when WEFT_FPENV is 1.
 *
 * With -mbranch-protection=standard: paciasp signs lr against the sp at
 * entry, and autiasp checks it against the sp of the context we resume,
 * which is the sp that context had at its own entry. A fresh context's lr
 * is signed in weft__make with pacia1716 against that same sp (unsigned,
 * the first switch into it faults under qemu-aarch64 -cpu max).
 * paciasp is also a BTI "c" landing pad.
 */
#include "context.h"

#ifndef WEFT__SYMSUFFIX
#define WEFT__SYMSUFFIX
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define SWITCH CAT(weft__switch, WEFT__SYMSUFFIX)
#define SWITCH_RET CAT(weft__switch_ret, WEFT__SYMSUFFIX)
#define MAKE CAT(weft__make, WEFT__SYMSUFFIX)
#define TRAMPOLINE CAT(weft__trampoline, WEFT__SYMSUFFIX)

#if defined(__ARM_FEATURE_PAC_DEFAULT) && (__ARM_FEATURE_PAC_DEFAULT & 1)
#define PAC 1 /* signing with the A key */
#else
#define PAC 0
#endif
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI 1
#else
#define BTI 0
#endif

#if (WEFT_FPENV && WEFT__FRAME_SIZE != 176) || (!WEFT_FPENV && WEFT__FRAME_SIZE != 160)
#error "switch_arm64_aapcs_elf.S: frame layout disagrees with context.h"
#endif

    .text

    .globl SWITCH
    .hidden SWITCH
    .type SWITCH, %function
    /* The switch already ends in ret (aarch64 has no cheaper way back),
     * so the ret-flavoured entry point of context.h is the same code. */
    .globl SWITCH_RET
    .hidden SWITCH_RET
    .type SWITCH_RET, %function
    .p2align 4
SWITCH:
SWITCH_RET:
    .cfi_startproc
#if PAC
    hint #25                    /* paciasp: sign lr against sp (also BTI c) */
    .cfi_negate_ra_state
#elif BTI
    hint #34                    /* bti c */
#endif
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
#if PAC
    hint #29                    /* autiasp: check lr against the resumed sp */
#endif
    ret
    .cfi_endproc
    .size SWITCH, . - SWITCH
    .size SWITCH_RET, . - SWITCH_RET

    .globl MAKE
    .hidden MAKE
    .type MAKE, %function
    .p2align 4
MAKE:
    .cfi_startproc
#if BTI || PAC
    hint #34                    /* bti c */
#endif
    and x0, x0, #-16            /* ABI alignment */
    sub x0, x0, #16             /* sp of the trampoline, with a zero frame record above */
    stp xzr, xzr, [x0]
    sub x3, x0, #WEFT__FRAME_SIZE
    adrp x9, TRAMPOLINE
    add x9, x9, :lo12:TRAMPOLINE
#if PAC
    mov x17, x9
    mov x16, x0                 /* the sp autiasp will see when this frame is resumed */
    hint #8                     /* pacia1716: sign x17 with modifier x16 */
    mov x9, x17
#endif
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
    .size MAKE, . - MAKE

/*
 * First frame of every context, reached by the switch's ret (no BTI pad
 * needed). lr undefined tells the unwinder the stack ends here; the nop
 * keeps "return address - 1" inside this CFI range.
 */
    .globl TRAMPOLINE
    .hidden TRAMPOLINE
    .type TRAMPOLINE, %function
    .p2align 4
    .cfi_startproc
    .cfi_undefined x30
    nop
TRAMPOLINE:
    mov x0, x20
    blr x19                     /* entry(arg): never returns */
    brk #0x3e8
    .cfi_endproc
    .size TRAMPOLINE, . - TRAMPOLINE

#if BTI || PAC
/* GNU property note: this object keeps BTI landing pads and PAC. */
    .pushsection .note.gnu.property, "a"
    .balign 8
    .long 4                     /* name size */
    .long 16                    /* descriptor size */
    .long 5                     /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz "GNU"
    .long 0xc0000000            /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long 4
    .long (BTI * 1) | (PAC * 2)
    .long 0
    .popsection
#endif

    .section .note.GNU-stack, "", %progbits
