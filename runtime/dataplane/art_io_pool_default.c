/* art_io_pool_default.c -- stand-ins for the blocking pool and the signal
 * waits (art_io.h) until their implementations are merged (helper C's
 * branch i8-pool, art_pool.c): weak symbols, so that the real ones replace
 * them at link time. Each refuses its op with ASYNCRT_ENOTSUP. Delete this
 * file once art_pool.c defines every one of them.
 */
#include "art_io.h"

__attribute__((weak)) void art_pool_submit(art_io *io, asyncrt_op *op) {
  (void)io;
  art_op_complete(op, ASYNCRT_ENOTSUP, 0);
}

__attribute__((weak)) int art_pool_cancel(art_io *io, asyncrt_op *op) {
  (void)io;
  (void)op;
  return 0;
}

__attribute__((weak)) void art_pool_close(art_io *io) { (void)io; }

__attribute__((weak)) void art_pool_stats(art_io *io, asyncrt_io_stats *st) {
  (void)io;
  (void)st;
}

__attribute__((weak)) void art_io_signal_submit(art_io *io, asyncrt_op *op) {
  (void)io;
  art_op_complete(op, ASYNCRT_ENOTSUP, 0);
}

__attribute__((weak)) int art_io_signal_cancel(art_io *io, asyncrt_op *op) {
  (void)io;
  (void)op;
  return 0;
}
