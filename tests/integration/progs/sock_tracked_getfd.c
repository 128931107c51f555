/* sock_tracked_getfd - sock_tracked.c's pidfd_getfd route: see there. */
#define ROUTE ROUTE_GETFD
#include "sock_tracked.c"
