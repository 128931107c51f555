/* netrec_sys.S - the system call of a read on a recorded connection
 * (netrec.c), with the epoch loaded right after it.
 *
 * long netrec_syscall(struct nr_call *c): c->nr, c->a[0..5] in, the
 * result returned and c->epoch set to the journal epoch just after the
 * call returned. A checkpoint signal delivered as the call returns finds
 * the thread at netrec_sys_ret: the bytes were read before the
 * checkpoint, and the handler (netrec_park) pins the epoch of that moment
 * for them. Delivered during the call, the kernel restarts it from
 * netrec_sys_insn (SA_RESTART): the bytes come after the checkpoint.
 */
    .text
    .globl netrec_syscall
    .hidden netrec_syscall
    .type netrec_syscall, @function
netrec_syscall:
    pushq %rbx
    movq %rdi, %rbx
    movq 0(%rbx), %rax
    movq 8(%rbx), %rdi
    movq 16(%rbx), %rsi
    movq 24(%rbx), %rdx
    movq 32(%rbx), %r10
    movq 40(%rbx), %r8
    movq 48(%rbx), %r9
    .globl netrec_sys_insn
    .hidden netrec_sys_insn
netrec_sys_insn:
    syscall
    .globl netrec_sys_ret
    .hidden netrec_sys_ret
netrec_sys_ret:
    movq netrec_epoch_now(%rip), %rcx
    movq %rcx, 56(%rbx)
    popq %rbx
    ret
    .size netrec_syscall, .-netrec_syscall

    .section .note.GNU-stack, "", @progbits
