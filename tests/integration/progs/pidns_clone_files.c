/* pidns_clone_files - tree_clone_files under `coord run --pidns`: the
 * sharers are made again with CLONE_FILES and their old pids (clone3 with
 * set_tid), so raw getpid agrees with the one the program knows. */
#define PIDNS_CHECK 1
#include "tree_clone_files.c"
