// Package executor is the control plane of asyncrt's executors: it creates
// and frees them, drives their C run loops in batches, runs the worker
// threads of thread-per-core executors and parks them in the kernel, and
// turns misuse into errors. It never touches a task; that is the data plane's
// job (runtime/dataplane).
//
// Each core has an epoll set holding its eventfd and a timerfd, which a host
// loop polls (asyncrt_executor_fd); subsystems with an fd add theirs. Drivers
// park inside the data plane's run loops: on the core's futex word, or on
// the epoll set while a subsystem with an fd has waiters. Free detaches the
// subsystems, cancels the tasks and disarms leftover timers, in that order.
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

// Kinds of executor (ASYNCRT_EXECUTOR_*), and the foreign kind, which has no
// config value: asyncrt_executor_new_foreign makes it.
const (
	KindLocal   = 0
	KindThreads = 1
	KindForeign = -1
)

// batch is how many polls a local driver runs before it looks at its
// deadline or its root task from Go. The C loop checks the clock every 64.
const batch = 1 << 16

// Config is a validated asyncrt_executor_config.
type Config struct {
	Kind        int
	MemoryLimit uint64
	Allocator   unsafe.Pointer // *asyncrt_allocator, copied by the core; may be nil

	Workers         int            // thread-per-core: 0 = one per usable CPU
	Pin             bool           // pin worker i to the i-th usable CPU
	Spin            time.Duration  // idle spin before sleeping; 0 = none
	BudgetPolls     uint64         // 0 = 256
	Budget          time.Duration  // 0 = 1 ms
	Hooks           unsafe.Pointer // *asyncrt_thread_hooks or nil
	ShutdownTimeout time.Duration  // 0 = 5 s

	TestClock bool // ASYNCRT_CLOCK_TEST: time moves only by asyncrt_clock_advance

	ForeignVtable unsafe.Pointer // *asyncrt_foreign_vtable (foreign kind)
	ForeignUser   unsafe.Pointer
}

// Executor is one executor's control-plane state.
type Executor struct {
	kind    int
	cores   []dataplane.Core
	pollfds []int
	// timerfds[i] is core i's, in its epoll set, until the core takes it.
	timerfds []int
	handle   uint64
	ref      rtcgo.Handle

	mu       sync.Mutex // guards freed and hooks
	freed    bool
	hooks    []hook // see AddHooks
	nextHook uint64

	threads *workers // thread-per-core only

	watchMu sync.Mutex // guards watch
	watch   *watchdog  // the stall watchdog's goroutine, nil if none
}

// New creates an executor and publishes its handle.
func New(cfg Config) (*Executor, error) {
	e := &Executor{kind: cfg.Kind}
	var err error
	switch cfg.Kind {
	case KindLocal:
		err = e.addCore(cfg)
	case KindThreads:
		err = e.startThreads(cfg)
	case KindForeign:
		var core dataplane.Core
		if core, err = dataplane.NewForeignCore(cfg.ForeignVtable, cfg.ForeignUser); err == nil {
			e.cores = append(e.cores, core)
		}
	default:
		err = status.Errorf(status.EINVAL, "unknown executor kind %d", cfg.Kind)
	}
	if err == nil {
		// Every core ticks its timers and subsystems on the executor's
		// clock (the first core's), with the executor's budget.
		for i, c := range e.cores {
			timerfd := -1
			if i < len(e.timerfds) {
				timerfd = e.timerfds[i]
			}
			c.Configure(e.cores[0], cfg.TestClock, orDefault(cfg.BudgetPolls, defaultBudgetPolls),
				uint64(orDefault(cfg.Budget, defaultBudget)), uint64(cfg.Spin), timerfd)
		}
		e.timerfds = nil // the cores own them now
		e.ref = rtcgo.NewHandle(e)
		if e.handle = e.cores[0].Publish(uintptr(e.ref)); e.handle == 0 {
			e.ref.Delete()
			err = status.Errorf(status.ENOMEM, "no memory for an executor handle")
		}
		for _, c := range e.cores[1:] {
			c.ShareHandle(e.cores[0])
		}
	}
	if err != nil {
		if e.threads != nil {
			e.threads.stop(e, ShutdownImmediate, time.Time{}, time.Time{}, 0)
		}
		e.release()
		return nil, err
	}
	return e, nil
}

