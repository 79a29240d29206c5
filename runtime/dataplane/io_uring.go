// The cgo fence of the io_uring backend: hands a ring the control plane
// set up and mapped (runtime/iodriver, uring_setup.go) to the data plane.
// Once per worker at a driver's open; nothing here runs per operation.

package dataplane

/*
#include <stdlib.h>
#include "art_io.h"
#include "art_io_uring.h"

// The mapped addresses come as integers: they are the kernel's memory,
// never Go's.
static art_io_worker *art_io_uring_worker_from(art_io *io, unsigned index, int ringfd, const void *kernel_params,
                                               uintptr_t ring, uintptr_t sqes, uint64_t cancel_wait_ns,
                                               int cancel_fd) {
  art_io_uring_params p = {
      .kernel = kernel_params,
      .ring = (void *)ring,
      .sqes = (void *)sqes,
      .cancel_wait_ns = cancel_wait_ns,
      .cancel_fd = cancel_fd,
  };
  return art_io_uring_worker_new(io, index, ringfd, &p);
}
*/
import "C"

import "unsafe"

// Getenv reads the C library's environment, which a host may change after
// the library loaded (Go's os.Getenv keeps the copy it made then). For
// settings read at a driver's open, never per operation.
func Getenv(name string) string {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if v := C.getenv(cname); v != nil {
		return C.GoString(v)
	}
	return ""
}

// URingRing describes one worker's mapped io_uring for the data plane.
type URingRing struct {
	Fd           int
	KernelParams unsafe.Pointer // *struct io_uring_params as io_uring_setup filled it; read during the call only
	Ring, Sqes   uintptr        // the mappings of the SQ+CQ rings and of the SQE array
	CancelFD     bool           // the kernel has IORING_ASYNC_CANCEL_FD (5.19)
	CancelWaitNs uint64         // how long a dying registration waits for a cancelled op's CQE (0: 5 s)
}

// URingWorkerOf makes worker i's io_uring state over r. The ring stays the
// caller's: unmap and close it after the registration is gone.
func (io IO) URingWorkerOf(i int, r URingRing) (IOWorker, error) {
	cancelFD := C.int(0)
	if r.CancelFD {
		cancelFD = 1
	}
	w := C.art_io_uring_worker_from(io.p, C.uint(i), C.int(r.Fd), r.KernelParams, C.uintptr_t(r.Ring),
		C.uintptr_t(r.Sqes), C.uint64_t(r.CancelWaitNs), cancelFD)
	if w == nil {
		return IOWorker{}, lastError()
	}
	return IOWorker{w}, nil
}
