/* elfnote.c - is an executable a Go program?
 *
 * Go's linker writes a build-id note (name "Go", type 4) into every
 * program, also ones linked by the system linker (cgo). The shim looks at
 * its own program's segments in memory (seccomp.c); coord reads the file
 * of another process (checkpoint.c). */
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfnote.h"

int ck_note_is_go(const char *p, size_t len)
{
    size_t off = 0;
    while (off + 12 <= len) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, p + off, 4);
        memcpy(&descsz, p + off + 4, 4);
        memcpy(&type, p + off + 8, 4);
        const char *name = p + off + 12;
        /* Go's linker writes namesz 4: "Go\0\0" */
        if ((namesz == 3 || namesz == 4) && off + 12 + namesz <= len && !memcmp(name, "Go", 3) &&
            type == 4)
            return 1;
        off += 12 + (((size_t)namesz + 3) & ~(size_t)3) + (((size_t)descsz + 3) & ~(size_t)3);
    }
    return 0;
}

int ck_file_is_go(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int go = 0;
    Elf64_Ehdr eh;
    Elf64_Phdr ph[64];
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phnum == 0 || eh.e_phnum > 64)
        goto out;
    size_t phlen = (size_t)eh.e_phnum * sizeof(Elf64_Phdr);
    if (pread(fd, ph, phlen, (off_t)eh.e_phoff) != (ssize_t)phlen)
        goto out;
    for (int i = 0; i < eh.e_phnum && !go; i++) {
        if (ph[i].p_type != PT_NOTE || ph[i].p_filesz == 0 || ph[i].p_filesz > 65536)
            continue;
        char *buf = malloc(ph[i].p_filesz);
        if (!buf)
            break;
        if (pread(fd, buf, ph[i].p_filesz, (off_t)ph[i].p_offset) == (ssize_t)ph[i].p_filesz)
            go = ck_note_is_go(buf, ph[i].p_filesz);
        free(buf);
    }
out:
    close(fd);
    return go;
}
