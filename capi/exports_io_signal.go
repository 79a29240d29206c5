package main

// The signal waits' calls into the control plane (see
// runtime/iodriver/signals.go): api_io_signal.c points the data plane's hook
// at art_go_io_signal_watch, and its asyncrt_io_signal_release calls
// art_go_io_signal_unwatch. Once per driver and signal, never per op.

/*
#include <errno.h>
*/
import "C"

import "github.com/asyncrt/asyncrt/runtime/iodriver"

// art_go_io_signal_watch starts catching signo for one more driver: 0, or
// -EINVAL. It runs inside a worker's submit callback, so nothing may panic
// out of it.
//
//export art_go_io_signal_watch
func art_go_io_signal_watch(signo C.int) (rc C.int) {
	defer func() {
		if recover() != nil {
			rc = -C.EINVAL
		}
	}()
	if iodriver.WatchSignal(int(signo)) != nil {
		return -C.EINVAL
	}
	return 0
}

// art_go_io_signal_unwatch: one driver fewer catches signo.
//
//export art_go_io_signal_unwatch
func art_go_io_signal_unwatch(signo C.int) {
	defer func() { _ = recover() }()
	iodriver.UnwatchSignal(int(signo))
}
