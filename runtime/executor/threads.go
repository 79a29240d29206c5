package executor

// The thread-per-core executor: one OS thread per worker, each locked to its
// goroutine, which hands the thread to its core's C loop (art_worker_loop)
// for the worker's whole life: that loop runs, steals, spins, and parks on
// the core's futex.

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
	"github.com/asyncrt/asyncrt/runtime/status"
)

const (
	defaultSpin            = 20 * time.Microsecond
	defaultBudgetPolls     = 256
	defaultBudget          = time.Millisecond
	defaultShutdownTimeout = 5 * time.Second
	// A parked worker wakes at least this often, as a safety net only: wakes,
	// stealable work and shutdown all end the sleep at once.
	parkBound = int64(time.Second)
)

type workers struct {
	group           dataplane.Group
	hooks           dataplane.Hooks
	spin            time.Duration
	budgetPolls     uint64
	budget          time.Duration
	shutdownTimeout time.Duration

	exited    sync.WaitGroup
	done      chan struct{} // closed when every worker has exited
	stopMu    sync.Mutex    // one shutdown at a time
	cancelled atomic.Bool   // every task was asked to cancel
}

// usableCPUs lists the CPUs this process may run on.
func usableCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return []int{0}
	}
	var cpus []int
	for cpu := 0; cpu < len(set)*64 && len(cpus) < set.Count(); cpu++ {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (e *Executor) startThreads(cfg Config) error {
	cpus := usableCPUs()
	n := cfg.Workers
	if n == 0 {
		n = len(cpus)
	}
	if n < 1 || n > 4096 {
		return status.Errorf(status.EINVAL, "workers = %d: want 1..4096 (0 for one per CPU)", cfg.Workers)
	}
	perCore := cfg
	perCore.MemoryLimit = 0 // the group holds the cap for all cores
	for i := 0; i < n; i++ {
		if err := e.addCore(perCore); err != nil {
			return err
		}
	}
	group, err := dataplane.NewGroup(e.cores, cfg.MemoryLimit)
	if err != nil {
		return err
	}
	w := &workers{
		group:           group,
		hooks:           dataplane.CopyHooks(cfg.Hooks),
		spin:            cfg.Spin,
		budgetPolls:     orDefault(cfg.BudgetPolls, defaultBudgetPolls),
		budget:          orDefault(cfg.Budget, defaultBudget),
		shutdownTimeout: orDefault(cfg.ShutdownTimeout, defaultShutdownTimeout),
		done:            make(chan struct{}),
	}
	e.threads = w
	started := make(chan struct{}, n)
	w.exited.Add(n)
	for i := 0; i < n; i++ {
		cpu := -1
		if cfg.Pin {
			cpu = cpus[i%len(cpus)]
		}
		go w.run(e.cores[i], i, cpu, started)
	}
	for i := 0; i < n; i++ {
		<-started
	}
	go func() {
		w.exited.Wait()
		w.hooks.Finalize()
		close(w.done)
	}()
	return nil
}

// run is worker i's whole life, on its own OS thread.
func (w *workers) run(core dataplane.Core, i, cpu int, started chan<- struct{}) {
	// Never unlocked: when this goroutine ends, Go ends the thread with it.
	runtime.LockOSThread()
	defer w.exited.Done()
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		unix.SchedSetaffinity(0, &set) // best effort: a cgroup may forbid it
	}
	core.AcquireDriver()
	defer core.ReleaseDriver()
	// Timer wake-ups to the microsecond: the kernel's default slack lets a
	// timed sleep overrun by 50 us. Only the worker's own thread changes.
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
	started <- struct{}{}
	core.WorkerLoop(w.budgetPolls, uint64(w.budget), uint64(w.spin), uint64(parkBound), w.hooks)
}

// spawnRoot spawns block_on's future as a Send task, placed like a spawn
// from outside the executor.
func (w *workers) spawnRoot(fut unsafe.Pointer) (dataplane.Task, error) {
	if dataplane.InPoll() {
		dataplane.DropFuture(fut)
		return dataplane.Task{}, status.Errorf(status.EREENTRANT, "cannot block_on from inside a poll")
	}
	core, err := w.group.Place(sendFlag)
	if err != nil {
		dataplane.DropFuture(fut)
		return dataplane.Task{}, err
	}
	return core.Spawn(fut, sendFlag)
}

