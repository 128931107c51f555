/* coord.h - the coord command line tool: subcommands and shared helpers.
 *
 * Every subcommand is "int cmd_NAME(int argc, char **argv)" where argv[0]
 * is the subcommand's name and argv[1..argc-1] its arguments. main()
 * (coord.c) answers "--help"/"-h" itself before calling it, so commands
 * only see real arguments. Return values are exit codes: CK_EXIT_OK,
 * CK_EXIT_FAIL, CK_EXIT_USAGE.
 */
#ifndef CKSHIM_COORD_H
#define CKSHIM_COORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "ctlproto.h"

#define COORD_VERSION "0.1.0"

#define CK_EXIT_OK 0
#define CK_EXIT_FAIL 1
#define CK_EXIT_USAGE 2

/* ---- subcommands (one file each) ---- */
int cmd_run(int argc, char **argv);        /* run.c */
int cmd_checkpoint(int argc, char **argv); /* checkpoint.c */
int cmd_restore(int argc, char **argv);    /* restore.c */
int cmd_list(int argc, char **argv);       /* list.c */
int cmd_inspect(int argc, char **argv);    /* inspect.c */
int cmd_keygen(int argc, char **argv);     /* keygen.c */
int cmd_migrate(int argc, char **argv);    /* migrate.c */

/* ---- run.c, supervise.c: coord run as a supervisor ---- */

/* "coord run --every ... --images DIR ... -- PROG ARGS" (supervise.c). */
int ck_supervise(int argc, char **argv);

/* The header of an image file (app id, stamp; of a process tree's image,
 * the tree's, in an otherwise empty header). 0 or -1. supervise.c */
struct ck_header;
int ck_image_stamp(const char *path, struct ck_header *h);

/* "10s", "500ms", "2m", "1h", "30" (seconds): milliseconds, or -1.
 * supervise.c */
long long ck_parse_duration(const char *s);

/* Resolve PROG and check the shim can apply to it; path to exec in path,
 * the LD_PRELOAD value (malloc'ed) in *preload. 0 or CK_EXIT_FAIL (said). */
int ck_run_prepare(const char *prog, char *path, size_t pathlen, char **preload);

/* Exec the prepared program with the shim (and app_id, if not NULL).
 * Returns only on failure. */
int ck_run_exec(const char *path, const char *preload, const char *app_id, char **argv);
/* coord run's --no-file-versions and --shared-file PATH (for the program's
 * shim: CKSHIM_FILE_VERSIONS=0, CKSHIM_SHARED_FILES). 1: argv[*i] was
 * one (moved past it), 0: not one, -1: usage error (said). */
int ck_run_version_option(const char *cmd, int argc, char **argv, int *i);

/* Run the prepared program in a pid namespace of its own (--pidns) and
 * wait for it; returns its exit code. */
int ck_run_pidns(const char *path, const char *preload, const char *app_id, char **argv);

/* coord list: the supervised programs (supervise.c); j NULL: a table on f. */
struct ck_json;
void ck_supervise_list(FILE *f, struct ck_json *j, const char *sock_dir);

/* Set by the supervisor in the child it forks to run cmd_restore (restore.c
 * reads them; never set otherwise):
 * status_fd: >= 0 for a foreground restore too: the restored shim writes
 *   "ok PID" (or "error: ...") there, as with --detach;
 * again: the supervisor restores the image it restored last once more
 *   (the program crashed before its next checkpoint) and has checked that
 *   the counter is exactly one past the image's stamp (its own restore):
 *   the rollback check is skipped without --force's warning. */
struct ck_restore_extra {
    int status_fd;
    int again;
};
extern struct ck_restore_extra ck_restore_extra;

/* ---- pidns.c: a pid namespace of the program's own (--pidns) ---- */

/* Make a user namespace (uid and gid kept, setgroups denied) with a pid
 * namespace and fork its init (pid 1), which gets a mount namespace with
 * a /proc of its own and every signal blocked. Returns 0 in init, init's
 * pid in the caller (*status_rd: where init's program's wait status comes
 * from), -1 after a message naming cmd. detach: init starts a session of
 * its own and outlives coord; else it dies with coord. */
pid_t ck_pidns_start(const char *cmd, int detach, int *status_rd);

/* In init: fork with exactly pid in the namespace (clone3 set_tid), like
 * fork() otherwise. */
pid_t ck_pidns_fork_as(int pid);

/* clone(CLONE_PARENT): a child of the caller's parent, in the caller's
 * session and group; with that pid if pid > 0 (in a pid namespace of the
 * program's own), any otherwise. 0 in the child, its pid in the caller,
 * -1 with errno. */
