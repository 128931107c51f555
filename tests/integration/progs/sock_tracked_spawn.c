/* sock_tracked_spawn - sock_tracked.c's spawn route: see there. */
#define ROUTE ROUTE_SPAWN
#include "sock_tracked.c"
