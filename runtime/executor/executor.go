// Package executor is the control plane of asyncrt's executors: it creates
// and frees them, drives their C run loops in batches, parks the driving
// thread in the kernel when nothing is runnable, and turns misuse into
// errors. It never touches a task; that is the data plane's job.
//
// An executor's pollable fd is an epoll set holding the core's eventfd. The
// core writes the eventfd when work arrives while nobody runs it, so the same
// fd serves a host loop (asyncrt_executor_fd) and this package's own park.
package executor

import (
	"math"
	rtcgo "runtime/cgo"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
	"github.com/asyncrt/asyncrt/runtime/status"
)

// Kinds of executor (ASYNCRT_EXECUTOR_*).
const KindLocal = 0

// batch is how many polls a driver runs before it looks at its deadline or
// its root task from Go. The C loop itself checks the clock every 64 polls.
const batch = 1 << 16

// Config is a validated asyncrt_executor_config.
type Config struct {
	Kind        uint
	MemoryLimit uint64
	Allocator   unsafe.Pointer // *asyncrt_allocator, copied by the core; may be nil
}

// Executor is one executor's control-plane state.
type Executor struct {
	core   dataplane.Core
	pollfd int
	handle uint64
	ref    rtcgo.Handle

	mu    sync.Mutex // guards freed
	freed bool
}

// New creates an executor and returns it with its published handle.
func New(cfg Config) (*Executor, error) {
	if cfg.Kind != KindLocal {
		return nil, status.Errorf(status.EINVAL, "unknown executor kind %d", cfg.Kind)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, status.Errorf(status.ENOMEM, "eventfd: %v", err)
	}
	pollfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(evfd)
		return nil, status.Errorf(status.ENOMEM, "epoll_create1: %v", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(pollfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(pollfd)
		return nil, status.Errorf(status.ENOMEM, "epoll_ctl: %v", err)
	}
	core, err := dataplane.NewCore(cfg.Allocator, cfg.MemoryLimit, evfd, pollfd)
	if err != nil {
		unix.Close(evfd)
		unix.Close(pollfd)
		return nil, err
	}
	e := &Executor{core: core, pollfd: pollfd}
	e.ref = rtcgo.NewHandle(e)
	if e.handle = core.Publish(uintptr(e.ref)); e.handle == 0 {
		e.ref.Delete()
		core.Release()
		unix.Close(pollfd)
		return nil, status.Errorf(status.ENOMEM, "no memory for an executor handle")
	}
	return e, nil
}

// Handle is the executor's asyncrt_executor value.
func (e *Executor) Handle() uint64 { return e.handle }

// Lookup finds the executor a live handle names.
func Lookup(handle uint64) (*Executor, error) {
	ref := dataplane.ResolveExecutor(handle)
	if ref == 0 {
		if handle == 0 {
			return nil, status.Errorf(status.EINVAL, "executor is NULL")
		}
		return nil, status.Errorf(status.EHANDLE,
			"executor %#x is not a live executor handle (freed, foreign or of another type)", handle)
	}
	e, ok := rtcgo.Handle(ref).Value().(*Executor)
	if !ok {
		return nil, status.Errorf(status.EINTERNAL, "executor handle %#x names no executor", handle)
	}
	return e, nil
}

// Free cancels every task (dropping their futures on this thread) and frees
// the executor. The core's memory lives on until the last task reference is
// gone, so wakers held elsewhere stay safe.
func (e *Executor) Free() error {
	if !e.core.AcquireDriver() {
		return status.Errorf(status.EBUSY, "executor is being driven (by another thread, or this call comes from one of its polls)")
	}
	e.mu.Lock()
	if e.freed || !e.core.Unpublish() {
		e.mu.Unlock()
		e.core.ReleaseDriver()
		return status.Errorf(status.EHANDLE, "executor was already freed")
	}
	e.freed = true
	e.mu.Unlock()
	e.core.Shutdown()
	e.core.ReleaseDriver()
	unix.Close(e.pollfd)
	e.ref.Delete()
	e.core.Release()
	return nil
}

// drive runs fn as the executor's only driver on this thread.
func (e *Executor) drive(fn func()) error {
	if dataplane.InPoll() {
		return status.Errorf(status.EREENTRANT, "cannot drive an executor from inside a poll")
	}
	if !e.core.AcquireDriver() {
		return status.Errorf(status.EBUSY, "executor is already driven by another thread")
	}
	defer e.core.ReleaseDriver()
	fn()
	return nil
}

// Run polls up to maxPolls tasks (0: until none is runnable) for at most
// maxNs nanoseconds (0: no bound) and returns how many polls it made.
func (e *Executor) Run(maxPolls, maxNs uint64) (uint64, error) {
	var polls uint64
	err := e.drive(func() {
		var deadline uint64
		if maxNs > 0 {
			deadline = dataplane.NowNs() + maxNs
		}
		if maxPolls == 0 {
			maxPolls = math.MaxUint64
		}
		for polls < maxPolls {
			n := e.core.Run(min(maxPolls-polls, batch), deadline, dataplane.Task{})
			polls += n
			if n < batch || (deadline != 0 && dataplane.NowNs() >= deadline) {
				return
			}
		}
	})
	return polls, err
}

// BlockOn runs the future at fut (a *asyncrt_future, taken) to completion on
// this thread and copies its output to out. timeoutNs < 0 means no bound; when
// the bound passes the future is cancelled and ETIMEDOUT returned.
func (e *Executor) BlockOn(fut, out unsafe.Pointer, timeoutNs int64) error {
	var result error
	err := e.drive(func() {
		root, err := e.core.SpawnRoot(fut)
		if err != nil {
			result = err
			return
		}
		defer root.Release()
		var deadline uint64
		if timeoutNs >= 0 {
			deadline = dataplane.NowNs() + uint64(timeoutNs)
		}
		timedOut := false
		for {
			n := e.core.Run(batch, deadline, root)
			if root.Done() {
				break
			}
			if deadline != 0 && !timedOut && dataplane.NowNs() >= deadline {
				timedOut = true
				root.Cancel() // processed at the next run: the loop goes on until it is
				continue
			}
			if n > 0 {
				continue
			}
			wait := -1
			if deadline != 0 && !timedOut {
				wait = int((deadline - dataplane.NowNs() + uint64(time.Millisecond) - 1) / uint64(time.Millisecond))
			}
			e.park(wait)
		}
		switch st := root.Status(); {
		case st == status.OK:
			root.CopyOutput(out)
		case timedOut && st == status.ECANCELLED:
			result = status.Errorf(status.ETIMEDOUT, "block_on: the future did not complete within %v; it was cancelled", time.Duration(timeoutNs))
		case st == status.ECANCELLED:
			result = status.Errorf(st, "block_on: the future was cancelled")
		default:
			result = status.Errorf(st, "block_on: the future failed with %s", st.Name())
		}
	})
	if err != nil {
		dataplane.DropFuture(fut)
		return err
	}
	return result
}

// park sleeps until the executor's fd is readable or waitMs passes (-1: no
// bound). A wake that lands between the last run and this call has already
// written the eventfd, so it is not lost.
func (e *Executor) park(waitMs int) {
	var events [1]unix.EpollEvent
	for {
		_, err := unix.EpollWait(e.pollfd, events[:], waitMs)
		if err != unix.EINTR {
			return
		}
	}
}

// PollFd is the descriptor a host loop polls.
func (e *Executor) PollFd() int { return e.pollfd }
