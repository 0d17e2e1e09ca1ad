// SPDX-License-Identifier: MIT
//
// bench_micro's Go comparator: goroutines doing what bench_micro's
// fibers do, one round of each, printed as "mode value" lines:
//
//	yield  ns per round trip of two goroutines calling runtime.Gosched
//	chan   ns per round trip through an unbuffered channel
//	mutex  ns per hold of a sync.Mutex two goroutines take in turn,
//	       each yielding while it holds it
//	spawn  ns per goroutine started and waited for (a done channel)
//	timer  ns of process CPU per wake-up of 1,000 goroutines each
//	       sleeping 1 ms 10 times
//
// Usage: micro LOADED PARKED ASLEEP WORK. With LOADED=1 the measures run
// beside PARKED goroutines blocked reading sockets that stay silent and
// ASLEEP goroutines asleep; WORK is the quarters of the full work to do.
// bench_micro runs it with GOMAXPROCS=1 on its own CPU.
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func perOp(t0 time.Time, n int) float64 {
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func yieldRound(n int) float64 {
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return perOp(t0, n)
}

func chanRound(n int) float64 {
	ch := make(chan int)
	done := make(chan bool)
	go func() {
		for i := 0; i < n; i++ {
			<-ch
		}
		done <- true
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ch <- i
	}
	<-done
	return perOp(t0, n)
}

func mutexRound(n int) float64 {
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < n; i++ {
				mu.Lock()
				runtime.Gosched()
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return perOp(t0, 2*n)
}

func spawnRound(n int) float64 {
	t0 := time.Now()
	for i := 0; i < n; i++ {
		done := make(chan struct{})
		go func() { close(done) }()
		<-done
	}
	return perOp(t0, n)
}

func cpuNs() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano() + ru.Stime.Nano())
}

func timerRound() float64 {
	const units, times = 1000, 10
	var wg sync.WaitGroup
	gate := make(chan struct{})
	wg.Add(units)
	for i := 0; i < units; i++ {
		go func() {
			<-gate
			for k := 0; k < times; k++ {
				time.Sleep(time.Millisecond)
			}
			wg.Done()
		}()
	}
	runtime.Gosched()
	c0 := cpuNs()
	close(gate)
	wg.Wait()
	return (cpuNs() - c0) / (units * times)
}

// The load: goroutines parked reading one end of socket pairs (through
// the runtime's poller) and goroutines asleep; returned is what stops it.
func startLoad(parked, asleep int) func() {
	var conns []net.Conn
	for i := 0; i < parked; i++ {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "socketpair:", err)
			os.Exit(1)
		}
		for _, fd := range fds {
			f := os.NewFile(uintptr(fd), "socket")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				fmt.Fprintln(os.Stderr, "FileConn:", err)
				os.Exit(1)
			}
			conns = append(conns, c)
		}
		go func(c net.Conn) {
			buf := make([]byte, 1)
			c.Read(buf)
		}(conns[len(conns)-2])
	}
	stop := make(chan struct{})
	for i := 0; i < asleep; i++ {
		go func() {
			select {
			case <-time.After(time.Hour):
			case <-stop:
			}
		}()
	}
	time.Sleep(time.Millisecond) // let them all park
	return func() {
		close(stop)
		for _, c := range conns {
			c.Close()
		}
	}
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: micro LOADED PARKED ASLEEP WORK")
		os.Exit(2)
	}
	var a [4]int
	for i := range a {
		v, err := strconv.Atoi(os.Args[i+1])
		if err != nil || v < 0 {
			fmt.Fprintln(os.Stderr, "micro: bad argument", os.Args[i+1])
			os.Exit(2)
		}
		a[i] = v
	}
	loaded, work := a[0] == 1, a[3]
	n := func(full int) int { return full * work / 4 }
	yieldRound(n(100000)) // warm up
	if loaded {
		defer startLoad(a[1], a[2])()
	}
	fmt.Printf("yield %.2f\n", yieldRound(n(1000000)))
	fmt.Printf("chan %.2f\n", chanRound(n(1000000)))
	fmt.Printf("mutex %.2f\n", mutexRound(n(200000)))
	fmt.Printf("spawn %.2f\n", spawnRound(n(200000)))
	fmt.Printf("timer %.2f\n", timerRound())
}
