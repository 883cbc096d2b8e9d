package readpace

import (
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// The first read after a quiet spell is not delayed; a read soon after another waits for the interval.
func TestWaitSpacesReadsUnderLoad(t *testing.T) {
	const interval = 50 * time.Millisecond
	c, _ := tcpPair(t)
	p := New(c, interval)
	if p.Wait() {
		t.Fatal("waited before any read")
	}
	p.Done()
	start := time.Now()
	if !p.Wait() {
		t.Fatal("did not wait right after a read")
	}
	if d := time.Since(start); d < interval-5*time.Millisecond {
		t.Fatalf("waited %v, want about %v", d, interval)
	}
	p.Done()
	time.Sleep(interval)
	if p.Wait() {
		t.Fatal("waited although the interval had passed")
	}
	if New(c, 0).Wait() {
		t.Fatal("interval 0 waited")
	}
}

// While waiting the socket's receive low-water mark is raised, and it is 1 byte again before the read: data
// that arrives meanwhile is then read at once.
func TestLowWaterRaisedOnlyWhileWaiting(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_RCVLOWAT is checked on Linux")
	}
	c, srv := tcpPair(t)
	p := New(c, 100*time.Millisecond)
	if p.raw == nil {
		t.Fatal("no socket found for a TCP connection")
	}
	lowWater := func() int {
		var v int
		var err error
		_ = p.raw.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT) })
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	p.Done()
	seen := make(chan int, 1)
	go func() {
		time.Sleep(30 * time.Millisecond)
		seen <- lowWater()
		_, _ = srv.Write([]byte("x"))
	}()
	p.Wait()
	if v := <-seen; v < 1024 {
		t.Fatalf("low-water mark while waiting = %d, want it raised", v)
	}
	if v := lowWater(); v != 1 {
		t.Fatalf("low-water mark after waiting = %d, want 1", v)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 8)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("read after waiting: %q %v", buf[:n], err)
	}
}

// A connection that is not TCP is spaced all the same, without the socket option.
func TestNonTCPConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	p := New(a, 20*time.Millisecond)
	if p.raw != nil {
		t.Fatal("found a socket in a pipe")
	}
	p.Done()
	if !p.Wait() {
		t.Fatal("did not wait")
	}
}
