package mqttconn

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The broker URL schemes, by transport. Every part of Fieldline (the ingester's configuration, the plugin's
// settings, Dial) reads them from here, so a scheme is accepted everywhere or nowhere.
var (
	plainSchemes = []string{"tcp", "mqtt"}
	tlsSchemes   = []string{"ssl", "tls", "mqtts", "tcps"}
	wsSchemes    = []string{"ws"}
	wssSchemes   = []string{"wss"}
)

// transport is how Dial reaches a broker.
type transport int

const (
	unsupported transport = iota
	plainTCP
	tlsTCP
	websocket
	secureWebsocket
)

func transportOf(scheme string) transport {
	for _, t := range []struct {
		names []string
		t     transport
	}{{plainSchemes, plainTCP}, {tlsSchemes, tlsTCP}, {wsSchemes, websocket}, {wssSchemes, secureWebsocket}} {
		for _, n := range t.names {
			if scheme == n {
				return t.t
			}
		}
	}
	return unsupported
}

// SchemeNames lists every accepted scheme (the config editor's list is checked against it by a test).
func SchemeNames() []string {
	var all []string
	for _, l := range [][]string{plainSchemes, tlsSchemes, wsSchemes, wssSchemes} {
		all = append(all, l...)
	}
	return all
}

// Schemes lists every accepted scheme, for messages ("tcp, mqtt, ssl, …").
func Schemes() string { return strings.Join(SchemeNames(), ", ") }

// ErrCredentialsInURL is returned by ParseURL(raw, false) for a URL that carries user information.
var ErrCredentialsInURL = errors.New("the broker URL must not carry credentials")

// ParseURL checks a broker URL: it parses, has a supported scheme and a host. allowCredentials admits
// user:password@ (the ingester's YAML allows it; the plugin keeps passwords in secure settings). Errors never
// quote raw, which may hold a password.
func ParseURL(raw string, allowCredentials bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL (the value is not shown)") // url's error quotes the input, password included
	}
	if transportOf(u.Scheme) == unsupported {
		return nil, fmt.Errorf("scheme %q: want one of %s", u.Scheme, Schemes())
	}
	if u.Host == "" {
		return nil, errors.New("missing host:port")
	}
	if u.User != nil && !allowCredentials {
		return nil, ErrCredentialsInURL
	}
	return u, nil
}

// Secure reports whether a broker URL's scheme uses TLS (ssl, tls, mqtts, tcps, wss).
func Secure(u *url.URL) bool {
	t := transportOf(u.Scheme)
	return t == tlsTCP || t == secureWebsocket
}

// SecureScheme is Secure for a raw URL; false when it does not parse.
func SecureScheme(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && Secure(u)
}
