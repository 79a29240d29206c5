// Package testfutures provides C futures for Go tests of the control plane.
// It is test support only; the library never links it.
package testfutures

/*
#cgo CFLAGS: -std=c11 -D_GNU_SOURCE -O2 -Wall
#include "testfutures.h"
*/
import "C"

import "unsafe"

// Probe is a C future that counts its polls and drops.
type Probe struct{ p *C.tf_probe }

// NewProbe makes a future that yields `yields` times, then fails with status
// `fail` (if nonzero), waits for Release (if wait), and outputs `output`.
func NewProbe(yields int, wait bool, fail int, output uint64) Probe {
	w := 0
	if wait {
		w = 1
	}
	return Probe{C.tf_probe_new(C.int(yields), C.int(w), C.int(fail), C.uint64_t(output))}
}

// Future is the *asyncrt_future to hand to the runtime.
func (p Probe) Future() unsafe.Pointer { return unsafe.Pointer(&p.p.future) }

// Polls and Drops count calls so far.
func (p Probe) Polls() int { return int(C.tf_probe_polls(p.p)) }
func (p Probe) Drops() int { return int(C.tf_probe_drops(p.p)) }

// Release lets a waiting probe complete and wakes it; any thread.
func (p Probe) Release() { C.tf_probe_release(p.p) }

// Free releases the probe's memory (after the runtime dropped it).
func (p Probe) Free() { C.tf_probe_free(p.p) }
