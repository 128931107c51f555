/* pidns_subreaper_session - tree_subreaper_session run by coord run
 * --pidns: the members whose session leaders are gone are made again in
 * a new namespace with their old pids (a helper's clone3 with
 * CLONE_PARENT and set_tid), and each session again has its number (its
 * helper's pid): raw ids agree too (test_progs.sh PIDNS). */
#define RAW_IDS 1
#include "tree_subreaper_session.c"