pid_t ck_pidns_clone_parent_as(int pid);

/* In init: ordinary forks in the namespace get pids above pid from now on
 * (/proc/sys/kernel/ns_last_pid). 0 or -errno. */
int ck_pidns_set_last(int pid);

/* init's life once main_pid (the program, or the restored root) runs:
 * reap, forward TERM/INT/HUP/QUIT/USR1/USR2 that a process sent, end with
 * main_pid's status (a signal: 128 + it). Never returns. */
void ck_pidns_init(pid_t main_pid) __attribute__((noreturn));

/* The caller of ck_pidns_start in the foreground: forward those signals to
 * init, wait for it, and return the program's exit code (a program killed
 * by a signal: coord kills itself with it), CK_EXIT_FAIL if it never ran. */
int ck_pidns_wait(pid_t init, int status_rd);

/* pid is the init of a coord --pidns namespace (named ckshim-init) or the
 * coord outside whose child that is: the program it runs (init's first
 * child), else -1. */
int ck_pidns_program(int pid);

/* The pid (seen here) of the process that is inner in the pid namespace
 * ns (ck_pidns_of), or -1. */
int ck_pidns_find(uint64_t ns, int inner);

/* ---- inspect.c: "POSIX write lock on bytes 10-14", "flock read lock on
 * the whole file" (also in restore's messages) ---- */
struct ck_lock;
const char *ck_lock_describe(char *buf, size_t len, const struct ck_lock *k);

/* ---- action.c: --action-script PATH ---- */

/* Check that PATH is an executable regular file; its absolute path goes to
 * abs. Returns 0, or CK_EXIT_USAGE after a usage error naming it. */
int ck_action_check(const char *cmd, const char *path, char *abs, size_t len);

/* Run the script for stage ("pre-checkpoint", "post-checkpoint",
 * "post-restore") with pid, image and (post-checkpoint) result in its
 * environment, and wait for it. Returns 0 when it exited 0, else -1 with
 * "exit status N" / "killed by signal N (NAME)" / why it did not run in why. */
int ck_action_run(const char *script, const char *stage, int pid, const char *image,
                  const char *result, char *why, size_t wlen);

/* ---- messages (coord.c) ---- */

/* "coord: " fmt "\n" on stderr. */
void ck_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "coord: CMD: " fmt "\n", the subcommand's usage line and a hint on
 * stderr; returns CK_EXIT_USAGE (use as "return ck_usage_error(...)"). */
int ck_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one-line usage of a subcommand ("coord checkpoint PID -o FILE ..."),
 * or NULL if cmd is not a subcommand. */
const char *ck_cmd_usage(const char *cmd);

/* Option parsing for "--opt VALUE", "--opt=VALUE" and (if shortopt is not
 * NULL) "-o VALUE" / "-oVALUE". If argv[*i] is that option, stores the
 * value in *val, advances *i past it and returns 1; returns -1 (after
 * printing a usage error) if the value is missing; 0 if not this option. */
int ck_opt_value(const char *cmd, int argc, char **argv, int *i, const char *longopt,
                 const char *shortopt, const char **val);

/* ---- the progress line (progress.c) ---- */

/* Work called what ("checkpoint", "restore") starts now; its line is
 * drawn only if stderr is a terminal and not quiet (--quiet). */
void ck_progress_start(const char *what, int quiet);
/* Will a line be drawn (once the work takes more than a second)? */
int ck_progress_on(void);
/* Draw on fd instead of stderr (a helper that has its own stderr on
 * /dev/null and a copy of coord's). */
void ck_progress_to(int fd);
/* done bytes of total (0: unknown, no time left shown); the line shows
 * once the work has taken more than a second, at most 5 times a second. */
void ck_progress_update(uint64_t done, uint64_t total);
/* Erase the line if it is on the screen (before any other output). */
void ck_progress_clear(void);
/* Erase it and draw no more. */
void ck_progress_end(void);

/* ---- formatting ---- */

/* "12.3 MiB", "512 B": one decimal, binary units. Returns buf. */
const char *ck_fmt_bytes(char *buf, size_t len, uint64_t bytes);

/* Parse a decimal pid (1..INT_MAX). Returns the pid or -1. */
int ck_parse_pid(const char *s);

/* User name of uid, or its number as text. Returns buf. */
const char *ck_user_name(char *buf, size_t len, uid_t uid);

/* ---- processes ---- */

struct ck_procinfo {
    uid_t ruid, euid;
    pid_t tgid;
    pid_t tracer;                       /* TracerPid: its debugger, or 0 */
    char state;                         /* 'R', 'S', 'Z', ... */
};

