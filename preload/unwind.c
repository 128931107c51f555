/* unwind.c - each thread's backtrace at checkpoint time, for `coord
 * inspect`. libunwind walks from the context the checkpoint signal
 * interrupted, so the frames are the program's, not the shim's.
 *
 * Only the walk (unw_step: a few microseconds a thread) happens with the
 * threads parked. Names are looked up once for the whole process after
 * the memory map is captured, in the symbol tables of the mapped files:
 * libunwind's unw_get_proc_name re-reads /proc/PID/maps and maps the ELF
 * file again for every frame, which cost 1.5 s of pause for 500 threads
 * (and it asks getpid(), which a restored process answers with its old
 * pid). Many threads share their frames, so every address is looked up
 * once. */
#define UNW_LOCAL_ONLY
#include <elf.h>
#include <fcntl.h>
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
        unw_word_t ip = 0;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        f->ip = ip;
        f->off = 0;
        f->name[0] = 0;
        t->nframes++;
    } while (t->nframes < CK_MAX_FRAMES && unw_step(&c) > 0);
}

/* One mapped ELF file (or the vdso, read in place) and its symbols. */
struct elf_view {
    uint32_t path_off;                  /* which region path; ~0u: unused */
    const char *base;
    size_t len;
    int mapped;                         /* base is our mmap of the file */
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

/* Find the symbol tables of an ELF image at v->base (len bytes). */
static int elf_parse(struct elf_view *v)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)v->base;
    if (v->len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_phentsize != sizeof(Elf64_Phdr) ||
        eh->e_phoff > v->len || (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > v->len - eh->e_phoff)
        return -1;
    v->ph = (const Elf64_Phdr *)(v->base + eh->e_phoff);
    v->phnum = eh->e_phnum;
    if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > v->len ||
        (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > v->len - eh->e_shoff)
        return -1;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(v->base + eh->e_shoff);
    const Elf64_Shdr *best = NULL;
    for (int i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_SYMTAB || (sh[i].sh_type == SHT_DYNSYM && !best))
            best = &sh[i];
    if (!best || best->sh_link >= eh->e_shnum || best->sh_offset > v->len ||
        best->sh_size > v->len - best->sh_offset)
        return -1;
    const Elf64_Shdr *st = &sh[best->sh_link];
    if (st->sh_offset > v->len || st->sh_size > v->len - st->sh_offset)
        return -1;
    v->syms = (const Elf64_Sym *)(v->base + best->sh_offset);
    v->nsyms = best->sh_size / sizeof(Elf64_Sym);
    v->strs = v->base + st->sh_offset;
    v->strs_len = st->sh_size;
    return 0;
}

static struct elf_view *view_of(const struct ck_region *r)
{
    for (int i = 0; i < nviews; i++)
        if (views[i].path_off == r->path_off)
            return views[i].base ? &views[i] : NULL;
    if (nviews >= MAX_VIEWS)
        return NULL;
    struct elf_view *v = &views[nviews++];
    memset(v, 0, sizeof *v);
    v->path_off = r->path_off;
    const char *path = g_shim.strtab + r->path_off;
    if (!strcmp(path, "[vdso]") && r->offset == 0) {
        v->base = (const char *)r->start;
        v->len = r->end - r->start;
    } else if ((r->flags & CK_REG_FILE) && !(r->flags & CK_REG_DELETED)) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0)
            return NULL;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
            st.st_size < (1LL << 32)) {
            void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m != MAP_FAILED) {
                v->base = m;
                v->len = (size_t)st.st_size;
                v->mapped = 1;
            }
        }
        close(fd);
    }
    if (v->base && elf_parse(v) < 0) {
        if (v->mapped)
            munmap((void *)v->base, v->len);
        v->base = NULL;
    }
    return v->base ? v : NULL;
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
    if (!best)
        return;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(v->strs_len - best->st_name),
             v->strs + best->st_name);
    m->off = ip - (pc - (vaddr - best->st_value));
}

/* Fill in the names of every captured thread's frames. Needs the regions
 * (capture_regions); maps files only for the time of the call. */
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
        if (views[i].mapped)
            munmap((void *)views[i].base, views[i].len);
    nviews = 0;
}
