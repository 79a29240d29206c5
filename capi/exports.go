// Command capi is asyncrt's export layer, built with -buildmode=c-shared into
// libasyncrt.so. The public asyncrt_* functions are C (api.c): they refuse
// calls in a forked child before anything enters Go, validate arguments,
// and either run in the C data plane (everything per task) or call the
// art_go_* exports below (the control plane). This file is the only place
// that converts between C values and Go values; no panic leaves it (see
// panics.go for what a panic becomes).
//
// The Makefile links the library with tracebacklabels=1: its Go tracebacks
// print goroutine labels, so a fatal error in a call made from a task's
// poll names the task (panics.go).
package main

/*
#cgo CFLAGS: -std=c11 -D_GNU_SOURCE -O2 -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter
#include "../include/asyncrt.h"
*/
import "C"

import (
	"time"
	"unsafe"

	_ "github.com/ianlancetaylor/cgosymbolizer" // symbolized C frames in crash traces

	"github.com/asyncrt/asyncrt/runtime/dataplane"
	"github.com/asyncrt/asyncrt/runtime/executor"
)

func main() {}

// guard turns a panic into EINTERNAL (panicError) and any error into a
// status with its message recorded for asyncrt_last_error. Every export
// defers it, with the public function it serves.
func guard(export string, rc *C.int, err *error) {
	if p := recover(); p != nil {
		*err = panicError(export, p)
	}
	if *err != nil {
		*rc = C.int(dataplane.SetLastError(*err))
	}
}

// Handles are integers (generation << 32 | slot), carried in C as pointers.

func lookup(ex C.uintptr_t) (*executor.Executor, error) {
	return executor.Lookup(uint64(ex))
}

//export art_go_executor_new
func art_go_executor_new(c *C.asyncrt_executor_config, out *C.uintptr_t) (rc C.int) {
	var err error
	defer guard("asyncrt_executor_new", &rc, &err)
	defer enter("asyncrt_executor_new")()
	cfg := executor.Config{
		Kind:            int(c.kind),
		MemoryLimit:     uint64(c.memory_limit),
		Allocator:       unsafe.Pointer(c.allocator),
		Workers:         int(c.workers),
		Pin:             c.flags&C.ASYNCRT_EXECUTOR_PIN != 0,
		Spin:            time.Duration(c.spin_ns),
		TestClock:       c.clock == C.ASYNCRT_CLOCK_TEST,
		BudgetPolls:     uint64(c.budget_polls),
		Budget:          time.Duration(c.budget_ns),
		Hooks:           unsafe.Pointer(c.hooks),
		ShutdownTimeout: time.Duration(c.shutdown_timeout_ns),
	}
	var e *executor.Executor
	if e, err = executor.New(cfg); err == nil {
		*out = C.uintptr_t(e.Handle())
	}
	return
}

//export art_go_executor_new_foreign
func art_go_executor_new_foreign(vtable *C.asyncrt_foreign_vtable, user unsafe.Pointer, out *C.uintptr_t) (rc C.int) {
	var err error
	defer guard("asyncrt_executor_new_foreign", &rc, &err)
	defer enter("asyncrt_executor_new_foreign")()
	var e *executor.Executor
	cfg := executor.Config{Kind: executor.KindForeign, ForeignVtable: unsafe.Pointer(vtable), ForeignUser: user}
	if e, err = executor.New(cfg); err == nil {
		*out = C.uintptr_t(e.Handle())
	}
	return
}

//export art_go_executor_shutdown
func art_go_executor_shutdown(ex C.uintptr_t, mode C.int, timeoutNs C.int64_t) (rc C.int) {
	var err error
	defer guard("asyncrt_executor_shutdown", &rc, &err)
	defer enter("asyncrt_executor_shutdown")()
	var e *executor.Executor
	if e, err = lookup(ex); err == nil {
		err = e.Shutdown(int(mode), int64(timeoutNs))
	}
	return
}

//export art_go_executor_free
func art_go_executor_free(ex C.uintptr_t) (rc C.int) {
	var err error
	defer guard("asyncrt_executor_free", &rc, &err)
	defer enter("asyncrt_executor_free")()
	var e *executor.Executor
	if e, err = lookup(ex); err == nil {
		err = e.Free()
	}
	return
}

// art_go_block_on takes the future: on every error path it is dropped.
//
//export art_go_block_on
func art_go_block_on(ex C.uintptr_t, fut *C.asyncrt_future, out unsafe.Pointer, timeoutNs C.int64_t) (rc C.int) {
	var err error
	defer guard("asyncrt_block_on", &rc, &err)
	var e *executor.Executor
	if e, err = lookup(ex); err != nil {
		dataplane.DropFuture(unsafe.Pointer(fut))
		return
	}
	err = e.BlockOn(unsafe.Pointer(fut), out, int64(timeoutNs))
	return
}

//export art_go_run
func art_go_run(ex C.uintptr_t, maxPolls C.uint64_t, maxNs C.uint64_t, polls *C.uint64_t) (rc C.int) {
	var err error
	defer guard("asyncrt_run/asyncrt_run_step", &rc, &err)
	var e *executor.Executor
	if e, err = lookup(ex); err != nil {
		return
	}
	var n uint64
	n, err = e.Run(uint64(maxPolls), uint64(maxNs))
	if polls != nil {
		*polls = C.uint64_t(n)
	}
	return
}

// art_go_executor_watch starts the executor's stall watchdog goroutine, which
// samples every periodNs, or stops it (0). The C side (art_watch.c) holds
// the threshold and the report.
//
//export art_go_executor_watch
func art_go_executor_watch(ex C.uintptr_t, periodNs C.uint64_t) (rc C.int) {
	var err error
	defer guard("asyncrt_executor_watch_stalls", &rc, &err)
	var e *executor.Executor
	if e, err = lookup(ex); err == nil {
		e.WatchStalls(time.Duration(periodNs))
	}
	return
}
