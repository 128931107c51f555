// exectree.go - a Go parent that runs a child of its own (os/exec) and
// talks to it over its stdin and stdout: the parent sends 1..N, one every
// 100 ms, the child answers each with the running sum, and at the end the
// parent waits for the child (cmd.Wait: raw waitid and wait4). Prints
// "got I SUM" per answer and "DONE wait=ERR sum=S" (wait=<nil> sum=N(N+1)/2
// when all went well); "N alone": the same lines, without a child.
// test_go.sh builds it with and without runtime/cgo.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		in := bufio.NewScanner(os.Stdin)
		sum := 0
		for in.Scan() {
			n, _ := strconv.Atoi(in.Text())
			sum += n
			fmt.Printf("%d\n", sum)
		}
		return
	}
	n := 60
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 && os.Args[2] == "alone" {
		for i := 1; i <= n; i++ {
			fmt.Printf("got %d %d\n", i, i*(i+1)/2)
			time.Sleep(100 * time.Millisecond)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "child")
	w, _ := cmd.StdinPipe()
	r, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		fmt.Println("START", err)
		os.Exit(2)
	}
	sc := bufio.NewScanner(r)
	sum := 0
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "%d\n", i)
		if !sc.Scan() {
			fmt.Printf("LOST at %d: %v\n", i, sc.Err())
			os.Exit(3)
		}
		sum, _ = strconv.Atoi(sc.Text())
		fmt.Printf("got %d %d\n", i, sum)
		time.Sleep(100 * time.Millisecond)
	}
	w.Close()
	err := cmd.Wait()
	fmt.Printf("DONE wait=%v sum=%d\n", err, sum)
}
