// Package mqttconn is the one place Fieldline reaches an MQTT broker from, for the ingester's client, the
// plugin's live client (pkg/live/mqttlive) and the plugin's health check (both on internal/mqttsub): broker URL
// schemes and their checks (ParseURL, Secure), topic filters (ValidateFilter, Match), the common connection
// options as paho's ClientOptions (Broker.ClientOptions) and Dial, which opens every connection (tcp, ssl, ws,
// wss).
package mqttconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

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
