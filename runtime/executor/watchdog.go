package executor

// The stall watchdog's clock: a goroutine that asks the data plane to sample
// the executor's workers every period (art_watch_check, which finds the
// polls that have run too long and reports them). The goroutine costs no
// thread while it sleeps; a report runs on whichever thread Go gives it.

import (
	"time"
)

type watchdog struct {
	stop chan struct{}
	done chan struct{}
}

// WatchStalls (re)starts the watchdog with a new period, or stops it
// (period 0). The threshold and the report are the data plane's.
func (e *Executor) WatchStalls(period time.Duration) {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	e.stopWatchdogLocked()
	if period <= 0 || e.isFreed() {
		return
	}
	w := &watchdog{stop: make(chan struct{}), done: make(chan struct{})}
	e.watch = w
	first := e.cores[0]
	go func() {
		defer close(w.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				first.CheckStalls()
			}
		}
	}()
}

// stopWatchdogLocked stops the goroutine and waits until it has returned
// (so no check is under way); watchMu is held.
func (e *Executor) stopWatchdogLocked() {
	if e.watch == nil {
		return
	}
	close(e.watch.stop)
	<-e.watch.done
	e.watch = nil
}

// freeWatchdog stops the watchdog and frees the data plane's side of it,
// whose finalizer runs now. Called by Free once the handle is gone.
func (e *Executor) freeWatchdog() {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	e.stopWatchdogLocked()
	e.cores[0].FreeWatch()
}