// addCore creates one core with its eventfd and epoll set.
func (e *Executor) addCore(cfg Config) error {
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return status.Errorf(status.ENOMEM, "eventfd: %v", err)
	}
	pollfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(evfd)
		return status.Errorf(status.ENOMEM, "epoll_create1: %v", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(pollfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(pollfd)
		return status.Errorf(status.ENOMEM, "epoll_ctl: %v", err)
	}
	// Readable at the earliest timer, for a host that polls the epoll set
	// (asyncrt_executor_fd).
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		unix.Close(evfd)
		unix.Close(pollfd)
		return status.Errorf(status.ENOMEM, "timerfd_create: %v", err)
	}
	tev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tfd)}
	core, err := dataplane.NewCore(cfg.Allocator, cfg.MemoryLimit, evfd, pollfd)
	if err == nil {
		err = unix.EpollCtl(pollfd, unix.EPOLL_CTL_ADD, tfd, &tev)
		if err != nil {
			core.Release()
			err = status.Errorf(status.ENOMEM, "epoll_ctl: %v", err)
		}
	} else {
		unix.Close(evfd)
	}
	if err != nil {
		unix.Close(tfd)
		unix.Close(pollfd)
		return err
	}
	e.cores = append(e.cores, core)
	e.pollfds = append(e.pollfds, pollfd)
	e.timerfds = append(e.timerfds, tfd)
	return nil
}

// hook is what an object living on the executor (an IO driver) asks to
// run at its free: onFree before the subsystems are detached (nil once the
// object closed itself), onRelease once no worker runs any more.
type hook struct {
	id                uint64
	onFree, onRelease func()
}

// AddHooks registers onFree, to run in Free after the handle is gone and
// before the subsystems are detached (on the freeing thread), and onRelease,
// to run once the workers have stopped and nothing can poll (the memory
// such objects keep for racing calls can go then). Either may be nil. It
// fails with EHANDLE once the executor is being freed.
func (e *Executor) AddHooks(onFree, onRelease func()) (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.freed {
		return 0, status.Errorf(status.EHANDLE, "executor was freed")
	}
	e.nextHook++
	e.hooks = append(e.hooks, hook{e.nextHook, onFree, onRelease})
	return e.nextHook, nil
}

// DropFreeHook forgets the onFree of hook id (its object closed itself);
// its onRelease still runs.
func (e *Executor) DropFreeHook(id uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.hooks {
		if e.hooks[i].id == id {
			e.hooks[i].onFree = nil
		}
	}
}

// runFreeHooks runs the onFree hooks, in the order they were added; Free
// calls it once, after unpublish (no hook is added after that).
func (e *Executor) runFreeHooks() {
	e.mu.Lock()
	hooks := append([]hook(nil), e.hooks...)
	e.mu.Unlock()
	for _, h := range hooks {
		if h.onFree != nil {
			h.onFree()
		}
	}
}

// Cores are the executor's cores: worker i's is Cores()[i] (one for local
// and foreign executors).
func (e *Executor) Cores() []dataplane.Core { return append([]dataplane.Core(nil), e.cores...) }

// Kind is KindLocal, KindThreads or KindForeign.
func (e *Executor) Kind() int { return e.kind }

// release lets go of the cores (each is destroyed once its tasks are gone).
// It runs once, after the handle is gone and no driver uses the cores.
func (e *Executor) release() {
	e.mu.Lock()
	hooks := e.hooks
	e.hooks = nil
	e.mu.Unlock()
	for _, h := range hooks {
		if h.onRelease != nil {
			h.onRelease()
		}
	}
	for _, fd := range e.pollfds {
		unix.Close(fd)
	}
	for _, fd := range e.timerfds { // creation failed before the cores took them
		unix.Close(fd)
	}
	for _, c := range e.cores {
		c.Release()
	}
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

// unpublish invalidates the handle exactly once.
func (e *Executor) unpublish() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.freed || !e.cores[0].Unpublish() {
		return status.Errorf(status.EHANDLE, "executor was already freed")
	}
	e.freed = true
	e.ref.Delete()
	return nil
}

func (e *Executor) isFreed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.freed
}

