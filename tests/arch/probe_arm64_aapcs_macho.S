/* SPDX-License-Identifier: MIT */
/*
 * Register probes for the conformance suite (arm64, Apple's arm64 ABI),
 * Mach-O (macOS on Apple silicon): probe_arm64_aapcs_elf.S with the C
 * names' leading underscores, @PAGE/@PAGEOFF addressing, no BTI pads and
 * no .type, .size or ELF notes. While the switch runs, x29 holds a test
 * pattern, not a frame record, as on ELF: a stack walk then (a profiler)
 * would stop early. x18, the platform's, is not touched. Assembled by
 * `make check-portability`; not run: there is no Mac here.
 *
 *   void *weft_probe_switch(void **from_sp,         x0
 *                           void *to_sp,            x1
 *                           const uint64_t in[19],  x2
 *                           uint64_t out[19],       x3
 *                           void *arg);             x4
 *
 * Loads in[] into x19-x29 and d8-d15, switches through the function in
 * weft_probe_fn, and when resumed stores those registers into out[]
 * before restoring its caller's. Returns what the switch returned.
 *
 *   void weft_probe_entry(void *arg);
 *
 * A context entry that records its sp at entry in weft_probe_entry_sp,
 * then tail-calls weft_probe_entry_c(arg).
 */
    .text
    .globl _weft_probe_switch
    .p2align 4
_weft_probe_switch:
    .cfi_startproc
    stp x29, x30, [sp, #-176]!
    .cfi_adjust_cfa_offset 176
    .cfi_rel_offset x29, 0
    .cfi_rel_offset x30, 8
    stp x19, x20, [sp, #16]
    stp x21, x22, [sp, #32]
    stp x23, x24, [sp, #48]
    stp x25, x26, [sp, #64]
    stp x27, x28, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    str x3, [sp, #160]          /* out[], kept across the switch */
    ldp x19, x20, [x2, #0]
    ldp x21, x22, [x2, #16]
    ldp x23, x24, [x2, #32]
    ldp x25, x26, [x2, #48]
    ldp x27, x28, [x2, #64]
    ldr x29, [x2, #80]
    ldp d8, d9, [x2, #88]
    ldp d10, d11, [x2, #104]
    ldp d12, d13, [x2, #120]
    ldp d14, d15, [x2, #136]
    mov x2, x4
    adrp x9, _weft_probe_fn@PAGE
    ldr x9, [x9, _weft_probe_fn@PAGEOFF]
    blr x9
    ldr x3, [sp, #160]
    stp x19, x20, [x3, #0]
    stp x21, x22, [x3, #16]
    stp x23, x24, [x3, #32]
    stp x25, x26, [x3, #48]
    stp x27, x28, [x3, #64]
    str x29, [x3, #80]
    stp d8, d9, [x3, #88]
    stp d10, d11, [x3, #104]
    stp d12, d13, [x3, #120]
    stp d14, d15, [x3, #136]
    ldp x19, x20, [sp, #16]
    ldp x21, x22, [sp, #32]
    ldp x23, x24, [sp, #48]
    ldp x25, x26, [sp, #64]
    ldp x27, x28, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    ldp x29, x30, [sp], #176
    .cfi_adjust_cfa_offset -176
    ret
    .cfi_endproc

    .globl _weft_probe_entry
    .p2align 4
_weft_probe_entry:
    .cfi_startproc
    mov x9, sp
    adrp x10, _weft_probe_entry_sp@PAGE
    str x9, [x10, _weft_probe_entry_sp@PAGEOFF]
    b _weft_probe_entry_c
    .cfi_endproc
