package gofuture

import (
	"errors"
	"fmt"
	rtcgo "runtime/cgo"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
	"github.com/asyncrt/asyncrt/runtime/executor"
	"github.com/asyncrt/asyncrt/runtime/status"
)

// bound is only an upper limit on a wait: nothing here is timed.
const bound = int64(30 * time.Second)

func init() {
	testHookDrop = func(f Future, h rtcgo.Handle) {
		if c, ok := f.(interface{ countDrop(released bool) }); ok {
			c.countDrop(released(h))
		}
	}
}

// released reports whether h was deleted: Value panics on a deleted handle.
func released(h rtcgo.Handle) (gone bool) {
	defer func() { gone = recover() != nil }()
	h.Value()
	return false
}

// counts is embedded by the test futures: their polls, and the runtime's
// drops of them that released their handle.
type counts struct{ polls, drops atomic.Int32 }

func (c *counts) countDrop(released bool) {
	if released {
		c.drops.Add(1)
	}
}

// scripted yields `yields` times, then its poll returns what last does.
type scripted struct {
	counts
	yields int
	last   func() (bool, error)
}

func (f *scripted) Poll(cx Context) (bool, error) {
	if int(f.polls.Add(1)) <= f.yields {
		cx.Wake()
		return false, nil
	}
	return f.last()
}

func ready() (bool, error) { return true, nil }

// parked hands a Waker to `wakers` at its first poll and completes at the
// next one.
type parked struct {
	counts
	wakers chan<- *Waker
}

func (f *parked) Poll(cx Context) (bool, error) {
	if f.polls.Add(1) == 1 {
		f.wakers <- cx.Waker()
		return false, nil
	}
	return true, nil
}

// outcome is how a child task ended, as the data plane records it.
type outcome struct {
	status  status.Code
	message string
}

// parent spawns its children on the core that polls it, yields until they
// all completed, and sends their outcomes. step runs at every poll after
// the spawn, with the children's tasks.
type parent struct {
	counts
	children []Future
	step     func(tasks []dataplane.Task)
	outcomes chan<- []outcome
	tasks    []dataplane.Task
}

func (f *parent) Poll(cx Context) (bool, error) {
	if f.polls.Add(1) == 1 {
		core, ok := dataplane.ContextCore(cx.pc.cx)
		if !ok {
			return false, errors.New("parent: not polled by an executor")
		}
		for _, c := range f.children {
			task, err := core.Spawn(New(c), 0)
			if err != nil {
				return false, err
			}
			f.tasks = append(f.tasks, task)
		}
	}
	if f.step != nil {
		f.step(f.tasks)
	}
	for _, task := range f.tasks {
		if !task.Done() {
			cx.Wake()
			return false, nil
		}
	}
	got := make([]outcome, len(f.tasks))
	for i, task := range f.tasks {
		got[i].status, got[i].message = task.Failure()
		task.Release()
	}
	f.outcomes <- got
	return true, nil
}

// kinds are the executors every test runs on: the futures are polled from
// the calling goroutine's thread, and from worker threads.
var kinds = []struct {
	name string
	cfg  executor.Config
}{
	{"local", executor.Config{Kind: executor.KindLocal}},
	{"threads", executor.Config{Kind: executor.KindThreads, Workers: 2}},
}

func forEachKind(t *testing.T, test func(t *testing.T, e *executor.Executor)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			e, err := executor.New(k.cfg)
			if err != nil {
				t.Fatalf("executor.New: %v", err)
			}
			defer func() {
				if err := e.Free(); err != nil {
					t.Errorf("Free: %v", err)
				}
			}()
			test(t, e)
		})
	}
}

// runParent block_ons a parent of children and returns their outcomes.
func runParent(t *testing.T, e *executor.Executor, children []Future, step func([]dataplane.Task)) (*parent, []outcome) {
	t.Helper()
	outcomes := make(chan []outcome, 1)
	p := &parent{children: children, step: step, outcomes: outcomes}
	if err := e.BlockOn(New(p), nil, bound); err != nil {
		t.Fatalf("BlockOn(parent): %v", err)
	}
	select {
	case got := <-outcomes:
		return p, got
	default:
		t.Fatal("the parent completed without its children's outcomes")
		return nil, nil
	}
}

// A future that panics on its second poll fails its own task with
// EINTERNAL and the panic in the task's error; it is dropped once, and a
// sibling parked across the panic is woken and completes normally.
func TestPanicFailsOnlyItsTask(t *testing.T) {
	forEachKind(t, func(t *testing.T, e *executor.Executor) {
		panicker := &scripted{yields: 1, last: func() (bool, error) { panic("boom on poll 2") }}
		wakers := make(chan *Waker, 1)
		sibling := &parked{wakers: wakers}
		woke := false
		step := func(tasks []dataplane.Task) {
			// The sibling is woken only once the panic is over, from
			// another goroutine, as an IO completion would.
			if !woke && tasks[0].Done() && len(wakers) == 1 {
				woke = true
				w := <-wakers
				go func() {
					w.Wake()
					w.Release()
				}()
			}
		}
		p, got := runParent(t, e, []Future{panicker, sibling}, step)

		if got[0].status != status.EINTERNAL {
			t.Errorf("panicking task's status = %s, want ASYNCRT_EINTERNAL", got[0].status.Name())
		}
		if !strings.Contains(got[0].message, "Go panic") || !strings.Contains(got[0].message, "boom on poll 2") {
			t.Errorf("panicking task's message = %q, want it to name the Go panic and its value", got[0].message)
		}
		if got[1] != (outcome{status.OK, ""}) {
			t.Errorf("sibling's outcome = %+v, want OK", got[1])
		}
		for _, c := range []struct {
			name         string
			f            *counts
			polls, drops int32
		}{
			{"panicker", &panicker.counts, 2, 1},
			{"sibling", &sibling.counts, 2, 1},
			{"parent", &p.counts, p.polls.Load(), 1},
		} {
			if polls, drops := c.f.polls.Load(), c.f.drops.Load(); polls != c.polls || drops != c.drops {
				t.Errorf("%s: polls, drops = %d, %d; want %d, %d", c.name, polls, drops, c.polls, c.drops)
			}
		}
	})
}

