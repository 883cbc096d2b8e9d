package mqttconn

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// pair returns a client connection wrapped like Open does and the server side of a loopback TCP connection.
func pair(t *testing.T) (*coalescingConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	c := newCoalescingConn(raw)
	t.Cleanup(func() { c.Close(); srv.Close() })
	return c, srv
}

// Many small writes (PUBACKs) arrive complete and in order, and Close sends what is still queued.
func TestCoalescedWritesInOrderAndFlushedOnClose(t *testing.T) {
	c, srv := pair(t)
	var want bytes.Buffer
	for i := 0; i < 5000; i++ {
		p := []byte{0x40, 0x02, byte(i >> 8), byte(i)} // a PUBACK for packet id i
		want.Write(p)
		if n, err := c.Write(p); err != nil || n != len(p) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(srv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("server received %d bytes, want %d in order", len(got), want.Len())
	}
	if _, err := c.Write([]byte{1}); err == nil {
		t.Errorf("write after Close succeeded")
	}
}

// With read batching, the first read after a quiet spell returns at once and the next socket read waits for
// the interval; without it, reads return as soon as data is there.
func TestBatchedReads(t *testing.T) {
	const interval = 60 * time.Millisecond
	c, srv := pair(t)
	c.readInterval = interval
	buf := make([]byte, 16)
	start := time.Now()
	go func() {
		_, _ = srv.Write([]byte("a"))
		time.Sleep(5 * time.Millisecond)
		_, _ = srv.Write([]byte("b"))
	}()
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "a" {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	if d := time.Since(start); d > interval/2 {
		t.Errorf("first read after quiet took %v, want it at once", d)
	}
	first := time.Now()
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "b" {
		t.Fatalf("second read: %q, %v", buf[:n], err)
	}
	if d := time.Since(first); d < interval-10*time.Millisecond {
		t.Errorf("second socket read came %v after the first, want about %v", d, interval)
	}

	plain, srv2 := pair(t)
	go func() {
		_, _ = srv2.Write([]byte("x"))
		time.Sleep(5 * time.Millisecond)
		_, _ = srv2.Write([]byte("y"))
	}()
	_, _ = plain.Read(buf)
	t0 := time.Now()
	if n, err := plain.Read(buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("plain read: %q, %v", buf[:n], err)
	}
	if d := time.Since(t0); d > interval/2 {
		t.Errorf("unbatched read waited %v", d)
	}
}

// A broken connection surfaces on a later Write, so paho notices it.
func TestWriteErrorSurfaces(t *testing.T) {
	c, srv := pair(t)
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Write(make([]byte, 64<<10)); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("writes to a closed peer never failed")
}
