/* SPDX-License-Identifier: MIT */
/*
 * vdk test guest: 256 interrupt stubs, 16 bytes apart (isr_stubs + 16 * v),
 * each pushing an error code (0 where the CPU pushes none) and its vector,
 * and one common path into isr_dispatch(vector, error, frame) in irq.c.
 */
    .section .text
    .balign 16
    .globl isr_stubs
isr_stubs:
    .set v, 0
    .rept 256
    .balign 16
    .if (v == 8) || (v == 10) || (v == 11) || (v == 12) || (v == 13) || (v == 14) || (v == 17) || (v == 21) || (v == 29) || (v == 30)
    .else
    pushq $0
    .endif
    pushq $v
    jmp isr_common
    .set v, v + 1
    .endr

isr_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov 72(%rsp), %rdi              /* vector */
    mov 80(%rsp), %rsi              /* error code */
    lea 88(%rsp), %rdx              /* rip, cs, rflags, rsp, ss */
    cld
    call isr_dispatch
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $16, %rsp
    iretq

    .section .note.GNU-stack, "", @progbits
