// Package iodriver is the control plane of asyncrt's IO drivers: it picks
// the backend (the config, which asyncrt_io_open already overrode with the
// ASYNCRT_IO environment variable -- read in C: Go keeps the environment
// it saw at load time; AUTO tries io_uring and falls back to epoll),
// makes each worker's kernel object with golang.org/x/sys, registers one
// subsystem per worker through the data plane (runtime/dataplane, art_io.h),
// and closes everything at asyncrt_io_close or the executor's free. No
// call per operation comes here: ops are submitted, polled and completed
// in C.
//
// The io_uring backend plugs in through openURing (uring*.go, helper B):
// until it is built in, io_uring is refused with ENOTSUP, and AUTO falls
// back to epoll.
package iodriver

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
	"github.com/asyncrt/asyncrt/runtime/executor"
	"github.com/asyncrt/asyncrt/runtime/status"
)

// Config is a validated asyncrt_io_config.
type Config struct {
	Backend     int // dataplane.IOAuto, IOEpoll or IOURing
	RingEntries uint32
	Priority    uint32
	PoolThreads uint32
	PoolQueue   uint32
	PoolIdleNs  uint64
}

// URingWorker is what openURing makes for one worker: the ring's fd (the
// registration's fd), the worker's C state, and what to undo after the
// registration is gone (munmap, close).
type URingWorker struct {
	Fd      int
	Worker  dataplane.IOWorker
	Cleanup func()
}

// openURing sets up worker i's io_uring for io. It returns an error with
// status ENOTSUP when the kernel (or this build) refuses io_uring -- the
// errors AUTO falls back on -- and any other status for other failures.
// uring*.go replaces it (in an init function); until then io_uring is not
// built in.
var openURing = func(io dataplane.IO, i int, cfg Config) (URingWorker, error) {
	return URingWorker{}, status.Errorf(status.ENOTSUP, "io_uring: this library was built without the io_uring backend")
}

// Driver is one open driver.
type Driver struct {
	io       dataplane.IO
	exec     *executor.Executor
	hook     uint64
	cleanups []func() // per worker, after the registrations are gone
	mu       sync.Mutex
	closed   bool
}

// drivers maps the handle of every driver not yet released to its Driver:
// a close racing with the executor's free finds it here, never in freed
// memory.
var drivers sync.Map

// Open makes a driver on the executor a live handle names and returns the
// driver's handle.
func Open(exHandle uint64, cfg Config) (uint64, error) {
	e, err := executor.Lookup(exHandle)
	if err != nil {
		return 0, err
	}
	backend := cfg.Backend // ASYNCRT_IO was applied by asyncrt_io_open
	var d *Driver
	if backend == dataplane.IOAuto {
		d, err = open(e, dataplane.IOURing, cfg)
		if st, ok := err.(*status.Error); ok && st.Code == status.ENOTSUP {
			d, err = open(e, dataplane.IOEpoll, cfg)
		}
	} else {
		d, err = open(e, backend, cfg)
	}
	if err != nil {
		return 0, err
	}
	h := d.io.Publish(0)
	if h == 0 {
		d.undo()
		return 0, status.Errorf(status.ENOMEM, "asyncrt_io_open: no memory for a handle")
	}
	drivers.Store(h, d)
	// The executor's free closes a driver left open; its release frees the
	// memory, once no worker can be inside a submit that raced with a close.
	io := d.io
	id, err := e.AddHooks(func() { d.close() }, func() {
		drivers.Delete(h)
		io.Free()
	})
	if err != nil {
		drivers.Delete(h)
		d.io.Unpublish()
		d.undo()
		return 0, err
	}
	d.hook = id
	return h, nil
}

// open makes the driver's C object and one registration per worker.
func open(e *executor.Executor, backend int, cfg Config) (*Driver, error) {
	cores := e.Cores()
	io, err := dataplane.NewIO(cores[0], backend, len(cores), cfg.PoolThreads, cfg.PoolQueue, cfg.PoolIdleNs)
	if err != nil {
		return nil, err
	}
	d := &Driver{io: io, exec: e}
	for i := range cores {
		var w dataplane.IOWorker
		var cleanup func()
		if backend == dataplane.IOURing {
			var u URingWorker
			if u, err = openURing(io, i, cfg); err == nil {
				w, cleanup = u.Worker, u.Cleanup
			}
		} else {
			w, cleanup, err = openEpoll(io, i)
		}
		if err == nil {
			d.cleanups = append(d.cleanups, cleanup)
			err = io.Register(i, w, cfg.Priority) // on failure w is freed; its kernel object is ours to close
		}
		if err != nil {
			d.undo()
			return nil, err
		}
	}
	return d, nil
}

func openEpoll(io dataplane.IO, i int) (dataplane.IOWorker, func(), error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return dataplane.IOWorker{}, nil, osError("epoll_create1", err)
	}
	w, err := io.EpollWorker(i, epfd)
	if err != nil {
		unix.Close(epfd)
		return dataplane.IOWorker{}, nil, err
	}
	return w, func() { unix.Close(epfd) }, nil
}

// osError is an EOS error for a failed system call, errno in the message.
func osError(call string, err error) error {
	if errno, ok := err.(unix.Errno); ok {
		return status.Errorf(status.EOS, "asyncrt_io_open: %s: %v (errno %d)", call, errno, int(errno))
	}
	return status.Errorf(status.EOS, "asyncrt_io_open: %s: %v", call, err)
}

// undo takes apart a driver that was never published.
func (d *Driver) undo() {
	d.io.Detach()
	for _, c := range d.cleanups {
		if c != nil {
			c()
		}
	}
	d.io.Free()
}

// close detaches every registration and closes the kernel objects, once.
// The C object stays until the executor's release.
func (d *Driver) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	d.io.Unpublish() // (a close through the handle did it already)
	d.io.Detach()
	for _, c := range d.cleanups {
		if c != nil {
			c()
		}
	}
}

// Close closes the driver a live handle names.
func Close(handle uint64) error {
	v, ok := drivers.Load(handle)
	if !ok {
		return status.Errorf(status.EHANDLE, "IO driver %#x is not live", handle)
	}
	d := v.(*Driver)
	if !d.io.Unpublish() {
		return status.Errorf(status.EHANDLE, "IO driver %#x was already closed", handle)
	}
	d.exec.DropFreeHook(d.hook)
	d.close()
	return nil
}

// String names the backend, for messages.
func BackendName(b int) string {
	switch b {
	case dataplane.IOEpoll:
		return "epoll"
	case dataplane.IOURing:
		return "io_uring"
	case dataplane.IOAuto:
		return "auto"
	}
	return fmt.Sprintf("backend %d", b)
}
