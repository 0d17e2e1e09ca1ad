// SPDX-License-Identifier: MIT
//
// bench_scale's Go comparator: N goroutines started, each parks once on a
// channel; once all have started, the channel is closed (which wakes them
// all) and the main goroutine waits for the last to finish. Prints the
// seconds of both phases and the resident bytes before and at the peak
// (all parked): "spawn_park wake_finish rss0 rss". bench_scale runs it
// with its own CPU affinity (one CPU), so the runtime uses one P.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "usage: spawn N")
		os.Exit(2)
	}
	rss0 := rss()
	gate := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-gate
			finished.Done()
		}()
	}
	started.Wait()
	t1 := time.Now()
	peak := rss()
	close(gate)
	finished.Wait()
	t2 := time.Now()
	fmt.Printf("%.6f %.6f %d %d\n", t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(),
		rss0, peak)
}

// The process's resident bytes (/proc/self/statm), or 0.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