// What a poll returns becomes its task's status and message.
func TestPollOutcomeIsTheTaskStatus(t *testing.T) {
	timedOut := status.Errorf(status.ETIMEDOUT, "no reply from the peer")
	cases := []struct {
		name string
		last func() (bool, error)
		want outcome
	}{
		{"completes", ready, outcome{status.OK, ""}},
		{"status error", func() (bool, error) { return false, timedOut }, outcome{status.ETIMEDOUT, "no reply from the peer"}},
		{"wrapped status error", func() (bool, error) { return false, fmt.Errorf("asking: %w", timedOut) },
			outcome{status.ETIMEDOUT, "asking: " + timedOut.Error()}},
		{"plain error", func() (bool, error) { return false, errors.New("disk on fire") }, outcome{status.EFAILED, "disk on fire"}},
		{"error and done", func() (bool, error) { return true, errors.New("late") }, outcome{status.EFAILED, "late"}},
		{"status error with OK", func() (bool, error) { return false, &status.Error{Message: "odd"} },
			outcome{status.EFAILED, (&status.Error{Message: "odd"}).Error()}},
		{"panic with an error", func() (bool, error) { panic(errors.New("bad state")) },
			outcome{status.EINTERNAL, "Go panic in a future's poll: bad state"}},
	}
	forEachKind(t, func(t *testing.T, e *executor.Executor) {
		children := make([]Future, len(cases))
		futures := make([]*scripted, len(cases))
		for i, c := range cases {
			futures[i] = &scripted{yields: 2, last: c.last}
			children[i] = futures[i]
		}
		_, got := runParent(t, e, children, nil)
		for i, c := range cases {
			if got[i] != c.want {
				t.Errorf("%s: outcome = %+v, want %+v", c.name, got[i], c.want)
			}
			if polls, drops := futures[i].polls.Load(), futures[i].drops.Load(); polls != 3 || drops != 1 {
				t.Errorf("%s: polls, drops = %d, %d; want 3, 1", c.name, polls, drops)
			}
		}
	})
}

// block_on of a Go future reports its failure, a panic included.
func TestBlockOnReportsTheFailure(t *testing.T) {
	cases := []struct {
		name string
		last func() (bool, error)
		want status.Code
	}{
		{"completes", ready, status.OK},
		{"status error", func() (bool, error) { return false, status.Errorf(status.ECANCELLED, "stop") }, status.ECANCELLED},
		{"panic", func() (bool, error) { panic("at the root") }, status.EINTERNAL},
	}
	forEachKind(t, func(t *testing.T, e *executor.Executor) {
		for _, c := range cases {
			f := &scripted{yields: 1, last: c.last}
			err := e.BlockOn(New(f), nil, bound)
			got := status.OK
			if err != nil {
				var se *status.Error
				if !errors.As(err, &se) {
					t.Fatalf("%s: BlockOn = %v, not a *status.Error", c.name, err)
				}
				got = se.Code
			}
			if got != c.want {
				t.Errorf("%s: BlockOn = %v, want %s", c.name, err, c.want.Name())
			}
			if drops := f.drops.Load(); drops != 1 {
				t.Errorf("%s: drops = %d, want 1", c.name, drops)
			}
		}
	})
}

// keeper keeps the Context of its poll.
type keeper struct{ cx Context }

func (f *keeper) Poll(cx Context) (bool, error) {
	f.cx = cx
	return true, nil
}

// A Context kept past its poll refuses to be used instead of touching the
// freed C context.
func TestContextAfterItsPollPanics(t *testing.T) {
	e, err := executor.New(executor.Config{})
	if err != nil {
		t.Fatalf("executor.New: %v", err)
	}
	defer e.Free()
	f := &keeper{}
	if err := e.BlockOn(New(f), nil, bound); err != nil {
		t.Fatalf("BlockOn: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Wake on a Context after its poll did not panic")
		}
	}()
	f.cx.Wake()
}

// A Waker wakes its task from another goroutine; releasing it twice, or
// waking it after its release, does nothing.
func TestWakerReleaseIsIdempotent(t *testing.T) {
	e, err := executor.New(executor.Config{})
	if err != nil {
		t.Fatalf("executor.New: %v", err)
	}
	defer e.Free()
	wakers := make(chan *Waker, 1)
	f := &parked{wakers: wakers}
	done := make(chan error, 1)
	go func() { done <- e.BlockOn(New(f), nil, bound) }()
	var w *Waker
	select {
	case w = <-wakers:
	case err := <-done:
		t.Fatalf("BlockOn returned before the first poll parked: %v", err)
	}
	w.Wake()
	w.Release()
	w.Release()
	w.Wake()
	if err := <-done; err != nil { // BlockOn's own bound ends this wait
		t.Fatalf("BlockOn: %v", err)
	}
	if polls, drops := f.polls.Load(), f.drops.Load(); polls != 2 || drops != 1 {
		t.Errorf("polls, drops = %d, %d; want 2, 1", polls, drops)
	}
}
