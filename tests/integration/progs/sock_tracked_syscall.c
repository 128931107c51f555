/* sock_tracked_syscall - sock_tracked.c's syscall() route: see there. */
#define ROUTE ROUTE_SYSCALL
#include "sock_tracked.c"
