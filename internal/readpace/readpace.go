// Package readpace spaces the socket reads of a long-lived connection that streams many small messages
// (an MQTT subscription, a PostgreSQL LISTEN): under load, a reader waits until an interval has passed since
// its previous socket read and then reads everything that arrived meanwhile with one system call; after a
// quiet spell it reads at once, so the first message is not delayed.
//
// Waiting alone is not enough in Go: the runtime's netpoller watches every socket (edge-triggered epoll), so
// each arriving TCP segment wakes a thread even when no goroutine is reading — at 1 000 messages/s that was
// two epoll_wait calls per message and most of a live stream's CPU. While it waits, Pacer therefore raises
// the socket's receive low-water mark (SO_RCVLOWAT), which keeps the kernel from signalling readiness until
// that much data is queued; it lowers it to 1 byte again before the read. On systems without SO_RCVLOWAT, and
// for connections that are not TCP (WebSocket, Unix sockets), the reads are spaced all the same, only
// without that saving.
package readpace

import (
	"crypto/tls"
	"net"
	"syscall"
	"time"
)

// highWater is the low-water mark while waiting: more than a frame interval's worth of small messages. Should
// more arrive, the kernel wakes the netpoller once, which is harmless.
const highWater = 256 << 10

// Pacer spaces one connection's reads. Its methods are for the connection's one reader goroutine.
type Pacer struct {
	interval time.Duration
	raw      syscall.RawConn // the TCP socket, or nil
	last     time.Time       // when the previous socket read returned
}

// New returns a Pacer for c (a *net.TCPConn, a *tls.Conn over one, or any other net.Conn). interval <= 0
// disables spacing.
func New(c net.Conn, interval time.Duration) *Pacer {
	p := &Pacer{interval: interval}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok && interval > 0 {
		if raw, err := tcp.SyscallConn(); err == nil && setLowWater(raw, 1) == nil {
			p.raw = raw
		}
	}
	return p
}

// Wait is called before a socket read. Under load (the previous read returned less than interval ago) it
// sleeps for the rest of the interval with the low-water mark raised; it reports whether it waited.
func (p *Pacer) Wait() bool {
	if p.interval <= 0 || p.last.IsZero() {
		return false
	}
	wait := p.interval - time.Since(p.last)
	if wait <= 0 {
		return false
	}
	if p.raw != nil {
		_ = setLowWater(p.raw, highWater)
	}
	time.Sleep(wait)
	if p.raw != nil {
		_ = setLowWater(p.raw, 1)
	}
	return true
}

// Done records that a socket read returned now.
func (p *Pacer) Done() { p.last = time.Now() }
