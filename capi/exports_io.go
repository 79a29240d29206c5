package main

// The control plane of the IO drivers (runtime/iodriver): opening and
// closing. Everything per op stays in C (api_io.c).

/*
#include "../include/asyncrt.h"
*/
import "C"

import (
	"github.com/asyncrt/asyncrt/runtime/iodriver"
)

//export art_go_io_open
func art_go_io_open(ex C.uintptr_t, c *C.asyncrt_io_config, out *C.uintptr_t) (rc C.int) {
	var err error
	defer guard("asyncrt_io_open", &rc, &err)
	defer enter("asyncrt_io_open")()
	cfg := iodriver.Config{
		Backend:     int(c.backend),
		RingEntries: uint32(c.ring_entries),
		Priority:    uint32(c.priority),
		PoolThreads: uint32(c.pool_threads),
		PoolQueue:   uint32(c.pool_queue),
		PoolIdleNs:  uint64(c.pool_idle_ns),
	}
	var h uint64
	if h, err = iodriver.Open(uint64(ex), cfg); err == nil {
		*out = C.uintptr_t(h)
	}
	return
}

//export art_go_io_close
func art_go_io_close(io C.uintptr_t) (rc C.int) {
	var err error
	defer guard("asyncrt_io_close", &rc, &err)
	defer enter("asyncrt_io_close")()
	err = iodriver.Close(uint64(io))
	return
}
