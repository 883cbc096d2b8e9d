package mqttlive

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/url"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// paho reads every packet from the raw connection a byte or a few at a time (fixed header, each length byte,
// then the body): three or more read system calls per message. A buffered reader turns a burst of messages
// into one read (measured: 86 → 65 µs of plugin CPU per message at 1 000 messages/s, QoS 1).

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// useBufferedConn makes o dial TCP and TLS brokers itself with a buffered reader. WebSocket brokers keep
// paho's own dialer.
func useBufferedConn(o *mqtt.ClientOptions) {
	if o.CustomOpenConnectionFn != nil || len(o.Servers) == 0 {
		return
	}
	for _, u := range o.Servers {
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps":
		default:
			return
		}
	}
	o.SetCustomOpenConnectionFn(func(u *url.URL, opts mqtt.ClientOptions) (net.Conn, error) {
		d := &net.Dialer{Timeout: opts.ConnectTimeout}
		if opts.Dialer != nil {
			d = opts.Dialer
		}
		var conn net.Conn
		var err error
		switch u.Scheme {
		case "tcp", "mqtt":
			conn, err = d.Dial("tcp", u.Host)
		default:
			cfg := opts.TLSConfig
			if cfg == nil {
				cfg = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			conn, err = tls.DialWithDialer(d, "tcp", u.Host, cfg)
		}
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 32<<10)}, nil
	})
}
