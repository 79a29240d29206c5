/* art_io_uring.h -- what the control plane hands the io_uring backend: a
 * ring it created with io_uring_setup and mapped (runtime/iodriver,
 * uring_setup.go). The memory and the fd stay the control plane's: it
 * unmaps and closes them after the worker's registration is gone. */
#ifndef ART_IO_URING_H
#define ART_IO_URING_H

#include <stddef.h>
#include <stdint.h>

struct io_uring_params;

typedef struct art_io_uring_params {
  /* The kernel's struct io_uring_params as io_uring_setup filled it in
   * (entries, features, and the offsets of the ring fields); copied. */
  const struct io_uring_params *kernel;
  void *ring;  /* the SQ and CQ rings: one mapping (IORING_FEAT_SINGLE_MMAP) */
  void *sqes;  /* the submission entries */
  /* How long a cancel waits for the kernel's completion when the
   * registration is torn down (0: 5 s). */
  uint64_t cancel_wait_ns;
  /* The kernel has IORING_ASYNC_CANCEL_FD (Linux 5.19; the control plane
   * knows it from the setup flags it accepted). Without it a CLOSE leaves
   * the ops on its fd waiting. */
  int cancel_fd;
} art_io_uring_params;

#endif
