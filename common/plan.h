/* plan.h - what coord hands the restorer: a flat, freestanding description
 * of the address space and threads to rebuild, prepared and checked by
 * coord (which has libc and has verified the whole image), so that the
 * restorer stays small and never parses the image's metadata itself.
 *
 * coord writes the plan into a memfd and execs `ckshim-restore PLANFD`,
 * and the image fd open. The plan lists every PAGES record (header and
 * file offset), so the restorer's threads can each pread and decode
 * records in parallel. The restorer maps the plan at CK_PLAN_ADDR.
 *
 *   CK_WINDOW_START  restorer text, data, bss (its stack and buffers)
 *   CK_PLAN_ADDR     the plan (read-only)
 *   CK_VDSO_TMP      vdso/vvar parked here while they move
 *   CK_WINDOW_END
 * No image region may overlap the window; coord refuses such images.
 */
#ifndef CKSHIM_PLAN_H
#define CKSHIM_PLAN_H

#include <stdint.h>

#include "image.h"

#define CK_WINDOW_START 0x100000000000ULL
#define CK_WINDOW_END 0x100040000000ULL
#define CK_PLAN_ADDR (CK_WINDOW_START + 0x10000000ULL)
#define CK_VDSO_TMP (CK_WINDOW_START + 0x20000000ULL)
#define CK_PROGRESS_ADDR (CK_WINDOW_START + 0x30000000ULL)
#define CK_PLAN_MAGIC 0x324e414c504b43ULL /* "CKPLAN2" */
#define CK_PLAN_MAX (64ULL << 20)
/* A child forked by its parent's restorer after the parent's memory is
 * in place (CK_CHILD_SHARED) maps its own plan in the slot its parent's
 * is not in (CK_PLAN_ADDR or this one, by depth), while it still reads
 * its parent's. */
#define CK_PLAN_ADDR2 (CK_PLAN_ADDR + CK_PLAN_MAX)

struct ck_plan {
    uint64_t magic;
    uint64_t size;                      /* bytes of the whole plan */
    uint32_t nregions, nthreads;
    uint64_t regions_off;               /* struct ck_plan_region[nregions] */
    uint64_t threads_off;               /* struct ck_plan_thread[nthreads] */
    uint64_t strings_off;               /* NUL-terminated paths */
    int32_t image_fd;                   /* positioned at the first PAGES record */
    int32_t status_fd;                  /* --detach: "ok PID" / "error: ..." or -1 */
    uint32_t verify;                    /* check every PAGES checksum */
    uint32_t pidns;                     /* restored in a pid namespace of its own: threads
                                           get their tids (set_tid), then every thread
                                           drops the namespace's capabilities (the shim,
                                           ck_restore_info.drop_caps) */
    uint64_t npages;                    /* pages expected in PAGES records */
    struct ck_mm mm;
    uint64_t auxv[CK_AUXV_WORDS];
    uint32_t auxv_bytes;
    uint32_t pad2;
    uint64_t vvar_start, vvar_end;
    uint64_t vclock_start, vclock_end;
    uint64_t vdso_start, vdso_end;
    uint64_t shim_info_addr;            /* struct ck_restore_info */
    uint64_t npagerecs;                 /* struct ck_plan_pagerec[npagerecs] */
    uint64_t pagerecs_off;
    uint32_t nworkers;                  /* threads that fill memory */
    int32_t gate_fd;                    /* >= 0: after filling memory, write a byte */
    int32_t ready_fd;                   /* to ready_fd, then read "ok\n" or "error: ...\n"
                                           from gate_fd before the program resumes */
    int32_t err_fd;                     /* coord's stderr for failures (foreground), or -1 */
    uint64_t nguards;                   /* struct ck_guard[nguards]: installed once */
    uint64_t guards_off;                /* memory is filled */
    uint32_t tree_gate;                 /* the gate has a second step (a process of a tree,
                                           or a single process whose counter moves at the
                                           gate): gate_fd and ready_fd stay open for the
                                           shim's report once it is whole (ck_restore_info) */
    uint32_t test_die_late;             /* tests only: 1 end after creating the threads,
                                           2 fail in the shim's restore_finish, 3 end
                                           before forking the children, 4 SIGKILL
                                           before the memory work */
    int32_t progress_fd;                /* >= 0: a page of struct ck_plan_progress (a
                                           memfd), mapped shared at CK_PROGRESS_ADDR:
                                           coord's gate keeper draws the progress line */
    uint32_t progress_slot;             /* from it; this process's entry */
    uint32_t test_slow_fill_ms;         /* tests only: each PAGES record takes this long */
    uint32_t stop_sig;                  /* ck_restore_info.stop_sig (a single process
                                           stopped when it was taken), or 0 */
    int32_t map_fd;                     /* a tree's pid map (memfd "ckshim-tree":
                                           int32 {vpid, pid now}[]), or -1 */
    uint32_t nchildren;                 /* struct ck_plan_child[nchildren]: processes of
                                           the tree this restorer forks (docs/DESIGN.md,
                                           "Tree members forked by the restorer") */
    uint64_t children_off;
    uint32_t nrlimits;                  /* set once the children are forked and the */
    uint32_t pad3;                      /* descriptors are in place */
    struct ck_plan_rlimit {
        uint32_t resource, pad;
        uint64_t cur, max;
    } rlim[CK_NRLIMIT];
};

/* A child the restorer forks before it clears its address space: it
 * takes its descriptor table from a preparer (coord, which made the
 * child's descriptors as if it were to exec) through sock, then runs the
 * plan it found there, as an exec'd restorer would. */