// Free cancels every task and frees the executor. The cores' memory lives on
// until the last task reference is gone, so wakers held elsewhere stay safe.
func (e *Executor) Free() error {
	switch e.kind {
	case KindThreads:
		return e.freeThreads()
	case KindForeign:
		if dataplane.InPoll() {
			return status.Errorf(status.EBUSY, "cannot free a foreign executor from inside a poll")
		}
		if err := e.unpublish(); err != nil {
			return err
		}
		e.freeWatchdog()
		e.runFreeHooks()
		e.cores[0].DetachSubsystems()
		e.cores[0].Shutdown()
		e.cores[0].OrphanTimers()
		e.release()
		return nil
	}
	if e.isFreed() {
		return status.Errorf(status.EHANDLE, "executor was already freed")
	}
	core := e.cores[0]
	if !core.AcquireDriver() {
		return status.Errorf(status.EBUSY, "executor is being driven (by another thread, or this call comes from one of its polls)")
	}
	if err := e.unpublish(); err != nil {
		core.ReleaseDriver()
		return err
	}
	e.freeWatchdog()
	// IO drivers and subsystems first (their ops complete with ECANCELLED
	// or ESHUTDOWN), then the tasks, then whatever timers outlived them
	// (armed by futures not in a task).
	e.runFreeHooks()
	core.DetachSubsystems()
	core.Shutdown()
	core.OrphanTimers()
	core.ReleaseDriver()
	e.release()
	return nil
}

func notSupported(what string) error {
	return status.Errorf(status.ENOTSUP, "%s is not supported by this kind of executor", what)
}

// drive runs fn as the local executor's only driver on this thread.
func (e *Executor) drive(fn func(core dataplane.Core)) error {
	if e.kind != KindLocal {
		return notSupported("driving it from the calling thread (run, run_step)")
	}
	if dataplane.InPoll() {
		return status.Errorf(status.EREENTRANT, "cannot drive an executor from inside a poll")
	}
	core := e.cores[0]
	if !core.AcquireDriver() {
		return status.Errorf(status.EBUSY, "executor is already driven by another thread")
	}
	defer core.ReleaseDriver()
	fn(core)
	return nil
}

// Run polls up to maxPolls tasks (0: until none is runnable) for at most
// maxNs nanoseconds (0: no bound) and returns how many polls it made.
func (e *Executor) Run(maxPolls, maxNs uint64) (uint64, error) {
	var polls uint64
	err := e.drive(func(core dataplane.Core) {
		var deadline uint64
		if maxNs > 0 {
			deadline = dataplane.NowNs() + maxNs
		}
		if maxPolls == 0 {
			maxPolls = math.MaxUint64
		}
		for polls < maxPolls {
			n, why := core.Run(min(maxPolls-polls, batch), deadline, dataplane.Task{})
			polls += n
			if why == dataplane.RunDrained || n < batch || (deadline != 0 && dataplane.NowNs() >= deadline) {
				return
			}
		}
	})
	return polls, err
}

// BlockOn runs the future at fut (a *asyncrt_future, taken) to completion and
// copies its output to out. timeoutNs < 0 means no bound; when the bound
// passes the future is cancelled and ETIMEDOUT returned.
func (e *Executor) BlockOn(fut, out unsafe.Pointer, timeoutNs int64) error {
	var deadline uint64
	if timeoutNs >= 0 {
		deadline = dataplane.NowNs() + uint64(timeoutNs)
	}
	if e.kind == KindThreads {
		root, err := e.threads.spawnRoot(fut)
		if err != nil {
			return err
		}
		defer root.Release()
		timedOut := !root.Wait(deadline)
		if timedOut {
			root.Cancel()
			// The owning worker drops the future at its next turn; wait for
			// that within the executor's shutdown bound, then report anyway.
			root.Wait(dataplane.NowNs() + uint64(e.threads.shutdownTimeout))
		}
		return rootResult(root, out, timedOut, timeoutNs)
	}
	if e.kind != KindLocal {
		dataplane.DropFuture(fut)
		return notSupported("asyncrt_block_on")
	}
	return e.cores[0].BlockOn(fut, out, timeoutNs)
}

// rootResult turns a completed block_on root into its output or an error.
func rootResult(root dataplane.Task, out unsafe.Pointer, timedOut bool, timeoutNs int64) error {
	switch st := root.Status(); {
	case st == status.OK:
		root.CopyOutput(out)
		return nil
	case timedOut && (st == status.ECANCELLED || st == status.EAGAIN):
		return status.Errorf(status.ETIMEDOUT, "block_on: the future did not complete within %v; it was cancelled", time.Duration(timeoutNs))
	case st == status.ECANCELLED:
		return status.Errorf(st, "block_on: the future was cancelled")
	default:
		if _, msg := root.Failure(); msg != "" { // the message the future named its failure with
			return status.Errorf(st, "block_on: %s", msg)
		}
		return status.Errorf(st, "block_on: the future failed with %s", st.Name())
	}
}

// PollFd is the descriptor a host loop polls.
func (e *Executor) PollFd() (int, error) {
	if e.kind != KindLocal {
		return -1, notSupported("a pollable fd")
	}
	return e.pollfds[0], nil
}
