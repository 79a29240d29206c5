/* art_io_uring_default.c -- stand-ins for the io_uring backend (art_io.h)
 * until art_io_uring.c (helper B's branch i8-uring) is merged: weak
 * symbols, replaced at link time by the real ones. The control plane never
 * reaches them (its io_uring opener reports ENOTSUP first); they exist so
 * that every file links. Delete this file once art_io_uring.c is in.
 */
#include "art_io.h"

static int refuse_poll(void *user, asyncrt_subsystem_cx *scx, uint32_t budget) {
  (void)user;
  (void)scx;
  (void)budget;
  return 0;
}

__attribute__((weak)) const asyncrt_subsystem_vtable art_io_uring_vtable = {
    .size = sizeof(asyncrt_subsystem_vtable), .poll = refuse_poll};

__attribute__((weak)) art_io_worker *art_io_uring_worker_new(art_io *io, unsigned index, int ringfd,
                                                             const struct art_io_uring_params *params) {
  (void)io;
  (void)index;
  (void)ringfd;
  (void)params;
  art_fail(ASYNCRT_ENOTSUP, "asyncrt_io_open: this library was built without the io_uring backend");
  return NULL;
}
