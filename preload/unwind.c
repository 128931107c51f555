/* unwind.c - each thread's backtrace at checkpoint time, for `coord
 * inspect`. libunwind walks from the context the checkpoint signal
 * interrupted, so the frames are the program's, not the shim's.
 *
 * Only the walk (unw_step: a few microseconds a thread) happens before the
 * memory map is captured. Names are looked up after it, once per address,
 * in the symbol tables of the mapped files:
 * libunwind's unw_get_proc_name re-reads /proc/PID/maps and maps the ELF
 * file again for every frame, which cost 1.5 s of pause for 500 threads
 * (and it asks getpid(), which a restored process answers with its old
 * pid). Many threads share their frames, so every address is looked up
 * once. */
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <fcntl.h>
#include <libunwind.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "procparse.h"
#include "shim.h"

static int in_unwind;

/* libunwind opens a pipe (pipe2, O_CLOEXEC | O_NONBLOCK) the first time
 * it walks, to test addresses, and keeps its numbers in a static. Left
 * open, it would sit among the program's descriptors: saved as the
 * program's own, or seen by a program that lists /proc/self/fd after
 * restore (zdtm's fd test). So the pipe exists only while the shim
 * walks: opened at high numbers (880 and up) on the first walk, closed
 * after every walk, and put back at the same numbers before the next one
 * (libunwind reads from a closed pipe, sees EBADF and opens a new one
 * too, but by then the number may be the program's). */
static int unw_pipe[2] = {-1, -1};

SHIM_API int pipe2(int fds[2], int flags)
{
    static int (*next)(int *, int);
    SHIM_RESOLVE(next, "pipe2");
    if (!next)
        return -1;
    int r = next(fds, flags);
    for (int i = 0; r == 0 && in_unwind && i < 2; i++) {
        int hi = fcntl(fds[i], F_DUPFD_CLOEXEC, 880);
        if (hi >= 0) {
            close(fds[i]);
            fds[i] = hi;
        }
        unw_pipe[i] = shim_skip_fds[2 + i] = fds[i];
    }
    return r;
}

/* Before the walks: libunwind's pipe back at its numbers. 0: walk; -1:
 * a number is the program's now, so no backtraces this time (a read
 * there would take the program's bytes). */
static int unwind_pipe_open(void)
{
    if (unw_pipe[0] < 0 || unw_pipe[1] < 0)
        return 0;                       /* first walk: libunwind opens it */
    if (fcntl(unw_pipe[0], F_GETFD) >= 0 || fcntl(unw_pipe[1], F_GETFD) >= 0)
        return -1;
    int p[2];
    if (syscall(SYS_pipe2, p, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        if (p[i] != unw_pipe[i] && dup3(p[i], unw_pipe[i], O_CLOEXEC) < 0)
            ok = 0;
        shim_skip_fds[2 + i] = unw_pipe[i];
    }
    for (int i = 0; i < 2; i++)
        if (p[i] != unw_pipe[0] && p[i] != unw_pipe[1])
            close(p[i]);
    if (!ok)
        unwind_pipe_close();
    return ok ? 0 : -1;
}

/* libunwind finds each frame's unwind tables through dl_iterate_phdr,
 * which takes the dynamic loader's lock: a thread parked inside dlopen,
 * dlclose or a dl_iterate_phdr of its own holds it, and the walk would
 * wait for it for ever (the program frozen for good). During the walks
 * the shim answers libunwind itself, from /proc/self/maps and the ELF
 * headers mapped there (nothing changes the address space while every
 * thread is parked): a file, or the vdso, mapped at offset 0 that starts
 * with an ELF header and also has an executable mapping. Read once per
 * checkpoint; everyone else gets libc's. */
#define MAX_OBJS 1024
static struct dl_phdr_info objs[MAX_OBJS];
static int nobjs = -1;                  /* -1: not read since the last walks */

static void read_objs(void)
{
    static char buf[65536];
    static uint64_t cand_ino[MAX_OBJS], cand_dev[MAX_OBJS];
    static uint8_t exec[MAX_OBJS];
    int n = 0, fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    size_t have = 0;
    for (;;) {
        ssize_t r = fd < 0 || mem < 0 ? 0 : read(fd, buf + have, sizeof buf - 1 - have);
        if (r > 0)
            have += (size_t)r;
        buf[have] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = 0;
            struct ck_maps_entry e;
            int vdso = 0;
            if (ck_parse_maps_line(line, &e) == 0 && (e.ino || (vdso = !strcmp(e.path, "[vdso]")))) {
                uint64_t dev = ((uint64_t)e.dev_major << 20) | e.dev_minor;
                Elf64_Ehdr eh;
                if (e.offset == 0 && (e.prot & PROT_READ) && n < MAX_OBJS &&
                    pread(mem, &eh, sizeof eh, (off_t)e.start) == (ssize_t)sizeof eh &&
                    !memcmp(eh.e_ident, ELFMAG, SELFMAG) && eh.e_phentsize == sizeof(Elf64_Phdr) &&
                    eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) <= e.end - e.start) {
                    const Elf64_Phdr *ph = (const Elf64_Phdr *)(e.start + eh.e_phoff);
                    uint64_t first = ~0ULL;
                    for (int k = 0; k < eh.e_phnum; k++)
                        if (ph[k].p_type == PT_LOAD && ph[k].p_offset == 0)
                            first = ph[k].p_vaddr & ~0xfffULL;
                    if (first != ~0ULL) {
                        objs[n].dlpi_addr = e.start - first;
                        objs[n].dlpi_name = "";
                        objs[n].dlpi_phdr = ph;
                        objs[n].dlpi_phnum = eh.e_phnum;
                        cand_dev[n] = dev;
                        cand_ino[n] = e.ino;
                        exec[n] = vdso;
                        n++;
                    }
                }
                /* code of the latest object of this file */
                for (int k = n - 1; k >= 0 && (e.prot & PROT_EXEC); k--)
                    if (cand_ino[k] == e.ino && cand_dev[k] == dev) {
                        exec[k] = 1;
                        break;
                    }
            }
            line = nl + 1;
        }
        have -= (size_t)(line - buf);
        memmove(buf, line, have);
        if (r <= 0)
            break;
    }
    if (fd >= 0)
        close(fd);
    if (mem >= 0)
        close(mem);
    nobjs = 0;
    for (int k = 0; k < n; k++)
        if (exec[k])
            objs[nobjs++] = objs[k];
}

