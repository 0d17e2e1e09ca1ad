/* SPDX-License-Identifier: MIT */
/*
 * Context switch for riscv64, LP64D ABI (RV64GC with hardware doubles),
 * ELF.
 *
 *   void *weft__switch(void **from_sp,   a0
 *                      void *to_sp,      a1
 *                      void *arg);       a2   -> returned in a0
 *   void *weft__make(void *stack_top,    a0
 *                    void (*entry)(void *),  a1
 *                    void *arg);         a2   -> new stack pointer in a0
 *
 * Saved frame, at the saved stack pointer (WEFT__FRAME_SIZE in context.h):
 *
 *   offset  what
 *   ------  ----------------------------------------------------------
 *        0  ra   (resume address)
 *        8  s0   (fp; fresh context: 0, ends frame-pointer walks)
 *       16  s1   (fresh context: the entry function)
 *       24  s2   (fresh context: the entry's argument)
 *   32..96  s3-s11
 * 104..192  fs0-fs11
 *      200  fcsr (frm and fflags; WEFT_FPENV only, padding otherwise)
 *      208  (frame size)
 *
 * RISC-V ELF psABI, "Integer Register Convention" and "Floating-point
 * Register Convention": sp, s0-s11 and (in LP64D, whose FLEN is 64)
 * fs0-fs11 are preserved across calls; ra is the return address. The
 * same chapter gives fcsr "thread storage duration in accordance with
 * C11 section 7.6" rather than making it callee-saved: the whole of it,
 * rounding mode (frm) and the sticky exception flags (fflags) alike, is
 * the state a thread owns. FP-environment mode treats each context as a
 * thread in that sense and switches the whole fcsr, flags included
 * (x86_64 and aarch64 switch only their control bits, as their ABIs say).
 * A fresh context takes its maker's fcsr, as C11 7.6 has a new thread
 * take its creator's environment.
 *
 * The switch ends in ret, so weft__switch_ret is the same code (as on
 * aarch64). A switch ending in an indirect jump that the return address
 * stack ignores (jr through t2, which Zicfilp also exempts from landing
 * pads) is the x86_64 trick; nothing here can measure whether it pays on
 * riscv64 hardware (qemu-user only), so it is not done.
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

#define OFF_RA 0
#define OFF_S0 8
#define OFF_S1 16
#define OFF_S2 24
#define OFF_FS0 104
#define OFF_FCSR 200

#if OFF_FCSR + 8 != WEFT__FRAME_SIZE
#error "switch_riscv64_lp64d_elf.S: frame layout disagrees with context.h"
#endif

    .text

    .globl SWITCH
    .hidden SWITCH
    .type SWITCH, @function
    .globl SWITCH_RET
    .hidden SWITCH_RET
    .type SWITCH_RET, @function
    .p2align 2
SWITCH:
SWITCH_RET:
    .cfi_startproc
    addi sp, sp, -WEFT__FRAME_SIZE
    .cfi_adjust_cfa_offset WEFT__FRAME_SIZE
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    sd s3, 32(sp)
    sd s4, 40(sp)
    sd s5, 48(sp)
    sd s6, 56(sp)
    sd s7, 64(sp)
    sd s8, 72(sp)
    sd s9, 80(sp)
    sd s10, 88(sp)
    sd s11, 96(sp)
    .cfi_rel_offset ra, 0
    .cfi_rel_offset s0, 8
    .cfi_rel_offset s1, 16
    .cfi_rel_offset s2, 24
    .cfi_rel_offset s3, 32
    .cfi_rel_offset s4, 40
    .cfi_rel_offset s5, 48
    .cfi_rel_offset s6, 56
    .cfi_rel_offset s7, 64
    .cfi_rel_offset s8, 72
    .cfi_rel_offset s9, 80
    .cfi_rel_offset s10, 88
    .cfi_rel_offset s11, 96
    fsd fs0, 104(sp)
    fsd fs1, 112(sp)
    fsd fs2, 120(sp)
    fsd fs3, 128(sp)
    fsd fs4, 136(sp)
    fsd fs5, 144(sp)
    fsd fs6, 152(sp)
    fsd fs7, 160(sp)
    fsd fs8, 168(sp)
    fsd fs9, 176(sp)
    fsd fs10, 184(sp)
    fsd fs11, 192(sp)
#if WEFT_FPENV
    frcsr t0                    /* frm and fflags */
    sd t0, OFF_FCSR(sp)
#endif
    sd sp, 0(a0)                /* publish our frame */
    mv sp, a1                   /* now on the other stack: same frame shape, same CFI */
#if WEFT_FPENV
    ld t1, OFF_FCSR(sp)         /* write fcsr only when it differs: a CSR */
    beq t0, t1, 1f              /* write may serialize the pipeline, and */
    fscsr t1                    /* contexts almost always agree */
1:
#endif
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    ld s3, 32(sp)
    ld s4, 40(sp)
    ld s5, 48(sp)
    ld s6, 56(sp)
    ld s7, 64(sp)
    ld s8, 72(sp)
    ld s9, 80(sp)
    ld s10, 88(sp)
    ld s11, 96(sp)
    fld fs0, 104(sp)
    fld fs1, 112(sp)
    fld fs2, 120(sp)
    fld fs3, 128(sp)
    fld fs4, 136(sp)
    fld fs5, 144(sp)
    fld fs6, 152(sp)
    fld fs7, 160(sp)
    fld fs8, 168(sp)
    fld fs9, 176(sp)
    fld fs10, 184(sp)
    fld fs11, 192(sp)
    addi sp, sp, WEFT__FRAME_SIZE
    .cfi_adjust_cfa_offset -WEFT__FRAME_SIZE
    mv a0, a2                   /* the switch's arg is the other side's return value */
    ret
    .cfi_endproc
    .size SWITCH, . - SWITCH
    .size SWITCH_RET, . - SWITCH_RET

    .globl MAKE
    .hidden MAKE
    .type MAKE, @function
    .p2align 2
MAKE:
    .cfi_startproc
    andi a0, a0, -16            /* ABI alignment */
    addi a0, a0, -16            /* sp of the trampoline, with a zero frame record above */
    sd zero, 0(a0)
    sd zero, 8(a0)
    addi a3, a0, -WEFT__FRAME_SIZE
    mv t0, a3                   /* zero the whole frame, then fill in */
1:
    sd zero, 0(t0)
    addi t0, t0, 8
    bltu t0, a0, 1b
    lla t0, TRAMPOLINE
    sd t0, OFF_RA(a3)           /* the first switch returns into the trampoline */
    sd a1, OFF_S1(a3)           /* s1 = entry; s0 = 0 ends frame-pointer walks */
    sd a2, OFF_S2(a3)           /* s2 = its argument */
#if WEFT_FPENV
    frcsr t0                    /* a fresh context inherits its maker's fcsr */
    sd t0, OFF_FCSR(a3)
#endif
    mv a0, a3
    ret
    .cfi_endproc
    .size MAKE, . - MAKE

/*
 * First frame of every context, reached by the switch's ret. ra undefined
 * tells the unwinder the stack ends here; the nop keeps "return address
 * - 1" inside this CFI range.
 */
    .globl TRAMPOLINE
    .hidden TRAMPOLINE
    .type TRAMPOLINE, @function
    .p2align 2
    .cfi_startproc
    .cfi_undefined ra
    nop
TRAMPOLINE:
    mv a0, s2
    jalr s1                     /* entry(arg): never returns */
    ebreak
    .cfi_endproc
    .size TRAMPOLINE, . - TRAMPOLINE

    .section .note.GNU-stack, "", %progbits
