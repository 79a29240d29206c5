package executor_test

import (
	"errors"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/asyncrt/asyncrt/runtime/dataplane/testfutures"
	"github.com/asyncrt/asyncrt/runtime/executor"
	"github.com/asyncrt/asyncrt/runtime/status"
)

func newExecutor(t *testing.T) *executor.Executor {
	t.Helper()
	e, err := executor.New(executor.Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func code(err error) status.Code {
	var se *status.Error
	if errors.As(err, &se) {
		return se.Code
	}
	if err != nil {
		return -1
	}
	return status.OK
}

func TestBlockOnRunsToCompletionAndDropsOnce(t *testing.T) {
	e := newExecutor(t)
	defer e.Free()
	p := testfutures.NewProbe(5, false, 0, 42)
	defer p.Free()
	var out uint64
	if err := e.BlockOn(p.Future(), unsafe.Pointer(&out), -1); err != nil {
		t.Fatalf("BlockOn: %v", err)
	}
	if out != 42 || p.Polls() != 6 || p.Drops() != 1 {
		t.Errorf("out, polls, drops = %d, %d, %d; want 42, 6, 1", out, p.Polls(), p.Drops())
	}
}

func TestBlockOnReportsFailure(t *testing.T) {
	e := newExecutor(t)
	defer e.Free()
	p := testfutures.NewProbe(0, false, int(status.EINVAL), 0)
	defer p.Free()
	var out uint64
	if got := code(e.BlockOn(p.Future(), unsafe.Pointer(&out), -1)); got != status.EINVAL {
		t.Errorf("BlockOn of a failing future = %s, want EINVAL", got.Name())
	}
	if p.Drops() != 1 {
		t.Errorf("drops = %d, want 1", p.Drops())
	}
}

func TestBlockOnTimeoutCancelsAndDrops(t *testing.T) {
	e := newExecutor(t)
	defer e.Free()
	p := testfutures.NewProbe(0, true, 0, 0)
	defer p.Free()
	var out uint64
	// The bound is only an upper limit on the wait: nothing here is timed.
	if got := code(e.BlockOn(p.Future(), unsafe.Pointer(&out), int64(time.Millisecond))); got != status.ETIMEDOUT {
		t.Errorf("BlockOn of a never-ready future = %s, want ETIMEDOUT", got.Name())
	}
	if p.Drops() != 1 {
		t.Errorf("drops = %d, want 1", p.Drops())
	}
}

// A goroutine on another OS thread wakes the future while the driver is
// parked on its futex; a lost wakeup would show as ETIMEDOUT, not as a hang.
func TestWakeFromAnotherThreadEndsThePark(t *testing.T) {
	e := newExecutor(t)
	defer e.Free()
	p := testfutures.NewProbe(0, true, 0, 7)
	defer p.Free()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for p.Polls() == 0 {
			runtime.Gosched()
		}
		p.Release()
	}()
	var out uint64
	if err := e.BlockOn(p.Future(), unsafe.Pointer(&out), int64(30*time.Second)); err != nil {
		t.Fatalf("BlockOn: %v (a lost wakeup?)", err)
	}
	if out != 7 {
		t.Errorf("out = %d, want 7", out)
	}
}

func TestSecondDriverIsRefused(t *testing.T) {
	e := newExecutor(t)
	defer e.Free()
	p := testfutures.NewProbe(0, true, 0, 1)
	defer p.Free()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var out uint64
		done <- e.BlockOn(p.Future(), unsafe.Pointer(&out), int64(30*time.Second))
	}()
	for p.Polls() == 0 {
		runtime.Gosched()
	}
	if _, err := e.Run(0, 0); code(err) != status.EBUSY {
		t.Errorf("Run while another thread drives = %v, want EBUSY", err)
	}
	if got := code(e.Free()); got != status.EBUSY {
		t.Errorf("Free while driven = %s, want EBUSY", got.Name())
	}
	p.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("BlockOn: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("BlockOn did not return after Release")
	}
}

func TestFreeCancelsPendingAndRefusesLaterUse(t *testing.T) {
	e := newExecutor(t)
	handle := e.Handle()
	p := testfutures.NewProbe(0, true, 0, 0)
	defer p.Free()
	var out uint64
	if got := code(e.BlockOn(p.Future(), unsafe.Pointer(&out), 0)); got != status.ETIMEDOUT {
		t.Fatalf("BlockOn with a zero bound = %s, want ETIMEDOUT", got.Name())
	}
	if err := e.Free(); err != nil {
		t.Fatalf("Free: %v", err)
	}
	if got := code(e.Free()); got != status.EHANDLE {
		t.Errorf("second Free = %s, want EHANDLE", got.Name())
	}
	if _, err := executor.Lookup(handle); code(err) != status.EHANDLE {
		t.Errorf("Lookup after Free = %v, want EHANDLE", err)
	}
	if p.Drops() != 1 {
		t.Errorf("drops = %d, want 1", p.Drops())
	}
}