SHIM_API int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    static int (*next)(int (*)(struct dl_phdr_info *, size_t, void *), void *);
    SHIM_RESOLVE(next, "dl_iterate_phdr");
    if (!in_unwind)
        return next ? next(cb, data) : 0;
    if (nobjs < 0)
        read_objs();
    for (int k = 0; k < nobjs; k++) {
        int r = cb(&objs[k], offsetof(struct dl_phdr_info, dlpi_adds), data);
        if (r)
            return r;
    }
    return 0;
}

void unwind_pipe_close(void)
{
    nobjs = -1;
    for (int i = 0; i < 2; i++)
        if (shim_skip_fds[2 + i] >= 0) {
            close(shim_skip_fds[2 + i]);
            shim_skip_fds[2 + i] = -1;
        }
}

void unwind_thread(struct ck_thread *t, ucontext_t *uc)
{
    static int disabled = -1;
    if (disabled < 0)
        disabled = getenv("CKSHIM_NO_BACKTRACE") != NULL;
    t->nframes = 0;
    if (disabled || !uc)
        return;
    if (shim_skip_fds[2] < 0 && unwind_pipe_open() < 0)
        return;
    unw_cursor_t c;
    in_unwind = 1;
    if (unw_init_local2(&c, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) < 0) {
        in_unwind = 0;
        return;
    }
    do {
        struct ck_frame *f = &t->frames[t->nframes];
        unw_word_t ip = 0;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        f->ip = ip;
        f->off = 0;
        f->name[0] = 0;
        t->nframes++;
    } while (t->nframes < CK_MAX_FRAMES && unw_step(&c) > 0);
    in_unwind = 0;
}

/* The program headers and one symbol table of a mapped ELF file (or of
 * the vdso), copied into an anonymous mapping: read with pread, not
 * mapped, so a file truncated meanwhile cannot raise SIGBUS here. */
struct elf_view {
    uint32_t path_off;                  /* which region path */
    char *buf;                          /* NULL: no symbols */
    size_t buflen;
    const Elf64_Phdr *ph;
    int phnum;
    const Elf64_Sym *syms;
    size_t nsyms;
    const char *strs;
    size_t strs_len;
};

#define MAX_VIEWS 64
#define MEMO 1024
static struct elf_view views[MAX_VIEWS];
static int nviews;
static struct memo {
    uint64_t ip;
    uint64_t off;
    char name[sizeof(((struct ck_frame *)0)->name)];
} memo[MEMO];

