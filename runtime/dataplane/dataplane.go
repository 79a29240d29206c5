// The cgo fence: the only Go file that calls the data plane's C.

package dataplane

/*
#cgo CFLAGS: -std=c11 -D_GNU_SOURCE -O2 -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter
#include <stdlib.h>
#include <string.h>
#include "art.h"

// cgo cannot see _Atomic fields; these touch them for Go.
static void group_set_stopping(art_group *g) { atomic_store(&g->stopping, 1); }
static uint64_t art_exec_run_packed(art_exec *e, uint64_t max, uint64_t deadline, art_task *until) {
  uint64_t polls;
  int why = art_exec_run_ex(e, max, deadline, until, &polls);
  return polls << 2 | (uint64_t)why;
}
static int in_group(art_group *g) { return art_tls_cx && art_tls_cx->exec && art_tls_cx->exec->group == g; }

static void art_fail_text(int status, const char *msg) { art_fail(status, "%s", msg); }

// Thread hooks are copied into C memory; art_worker_loop calls them.
static void art_finalize_hooks(asyncrt_thread_hooks *h) {
  if (!h) return;
  if (h->finalize) h->finalize(h->user_data);
  free(h);
}
static asyncrt_thread_hooks *art_copy_hooks(const asyncrt_thread_hooks *h) {
  if (!h) return NULL;
  asyncrt_thread_hooks *c = calloc(1, sizeof *c);
  if (c) *c = *h;
  return c;
}
static art_exec *art_exec_new_foreign(const asyncrt_foreign_vtable *vt, void *user) {
  art_exec *e = art_exec_new(NULL, 0, -1);
  if (!e) return NULL;
  e->is_foreign = 1;
  e->foreign = *vt;
  e->foreign_user = user;
  return e;
}
*/
import "C"

import (
	"unsafe"

	"github.com/asyncrt/asyncrt/runtime/status"
)

// Core is an executor's C core: one thread's queues.
type Core struct{ p *C.art_exec }

// Group links the cores of a thread-per-core executor.
type Group struct{ p *C.art_group }

// Hooks is a C copy of an asyncrt_thread_hooks (nil pointer: none).
type Hooks struct{ p *C.asyncrt_thread_hooks }

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

// NewForeignCore creates the core of a foreign executor; vtable is a
// *asyncrt_foreign_vtable (copied), user its user_data.
func NewForeignCore(vtable, user unsafe.Pointer) (Core, error) {
	p := C.art_exec_new_foreign((*C.asyncrt_foreign_vtable)(vtable), user)
	if p == nil {
		return Core{}, lastError()
	}
	return Core{p}, nil
}