// sendFlag is ASYNCRT_SPAWN_SEND.
const sendFlag = 1

// Shutdown modes (ASYNCRT_SHUTDOWN_*).
const (
	ShutdownGraceful  = 0
	ShutdownImmediate = 1
)

// Shutdown stops a thread-per-core executor: see asyncrt_executor_shutdown.
func (e *Executor) Shutdown(mode int, timeoutNs int64) error {
	if e.kind != KindThreads {
		return notSupported("asyncrt_executor_shutdown")
	}
	if mode != ShutdownGraceful && mode != ShutdownImmediate {
		return status.Errorf(status.EINVAL, "unknown shutdown mode %d", mode)
	}
	if e.onWorker() {
		return status.Errorf(status.EBUSY, "cannot shut an executor down from one of its own workers")
	}
	var until time.Time
	if timeoutNs >= 0 {
		until = time.Now().Add(time.Duration(timeoutNs))
	}
	if mode == ShutdownGraceful {
		// The cancellation after the grace period has the config's bound.
		return e.threads.stop(e, mode, until, time.Time{}, e.threads.shutdownTimeout)
	}
	return e.threads.stop(e, mode, time.Time{}, until, 0)
}

// onWorker reports whether the caller is a poll on one of e's workers.
func (e *Executor) onWorker() bool { return dataplane.InGroup(e.threads.group) }

// stop refuses new spawns, lets tasks finish (graceful, until graceUntil)
// or cancels them, and waits for the workers to exit until stopUntil, or for
// cancelBound after a grace period that ran out (zero: no bound).
func (w *workers) stop(e *Executor, mode int, graceUntil, stopUntil time.Time, cancelBound time.Duration) error {
	w.stopMu.Lock()
	defer w.stopMu.Unlock()
	// Spawns are refused everywhere before workers may see "stopping" and
	// exit: a spawn still in flight would otherwise land on a gone worker.
	for _, c := range e.cores {
		c.RefuseSpawns()
	}
	w.group.SetStopping()
	if mode == ShutdownGraceful && !w.cancelled.Load() {
		for w.group.Live() > 0 && !past(graceUntil) {
			time.Sleep(200 * time.Microsecond)
		}
	}
	if w.group.Live() > 0 && !w.cancelled.Swap(true) {
		for _, c := range e.cores {
			c.CancelAll()
		}
		if cancelBound > 0 {
			stopUntil = time.Now().Add(cancelBound)
		}
	}
	for {
		for _, c := range e.cores {
			if w.cancelled.Load() {
				// Again each round: a worker's own spawn that passed the
				// refusal check just before it was set may join a live list
				// after the first pass. Cancelling twice is harmless.
				c.CancelAll()
			}
			c.Wake()
		}
		wait := 10 * time.Millisecond
		if !stopUntil.IsZero() {
			left := time.Until(stopUntil)
			if left <= 0 {
				return status.Errorf(status.ETIMEDOUT, "a worker did not stop in time (stuck in a poll?); the shutdown goes on without the caller")
			}
			wait = min(left, wait)
		}
		select {
		case <-w.done:
			w.group.DrainInjector()
			return nil
		case <-time.After(wait):
		}
	}
}

func past(t time.Time) bool { return !t.IsZero() && time.Now().After(t) }

// freeThreads shuts down immediately within the configured bound, frees the
// handle, and lets go of the cores once the workers are gone.
func (e *Executor) freeThreads() error {
	if e.onWorker() {
		return status.Errorf(status.EBUSY, "cannot free an executor from one of its own workers")
	}
	if err := e.unpublish(); err != nil {
		return err
	}
	e.freeWatchdog()
	w := e.threads
	// IO drivers and subsystems go first: their in-flight ops complete with
	// ECANCELLED or ESHUTDOWN, so no task waits on a subsystem's
	// cancellation while the workers stop.
	e.runFreeHooks()
	for _, c := range e.cores {
		c.DetachSubsystems()
	}
	err := w.stop(e, ShutdownImmediate, time.Time{}, time.Now().Add(w.shutdownTimeout), 0)
	for _, c := range e.cores {
		c.OrphanTimers()
	}
	go func() { // after the last worker: they use the cores until they exit
		<-w.done
		e.release()
	}()
	return err
}
