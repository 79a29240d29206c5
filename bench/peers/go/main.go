// Go peer: goroutines on one P, except spawn_mt (GOMAXPROCS=2). Same
// protocol as bench/common/bench.h:
//
//	go_bench yield|spawn|spawn_mt|chain|ping_pong|wake|idle|timers <min_seconds> <size> [yields]
//	go_bench serve echo|http (servers.go)
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
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

// pingPong: two goroutines exchange a number through a pair of unbuffered
// channels, rounds round trips; the pinger (this goroutine) sends i and
// waits for i + 1, the ponger answers until its channel closes.
func pingPong(rounds int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()
	for i := 0; i < rounds; i++ {
		ping <- i
		if <-pong != i+1 {
			panic("ping_pong: wrong reply")
		}
	}
	close(ping)
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

// timerOffset is offset i of the timers workload, in [0, 100 ms): the
// splitmix64 sequence and scaling of bench/common/bench.c, so every program
// waits the same times.
func timerOffset(i int) time.Duration {
	z := 0x7431 + uint64(i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return time.Duration(((z >> 32) * 100_000_000) >> 32)
}

// timersOnce is one timers iteration: a time.AfterFunc per timer, due its
// offset after its creation; its callback (a goroutine of its own) stores
// how late it ran, in ns (negative if early). Returns the time spent
// creating them.
func timersOnce(offsets []time.Duration, late []int64) time.Duration {
	var wg sync.WaitGroup
	wg.Add(len(offsets))
	start := time.Now()
	for i, offset := range offsets {
		deadline := time.Now().Add(offset)
		time.AfterFunc(offset, func() {
			late[i] = int64(time.Since(deadline))
			wg.Done()
		})
	}
	create := time.Since(start)
	wg.Wait()
	return create
}

// timeTimers is the timers mode of bench/common/bench.c: one untimed warm-up
// iteration, then whole iterations until minSeconds have passed, each
// checked (all fired, none early); prints wall ms per iteration, creation ns
// per timer and the p50/p99 lateness of every timer of the timed iterations.
func timeTimers(minSeconds float64, timers int) {
	offsets := make([]time.Duration, timers)
	for i := range offsets {
		offsets[i] = timerOffset(i)
	}
	late := make([]int64, timers)
	var pool []int64
	iteration := func() (wall, create time.Duration) {
		for i := range late {
			late[i] = math.MinInt64
		}
		start := time.Now()
		create = timersOnce(offsets, late)
		wall = time.Since(start)
		unfired, early, earliest := 0, 0, int64(0)
		for _, l := range late {
			switch {
			case l == math.MinInt64:
				unfired++
			case l < 0:
				early++
				earliest = min(earliest, l)
			}
		}
		if unfired > 0 || early > 0 {
			fmt.Fprintf(os.Stderr, "bench: timers: %d of %d never fired, %d fired early "+
				"(earliest %d ns before its deadline)\n", unfired, timers, early, -earliest)
			os.Exit(1)
		}
		return wall, create
	}
	iteration()
	var wall, create time.Duration
	iters := 0
	for start := time.Now(); iters == 0 || time.Since(start).Seconds() < minSeconds; iters++ {
		w, c := iteration()
		wall += w
		create += c
		pool = append(pool, late...)
	}
	slices.Sort(pool)
	percentileUs := func(pct int) float64 {
		rank := (len(pool)*pct + 99) / 100
		return float64(pool[max(rank, 1)-1]) / 1e3
	}
	fmt.Printf("%.3f ms iters=%d\n", float64(wall.Nanoseconds())/1e6/float64(iters), iters)
	fmt.Printf("create %.1f ns\n", float64(create.Nanoseconds())/float64(len(pool)))
	fmt.Printf("p50_late %.1f us\n", percentileUs(50))
	fmt.Printf("p99_late %.1f us\n", percentileUs(99))
}

func count(i int) int {
	if len(os.Args) <= i {
		panic("usage: go_bench yield|spawn|spawn_mt|chain|ping_pong|wake|idle|timers <min_seconds> <size> [yields]")
	}
	n, err := strconv.Atoi(os.Args[i])
	if err != nil || n <= 0 {
		panic("bad count " + os.Args[i])
	}
	return n
}

func main() {
	runtime.GOMAXPROCS(1)
	if os.Args[1] == "serve" {
		serve(os.Args[2])
		return
	}
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
	case "ping_pong":
		timeIterations(minSeconds, tasks, false, func() { pingPong(tasks) })
	case "wake":
		timeIterations(minSeconds, tasks, true, func() { wakeRounds(tasks) })
	case "idle":
		fmt.Printf("%.1f bytes/task\n", idleBytesPerTask(tasks))
	case "timers":
		timeTimers(minSeconds, tasks)
	default:
		panic("unsupported workload " + os.Args[1])
	}
}
