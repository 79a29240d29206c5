package gofuture

import (
	"runtime"
	"sync"
)

// Context is what a poll receives: access to the polled task's waker. It
// is valid for that one poll; using it afterwards panics.
type Context struct{ pc *pollContext }

// Wake asks for the task to be polled again: a poll that returns pending
// after it yields to the other runnable tasks instead of sleeping.
func (cx Context) Wake() { cx.pc.wake() }

// Waker returns a clone of the task's waker, to wake the task from another
// goroutine or a later poll once the future can make progress.
func (cx Context) Waker() *Waker {
	cw := cx.pc.cloneWaker()
	w := &Waker{w: cw}
	// A future dropped (say, cancelled) while it holds a Waker never
	// releases it by hand: the C clone holds a reference to the task's
	// header, given back when the Waker is collected.
	w.cleanup = runtime.AddCleanup(w, (*cWaker).drop, cw)
	return w
}

// Waker wakes one task: from any goroutine, any number of times, until it
// is released.
type Waker struct {
	mu      sync.Mutex // a Wake never uses a clone Release is giving back
	w       *cWaker    // nil once released
	cleanup runtime.Cleanup
}

// Wake schedules the task to be polled again. After Release it does nothing.
func (w *Waker) Wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w != nil {
		w.w.wakeByRef()
	}
}

// Release gives the waker back to the runtime. Later calls do nothing.
func (w *Waker) Release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w != nil {
		w.cleanup.Stop()
		w.w.drop()
		w.w = nil
	}
}
