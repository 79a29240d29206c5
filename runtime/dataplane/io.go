// The cgo fence of the IO drivers (art_io.h): what runtime/iodriver calls
// at a driver's open and close. Nothing here runs per operation.

package dataplane

/*
#include <stdlib.h>
#include "art_io.h"

static int io_closing(art_io *io) { return atomic_load(&io->closing); }
*/
import "C"

import (
	"unsafe"
)

// IO backends (ASYNCRT_IO_*).
const (
	IOAuto  = C.ASYNCRT_IO_AUTO
	IOEpoll = C.ASYNCRT_IO_EPOLL
	IOURing = C.ASYNCRT_IO_URING
)

// IO is a driver's C object (struct art_io).
type IO struct{ p *C.art_io }

// IOWorker is one worker's backend state, made by a backend's constructor
// and owned by its registration once registered.
type IOWorker struct{ p *C.art_io_worker }

// NewIO makes a driver of backend for the n workers of the executor whose
// first core is first, with the blocking pool's settings.
func NewIO(first Core, backend, n int, poolThreads, poolQueue uint32, poolIdleNs uint64) (IO, error) {
	p := C.art_io_new(first.p, C.uint(backend), C.uint(n))
	if p == nil {
		return IO{}, lastError()
	}
	p.pool_threads = C.uint32_t(poolThreads)
	p.pool_queue = C.uint32_t(poolQueue)
	p.pool_idle_ns = C.uint64_t(poolIdleNs)
	return IO{p}, nil
}

// Ptr is the driver's address, for the backends' own cgo calls (helper B's
// io_uring setup passes it back to C).
func (io IO) Ptr() unsafe.Pointer { return unsafe.Pointer(io.p) }

// EpollWorker makes worker i's epoll state over the epoll set epfd.
func (io IO) EpollWorker(i, epfd int) (IOWorker, error) {
	w := C.art_io_epoll_worker_new(io.p, C.uint(i), C.int(epfd))
	if w == nil {
		return IOWorker{}, lastError()
	}
	return IOWorker{w}, nil
}

// URingWorker makes worker i's io_uring state over the ring ringfd, whose
// mappings params (a *struct art_io_uring_params in C memory) describes.
func (io IO) URingWorker(i, ringfd int, params unsafe.Pointer) (IOWorker, error) {
	w := C.art_io_uring_worker_new(io.p, C.uint(i), C.int(ringfd), (*C.struct_art_io_uring_params)(params))
	if w == nil {
		return IOWorker{}, lastError()
	}
	return IOWorker{w}, nil
}

// Register registers worker state w as worker i's subsystem, with the
// backend's vtable. On failure w has been freed.
func (io IO) Register(i int, w IOWorker, priority uint32) error {
	vt := &C.art_io_epoll_vtable
	if io.p.backend == C.ASYNCRT_IO_URING {
		vt = &C.art_io_uring_vtable
	}
	if rc := C.art_io_register_worker(io.p, C.uint(i), w.p, vt, C.uint32_t(priority)); rc != 0 {
		return failed(rc)
	}
	return nil
}

// Publish gives the driver its handle and records goRef (a cgo.Handle of
// the control plane's object); 0 when out of memory.
func (io IO) Publish(goRef uintptr) uint64 {
	io.p.go_ref = C.uintptr_t(goRef)
	return uint64(C.art_io_publish(io.p))
}

// Unpublish frees the handle; false if a racing close did it first.
func (io IO) Unpublish() bool { return C.art_io_unpublish(io.p) != 0 }

// Closing reports whether the driver began closing.
func (io IO) Closing() bool { return C.io_closing(io.p) != 0 }

// Detach unregisters every worker (their ops are cancelled or completed
// with ESHUTDOWN, their state finalized). After Unpublish.
func (io IO) Detach() { C.art_io_detach(io.p) }

// Free frees the driver's memory, once nothing can reach it.
func (io IO) Free() { C.art_io_free(io.p) }

// ResolveIO returns the control plane's reference recorded in the driver a
// live handle names, or 0.
func ResolveIO(handle uint64) uintptr {
	p := (*C.art_io)(C.art_handle_get(C.uint64_t(handle), C.ART_H_IO))
	if p == nil {
		return 0
	}
	return uintptr(p.go_ref)
}
