package mqttconn

import (
	"io"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// BenchmarkCoalescedAcks sends PUBACKs over loopback TCP the way paho does — each one handed from the acker
// through two unbuffered channels (paho's router and its output redirector) to the outgoing goroutine, which
// writes it on its own — on one thread (the ingester's GOMAXPROCS) and on all, and reports the socket writes
// per PUBACK (1 without coalescing).
func BenchmarkCoalescedAcks(b *testing.B) {
	for _, procs := range []int{1, runtime.NumCPU()} {
		b.Run("procs="+strconv.Itoa(procs), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			var writes atomic.Int64
			c, srv := pairWith(b, func(raw net.Conn) net.Conn { return countingConn{Conn: raw, writes: &writes} })
			go func() { _, _ = io.Copy(io.Discard, srv) }()
			stage1, stage2 := make(chan []byte), make(chan []byte)
			done := make(chan struct{})
			go func() { // paho's redirector
				for p := range stage1 {
					stage2 <- p
				}
				close(stage2)
			}()
			go func() { // paho's outgoing goroutine
				for p := range stage2 {
					if _, err := c.Write(p); err != nil {
						b.Error(err)
					}
				}
				close(done)
			}()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				stage1 <- []byte{0x40, 0x02, byte(i >> 8), byte(i)}
			}
			close(stage1)
			<-done
			b.StopTimer()
			_ = c.Close()
			b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/ack")
		})
	}
}
