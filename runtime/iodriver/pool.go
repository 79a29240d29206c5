package iodriver

// The blocking pools' threads. Every driver's pool lives in C memory
// (runtime/dataplane/art_pool.c) and asks for threads by adding to one
// process-wide eventfd, never by calling Go; the manager goroutine below
// sleeps in the netpoller on that eventfd, takes the requests and starts one
// goroutine per thread asked for. Each runner calls into C once and stays
// there, blocked on the pool's condvar between jobs, until its thread has been
// idle for the pool's idle time or the pool closes; then the goroutine ends.
// So the Go runtime sees a pool thread as one long cgo call, and a job costs
// Go nothing. runtime.LockOSThread is not needed: a goroutine inside a cgo
// call keeps its thread until the call returns.

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
)

var (
	poolOnce sync.Once
	poolErr  error
)

// StartPoolManager makes the eventfd and starts the manager, once per
// process (at the first driver's open). Later calls return the first's error.
func StartPoolManager() error {
	poolOnce.Do(func() {
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			poolErr = fmt.Errorf("eventfd for the blocking pools: %w", err)
			return
		}
		// Non-blocking, so os.File reads it through the netpoller: the
		// manager holds no thread while it waits.
		f := os.NewFile(uintptr(fd), "asyncrt-pool-wake")
		dataplane.SetPoolWakeFd(fd)
		go managePools(f)
	})
	return poolErr
}

// managePools runs for the life of the process (the eventfd is never closed:
// a pool may ask for a thread at any time).
func managePools(f *os.File) {
	var buf [8]byte
	for {
		// The count read is only a wake-up; the requests say how many. An
		// eventfd read does not fail (the error is ignored, not spun on: the
		// next read blocks again).
		_, _ = f.Read(buf[:])
		startRequested()
	}
}

func startRequested() {
	for {
		req, starts, ok := dataplane.TakePoolRequest()
		if !ok {
			return
		}
		for i := 0; i < starts; i++ {
			go req.Run()
		}
	}
}
