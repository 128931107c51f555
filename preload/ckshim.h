/* ckshim.h - the public interface of libshim.so for programs that want to
 * know about checkpoints. Nothing here is needed: ckshim works on programs
 * that were never written for it. Every symbol is prefixed ckshim_; look
 * them up with dlsym(RTLD_DEFAULT, ...) to stay runnable without the shim
 * (ckshim_try_register_hook below does that for hooks). */
#ifndef CKSHIM_H
#define CKSHIM_H

#include <dlfcn.h>
#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How many times this process has been restored from an image (0 for a
 * process that was started normally). */
unsigned ckshim_generation(void);

/* Checkpoint hooks (CRaC's beforeCheckpoint / afterRestore).
 *
 * fn(event, arg) is called with
 *   CKSHIM_EVENT_BEFORE_CHECKPOINT  before a checkpoint, while every thread of
 *       the program still runs; return 0 to let it go on, anything else to
 *       refuse it (coord checkpoint fails naming the hook; nothing is
 *       written and the program goes on);
 *   CKSHIM_EVENT_AFTER_CHECKPOINT   after the checkpoint, in the program that
 *       goes on (also when the checkpoint failed or was refused, for every
 *       hook whose before-hook had returned 0); not when the checkpoint
 *       ends the program (coord checkpoint --kill);
 *   CKSHIM_EVENT_AFTER_RESTORE      in a restored program, once all its
 *       threads run again.
 * Before-hooks run in registration order, after-hooks in reverse order,
 * one at a time on the shim's manager thread (every signal blocked). The
 * return value of an after-hook is ignored.
 *
 * ckshim_register_hook returns 0, or -1 with errno EINVAL (fn is NULL) or
 * ENOSPC (CKSHIM_MAX_HOOKS hooks registered already). It takes no lock and
 * allocates nothing: it may be called from any thread or signal handler.
 * Hooks cannot be removed: a hook that has nothing to do returns 0. Under
 * CKSHIM_DISABLE registration succeeds and hooks never run (nor does a
 * checkpoint). */
#define CKSHIM_EVENT_BEFORE_CHECKPOINT 0
#define CKSHIM_EVENT_AFTER_CHECKPOINT 1
#define CKSHIM_EVENT_AFTER_RESTORE 2
#define CKSHIM_MAX_HOOKS 64

int ckshim_register_hook(int (*fn)(int event, void *arg), void *arg);

/* ckshim_register_hook if the program runs under the shim, else -1 with
 * errno ENOSYS: a program using this runs the same without the shim. */
static inline int ckshim_try_register_hook(int (*fn)(int event, void *arg), void *arg)
{
#ifdef RTLD_DEFAULT
    void *where = RTLD_DEFAULT;
#else
    void *where = (void *)0; /* glibc's RTLD_DEFAULT, which needs _GNU_SOURCE */
#endif
    int (*reg)(int (*)(int, void *), void *);
    *(void **)&reg = dlsym(where, "ckshim_register_hook");
    if (!reg) {
        errno = ENOSYS;
        return -1;
    }
    return reg(fn, arg);
}

#ifdef __cplusplus
}
#endif

#endif
