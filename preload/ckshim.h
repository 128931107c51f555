/* ckshim.h - the public interface of libshim.so for programs that want to
 * know about checkpoints. Nothing here is needed: ckshim works on programs
 * that were never written for it. Every symbol is prefixed ckshim_; look
 * them up with dlsym(RTLD_DEFAULT, ...) to stay runnable without the shim. */
#ifndef CKSHIM_H
#define CKSHIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* How many times this process has been restored from an image (0 for a
 * process that was started normally). */
unsigned ckshim_generation(void);

#ifdef __cplusplus
}
#endif

#endif
