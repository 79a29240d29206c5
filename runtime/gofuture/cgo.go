// The cgo fence: the only Go file of the package that touches C or unsafe.
// It holds the trampolines gofuture.c's vtable calls and the few C calls
// the rest of the package makes through plain Go methods. Because it has
// //export functions its preamble only declares; the C is in gofuture.c.

package gofuture

/*
#cgo CFLAGS: -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Wno-unused-parameter
#include "gofuture.h"
*/
import "C"

import (
	rtcgo "runtime/cgo"
	"unsafe"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
	"github.com/asyncrt/asyncrt/runtime/status"
)

// What a poll returns (asyncrt_poll).
const (
	pollPending = C.ASYNCRT_POLL_PENDING
	pollReady   = C.ASYNCRT_POLL_READY
	pollError   = C.ASYNCRT_POLL_ERROR
)

// New wraps f as a C future and returns it as a *asyncrt_future, for the
// runtime to take (executor.Executor.BlockOn, dataplane.Core.Spawn): from
// then on the runtime polls f and drops it exactly once, which releases f.
// A future that is never handed over must go to dataplane.DropFuture, or f
// is never released.
func New(f Future) unsafe.Pointer {
	// Go memory is safe here: the struct holds no Go pointer (self is a
	// handle number, vtable a C static) and a spawn copies it.
	fut := new(C.asyncrt_future)
	*fut = C.gf_future(C.uintptr_t(rtcgo.NewHandle(f)))
	return unsafe.Pointer(fut)
}

// art_gofuture_poll is the vtable's poll. No panic leaves it: a panic in
// f.Poll becomes the failure of f's task, never a crash of the process.
//
//export art_gofuture_poll
func art_gofuture_poll(self C.uintptr_t, cx *C.asyncrt_context) (result C.int) {
	pc := &pollContext{cx: unsafe.Pointer(cx)}
	defer func() {
		if v := recover(); v != nil {
			result = C.int(pc.fail(panicFailure(v)))
		}
		pc.cx = nil // the C context dies with the poll; see Context
	}()
	return C.int(pc.poll(rtcgo.Handle(self).Value().(Future)))
}

// art_gofuture_drop is the vtable's drop: it releases the handle, and with
// it the runtime's hold on the Go value. No user code runs here.
//
//export art_gofuture_drop
func art_gofuture_drop(self C.uintptr_t) {
	h := rtcgo.Handle(self)
	f := h.Value().(Future)
	h.Delete()
	if testHookDrop != nil {
		testHookDrop(f, h)
	}
}

// pollContext is one poll's *asyncrt_context; cx is nil once it returned.
type pollContext struct{ cx unsafe.Pointer }

func (pc *pollContext) context() *C.asyncrt_context {
	if pc.cx == nil {
		panic("gofuture: Context used after its poll returned")
	}
	return (*C.asyncrt_context)(pc.cx)
}

// fail names the poll's failure for its task and returns pollError.
func (pc *pollContext) fail(code status.Code, message string) int {
	// Through the data plane's Go functions: its C symbols are hidden from
	// this package's C.
	dataplane.FailInfo(unsafe.Pointer(pc.context()), code, message)
	return pollError
}

func (pc *pollContext) wake() { C.gf_context_wake(pc.context()) }

func (pc *pollContext) cloneWaker() *cWaker {
	w := new(cWaker)
	C.gf_context_waker_clone(pc.context(), &w.w)
	return w
}

// cWaker is a C waker held by Go. It holds C pointers only, so C may be
// handed a pointer to it for the length of a call.
type cWaker struct{ w C.asyncrt_waker }

func (w *cWaker) wakeByRef() { C.gf_waker_wake_by_ref(&w.w) }
func (w *cWaker) drop()      { C.gf_waker_drop(&w.w) }
