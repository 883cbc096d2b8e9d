package mqttconn

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// pair returns a client connection wrapped like Open does and the server side of a loopback TCP connection.
func pair(t testing.TB) (*coalescingConn, net.Conn) {
	return pairWith(t, func(c net.Conn) net.Conn { return c })
}

// pairWith is pair with the client connection wrapped by wrap before the coalescing layer.
func pairWith(t testing.TB, wrap func(net.Conn) net.Conn) (*coalescingConn, net.Conn) {
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
	c := newCoalescingConn(wrap(raw))
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
