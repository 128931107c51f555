// notify.go - a Go program that uses os/signal and os/exec, for test_go.sh.
//
// os/signal makes Go's runtime block every signal but the ones asked for
// on one of its threads with a raw rt_sigprocmask (the checkpoint signal
// included): without ckshim's seccomp filter that thread never parks. It
// prints "tick N" every 200 ms from a ticker goroutine, and on SIGUSR1
// runs /bin/true (fork/exec: Go's vfork child resets signal handlers with
// raw syscalls) and prints "usr1 N exec ok".
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1)
	ticks := make(chan int)
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		for n := 1; ; n++ {
			<-t.C
			ticks <- n
		}
	}()
	fmt.Println("READY")
	usr1 := 0
	for {
		select {
		case n := <-ticks:
			fmt.Println("tick", n)
		case <-sigs:
			usr1++
			res := "ok"
			if err := exec.Command("/bin/true").Run(); err != nil {
				res = err.Error()
			}
			fmt.Println("usr1", usr1, "exec", res)
		}
	}
}