func TestRunStopsAtPollBudget(t *testing.T) {
	e := newExecutor(t)
	defer e.Free()
	// A root that yields forever would hang Run(0,0); with a budget it returns.
	p := testfutures.NewProbe(1<<30, false, 0, 0)
	defer p.Free()
	var out uint64
	if got := code(e.BlockOn(p.Future(), unsafe.Pointer(&out), 0)); got != status.ETIMEDOUT {
		t.Fatalf("BlockOn = %s, want ETIMEDOUT", got.Name())
	}
	if p.Drops() != 1 {
		t.Errorf("drops = %d, want 1", p.Drops())
	}
	n, err := e.Run(10, 0)
	if err != nil || n != 0 {
		t.Errorf("Run on an idle executor = %d, %v; want 0, nil", n, err)
	}
}

func TestUnknownKindIsRefused(t *testing.T) {
	if _, err := executor.New(executor.Config{Kind: 99}); code(err) != status.EINVAL {
		t.Errorf("New with kind 99 = %v, want EINVAL", err)
	}
}

func newThreads(t *testing.T, workers int) *executor.Executor {
	t.Helper()
	e, err := executor.New(executor.Config{Kind: executor.KindThreads, Workers: workers})
	if err != nil {
		t.Fatalf("New(threads): %v", err)
	}
	return e
}

// block_on from a goroutine (a thread that is not a worker) onto a
// thread-per-core executor: the root runs on a worker, the caller sleeps.
func TestThreadsBlockOnFromOutside(t *testing.T) {
	e := newThreads(t, 2)
	defer e.Free()
	p := testfutures.NewProbe(100, false, 0, 9)
	defer p.Free()
	var out uint64
	if err := e.BlockOn(p.Future(), unsafe.Pointer(&out), int64(30*time.Second)); err != nil {
		t.Fatalf("BlockOn: %v", err)
	}
	if out != 9 || p.Polls() != 101 || p.Drops() != 1 {
		t.Errorf("out, polls, drops = %d, %d, %d; want 9, 101, 1", out, p.Polls(), p.Drops())
	}
}

// An immediate shutdown drops a future that would wait forever, exactly
// once, and later calls are refused or answered at once.
func TestThreadsShutdownCancelsAndRefuses(t *testing.T) {
	e := newThreads(t, 2)
	p := testfutures.NewProbe(0, true, 0, 0)
	defer p.Free()
	done := make(chan error, 1)
	go func() {
		var out uint64
		done <- e.BlockOn(p.Future(), unsafe.Pointer(&out), int64(30*time.Second))
	}()
	for p.Polls() == 0 {
		runtime.Gosched()
	}
	if err := e.Shutdown(executor.ShutdownImmediate, int64(10*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if got := code(err); got != status.ECANCELLED {
			t.Errorf("BlockOn after shutdown = %s, want ECANCELLED", got.Name())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("BlockOn did not return after an immediate shutdown")
	}
	if p.Drops() != 1 {
		t.Errorf("drops = %d, want 1", p.Drops())
	}
	if err := e.Shutdown(executor.ShutdownGraceful, 0); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	q := testfutures.NewProbe(0, false, 0, 0)
	defer q.Free()
	var out uint64
	if got := code(e.BlockOn(q.Future(), unsafe.Pointer(&out), -1)); got != status.ESHUTDOWN {
		t.Errorf("BlockOn after shutdown = %s, want ESHUTDOWN", got.Name())
	}
	if q.Drops() != 1 {
		t.Errorf("a refused future was dropped %d times, want 1", q.Drops())
	}
	if err := e.Free(); err != nil {
		t.Errorf("Free: %v", err)
	}
}

func TestThreadsRefuseLocalOnlyCalls(t *testing.T) {
	e := newThreads(t, 1)
	defer e.Free()
	if _, err := e.Run(0, 0); code(err) != status.ENOTSUP {
		t.Errorf("Run on threads = %v, want ENOTSUP", err)
	}
	if _, err := e.PollFd(); code(err) != status.ENOTSUP {
		t.Errorf("PollFd on threads = %v, want ENOTSUP", err)
	}
}
