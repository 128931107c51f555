/* pidns_orphans - tree_orphans run by coord run --pidns: the orphans are
 * adopted by coord's init (pid 1 of the namespace), and the restore makes
 * them again in a new namespace, each with its old pid (test_progs.sh
 * PIDNS). */
#include "tree_orphans.c"
