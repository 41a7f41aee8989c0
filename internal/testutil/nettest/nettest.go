// Package nettest holds the raw-socket baseline that the transport
// benchmarks of ep/sock and pipeline/p2p measure themselves against. It
// imports testing, so only tests may use it.
package nettest

import (
	"io"
	"net"
	"path/filepath"
	"testing"
)

// RawStream connects a client to a listener on network ("unix": a socket in
// tb.TempDir(); "tcp": an ephemeral loopback port) and starts a goroutine
// that reads the accepted end in whole messages of size bytes
// (io.ReadFull), sending on done after each one. The goroutine closes done
// and returns once a read fails, that is once the writing end is closed:
// close w and wait for done to be closed before the test ends. The
// listener and both ends are also closed at tb's cleanup. Setup failures
// fail tb (Fatal).
func RawStream(tb testing.TB, network string, size int) (w net.Conn, done <-chan struct{}) {
	tb.Helper()
	laddr := "127.0.0.1:0"
	if network == "unix" {
		laddr = filepath.Join(tb.TempDir(), "raw.sock")
	}
	ln, err := net.Listen(network, laddr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	wc, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { wc.Close() })
	rc := <-acc
	tb.Cleanup(func() { rc.Close() })
	sink := make([]byte, size)
	d := make(chan struct{})
	go func() {
		defer close(d)
		for {
			if _, err := io.ReadFull(rc, sink); err != nil {
				return
			}
			d <- struct{}{}
		}
	}()
	return wc, d
}
