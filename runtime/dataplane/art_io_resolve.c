/* art_io_resolve.c -- asyncrt_io_prep_getaddrinfo's job: getaddrinfo(3)
 * has no asynchronous form, so a lookup is an ASYNCRT_IO_OP_BLOCKING op
 * whose fn is art_io_resolve_job, run on the blocking pool of either
 * backend like any other blocking call. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "art.h"
#include "art_io_resolve.h"

/* getaddrinfo's EAI_* codes as the -errno an op result carries. */
static int64_t eai_errno(int rc, int err) {
  switch (rc) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY:
#endif
    return -ENOENT; /* no such host, or none with an address of that family */
  case EAI_AGAIN:
    return -EAGAIN; /* no answer from the name server in time: try later */
  case EAI_MEMORY:
    return -ENOMEM;
  case EAI_SYSTEM:
    return err ? -err : -EIO;
  case EAI_FAMILY:
  case EAI_SERVICE:
  case EAI_SOCKTYPE:
  case EAI_BADFLAGS:
    return -EINVAL;
  default: /* EAI_FAIL and the rest: the lookup failed for good */
    return -EIO;
  }
}

int64_t art_io_resolve_job(void *arg) {
  asyncrt_io_addrinfo *req = arg;
  if (!req) return -EINVAL;
  struct addrinfo hints, *res = NULL;
  char service[8];
  memset(&hints, 0, sizeof hints);
  hints.ai_family = req->family;
  hints.ai_socktype = SOCK_STREAM; /* one answer per address, not one per socket type */
  hints.ai_flags = AI_NUMERICSERV;
  snprintf(service, sizeof service, "%u", (unsigned)req->port);
  errno = 0;
  int rc = getaddrinfo(req->host && req->host[0] ? req->host : NULL, service, &hints, &res);
  if (rc) return eai_errno(rc, errno);
  int64_t len = -ENOENT;
  if (res && res->ai_addrlen <= sizeof req->addr) {
    memcpy(req->addr, res->ai_addr, res->ai_addrlen);
    req->addrlen = (uint32_t)res->ai_addrlen;
    len = (int64_t)res->ai_addrlen;
  }
  freeaddrinfo(res);
  return len;
}
