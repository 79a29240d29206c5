/* art_io_resolve.h -- the name lookup of asyncrt_io_prep_getaddrinfo. */
#ifndef ART_IO_RESOLVE_H
#define ART_IO_RESOLVE_H

#include "art.h"

#pragma GCC visibility push(hidden)

/* The fn of the BLOCKING op asyncrt_io_prep_getaddrinfo prepares; arg is
 * the asyncrt_io_addrinfo. Returns the address's length or -errno. */
int64_t art_io_resolve_job(void *arg);

#pragma GCC visibility pop

#endif
