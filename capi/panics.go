package main

// What a Go panic under an export becomes. Every export defers guard, so a
// panic never unwinds into C: it becomes ASYNCRT_EINTERNAL. When the call
// came from a task's poll, the panic is that task's too: the message names
// the task, and the poll's context names the failure, so a poll that passes
// the error on (returns ASYNCRT_POLL_ERROR) fails its task with it. What no
// recover sees -- a Go fatal error -- still names the task: calls that do
// real work inside a poll label their goroutine with it for the call's
// length, and this library prints goroutine labels in its tracebacks
// (tracebacklabels=1, exports.go).

/*
#include <stdlib.h>
int art_polled_task_describe(char *buf, size_t cap);
void art_polled_task_fail(int status, const char *message);
*/
import "C"

import (
	"context"
	"fmt"
	"runtime/pprof"
	"unsafe"

	"github.com/asyncrt/asyncrt/runtime/status"
)

// taskLabel is the goroutine label (pprof) that names the polled task.
const taskLabel = "asyncrt.task"

// testHookEnter, when set (testhooks.go, a test build only), runs at the
// start of every call that enter wraps.
var testHookEnter func(export string)

// polledTask describes the task whose poll is running on this thread, such
// as `task 7 "fetch" of executor 0x100000001`, or "" outside a task's poll.
func polledTask() string {
	var buf [192]C.char
	if C.art_polled_task_describe(&buf[0], C.size_t(len(buf))) == 0 {
		return ""
	}
	return C.GoString(&buf[0])
}

// panicError turns a panic recovered in export into EINTERNAL; see the top.
func panicError(export string, p any) error {
	task := polledTask()
	if task == "" {
		return status.Errorf(status.EINTERNAL, "asyncrt recovered from a Go panic in %s: %v", export, p)
	}
	msg := fmt.Sprintf("asyncrt recovered from a Go panic in %s, called from the poll of %s: %v", export, task, p)
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	C.art_polled_task_fail(C.int(status.EINTERNAL), cmsg)
	return status.Errorf(status.EINTERNAL, "%s", msg)
}

// enter starts a call that does real work even inside a poll (creating,
// shutting down or freeing an executor): inside a task's poll it labels the
// goroutine with the task until the returned function runs. Deferred after
// guard, so the label is gone before guard reports a panic. The cost, one
// call into C, is paid by these rare calls only.
func enter(export string) (leave func()) {
	leave = func() {}
	if task := polledTask(); task != "" {
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(taskLabel, task)))
		// A thread C made reuses its goroutine for its next call: unlabel it.
		leave = func() { pprof.SetGoroutineLabels(context.Background()) }
	}
	if testHookEnter != nil {
		defer func() {
			if p := recover(); p != nil { // the deferred leave was never set up
				leave()
				panic(p)
			}
		}()
		testHookEnter(export)
	}
	return leave
}
