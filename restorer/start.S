/* start.S - restorer entry, thread creation and the final jump.
 *
 * _start switches at once to a stack inside the restorer's own bss: the
 * kernel's stack may sit exactly where the image needs the program's.
 */
    .text
    .globl _start
    .type _start, @function
_start:
    movq %rsp, %rdi                 /* argc, argv[], envp[], auxv */
    movq restorer_stack_top(%rip), %rsp
    andq $-16, %rsp
    xorl %ebp, %ebp
    call restorer_main
1:  hlt
    jmp 1b
    .size _start, .-_start

/* long restorer_clone(flags, stack, ptid, ctid, tls, ctx)
 *   rdi      rsi    rdx   rcx   r8   r9
 * The child owns nothing but registers: it jumps straight to ctx (kept in
 * r12, which clone preserves) without touching its new stack. */
    .globl restorer_clone
    .type restorer_clone, @function
restorer_clone:
    pushq %r12
    movq %r9, %r12
    movq %rcx, %r10
    movl $56, %eax                  /* SYS_clone(flags, stack, ptid, ctid, tls) */
    syscall
    testq %rax, %rax
    jz 2f
    popq %r12
    ret
2:  movq %r12, %rdi
    jmp restorer_jump
    .size restorer_clone, .-restorer_clone

/* long restorer_clone3(args, size, ctx)
 *   rdi  rsi  rdx
 * As restorer_clone, with clone3 (set_tid: a thread gets the tid it had). */
    .globl restorer_clone3
    .type restorer_clone3, @function
restorer_clone3:
    pushq %r12
    movq %rdx, %r12
    movl $435, %eax                 /* SYS_clone3(args, size) */
    syscall
    testq %rax, %rax
    jz 3f
    popq %r12
    ret
3:  movq %r12, %rdi
    jmp restorer_jump
    .size restorer_clone3, .-restorer_clone3

/* void restorer_jump(const struct ck_ctx *ctx): resume a park point made
 * by shim_ctx_save (preload/ctx.S), which then returns 1. */
    .globl restorer_jump
    .type restorer_jump, @function
restorer_jump:
    ldmxcsr 64(%rdi)
    fldcw 68(%rdi)
    movq 0(%rdi), %rbx
    movq 8(%rdi), %rbp
    movq 16(%rdi), %r12
    movq 24(%rdi), %r13
    movq 32(%rdi), %r14
    movq 40(%rdi), %r15
    movq 56(%rdi), %rcx
    movq 48(%rdi), %rsp
    movl $1, %eax
    jmp *%rcx
    .size restorer_jump, .-restorer_jump

/* long restorer_spawn(fn, arg, stack_top, ctid): a helper thread that
 * runs fn(arg) and exits; the kernel clears *ctid when it is gone. */
    .globl restorer_spawn
    .type restorer_spawn, @function
restorer_spawn:
    andq $-16, %rdx
    subq $16, %rdx
    movq %rdi, 0(%rdx)
    movq %rsi, 8(%rdx)
    movq %rdx, %rsi
    movq %rcx, %r10
    movq %rcx, %rdx
    xorl %r8d, %r8d
    movl $0x00350f00, %edi
    movl $56, %eax
    syscall
    testq %rax, %rax
    jz 3f
    ret
3:  xorl %ebp, %ebp
    popq %rax
    popq %rdi
    call *%rax
    movl $60, %eax
    xorl %edi, %edi
    syscall
    hlt
    .size restorer_spawn, .-restorer_spawn

    .section .note.GNU-stack,"",@progbits
