//go:build asyncrt_testhooks

package main

// Fault injection for the test build (make checked-test), never in a
// release library: ASYNCRT_TEST_PANIC=FUNCTION makes that public function
// (asyncrt_executor_new, asyncrt_executor_new_foreign,
// asyncrt_executor_shutdown or asyncrt_executor_free) panic when a task's
// poll calls it; FUNCTION:fatal makes it die of a Go fatal error instead,
// which no recover sees. Read once, when the library loads.

import (
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sink keeps the fatal read from being optimized away.
var sink byte

func init() {
	spec := os.Getenv("ASYNCRT_TEST_PANIC")
	if spec == "" {
		return
	}
	export, fatal := strings.CutSuffix(spec, ":fatal")
	testHookEnter = func(name string) {
		if name != export || polledTask() == "" {
			return
		}
		if fatal {
			readInaccessible()
		}
		panic("injected by ASYNCRT_TEST_PANIC")
	}
}

// readInaccessible reads a page mapped with no access: "unexpected fault
// address", a fatal error.
func readInaccessible() {
	page, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_NONE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		panic(err)
	}
	sink = *(*byte)(unsafe.Pointer(&page[0]))
}
