// The cgo fence: the only Go file that calls the data plane's C.

package dataplane

/*
#cgo CFLAGS: -std=c11 -D_GNU_SOURCE -O2 -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter
#include <stdlib.h>
#include <string.h>
#include "art.h"

static void art_fail_text(int status, const char *msg) { art_fail(status, "%s", msg); }
*/
import "C"

import (
	"unsafe"

	"github.com/asyncrt/asyncrt/runtime/status"
)

// Core is an executor's C core.
type Core struct{ p *C.art_exec }

// Task is a task header to which the holder owns one reference.
type Task struct{ p *C.art_task }

// NewCore creates a core that owns eventfd. hook is a *asyncrt_allocator or nil.
func NewCore(hook unsafe.Pointer, memoryLimit uint64, eventfd, pollfd int) (Core, error) {
	p := C.art_exec_new((*C.asyncrt_allocator)(hook), C.size_t(memoryLimit), C.int(eventfd))
	if p == nil {
		return Core{}, lastError()
	}
	p.pollfd = C.int(pollfd)
	return Core{p}, nil
}

// Publish gives the core a handle of type executor and records goRef (a
// cgo.Handle of the control plane's object) in it; 0 when out of memory.
func (c Core) Publish(goRef uintptr) uint64 {
	c.p.go_ref = C.uintptr_t(goRef)
	h := uint64(C.art_handle_new(C.ART_H_EXEC, unsafe.Pointer(c.p)))
	c.p.handle = C.uint64_t(h)
	return h
}

// Unpublish frees the core's handle; false if a racing call freed it first.
func (c Core) Unpublish() bool { return C.art_handle_free(c.p.handle) != 0 }

// ResolveExecutor returns the control plane's object reference recorded in
// the core a live executor handle names, or 0.
func ResolveExecutor(handle uint64) uintptr {
	p := (*C.art_exec)(C.art_handle_get(C.uint64_t(handle), C.ART_H_EXEC))
	if p == nil {
		return 0
	}
	return uintptr(p.go_ref)
}

// Release drops the control plane's reference to the core.
func (c Core) Release() { C.art_exec_close(c.p) }

// AcquireDriver makes the calling thread the core's only driver.
func (c Core) AcquireDriver() bool { return C.art_exec_acquire_driver(c.p) != 0 }

// ReleaseDriver ends the calling thread's turn as driver.
func (c Core) ReleaseDriver() { C.art_exec_release_driver(c.p) }

// Run polls tasks; see art_exec_run.
func (c Core) Run(maxPolls, deadlineNs uint64, until Task) uint64 {
	return uint64(C.art_exec_run(c.p, C.uint64_t(maxPolls), C.uint64_t(deadlineNs), until.p))
}

// Shutdown cancels every live task; see art_exec_shutdown.
func (c Core) Shutdown() { C.art_exec_shutdown(c.p) }

// SpawnRoot spawns the C future at fut (a *asyncrt_future) onto the local
// queue of a core the caller drives, and returns the task with a reference
// for the caller. The future is dropped on failure.
func (c Core) SpawnRoot(fut unsafe.Pointer) (Task, error) {
	var t *C.art_task
	if rc := C.art_exec_spawn_driven(c.p, (*C.asyncrt_future)(fut), &t); rc != 0 {
		return Task{}, lastError()
	}
	return Task{t}, nil
}

// Done reports whether the task has completed.
func (t Task) Done() bool { return C.art_task_status(t.p) != C.ASYNCRT_EAGAIN }

// Status is the task's completion status (EAGAIN while running).
func (t Task) Status() status.Code { return status.Code(C.art_task_status(t.p)) }

// Cancel requests cancellation.
func (t Task) Cancel() { C.art_task_cancel(t.p) }

// CopyOutput copies a completed task's output to out.
func (t Task) CopyOutput(out unsafe.Pointer) {
	if n := C.size_t(t.p.output_size); n > 0 && out != nil {
		C.memcpy(out, C.art_task_output(t.p), n)
	}
}

// Release drops the holder's reference.
func (t Task) Release() { C.art_task_unref(t.p) }

// InPoll reports whether the calling thread is inside an executor's run loop.
func InPoll() bool { return C.art_in_poll() != 0 }

// NowNs is CLOCK_MONOTONIC in nanoseconds, the clock deadlines use.
func NowNs() uint64 { return uint64(C.art_now_ns()) }

// DropFuture drops the C future at fut (a *asyncrt_future).
func DropFuture(fut unsafe.Pointer) { C.art_drop_future((*C.asyncrt_future)(fut)) }

// SetLastError records err as the calling thread's last error and returns
// its code. Errors with an empty message were recorded by C already.
func SetLastError(err error) status.Code {
	e, ok := err.(*status.Error)
	if !ok {
		e = status.Errorf(status.EINTERNAL, "%v", err)
	}
	if e.Message != "" {
		msg := C.CString(e.Message)
		C.art_fail_text(C.int(e.Code), msg)
		C.free(unsafe.Pointer(msg))
	}
	return e.Code
}

// lastError wraps the error C just recorded on this thread.
func lastError() error { return &status.Error{Code: status.Code(C.art_last_status())} }
