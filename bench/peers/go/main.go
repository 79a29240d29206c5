// Go peer: goroutines on one P, except spawn_mt (GOMAXPROCS=2). Same
// protocol as bench/common/bench.h:
//
//	go_bench yield|spawn|spawn_mt|chain|wake|idle <min_seconds> <size> [yields]
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fanOut is the idiomatic "spawn n and wait": go + WaitGroup.
func fanOut(tasks int, body func()) {
	var wg sync.WaitGroup
	wg.Add(tasks)
	for i := 0; i < tasks; i++ {
		go func() {
			body()
			wg.Done()
		}()
	}
	wg.Wait()
}

// chainLink is one task of a chain: it starts the next one, the last closes
// done.
func chainLink(left int, done chan struct{}) {
	if left == 1 {
		close(done)
	} else {
		go chainLink(left-1, done)
	}
}

// wakeRounds: a goroutine locked to its own OS thread (the closest Go has to
// a thread the runtime never saw) wakes the task goroutine through a channel
// and waits for its acknowledgement on another, rounds times. With one P, as
// the other runtimes' tasks have one thread, each handoff wakes the other
// thread (GOMAXPROCS=2 measured slower here: 24-43 us against 14-27 us).
func wakeRounds(rounds int) {
	wake, ack := make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		for i := 0; i < rounds; i++ {
			wake <- struct{}{}
			<-ack
		}
	}()
	for i := 0; i < rounds; i++ {
		<-wake
		ack <- struct{}{}
	}
}

// cpuNanos is the CPU time of the whole process, every thread.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// timeIterations runs one untimed warm-up iteration (page faults are costly
// on this machine kind), then whole iterations until minSeconds have passed.
// With withCPU it also prints the process CPU time per operation.
func timeIterations(minSeconds float64, opsPerIter int, withCPU bool, once func()) {
	once()
	start, cpuStart := time.Now(), cpuNanos()
	iters := 0
	for iters == 0 || time.Since(start).Seconds() < minSeconds {
		once()
		iters++
	}
	ops := float64(iters) * float64(opsPerIter)
	fmt.Printf("%.3f ns/op iters=%d\n", float64(time.Since(start).Nanoseconds())/ops, iters)
	if withCPU {
		fmt.Printf("cpu %.3f ns/op\n", float64(cpuNanos()-cpuStart)/ops)
	}
}

func rssBytes() int {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	resident, _ := strconv.Atoi(strings.Fields(string(statm))[1])
	return resident * os.Getpagesize()
}

// idleBytesPerTask parks goroutines on a channel nobody sends on. A
// goroutine's state lives on its own stack, so it cannot be excluded: the
// figure includes it (2 KiB minimum stack).
func idleBytesPerTask(tasks int) float64 {
	never := make(chan struct{})
	var parked atomic.Int64
	runtime.GC()
	before := rssBytes()
	for i := 0; i < tasks; i++ {
		go func() {
			parked.Add(1)
			<-never
		}()
	}
	for parked.Load() < int64(tasks) {
		runtime.Gosched()
	}
	return float64(rssBytes()-before) / float64(tasks)
}

func count(i int) int {
	if len(os.Args) <= i {
		panic("usage: go_bench yield|spawn|spawn_mt|chain|wake|idle <min_seconds> <size> [yields]")
	}
	n, err := strconv.Atoi(os.Args[i])
	if err != nil || n <= 0 {
		panic("bad count " + os.Args[i])
	}
	return n
}

func main() {
	runtime.GOMAXPROCS(1)
	minSeconds, _ := strconv.ParseFloat(os.Args[2], 64)
	tasks := count(3)
	switch os.Args[1] {
	case "yield":
		yields := count(4)
		timeIterations(minSeconds, tasks*yields, false, func() {
			fanOut(tasks, func() {
				for i := 0; i < yields; i++ {
					runtime.Gosched()
				}
			})
		})
	case "spawn":
		timeIterations(minSeconds, tasks, false, func() { fanOut(tasks, func() {}) })
	case "spawn_mt":
		// The spawner is a goroutine; no API says which P ran what, so no split.
		runtime.GOMAXPROCS(2)
		timeIterations(minSeconds, tasks, false, func() {
			done := make(chan struct{})
			go func() {
				fanOut(tasks, func() {})
				close(done)
			}()
			<-done
		})
	case "chain":
		timeIterations(minSeconds, tasks, false, func() {
			done := make(chan struct{})
			go chainLink(tasks, done)
			<-done
		})
	case "wake":
		timeIterations(minSeconds, tasks, true, func() { wakeRounds(tasks) })
	case "idle":
		fmt.Printf("%.1f bytes/task\n", idleBytesPerTask(tasks))
	default:
		panic("unsupported workload " + os.Args[1])
	}
}
