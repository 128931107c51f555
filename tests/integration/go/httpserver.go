// httpserver.go - a Go HTTP server for test_servers.sh: listens on
// 127.0.0.1 (port 0: the kernel's choice), prints "listening PORT", and
// answers GET /count with a counter kept in memory ("count N", one more
// per request) and GET /hello with "hello". Keep-alive is on (net/http's
// default), so a client's connection stays open between requests.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
)

func main() {
	var mu sync.Mutex
	n := 0
	http.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		v := n
		mu.Unlock()
		fmt.Fprintf(w, "count %d\n", v)
	})
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello\n")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Printf("listening %d\n", l.Addr().(*net.TCPAddr).Port)
	fmt.Println(http.Serve(l, nil))
}
