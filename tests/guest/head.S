/* SPDX-License-Identifier: MIT */
/*
 * vdk test guest: entry points and static page tables.
 *   pvh_start  (32-bit, PVH: ebx = hvm_start_info) -- named by the ELF note
 *   entry64    (64-bit, bzImage: rsi = boot_params) -- at load + 0x200
 * Both switch to our own identity map of 4 GiB (2 MiB pages), GDT and
 * stack, clear .bss and call guest_main(kind, info).
 */
#define BOOT_BZIMAGE 1
#define BOOT_PVH 2

    .section .head, "ax"
    .code32
    .globl pvh_start
pvh_start:
    cli
    cld
    mov %ebx, %esi                  /* keep hvm_start_info */
    lgdt gdt_desc
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax                  /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx           /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax            /* PG | PE */
    mov %eax, %cr0
    mov $BOOT_PVH, %edi
    ljmp $0x10, $start64

    .org 0x200
    .code64
    .globl entry64
entry64:
    cli
    cld
    mov $BOOT_BZIMAGE, %edi
    lgdt gdt_desc
    mov $pml4, %rax
    mov %rax, %cr3
    lea stack_top(%rip), %rsp       /* the boot protocol gives no stack */
    push $0x10
    lea start64(%rip), %rax
    push %rax
    lretq

start64:
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov %esi, %esi                  /* zero-extend the info pointer */
    mov %rdi, %r12
    mov %rsi, %r13
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    shr $3, %rcx                    /* .bss is 16-byte aligned and sized */
    xor %eax, %eax
    rep stosq
    lea stack_top(%rip), %rsp
    mov %r12, %rdi
    mov %r13, %rsi
    call guest_main
1:  hlt
    jmp 1b

    .section .data
    .balign 16
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff        /* 0x08: 32-bit code */
    .quad 0x00af9b000000ffff        /* 0x10: 64-bit code */
    .quad 0x00cf93000000ffff        /* 0x18: data */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt

    .balign 4096
pml4:
    .quad pdpt + 3
    .fill 511, 8, 0
pdpt:
    .quad pd + 3
    .quad pd + 0x1003
    .quad pd + 0x2003
    .quad pd + 0x3003
    .fill 508, 8, 0
pd:
    .set i, 0
    .rept 2048
    .quad (i << 21) | 0x83
    .set i, i + 1
    .endr

    .section .bss
    .balign 16
stack:
    .skip 16384
stack_top:

    /* PVH entry point for loaders (XEN_ELFNOTE_PHYS32_ENTRY = 18). */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .long pvh_start

    .section .note.GNU-stack, "", @progbits
