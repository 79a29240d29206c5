// Go peer: goroutines on one P. Same protocol as bench/common/bench.h:
//
//	go_bench yield|spawn|idle <min_seconds> <tasks> [yields]
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// timeIterations runs one untimed warm-up iteration (page faults are costly
// on this machine kind), then whole iterations until minSeconds have passed.
func timeIterations(minSeconds float64, opsPerIter int, once func()) {
	once()
	start := time.Now()
	iters := 0
	for iters == 0 || time.Since(start).Seconds() < minSeconds {
		once()
		iters++
	}
	ns := float64(time.Since(start).Nanoseconds()) / (float64(iters) * float64(opsPerIter))
	fmt.Printf("%.3f ns/op iters=%d\n", ns, iters)
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
		panic("usage: go_bench yield|spawn|idle <min_seconds> <tasks> [yields]")
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
		timeIterations(minSeconds, tasks*yields, func() {
			fanOut(tasks, func() {
				for i := 0; i < yields; i++ {
					runtime.Gosched()
				}
			})
		})
	case "spawn":
		timeIterations(minSeconds, tasks, func() { fanOut(tasks, func() {}) })
	case "idle":
		fmt.Printf("%.1f bytes/task\n", idleBytesPerTask(tasks))
	default:
		panic("unsupported workload " + os.Args[1])
	}
}
