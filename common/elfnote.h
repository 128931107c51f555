/* elfnote.h - is an executable a Go program (its "Go" build-id note)? */
#ifndef CKSHIM_ELFNOTE_H
#define CKSHIM_ELFNOTE_H

#include <stddef.h>

/* Notes of one PT_NOTE segment, LEN bytes at P: 1 if one is Go's. */
int ck_note_is_go(const char *p, size_t len);

/* The ELF file at PATH (/proc/PID/exe): 1 if it is a Go program, 0 if
 * not or unreadable. */
int ck_file_is_go(const char *path);

#endif
