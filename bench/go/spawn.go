// SPDX-License-Identifier: MIT
//
// bench_scale's Go comparator: N goroutines started, each parks once on a
// channel; once all have started, the channel is closed (which wakes them
// all) and the main goroutine waits for the last to finish. Prints the
// seconds of both phases: "spawn_park wake_finish". bench_scale runs it
// with its own CPU affinity (one CPU), so the runtime uses one P.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "usage: spawn N")
		os.Exit(2)
	}
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
	close(gate)
	finished.Wait()
	t2 := time.Now()
	fmt.Printf("%.6f %.6f\n", t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds())
}
