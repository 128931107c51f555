/* sock_tracked_fork - sock_tracked.c's fork route: see there. */
#define ROUTE ROUTE_FORK
#include "sock_tracked.c"
