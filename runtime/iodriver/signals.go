package iodriver

// Signal waits (ASYNCRT_IO_OP_SIGNAL). The data plane keeps, per driver and
// signal, the ops waiting and a pending delivery (art_io_signal.c); Go only
// decides which signals the process catches. A driver's first wait for a
// signal calls WatchSignal (through a hook the data plane calls once per
// driver and signal, synchronously, so the handler is in place before the
// submit returns); its release or close calls UnwatchSignal. While any driver
// watches a signal, signal.Notify routes it to one goroutine, which hands each
// delivery to the data plane. When the last lets go, signal.Reset puts back
// the disposition that was there before (Go's os/signal documents this for
// c-shared libraries: "If, later, Reset is called for that signal, the
// original handling for that signal will be reinstalled, restoring the non-Go
// signal handler if any").

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
)

const nsig = 65 // signals 1..64

var (
	sigMu       sync.Mutex
	sigWatchers [nsig]int // drivers watching each signal
	sigCh       chan os.Signal
)

// WatchSignal counts one more driver watching signo and starts catching it
// if it is the first. Called from the data plane (a worker's submit
// callback), once per driver and signal.
func WatchSignal(signo int) error {
	if signo < 1 || signo >= nsig || !dataplane.SignalValid(signo) {
		return fmt.Errorf("signal %d cannot be awaited", signo)
	}
	sigMu.Lock()
	defer sigMu.Unlock()
	if sigCh == nil {
		// Deliveries merge in the data plane, so a full channel (signal.Notify
		// then drops) loses nothing a waiter could tell apart.
		sigCh = make(chan os.Signal, 64)
		go deliverSignals(sigCh)
	}
	sigWatchers[signo]++
	if sigWatchers[signo] == 1 {
		signal.Notify(sigCh, syscall.Signal(signo))
	}
	return nil
}

// UnwatchSignal counts one driver fewer watching signo (its release or
// close) and gives the signal back if it was the last.
func UnwatchSignal(signo int) {
	if signo < 1 || signo >= nsig {
		return
	}
	sigMu.Lock()
	defer sigMu.Unlock()
	if sigWatchers[signo] == 0 {
		return
	}
	sigWatchers[signo]--
	if sigWatchers[signo] == 0 {
		signal.Reset(syscall.Signal(signo))
	}
}

// UnwatchSignals is UnwatchSignal for each signal of a mask (bit s-1 for
// signal s), as the data plane reports them at a driver's close.
func UnwatchSignals(mask uint64) {
	for s := 1; s < nsig; s++ {
		if mask&(1<<(s-1)) != 0 {
			UnwatchSignal(s)
		}
	}
}

func deliverSignals(ch chan os.Signal) {
	for s := range ch {
		if n, ok := s.(syscall.Signal); ok {
			dataplane.DeliverSignal(int(n))
		}
	}
}
