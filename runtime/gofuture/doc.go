// Package gofuture lets Go code implement an asyncrt future: a value with
// a Poll method (Future), wrapped by New as a C asyncrt_future that any
// executor runs like a C one.
//
// # What it owns
//
// New makes one runtime/cgo.Handle per future; the C future's self is that
// handle and its vtable (gofuture.c) calls the trampolines in cgo.go. The
// runtime drops a future exactly once -- after it completed, failed or was
// cancelled -- and the drop deletes the handle: from then on the Go value
// is the garbage collector's. A Go future has no output (output_size 0)
// and no cleanup: it keeps its result in Go, and a cancel drops it at once.
//
// # Failures
//
// A Go panic under a task is an error of that task, never a crash: the
// poll trampoline recovers it and fails the task with ASYNCRT_EINTERNAL and
// the message "Go panic in a future's poll: <value>"; the future is then
// dropped, never polled again, and the executor goes on with its other
// tasks. An error Poll returns fails the task with the code of a
// *status.Error (EFAILED for any other error) and the error's message, both
// readable through the task's error (asyncrt_task_error_get,
// dataplane.Task.Failure).
//
// # Threads and cost
//
// Each poll is a C->Go call (50-100 ns) and a Context lives for that poll
// only. A Waker may be used from any goroutine. cgo and unsafe stay in
// cgo.go; the data plane's own C is reached through runtime/dataplane,
// because its symbols are hidden from other packages' C.
package gofuture
