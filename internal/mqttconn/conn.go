// Package mqttconn is the one place Fieldline reaches an MQTT broker from, for the ingester's paho client, the
// plugin's live client (pkg/live/mqttlive) and the plugin's health check: broker URL schemes and their checks
// (ParseURL, Secure), topic filters (ValidateFilter, Match), the common paho options
// (Broker.ClientOptions) and Dial, which opens every connection (tcp, ssl, ws, wss).
//
// It also makes paho.mqtt.golang cheap per message: a connection with buffered reads and coalesced writes
// (Open), and a Store that keeps nothing (NoStore), for subscribers that publish nothing.
package mqttconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"runtime"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// paho reads each packet from the socket with several small reads and writes every packet — each 4-byte
// PUBACK — with its own write syscall. At tens of thousands of messages per second those syscalls were a
// quarter of the ingester's CPU. Open dials tcp/ssl brokers itself and wraps the connection: reads go
// through a bufio.Reader, and writes are copied into a buffer that a flusher goroutine sends as soon as it is
// idle, so a burst of acknowledgements leaves in a few syscalls and a lone packet leaves at once (no added
// latency, unlike Nagle). WebSocket brokers keep paho's own dialer (see Use).

// Use makes o dial its brokers with Open when every broker URL is tcp or ssl (not ws/wss).
func Use(o *mqtt.ClientOptions) {
	if len(o.Servers) == 0 {
		return
	}
	for _, u := range o.Servers {
		if t := transportOf(u.Scheme); t != plainTCP && t != tlsTCP {
			return
		}
	}
	o.SetCustomOpenConnectionFn(Open)
}

// Open dials a tcp or ssl broker and returns the buffered, write-coalescing connection.
func Open(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	c, err := Dial(uri, o)
	if err != nil {
		return nil, err
	}
	return newCoalescingConn(c), nil
}

// Dial opens a plain connection to a broker: tcp/mqtt, ssl/tls/mqtts/tcps (o.TLSConfig, server name from the
// URL when unset), or ws/wss (paho's own WebSocket dialer, with o's headers and WebSocket options). TCP
// connections get TCP_NODELAY: MQTT packets are small and latency matters.
func Dial(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) { return DialVia(nil, uri, o) }

// ContextDialer opens network connections: a net.Dialer, or the plugin SDK's dialer for Grafana's secure SOCKS
// proxy (Private Data source Connect), which resolves the broker's name on the far side.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// ErrWebSocketVia is returned for ws:// and wss:// brokers with a custom dialer: paho's WebSocket dialer cannot
// take one.
var ErrWebSocketVia = errors.New("WebSocket brokers (ws://, wss://) cannot be reached through the secure SOCKS proxy: use tcp:// or ssl://")

// DialVia is Dial through d (nil: a net.Dialer with o's connect timeout, or o.Dialer). The TLS handshake runs
// over d's connection, so TLS to the broker is end to end through a proxy.
func DialVia(d ContextDialer, uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if d == nil {
		nd := &net.Dialer{Timeout: o.ConnectTimeout}
		if o.Dialer != nil {
			nd = o.Dialer
		}
		d = nd
	} else if t := transportOf(uri.Scheme); t == websocket || t == secureWebsocket {
		return nil, ErrWebSocketVia
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		c   net.Conn
		err error
	)
	switch t := transportOf(uri.Scheme); t {
	case plainTCP:
		c, err = d.DialContext(ctx, "tcp", uri.Host)
	case tlsTCP:
		if c, err = d.DialContext(ctx, "tcp", uri.Host); err == nil {
			tc := tls.Client(c, tlsConfig(uri, o.TLSConfig))
			if err = tc.HandshakeContext(ctx); err != nil {
				_ = c.Close()
			}
			c = tc
		}
	case websocket, secureWebsocket:
		u := *uri
		u.User = nil // the WebSocket dialer refuses URLs with credentials
		var cfg *tls.Config
		if t == secureWebsocket {
			cfg = tlsConfig(uri, o.TLSConfig)
		}
		return mqtt.NewWebsocket(u.String(), cfg, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	default:
		return nil, errors.New("mqttconn: unsupported scheme " + uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c, nil
}

func tlsConfig(uri *url.URL, cfg *tls.Config) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = uri.Hostname()
	}
	return cfg
}

type coalescingConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	pending []byte
	spare   []byte
	err     error
	closed  bool
	wake    chan struct{}
	flushed chan struct{} // closed when the flusher exits
}

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), wake: make(chan struct{}, 1), flushed: make(chan struct{})}
	go cc.flusher()
	return cc
}

func (c *coalescingConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write queues p for the flusher. An error of an earlier write is returned to the next caller, which makes
// paho notice a dead connection as it would with direct writes.
func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.err != nil || c.closed {
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return 0, err
	}
	c.pending = append(c.pending, p...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *coalescingConn) flusher() {
	defer close(c.flushed)
	for range c.wake {
		// Let the goroutines that are about to write run first: paho sends each PUBACK from its own goroutine
		// chain (acker → router → outgoing), and on a busy process the flusher would otherwise wake for every
		// one of them. A lone packet still leaves at once (nothing else is runnable).
		runtime.Gosched()
		for {
			c.mu.Lock()
			if len(c.pending) == 0 {
				closed := c.closed
				c.mu.Unlock()
				if closed {
					return
				}
				break
			}
			buf := c.pending
			c.pending = c.spare[:0]
			c.mu.Unlock()
			_, err := c.Conn.Write(buf)
			c.mu.Lock()
			c.spare = buf
			if err != nil && c.err == nil {
				c.err = err
			}
			c.mu.Unlock()
			if err != nil {
				_ = c.Conn.Close() // unblock the reader so paho sees the failure
			}
		}
	}
}

// Close sends what is queued (bounded by a short deadline), then closes the connection.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-c.flushed:
	case <-time.After(2 * time.Second):
	}
	return c.Conn.Close() // c.wake stays open: a concurrent Write may still signal it

}
