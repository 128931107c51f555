/* sock_tracked_vfork - sock_tracked.c's vfork route: see there. */
#define ROUTE ROUTE_VFORK
#include "sock_tracked.c"