// NewGroup makes cores[i] worker i of one thread-per-core executor, with a
// task memory cap over all of them.
func NewGroup(cores []Core, memoryLimit uint64) (Group, error) {
	ps := (*[1 << 16]*C.art_exec)(C.malloc(C.size_t(len(cores)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(ps))
	for i, c := range cores {
		ps[i] = c.p
	}
	g := C.art_group_new(&ps[0], C.uint(len(cores)), C.size_t(memoryLimit))
	if g == nil {
		return Group{}, lastError()
	}
	return Group{g}, nil
}

// SetStopping marks the group as shutting down.
func (g Group) SetStopping() { C.group_set_stopping(g.p) }

// Live counts the group's tasks that have not completed.
func (g Group) Live() uint64 { return uint64(C.art_group_live(g.p)) }

// DrainInjector drops tasks left in the injector after the workers stopped.
func (g Group) DrainInjector() { C.art_group_drain_injector(g.p) }

// Place is the core a spawn with these flags lands on; error for a bad worker.
func (g Group) Place(flags uint) (Core, error) {
	p := C.art_group_place(g.p, C.uint(flags))
	if p == nil {
		return Core{}, lastError()
	}
	return Core{p}, nil
}

// Wake makes c's driver return from its sleep.
func (c Core) Wake() { C.art_exec_wake_driver(c.p) }

// RefuseSpawns makes later spawns on c fail with ESHUTDOWN.
func (c Core) RefuseSpawns() { C.art_exec_refuse_spawns(c.p) }

// InGroup reports whether the calling thread is polling a task of g.
func InGroup(g Group) bool { return C.in_group(g.p) != 0 }

// CancelAll refuses new spawns on c and cancels its live tasks.
func (c Core) CancelAll() { C.art_exec_cancel_all(c.p) }

// Spawn spawns the C future at fut on c, from a thread that does not drive
// it or from inside one of its polls (as asyncrt_spawn does), returning the
// task with a reference for the caller.
func (c Core) Spawn(fut unsafe.Pointer, flags uint) (Task, error) {
	var t *C.art_task
	if rc := C.art_exec_spawn(c.p, (*C.asyncrt_future)(fut), C.uint(flags), nil, &t); rc != 0 {
		return Task{}, failed(rc)
	}
	return Task{t}, nil
}

// ContextCore is the core whose driver polls with cx (a *asyncrt_context),
// or false for a poll outside any executor (asyncrt_poll_with_waker). Only
// during that poll: a context lives for one poll.
func ContextCore(cx unsafe.Pointer) (Core, bool) {
	p := (*C.asyncrt_context)(cx).exec
	return Core{p}, p != nil
}

// FailInfo names the failure the poll with context cx (a *asyncrt_context)
// is about to report with ASYNCRT_POLL_ERROR: its status and a message
// (copied); see art_context_fail_info. Inside that poll, on its thread.
func FailInfo(cx unsafe.Pointer, code status.Code, message string) {
	msg := C.CString(message)
	defer C.free(unsafe.Pointer(msg))
	info := C.asyncrt_error_info{size: C.sizeof_asyncrt_error_info, status: C.int(code), message: msg}
	C.art_context_fail_info((*C.asyncrt_context)(cx), &info)
}

// Failure is a completed task's status and the message its future named
// with its failure ("" if none); status.OK if it succeeded, EAGAIN while it
// runs. See art_task_error_get.
func (t Task) Failure() (status.Code, string) {
	info := C.asyncrt_error_info{size: C.sizeof_asyncrt_error_info}
	if C.art_task_error_get(t.p, &info) != 0 {
		return status.EAGAIN, ""
	}
	return status.Code(info.status), C.GoString(info.message)
}

// Wait sleeps until t completes or deadlineNs (0: none); true if it did.
func (t Task) Wait(deadlineNs uint64) bool { return C.art_task_wait(t.p, C.uint64_t(deadlineNs)) != 0 }

// WaitCancelled waits, after Cancel, until the task completes or its
// executor has set it aside (it waits for its scopes' children), or until
// deadlineNs; see art_task_wait_cancelled. True if it completed.
func (t Task) WaitCancelled(deadlineNs uint64) bool {
	return C.art_task_wait_cancelled(t.p, C.uint64_t(deadlineNs)) != 0
}

// CopyHooks copies a *asyncrt_thread_hooks (nil: none) into C memory.
func CopyHooks(h unsafe.Pointer) Hooks {
	return Hooks{C.art_copy_hooks((*C.asyncrt_thread_hooks)(h))}
}

// WorkerLoop runs c as a worker until its group stops with no task left;
// see art_worker_loop. One cgo call for the worker's whole life.
func (c Core) WorkerLoop(budgetPolls, budgetNs, spinNs, parkBoundNs uint64, hooks Hooks) {
	cfg := C.art_worker_config{
		budget_polls: C.uint64_t(budgetPolls), budget_ns: C.uint64_t(budgetNs),
		spin_ns: C.uint64_t(spinNs), park_bound_ns: C.uint64_t(parkBoundNs), hooks: hooks.p,
	}
	C.art_worker_loop(c.p, &cfg)
}

// Finalize calls the hooks' finalizer and frees the copy.
func (h Hooks) Finalize() { C.art_finalize_hooks(h.p) }

// Publish gives the core a handle of type executor and records goRef (a
// cgo.Handle of the control plane's object) in it; 0 when out of memory.
func (c Core) Publish(goRef uintptr) uint64 {
	c.p.go_ref = C.uintptr_t(goRef)
	h := uint64(C.art_handle_new(C.ART_H_EXEC, unsafe.Pointer(c.p)))
	c.p.handle = C.uint64_t(h)
	return h
}

// ShareHandle makes c answer with the handle of the executor whose first
// core is first (asyncrt_context_executor on any worker names the executor).
func (c Core) ShareHandle(first Core) {
	c.p.handle = first.p.handle
	c.p.go_ref = first.p.go_ref
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

// Why a run returned (art_exec_run_ex).
const (
	RunBudget  = C.ART_RUN_BUDGET  // polls or time ran out: there may be more
	RunDrained = C.ART_RUN_DRAINED // nothing was left to run
	RunUntil   = C.ART_RUN_UNTIL   // the task it waited for completed
)

// Run polls tasks; see art_exec_run_ex. It returns the polls made and why
// it stopped, so a driver needs no second call to know whether to park.
func (c Core) Run(maxPolls, deadlineNs uint64, until Task) (uint64, int) {
	// One word back (polls << 2 | why): an out-parameter would be a Go
	// pointer handed to C, which escapes, and an allocation per run feeds
	// the garbage collector, whose goroutines then wake threads.
	r := uint64(C.art_exec_run_packed(c.p, C.uint64_t(maxPolls), C.uint64_t(deadlineNs), until.p))
	return r >> 2, int(r & 3)
}

// BlockOn runs the future at fut (taken) on this thread until it completes;
// see art_exec_block_on (graceNs bounds the runs after a timeout's cancel).
func (c Core) BlockOn(fut, out unsafe.Pointer, timeoutNs int64, graceNs uint64) error {
	if rc := C.art_exec_block_on(c.p, (*C.asyncrt_future)(fut), out, C.int64_t(timeoutNs), C.uint64_t(graceNs)); rc != 0 {
		return failed(rc)
	}
	return nil
}

// Configure sets the core's clock (a test clock if test; shared with
// clockOwner's unless that is the core itself), its tick budget and idle
// spin, and the timerfd it keeps armed in host fd mode (-1: none; the core
// owns it).
func (c Core) Configure(clockOwner Core, test bool, budgetPolls, budgetNs, spinNs uint64, timerfd int) {
	var clock *C.art_clock
	if clockOwner.p != c.p {
		clock = clockOwner.p.clock
	}
	t := C.int(0)
	if test {
		t = 1
	}
	C.art_core_configure(c.p, clock, t, C.uint64_t(budgetPolls), C.uint64_t(budgetNs), C.uint64_t(spinNs), C.int(timerfd))
}

// DetachSubsystems unregisters every subsystem registered on the core:
// their ops complete with ESHUTDOWN and their finalizers run.
func (c Core) DetachSubsystems() { C.art_exec_detach_subsystems(c.p) }

// OrphanTimers disarms every timer still armed on the core (their wakers
// are dropped), so their memory is the owners' again once the executor is
// freed.
func (c Core) OrphanTimers() { C.art_timers_orphan(c.p) }

// CheckStalls samples the workers of the executor whose first core is c
// and makes the stall reports that are due; see art_watch_check.
func (c Core) CheckStalls() int { return int(C.art_watch_check(c.p)) }

// FreeWatch frees the stall watchdog of the executor whose first core is
// c, finalizing its report's user data; no check may be under way.
func (c Core) FreeWatch() { C.art_watch_free(c.p) }

// Shutdown cancels every live task; see art_exec_shutdown.
func (c Core) Shutdown() { C.art_exec_shutdown(c.p) }

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

// failed wraps the error a C call returned as rc and recorded. The code is
// rc, not a second cgo call's art_last_status: the last error is per thread,
// and a goroutine not locked to its thread may resume on another after a
// call that slept (block_on's park). The message stays with the thread.
func failed(rc C.int) error { return &status.Error{Code: status.Code(rc)} }