/* Read /proc/PID/status. Returns 0, -ENOENT if there is no such process,
 * or another -errno. */
int ck_proc_info(int pid, struct ck_procinfo *pi);

/* Whether process pid runs with credentials other than coord's own: its
 * user and group ids (real, effective, saved, filesystem) and, in coord's
 * user namespace, its capability sets, of every thread; or runs in a
 * user namespace that does not map ids to themselves. A restore gives
 * every process the restoring coord's, so such a process cannot be
 * restored as it was. 1 (why says which, with both values), or 0 (the
 * same, or pid is gone). */
int ck_cred_differs(int pid, char *why, size_t whylen);

/* The tracer (TracerPid) of any thread of pid, with that thread in *tid,
 * or 0 when none is traced. */
int ck_thread_tracer(int pid, int *tid);

/* A descriptor of process pid on the file dev/ino, or -1 (none, or its
 * descriptors cannot be read). */
int ck_pid_holds_file(int pid, dev_t dev, ino_t ino);

/* 1 if /proc/PID exists and is not a zombie, else 0. */
int ck_proc_alive(int pid);

/* ---- the control socket ---- */

/* Print ck_sock_dir_note() once, as a warning. */
void ck_sock_dir_warn(void);

/* The shim's checkpoint signal in pid (its environment's CKSHIM_SIGNAL,
 * else the default), or 0 when pid does not catch it (no signal may be
 * sent then). */
int ck_shim_signal(int pid);

/* The threads of pid named CK_CALL_COMM (common/ctlproto.h), at most max
 * into tids; how many. */
int ck_call_threads(int pid, int *tids, int max);

/* Connect to the control socket of pid (path written to path, pathlen
 * bytes). A shim whose program closed that socket is called instead
 * (common/ctlproto.h, CK_CALL_COMM). Returns a connected fd (O_CLOEXEC),
 * or -errno: -ENOENT when the socket file does not exist, -ECONNREFUSED
 * when nobody listens on it, -EBUSY when the process is one to call but
 * stopped, -EPERM when there is no safe socket directory.
 * timeout_ms bounds the connect (a call's wait too) and later sends (0 =
 * none). */
int ck_ctl_connect(int pid, char *path, size_t pathlen, int timeout_ms);

/* The pid of the process on the other end (SO_PEERCRED), or -errno. */
int ck_ctl_peer_pid(int fd);

/* Send one request; with pass_fd >= 0 the fd travels in the same sendmsg
 * as SCM_RIGHTS. Returns 0 or -errno. */
int ck_ctl_send(int fd, const struct ck_ctl_req *req, int pass_fd);

/* Read one reply, waiting up to timeout_ms (<0: forever). Returns 0,
 * -ETIMEDOUT, -EPIPE on EOF before any byte, -EPROTO on a short or
 * malformed reply, or another -errno. */
int ck_ctl_recv(int fd, struct ck_ctl_rep *rep, int timeout_ms);

/* ---- JSON output (no external library) ---- */

/* Write s (at most n bytes, stops at NUL) as a JSON string literal with
 * quotes, escaping quotes, backslashes, control characters and bytes that
 * are not valid UTF-8 (as \u00XX). */
void ck_json_strn(FILE *f, const char *s, size_t n);
void ck_json_str(FILE *f, const char *s);

/* A small streaming writer that keeps track of commas and indentation.
 * key is the member name inside an object and must be NULL in an array. */
#define CK_JSON_MAXDEPTH 16
struct ck_json {
    FILE *f;
    int depth;
    int count[CK_JSON_MAXDEPTH];
};
void ck_json_init(struct ck_json *j, FILE *f);
void ck_json_open(struct ck_json *j, const char *key, char bracket); /* '{' or '[' */
void ck_json_close(struct ck_json *j, char bracket);                 /* '}' or ']' */
void ck_json_kstr(struct ck_json *j, const char *key, const char *s);
void ck_json_kstrn(struct ck_json *j, const char *key, const char *s, size_t n);
void ck_json_ku64(struct ck_json *j, const char *key, uint64_t v);
void ck_json_ki64(struct ck_json *j, const char *key, int64_t v);
void ck_json_khex(struct ck_json *j, const char *key, uint64_t v); /* "0x..." string */
void ck_json_kbool(struct ck_json *j, const char *key, int v);
void ck_json_kdouble(struct ck_json *j, const char *key, double v);
void ck_json_knull(struct ck_json *j, const char *key);
void ck_json_end(struct ck_json *j); /* final newline */

#endif
