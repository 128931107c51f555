/* syscall.S - libc's syscall(), interposed to see rseq registrations
 * and to resume io_getevents after a checkpoint.
 *
 * A program that registers its own rseq area (after unregistering
 * glibc's, or with glibc's registration turned off) does so through
 * syscall(SYS_rseq, ...); the kernel offers no way to read a
 * registration back, so the shim must see the call to make it again in
 * the restored thread (pattr.c). io_getevents has no libc function, so
 * programs without libaio call it through syscall(); a checkpoint makes
 * it fail with EINTR (waits.c resumes it). The calls that give or take
 * pids and tids (getpid, gettid, kill, kcmp, wait4, setpgid, ...) are the
 * program's through the shim's wrappers after a restore
 * (shim_syscall_ids). Every other call jumps straight on to the next
 * syscall() (libc's) with the caller's registers and stack
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
    /* ids: the program's own calls (not the shim's, which want the
     * kernel's ids: a return address inside libshim.so) go through
     * shim_syscall_ids (wrappers.c), which answers and takes the ids the
     * program knows after a restore */
    cmpq $__NR_getpid, %rdi
    je 1f
    cmpq $__NR_gettid, %rdi
    je 1f
    cmpq $__NR_getppid, %rdi
    je 1f
    cmpq $__NR_kill, %rdi
    je 1f
    cmpq $__NR_tkill, %rdi
    je 1f
    cmpq $__NR_tgkill, %rdi
    je 1f
    cmpq $__NR_kcmp, %rdi
    je 1f
    cmpq $__NR_pidfd_open, %rdi
    je 1f
    cmpq $__NR_rt_sigqueueinfo, %rdi
    je 1f
    cmpq $__NR_rt_tgsigqueueinfo, %rdi
    je 1f
    cmpq $__NR_getpgrp, %rdi
    je 1f
    cmpq $__NR_getpgid, %rdi
    je 1f
    cmpq $__NR_getsid, %rdi
    je 1f
    cmpq $__NR_setpgid, %rdi
    je 1f
    cmpq $__NR_setsid, %rdi
    je 1f
    cmpq $__NR_wait4, %rdi
    je 1f
    cmpq $__NR_waitid, %rdi
    je 1f
    /* calls that take a pid or tid of the process (or of another) */
    cmpq $__NR_get_robust_list, %rdi
    je 1f
    cmpq $__NR_sched_setaffinity, %rdi
    je 1f
    cmpq $__NR_sched_getaffinity, %rdi
    je 1f
    cmpq $__NR_sched_setparam, %rdi
    je 1f
    cmpq $__NR_sched_getparam, %rdi
    je 1f
    cmpq $__NR_sched_setscheduler, %rdi
    je 1f
    cmpq $__NR_sched_getscheduler, %rdi
    je 1f
    cmpq $__NR_sched_rr_get_interval, %rdi
    je 1f
    cmpq $__NR_sched_setattr, %rdi
    je 1f
    cmpq $__NR_sched_getattr, %rdi
    je 1f
    cmpq $__NR_prlimit64, %rdi
    je 1f
    cmpq $__NR_process_vm_readv, %rdi
    je 1f
    cmpq $__NR_process_vm_writev, %rdi
    je 1f
    cmpq $__NR_migrate_pages, %rdi
    je 1f
    cmpq $__NR_move_pages, %rdi
    je 1f
    cmpq $__NR_getpriority, %rdi
    je 1f
    cmpq $__NR_setpriority, %rdi
    je 1f
    cmpq $__NR_ioprio_get, %rdi
    je 1f
    cmpq $__NR_ioprio_set, %rdi
    je 1f
    /* calls that change a socket's options, owner or locks, copy or
     * send descriptors, or make a process: the sockets the shim follows
     * (socktrack.c) are all forgotten, unless the shim makes the call */
    cmpq $__NR_setsockopt, %rdi
    je 3f
    cmpq $__NR_fcntl, %rdi
    je 3f
    cmpq $__NR_ioctl, %rdi
    je 3f
    cmpq $__NR_flock, %rdi
    je 3f
    cmpq $__NR_dup, %rdi
    je 3f
    cmpq $__NR_dup2, %rdi
    je 3f
    cmpq $__NR_dup3, %rdi
    je 3f
    cmpq $__NR_sendmsg, %rdi
    je 3f
    cmpq $__NR_sendmmsg, %rdi
    je 3f
    cmpq $__NR_clone, %rdi
    je 3f
    cmpq $__NR_clone3, %rdi
    je 3f
    cmpq $__NR_fork, %rdi
    je 3f
    cmpq $__NR_vfork, %rdi
    je 3f
    cmpq $__NR_pidfd_getfd, %rdi
    je 3f
2:  movq shim_next_syscall(%rip), %rax
    testq %rax, %rax
    jz shim_syscall_first
    jmp *%rax
1:  movq (%rsp), %rax
    leaq __ehdr_start(%rip), %r11
    cmpq %r11, %rax
    jb shim_syscall_ids
    leaq _etext(%rip), %r11
    cmpq %r11, %rax
    jb 2b
    jmp shim_syscall_ids
3:  movq (%rsp), %rax
    leaq __ehdr_start(%rip), %r11
    cmpq %r11, %rax
    jb 4f
    leaq _etext(%rip), %r11
    cmpq %r11, %rax
    jb 2b
4:  lock incl shim_socktrack_gen(%rip)
    jmp 2b
    .size syscall, .-syscall

    /* vfork is a fork: a child that runs in its parent's memory, with
     * its parent waiting in the kernel until it execs, cannot be
     * checkpointed (zdtm vfork00 keeps one waiting for a signal), while
     * a forked child is an ordinary member of the tree. A program that
     * uses vfork as POSIX allows (the child only execs or _exits) cannot
     * tell the difference; what it costs is the copy of page tables a
     * fork makes (docs/DESIGN.md, "vfork is a fork"). CKSHIM_VFORK=keep
     * (socktrack_init sets shim_vfork_keep), or a fork that fails with
     * ENOMEM, takes the real vfork: then no frame may stay on the stack
     * the child shares, so the followed sockets are forgotten here and
     * libc's vfork is jumped to (by its other name, which the shim does
     * not wrap) with the caller's stack as it was; a checkpoint refuses
     * the child until it execs. */
    .globl vfork
    .type vfork, @function
vfork:
    lock incl shim_socktrack_gen(%rip)
    cmpl $0, shim_vfork_keep(%rip)
    jne 1f
    /* fork; where it fails for want of memory (a large process under
     * strict overcommit: the reason programs use vfork), the real vfork,
     * once fork's frame is off the stack */
    subq $8, %rsp
    call fork@PLT
    addq $8, %rsp
    cmpl $-1, %eax
    jne 2f
    subq $8, %rsp
    call __errno_location@PLT
    addq $8, %rsp
    cmpl $12, (%rax) /* ENOMEM */
    je 1f
    movl $-1, %eax
2:  ret
1:  jmp __vfork@PLT
    .size vfork, .-vfork
    .hidden __ehdr_start
    .hidden _etext
    .hidden shim_socktrack_gen
    .hidden shim_vfork_keep

    .section .note.GNU-stack, "", @progbits