struct ck_plan_child {
    int32_t vpid;                       /* its pid in the image (messages) */
    int32_t set_tid;                    /* > 0: clone3 with this pid (--pidns) */
    int32_t sock;                       /* the preparer's SOCK_SEQPACKET socket */
    uint32_t slot;                      /* its index in the tree: its pid of now goes
                                           to map[2 * slot + 1] */
    uint32_t flags;                     /* CK_CHILD_* */
    uint32_t pad;
};
/* Forked once the parent's memory is in place: the regions both have
 * (same addresses, private, the same file or both anonymous) are kept,
 * and a page is written only where the child's differs, so that the two
 * share what they shared at the checkpoint (copy-on-write). Without it
 * the child is forked before the parent's memory work and starts bare. */
#define CK_CHILD_SHARED 0x1
/* Shares its parent's descriptor table (clone with CLONE_FILES): its
 * preparer sends only the child's own descriptors (plan, image, gate),
 * which it keeps wherever they land, and the child renumbers its plan's
 * descriptor fields to match (restorer.c: adopt_shared). */
#define CK_CHILD_FILES 0x2

/* What the preparer sends first (ck_plan_child.sock): then batches of at
 * most CK_ADOPT_BATCH descriptors (SCM_RIGHTS), each with its int32
 * target numbers as the message (-1: the working directory, to fchdir);
 * the child answers every batch with one byte. */
#define CK_ADOPT_MAGIC 0x54504f44414b43ULL /* "CKADOPT" */
#define CK_ADOPT_BATCH 250
struct ck_adopt_hdr {
    uint64_t magic;
    uint32_t count;                     /* descriptors, the directory included */
    int32_t hi;                         /* the highest target */
    uint32_t umask;
    int32_t plan_fd;                    /* the child's plan, among the targets */
};

/* The restore's progress (plan.progress_fd): per process of the image,
 * memory bytes to put in place (coord) and put in place so far (the
 * restorer's fillers, atomically). */
struct ck_plan_progress {
    uint64_t done, total;
};
#define CK_PROGRESS_SLOTS (4096 / sizeof(struct ck_plan_progress))

/* One PAGES record of the image: its header and where its payload is. */
struct ck_plan_pagerec {
    struct ck_rec rec;
    uint64_t offset;
};

struct ck_plan_region {
    uint64_t start, end;
    uint32_t prot;                      /* final PROT_* */
    uint32_t flags;                     /* CK_REG_* */
    uint64_t offset;                    /* file offset */
    uint32_t path_off;                  /* into the strings, CK_REG_FILE only */
    int32_t open_flags;                 /* O_RDONLY or O_RDWR */
    int32_t from_fd;                    /* >= 0: map MAP_SHARED from this fd
                                           (a deleted file or memfd coord
                                           recreated), else -1 */
    int32_t shmid;                      /* CK_REG_SYSV: the segment to attach */
    uint32_t shm_flags;                 /* CK_PLAN_SHM_* */
    uint32_t pad;
    uint64_t dev, ino;                  /* CK_REG_FILE: the file coord checked; the
                                           restorer maps only that file */
    uint64_t hugepage_size;             /* CK_REG_HUGETLB: bytes, 0 = the default */
};

/* ck_plan_region.shm_flags (CK_REG_SYSV regions) */
#define CK_PLAN_SHM_ATTACH 0x1          /* the attach starts here: shmat the segment */
#define CK_PLAN_SHM_FILL 0x2            /* made anew: attach writable, fill from the image */
#define CK_PLAN_SHM_RMID 0x4            /* IPC_RMID once attached (it was marked so) */
#define CK_PLAN_SHM_RDONLY 0x8          /* SHM_RDONLY */
#define CK_PLAN_SHM_EXEC 0x10           /* SHM_EXEC */

struct ck_plan_thread {
    uint32_t flags;                     /* CK_TF_* */
    int32_t tid;                        /* > 0: clone3 with this tid (set_tid), else any */
    uint64_t fsbase;
    uint64_t clear_tid_addr;
    struct ck_ctx ctx;
};

/* The kernel's struct prctl_mm_map (PR_SET_MM_MAP): the restorer sets the
 * saved layout with it, and after a restore in a pid namespace of the
 * program's own the shim sets it again with the program as exe_fd. */
struct ck_prctl_mm_map {
    uint64_t start_code, end_code, start_data, end_data;
    uint64_t start_brk, brk, start_stack;
    uint64_t arg_start, arg_end, env_start, env_end;
    uint64_t auxv;
    uint32_t auxv_size;
    uint32_t exe_fd;
};

static inline void ck_mm_map_fill(struct ck_prctl_mm_map *m, const struct ck_mm *mm,
                                  const uint64_t *auxv, uint32_t auxv_bytes, int exe_fd)
{
    m->start_code = mm->start_code;
    m->end_code = mm->end_code;
    m->start_data = mm->start_data;
    m->end_data = mm->end_data;
    m->start_brk = mm->start_brk;
    m->brk = mm->brk;
    m->start_stack = mm->start_stack;
    m->arg_start = mm->arg_start;
    m->arg_end = mm->arg_end;
    m->env_start = mm->env_start;
    m->env_end = mm->env_end;
    m->auxv = (uint64_t)(unsigned long)auxv;
    m->auxv_size = auxv_bytes;
    m->exe_fd = (uint32_t)exe_fd;
}

#endif
