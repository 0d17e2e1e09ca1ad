/* SPDX-License-Identifier: MIT */
/*
 * Register probes for the conformance suite (x86_64 SysV), Mach-O
 * (macOS on Intel): probe_x86_64_sysv_elf.S with the C names' leading
 * underscores and without .type, .size and the GNU-stack note. Assembled
 * by `make check-portability`; not run: there is no Mac here. A port writes
 * one of these beside its switch: it is the only way to see registers the
 * compiler owns.
 *
 *   void *weft_probe_switch(void **from_sp,        rdi
 *                           void *to_sp,           rsi
 *                           const uint64_t in[6],  rdx
 *                           uint64_t out[6],       rcx
 *                           void *arg);            r8
 *
 * Loads in[] into rbx rbp r12 r13 r14 r15, switches through the function
 * in weft_probe_fn, and when resumed stores those registers into out[]
 * before restoring its caller's. Returns what the switch returned.
 *
 *   void weft_probe_entry(void *arg);
 *
 * A context entry that records its stack pointer at entry in
 * weft_probe_entry_sp, then tail-calls weft_probe_entry_c(arg).
 */
    .text
    .globl _weft_probe_switch
    .p2align 4
_weft_probe_switch:
    .cfi_startproc
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
    pushq %rcx                  /* out[], kept across the switch; rsp now 16-aligned */
    .cfi_adjust_cfa_offset 8
    movq 0(%rdx), %rbx
    movq 8(%rdx), %rbp
    movq 16(%rdx), %r12
    movq 24(%rdx), %r13
    movq 32(%rdx), %r14
    movq 40(%rdx), %r15
    movq %r8, %rdx
    callq *_weft_probe_fn(%rip)
    popq %rcx
    .cfi_adjust_cfa_offset -8
    movq %rbx, 0(%rcx)
    movq %rbp, 8(%rcx)
    movq %r12, 16(%rcx)
    movq %r13, 24(%rcx)
    movq %r14, 32(%rcx)
    movq %r15, 40(%rcx)
    popq %r15
    .cfi_adjust_cfa_offset -8
    popq %r14
    .cfi_adjust_cfa_offset -8
    popq %r13
    .cfi_adjust_cfa_offset -8
    popq %r12
    .cfi_adjust_cfa_offset -8
    popq %rbx
    .cfi_adjust_cfa_offset -8
    popq %rbp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc

    .globl _weft_probe_entry
    .p2align 4
_weft_probe_entry:
    .cfi_startproc
    movq %rsp, _weft_probe_entry_sp(%rip)
    jmp _weft_probe_entry_c
    .cfi_endproc
