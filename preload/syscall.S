/* syscall.S - libc's syscall(), interposed to see rseq registrations
 * and to resume io_getevents after a checkpoint.
 *
 * A program that registers its own rseq area (after unregistering
 * glibc's, or with glibc's registration turned off) does so through
 * syscall(SYS_rseq, ...); the kernel offers no way to read a
 * registration back, so the shim must see the call to make it again in
 * the restored thread (pattr.c). io_getevents has no libc function, so
 * programs without libaio call it through syscall(); a checkpoint makes
 * it fail with EINTR (waits.c resumes it). Every other call jumps straight on to
 * the next syscall() (libc's) with the caller's registers and stack
 * untouched: no frame of ours stays on the stack, which matters for raw
 * clone and vfork through syscall().
 */
#include <asm/unistd_64.h>

    .text
    .globl syscall
    .type syscall, @function
syscall:
    cmpq $__NR_rseq, %rdi
    je shim_syscall_rseq
    cmpq $__NR_io_getevents, %rdi
    je shim_syscall_getevents
    movq shim_next_syscall(%rip), %rax
    testq %rax, %rax
    jz shim_syscall_first
    jmp *%rax
    .size syscall, .-syscall

    .section .note.GNU-stack, "", @progbits
