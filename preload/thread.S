/* thread.S - a raw thread for the image writer's compression team.
 *
 * long shim_raw_thread(void (*fn)(void *), void *arg, void *stack_top,
 *                      volatile int *ctid)
 * Starts fn(arg) on stack_top in a new thread that shares memory, files,
 * signal handlers and (no CLONE_SETTLS) the caller's TLS. The kernel sets
 * *ctid to the tid and clears it (with a futex wake) when the thread
 * exits, so the caller knows when the stack is free. Returns the tid or
 * -errno. fn must only make raw syscalls (see dump.c).
 */
    .text
    .globl shim_raw_thread
    .hidden shim_raw_thread
    .type shim_raw_thread, @function
shim_raw_thread:
    andq $-16, %rdx
    subq $16, %rdx
    movq %rdi, 0(%rdx)              /* fn */
    movq %rsi, 8(%rdx)              /* arg */
    movq %rdx, %rsi                 /* child stack */
    movq %rcx, %r10                 /* ctid */
    movq %rcx, %rdx                 /* ptid */
    xorl %r8d, %r8d
    /* VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|PARENT_SETTID|CHILD_CLEARTID */
    movl $0x00350f00, %edi
    movl $56, %eax
    syscall
    testq %rax, %rax
    jz 1f
    ret
1:  xorl %ebp, %ebp
    popq %rax
    popq %rdi
    call *%rax
    movl $60, %eax                  /* exit: this thread only */
    xorl %edi, %edi
    syscall
    hlt
    .size shim_raw_thread, .-shim_raw_thread
    .section .note.GNU-stack,"",@progbits