/* Copy len bytes at off of the image (fd, or mem when fd < 0) of size
 * size into dst. */
static int fetch(int fd, const char *mem, uint64_t size, uint64_t off, size_t len, void *dst)
{
    if (off > size || len > size - off)
        return -1;
    if (fd < 0) {
        memcpy(dst, mem + off, len);
        return 0;
    }
    for (size_t got = 0; got < len;) {
        ssize_t r = pread(fd, (char *)dst + got, len - got, (off_t)(off + got));
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *scratch(size_t len)
{
    void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Load the program headers and the symbol table (.symtab, else .dynsym)
 * of the ELF image in fd or mem. */
static int elf_load(struct elf_view *v, int fd, const char *mem, uint64_t size)
{
    Elf64_Ehdr eh;
    if (fetch(fd, mem, size, 0, sizeof eh, &eh) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_shentsize != sizeof(Elf64_Shdr) || !eh.e_shnum)
        return -1;
    size_t shlen = (size_t)eh.e_shnum * sizeof(Elf64_Shdr);
    Elf64_Shdr *sh = scratch(shlen);
    if (!sh)
        return -1;
    int ret = -1;
    const Elf64_Shdr *best = NULL;
    if (fetch(fd, mem, size, eh.e_shoff, shlen, sh) < 0)
        goto out;
    for (int i = 0; i < eh.e_shnum; i++)
        if (sh[i].sh_type == SHT_SYMTAB || (sh[i].sh_type == SHT_DYNSYM && !best))
            best = &sh[i];
    if (!best || best->sh_link >= eh.e_shnum)
        goto out;
    const Elf64_Shdr *st = &sh[best->sh_link];
    size_t phlen = (size_t)eh.e_phnum * sizeof(Elf64_Phdr);
    if (best->sh_size > size || st->sh_size > size)
        goto out;
    v->buflen = phlen + best->sh_size + st->sh_size;
    if (!(v->buf = scratch(v->buflen)))
        goto out;
    if (fetch(fd, mem, size, eh.e_phoff, phlen, v->buf) < 0 ||
        fetch(fd, mem, size, best->sh_offset, best->sh_size, v->buf + phlen) < 0 ||
        fetch(fd, mem, size, st->sh_offset, st->sh_size, v->buf + phlen + best->sh_size) < 0) {
        munmap(v->buf, v->buflen);
        v->buf = NULL;
        goto out;
    }
    v->ph = (const Elf64_Phdr *)v->buf;
    v->phnum = eh.e_phnum;
    v->syms = (const Elf64_Sym *)(v->buf + phlen);
    v->nsyms = best->sh_size / sizeof(Elf64_Sym);
    v->strs = v->buf + phlen + best->sh_size;
    v->strs_len = st->sh_size;
    ret = 0;
out:
    munmap(sh, shlen);
    return ret;
}

static struct elf_view *view_of(const struct ck_region *r)
{
    for (int i = 0; i < nviews; i++)
        if (views[i].path_off == r->path_off)
            return views[i].buf ? &views[i] : NULL;
    if (nviews >= MAX_VIEWS)
        return NULL;
    struct elf_view *v = &views[nviews++];
    memset(v, 0, sizeof *v);
    v->path_off = r->path_off;
    const char *path = g_shim.strtab + r->path_off;
    if (!strcmp(path, "[vdso]")) {
        elf_load(v, -1, (const char *)r->start, r->end - r->start);
    } else if ((r->flags & CK_REG_FILE) && !(r->flags & CK_REG_DELETED)) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0)
            return NULL;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
            elf_load(v, fd, NULL, (uint64_t)st.st_size);
        close(fd);
    }
    return v->buf ? v : NULL;
}

/* The region holding ip (regions are sorted by address). */
static const struct ck_region *region_of(uint64_t ip)
{
    uint32_t lo = 0, hi = g_shim.nregions;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        const struct ck_region *r = &g_shim.regions[mid];
        if (ip < r->start)
            hi = mid;
        else if (ip >= r->end)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

/* The function symbol of v that holds the link-time address vaddr. */
static const Elf64_Sym *sym_at(const struct elf_view *v, uint64_t vaddr)
{
    const Elf64_Sym *best = NULL;
    for (size_t i = 0; i < v->nsyms; i++) {
        const Elf64_Sym *s = &v->syms[i];
        int type = ELF64_ST_TYPE(s->st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF ||
            s->st_value > vaddr || (s->st_size && vaddr - s->st_value >= s->st_size) ||
            s->st_name >= v->strs_len)
            continue;
        if (!best || s->st_value > best->st_value)
            best = s;
    }
    return best;
}

/* Name the code at ip (look up pc, the address inside the call for a
 * return address). */
static void lookup(uint64_t ip, uint64_t pc, struct memo *m)
{
    m->ip = ip;
    m->name[0] = 0;
    m->off = 0;
    const struct ck_region *r = region_of(pc);
    struct elf_view *v = r ? view_of(r) : NULL;
    if (!v)
        return;
    uint64_t foff = pc - r->start + r->offset, vaddr = 0;
    int found = 0;
    for (int i = 0; i < v->phnum && !found; i++)
        if (v->ph[i].p_type == PT_LOAD && foff >= v->ph[i].p_offset &&
            foff - v->ph[i].p_offset < v->ph[i].p_filesz) {
            vaddr = foff - v->ph[i].p_offset + v->ph[i].p_vaddr;
            found = 1;
        }
    if (!found)
        return;
    const Elf64_Sym *best = sym_at(v, vaddr);
    if (!best)
        return;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(v->strs_len - best->st_name),
             v->strs + best->st_name);
    m->off = ip - (pc - (vaddr - best->st_value));
}

/* Fill in the names of every captured thread's frames. Needs the regions
 * (capture_regions); its buffers are unmapped before it returns. */
void unwind_names(void)
{
    nviews = 0;
    for (int i = 0; i < MEMO; i++)
        memo[i].ip = 0;
    for (uint32_t t = 0; t < g_shim.nthreads; t++) {
        struct ck_thread *th = &g_shim.threads[t];
        for (uint32_t f = 0; f < th->nframes && f < CK_MAX_FRAMES; f++) {
            struct ck_frame *fr = &th->frames[f];
            /* Above the first frame ip is a return address: the call is
             * the instruction before it. */
            uint64_t pc = f ? fr->ip - 1 : fr->ip;
            struct memo *m = &memo[(fr->ip * 0x9E3779B97F4A7C15ULL) >> 54];
            if (m->ip != fr->ip)
                lookup(fr->ip, pc, m);
            memcpy(fr->name, m->name, sizeof fr->name);
            fr->off = m->off;
        }
    }
    for (int i = 0; i < nviews; i++)
        if (views[i].buf)
            munmap(views[i].buf, views[i].buflen);
    nviews = 0;
}

/* "NAME" (or "NAME+0xOFF") for the function at addr in a loaded object,
 * for messages (a hook that refused a checkpoint): dladdr knows only
 * exported symbols, and programs are seldom linked with -rdynamic, so
 * the object's own .symtab is read too; else "0xADDR (FILE+0xOFF)".
 * Runs in the manager while the program runs (it may take locks). */
void unwind_symbol_name(const void *addr, char *out, size_t len)
{
    Dl_info di;
    struct link_map *lm = NULL;
    if (!dladdr1(addr, &di, (void **)&lm, RTLD_DL_LINKMAP) || !di.dli_fname) {
        snprintf(out, len, "%p", addr);
        return;
    }
    if (di.dli_sname && di.dli_saddr == addr) {
        snprintf(out, len, "%s", di.dli_sname);
        return;
    }
    /* The executable's own link_map has no name (dladdr gives argv[0]);
     * after a restore readlink answers the program's path (procpath.c). */
    char exe[CK_PATH_MAX];
    const char *file = lm && lm->l_name[0] ? lm->l_name : NULL;
    if (!file) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        file = n > 0 ? exe : "/proc/self/exe";
    }
    uint64_t vaddr = (uint64_t)addr - (lm ? lm->l_addr : 0);
    struct elf_view v;
    memset(&v, 0, sizeof v);
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        elf_load(&v, fd, NULL, (uint64_t)st.st_size);
    if (fd >= 0)
        close(fd);
    const Elf64_Sym *s = v.buf ? sym_at(&v, vaddr) : NULL;
    if (s && vaddr == s->st_value)
        snprintf(out, len, "%.*s", (int)(v.strs_len - s->st_name), v.strs + s->st_name);
    else if (s)
        snprintf(out, len, "%.*s+0x%llx", (int)(v.strs_len - s->st_name), v.strs + s->st_name,
                 (unsigned long long)(vaddr - s->st_value));
    else
        snprintf(out, len, "%p (%s+0x%llx)", addr, file, (unsigned long long)vaddr);
    if (v.buf)
        munmap(v.buf, v.buflen);
}
