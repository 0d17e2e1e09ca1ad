/* SPDX-License-Identifier: MIT */
/*
 * Register probes for the conformance suite (riscv64 LP64D).
 *
 *   void *weft_probe_switch(void **from_sp,         a0
 *                           void *to_sp,            a1
 *                           const uint64_t in[24],  a2
 *                           uint64_t out[24],       a3
 *                           void *arg);             a4
 *
 * Loads in[] into s0-s11 and fs0-fs11, switches through the function in
 * weft_probe_fn, and when resumed stores those registers into out[]
 * before restoring its caller's. Returns what the switch returned.
 *
 *   void weft_probe_entry(void *arg);
 *
 * A context entry that records its sp at entry in weft_probe_entry_sp,
 * then tail-calls weft_probe_entry_c(arg).
 *
 * Frame: ra 0, out[] 8, s0-s11 16..104, fs0-fs11 112..200; 208 bytes.
 */
    .text
    .globl weft_probe_switch
    .type weft_probe_switch, @function
    .p2align 2
weft_probe_switch:
    .cfi_startproc
    addi sp, sp, -208
    .cfi_adjust_cfa_offset 208
    sd ra, 0(sp)
    .cfi_rel_offset ra, 0
    sd a3, 8(sp)                /* out[], kept across the switch */
    sd s0, 16(sp)
    sd s1, 24(sp)
    sd s2, 32(sp)
    sd s3, 40(sp)
    sd s4, 48(sp)
    sd s5, 56(sp)
    sd s6, 64(sp)
    sd s7, 72(sp)
    sd s8, 80(sp)
    sd s9, 88(sp)
    sd s10, 96(sp)
    sd s11, 104(sp)
    .cfi_rel_offset s0, 16
    fsd fs0, 112(sp)
    fsd fs1, 120(sp)
    fsd fs2, 128(sp)
    fsd fs3, 136(sp)
    fsd fs4, 144(sp)
    fsd fs5, 152(sp)
    fsd fs6, 160(sp)
    fsd fs7, 168(sp)
    fsd fs8, 176(sp)
    fsd fs9, 184(sp)
    fsd fs10, 192(sp)
    fsd fs11, 200(sp)
    ld s0, 0(a2)
    ld s1, 8(a2)
    ld s2, 16(a2)
    ld s3, 24(a2)
    ld s4, 32(a2)
    ld s5, 40(a2)
    ld s6, 48(a2)
    ld s7, 56(a2)
    ld s8, 64(a2)
    ld s9, 72(a2)
    ld s10, 80(a2)
    ld s11, 88(a2)
    fld fs0, 96(a2)
    fld fs1, 104(a2)
    fld fs2, 112(a2)
    fld fs3, 120(a2)
    fld fs4, 128(a2)
    fld fs5, 136(a2)
    fld fs6, 144(a2)
    fld fs7, 152(a2)
    fld fs8, 160(a2)
    fld fs9, 168(a2)
    fld fs10, 176(a2)
    fld fs11, 184(a2)
    mv a2, a4
    lla t0, weft_probe_fn
    ld t0, 0(t0)
    jalr t0
    ld a3, 8(sp)
    sd s0, 0(a3)
    sd s1, 8(a3)
    sd s2, 16(a3)
    sd s3, 24(a3)
    sd s4, 32(a3)
    sd s5, 40(a3)
    sd s6, 48(a3)
    sd s7, 56(a3)
    sd s8, 64(a3)
    sd s9, 72(a3)
    sd s10, 80(a3)
    sd s11, 88(a3)
    fsd fs0, 96(a3)
    fsd fs1, 104(a3)
    fsd fs2, 112(a3)
    fsd fs3, 120(a3)
    fsd fs4, 128(a3)
    fsd fs5, 136(a3)
    fsd fs6, 144(a3)
    fsd fs7, 152(a3)
    fsd fs8, 160(a3)
    fsd fs9, 168(a3)
    fsd fs10, 176(a3)
    fsd fs11, 184(a3)
    ld ra, 0(sp)
    ld s0, 16(sp)
    ld s1, 24(sp)
    ld s2, 32(sp)
    ld s3, 40(sp)
    ld s4, 48(sp)
    ld s5, 56(sp)
    ld s6, 64(sp)
    ld s7, 72(sp)
    ld s8, 80(sp)
    ld s9, 88(sp)
    ld s10, 96(sp)
    ld s11, 104(sp)
    fld fs0, 112(sp)
    fld fs1, 120(sp)
    fld fs2, 128(sp)
    fld fs3, 136(sp)
    fld fs4, 144(sp)
    fld fs5, 152(sp)
    fld fs6, 160(sp)
    fld fs7, 168(sp)
    fld fs8, 176(sp)
    fld fs9, 184(sp)
    fld fs10, 192(sp)
    fld fs11, 200(sp)
    addi sp, sp, 208
    .cfi_adjust_cfa_offset -208
    ret
    .cfi_endproc
    .size weft_probe_switch, . - weft_probe_switch

    .globl weft_probe_entry
    .type weft_probe_entry, @function
    .p2align 2
weft_probe_entry:
    .cfi_startproc
    lla t0, weft_probe_entry_sp
    sd sp, 0(t0)
    tail weft_probe_entry_c
    .cfi_endproc
    .size weft_probe_entry, . - weft_probe_entry

    .section .note.GNU-stack, "", %progbits
