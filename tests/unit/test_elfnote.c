/* test_elfnote.c - telling a Go program by its build-id note: notes as
 * Go's linker and others write them, truncated and hostile ones, and ELF
 * files (a C program, a fake Go program, garbage, nothing).
 */
#include <elf.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "elfnote.h"

/* one note: name (namesz bytes, padded to 4), desc of descsz bytes */
static size_t put_note(char *p, const char *name, uint32_t namesz, uint32_t descsz, uint32_t type)
{
    memcpy(p, &namesz, 4);
    memcpy(p + 4, &descsz, 4);
    memcpy(p + 8, &type, 4);
    size_t n = ((size_t)namesz + 3) & ~(size_t)3, d = ((size_t)descsz + 3) & ~(size_t)3;
    memset(p + 12, 0, n + d);
    memcpy(p + 12, name, namesz);
    memset(p + 12 + n, 'x', descsz);
    return 12 + n + d;
}

static void notes(void **state)
{
    (void)state;
    char buf[256];
    size_t n = put_note(buf, "GNU", 4, 20, 3); /* NT_GNU_BUILD_ID first */
    n += put_note(buf + n, "Go\0", 4, 40, 4);
    assert_int_equal(ck_note_is_go(buf, n), 1);
    /* the GNU note alone, Go's name with another type, a cut note */
    assert_int_equal(ck_note_is_go(buf, 32), 0);
    n = put_note(buf, "Go\0", 4, 8, 1);
    assert_int_equal(ck_note_is_go(buf, n), 0);
    n = put_note(buf, "Go\0", 4, 8, 4);
    assert_int_equal(ck_note_is_go(buf, 14), 0);
    assert_int_equal(ck_note_is_go(buf, 0), 0);
    /* sizes that would wrap or run past the end stop the walk */
    n = put_note(buf, "X", 1, 0, 1);
    uint32_t huge = 0xfffffffdu;
    memcpy(buf + 4, &huge, 4);
    put_note(buf + n, "Go\0", 4, 0, 4);
    assert_int_equal(ck_note_is_go(buf, n + 16), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void files(void **state)
{
    (void)state;
    char dir[] = "/tmp/ckelfnote.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(ck_file_is_go("/proc/self/exe"), 0); /* this C program */
    snprintf(path, sizeof path, "%s/none", dir);
    assert_int_equal(ck_file_is_go(path), 0);
    write_file(path, "#!/bin/sh\n", 10);
    assert_int_equal(ck_file_is_go(path), 0);
    /* an ELF header, one PT_NOTE with Go's note */
    struct {
        Elf64_Ehdr eh;
        Elf64_Phdr ph;
        char note[64];
    } f;
    memset(&f, 0, sizeof f);
    memcpy(f.eh.e_ident, ELFMAG, SELFMAG);
    f.eh.e_ident[EI_CLASS] = ELFCLASS64;
    f.eh.e_phoff = offsetof(__typeof__(f), ph);
    f.eh.e_phentsize = sizeof(Elf64_Phdr);
    f.eh.e_phnum = 1;
    f.ph.p_type = PT_NOTE;
    f.ph.p_offset = offsetof(__typeof__(f), note);
    f.ph.p_filesz = put_note(f.note, "Go\0", 4, 8, 4);
    write_file(path, &f, sizeof f);
    assert_int_equal(ck_file_is_go(path), 1);
    /* the note past the end of the file, too many headers */
    f.ph.p_offset = 4096;
    write_file(path, &f, sizeof f);
    assert_int_equal(ck_file_is_go(path), 0);
    f.ph.p_offset = offsetof(__typeof__(f), note);
    f.eh.e_phnum = 1000;
    write_file(path, &f, sizeof f);
    assert_int_equal(ck_file_is_go(path), 0);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(notes),
        cmocka_unit_test(files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
