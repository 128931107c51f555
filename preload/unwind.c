/* unwind.c - each thread's backtrace at checkpoint time (libunwind), for
 * `coord inspect`. Walks from the context the checkpoint signal
 * interrupted, so the frames are the program's, not the shim's. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

void unwind_thread(struct ck_thread *t, ucontext_t *uc)
{
    static int disabled = -1;
    if (disabled < 0)
        disabled = getenv("CKSHIM_NO_BACKTRACE") != NULL;
    t->nframes = 0;
    if (disabled || !uc)
        return;
    unw_cursor_t c;
    if (unw_init_local2(&c, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) < 0)
        return;
    do {
        struct ck_frame *f = &t->frames[t->nframes];
        unw_word_t ip = 0, off = 0;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        f->ip = ip;
        if (unw_get_proc_name(&c, f->name, sizeof f->name, &off) == 0)
            f->off = off;
        else
            f->name[0] = 0;
        t->nframes++;
    } while (t->nframes < CK_MAX_FRAMES && unw_step(&c) > 0);
}
