// The Go peer's servers for the IO workloads, in Go's idiom: a goroutine
// per connection on `net` (echo) and `net/http` (http), on one P like the
// other single-threaded servers.
//
//	go_bench serve echo|http   -> "port <n>" once listening on 127.0.0.1,
//	                              then serves until killed
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

var hello = []byte("Hello, World!")

func serve(mode string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	switch mode {
	case "echo":
		for {
			c, err := ln.Accept()
			if err != nil {
				panic(err)
			}
			go echo(c)
		}
	case "http":
		handler := func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(hello)
		}
		panic(http.Serve(ln, http.HandlerFunc(handler)))
	default:
		fmt.Fprintln(os.Stderr, "unsupported workload "+mode)
		os.Exit(2)
	}
}

// echo writes back what it reads. Not io.Copy: between two TCPConns that
// becomes splice(2), a path none of the other servers take.
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}
