/* ctx.S - save a thread's park point (struct ck_ctx in common/image.h).
 *
 * int shim_ctx_save(struct ck_ctx *ctx)
 *   Stores rbx rbp r12-r15, the caller's rsp (after return), the return
 *   address, mxcsr and the x87 control word, and returns 0. The restorer
 *   resumes a thread by loading the same fields and jumping to rip with
 *   eax = 1, so the call appears to return a second time, with 1.
 *
 * struct ck_ctx: rbx 0, rbp 8, r12 16, r13 24, r14 32, r15 40, rsp 48,
 *                rip 56, mxcsr 64 (4 bytes), fpucw 68 (2 bytes).
 */
    .text
    .globl shim_ctx_save
    .hidden shim_ctx_save
    .type shim_ctx_save, @function
shim_ctx_save:
    movq %rbx, 0(%rdi)
    movq %rbp, 8(%rdi)
    movq %r12, 16(%rdi)
    movq %r13, 24(%rdi)
    movq %r14, 32(%rdi)
    movq %r15, 40(%rdi)
    leaq 8(%rsp), %rax
    movq %rax, 48(%rdi)
    movq (%rsp), %rax
    movq %rax, 56(%rdi)
    stmxcsr 64(%rdi)
    fnstcw 68(%rdi)
    xorl %eax, %eax
    ret
    .size shim_ctx_save, .-shim_ctx_save
    .section .note.GNU-stack,"",@progbits
