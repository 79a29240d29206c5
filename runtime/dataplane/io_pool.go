// The cgo fence of the IO drivers' blocking pool and signal waits: what the
// control plane (runtime/iodriver) calls in art_pool.c and art_io_signal.c.
// Nothing here runs per op: a pool runner enters C once per thread and stays
// there, and a signal delivery is one call however many ops it completes.

package dataplane

/*
#cgo CFLAGS: -std=c11 -D_GNU_SOURCE -O2 -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter
#include "art_pool.h"
#include "art_io_signal.h"
*/
import "C"

// PoolRequest is a blocking pool (C memory) that asked for threads.
type PoolRequest struct{ p *C.art_pool }

// SetPoolWakeFd tells the data plane the eventfd to which every pool adds 1
// per thread it asks for. Once, before the first pool opens.
func SetPoolWakeFd(fd int) { C.art_pool_set_wake_fd(C.int(fd)) }

// TakePoolRequest returns the next pool that asked for threads and how many,
// or ok false. Each start must end in Run or StartFailed: it holds a
// reference to the pool.
func TakePoolRequest() (req PoolRequest, starts int, ok bool) {
	var n C.uint32_t
	p := C.art_pool_take_request(&n)
	if p == nil {
		return PoolRequest{}, 0, false
	}
	return PoolRequest{p}, int(n), true
}

// Run is a pool thread: it blocks in C running jobs until the thread has been
// idle for the pool's idle time or the pool closes. The pool may be freed
// when it returns.
func (r PoolRequest) Run() { C.art_pool_run(r.p) }

// StartFailed gives back the reference of a start that will not happen.
func (r PoolRequest) StartFailed() { C.art_pool_start_failed(r.p) }

// SignalValid reports whether a SIGNAL op may wait for signo.
func SignalValid(signo int) bool { return C.art_io_signal_valid(C.int(signo)) != 0 }

// DeliverSignal completes the ops waiting for signo on every driver that
// catches it, and marks it pending on the others.
func DeliverSignal(signo int) { C.art_io_signal_deliver(C.int(signo)) }

// ClosePool fails the driver's queued blocking jobs and waits up to
// timeoutNs for its running ones; it returns how many were still running
// (orphaned: their ops complete with ESHUTDOWN at Detach). Before Detach.
func (io IO) ClosePool(timeoutNs uint64) int {
	return int(C.art_pool_close(io.p, C.uint64_t(timeoutNs)))
}

// CloseSignals ends the driver's signal waits (ECANCELLED) and returns the
// signals it caught, as a mask (bit s-1 for signal s). Before Detach.
func (io IO) CloseSignals() uint64 { return uint64(C.art_io_signal_close(io.p)) }
