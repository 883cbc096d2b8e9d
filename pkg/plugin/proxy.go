package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	sdkproxy "github.com/grafana/grafana-plugin-sdk-go/backend/proxy"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/net/proxy"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
)

// Private Data source Connect: Grafana's secure SOCKS proxy, through the plugin SDK (backend/proxy), for all
// three connections. It is used when the data source enables it (jsonData.enableSecureSocksProxy, the config
// editor's SecureSocksProxySettings) and the Grafana server has it configured (the SDK reads the server's side
// from the request context). The proxy resolves host names on its side, in the private network: PostgreSQL
// skips its local lookup, and TLS to PostgreSQL, InfluxDB and the broker runs end to end through the tunnel.

// secureSocks is the data source's proxy: a dialer for PostgreSQL and MQTT, and the SDK client that configures
// HTTP transports (InfluxDB). Zero value: direct connections.
type secureSocks struct {
	client sdkproxy.Client
	dialer proxy.ContextDialer
}

// newSecureSocks returns the proxy of the instance, or the zero value when it is not enabled on both sides.
func newSecureSocks(ctx context.Context, s backend.DataSourceInstanceSettings) (secureSocks, error) {
	opts, err := s.ProxyOptionsFromContext(ctx)
	if err != nil {
		return secureSocks{}, fmt.Errorf("secure socks proxy: %w", err)
	}
	if opts == nil {
		return secureSocks{}, nil // not enabled on the data source
	}
	c := sdkproxy.New(opts)
	if !c.SecureSocksProxyEnabled() {
		backend.Logger.FromContext(ctx).Warn("The data source enables the secure socks proxy, but this Grafana server has none configured: connecting directly",
			"uid", s.UID)
		return secureSocks{}, nil
	}
	d, err := c.NewSecureSocksProxyContextDialer()
	if err != nil {
		return secureSocks{}, fmt.Errorf("secure socks proxy: %w", err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok {
		return secureSocks{}, errors.New("secure socks proxy: the SDK's dialer has no DialContext")
	}
	return secureSocks{client: c, dialer: cd}, nil
}

// enabled reports whether connections go through the proxy.
func (p secureSocks) enabled() bool { return p.dialer != nil }

// postgres makes a pgx connection configuration dial through the proxy, with the host name resolved there.
func (p secureSocks) postgres(cc *pgconn.Config) {
	if !p.enabled() {
		return
	}
	cc.DialFunc = p.dialer.DialContext
	cc.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
}

// http makes an HTTP transport dial through the proxy (the SDK's own helper).
func (p secureSocks) http(t *http.Transport) error {
	if !p.enabled() {
		return nil
	}
	if err := p.client.ConfigureSecureSocksHTTPProxy(t); err != nil {
		return fmt.Errorf("secure socks proxy: %w", err)
	}
	return nil
}

// mqtt is the broker dialer: the proxy, or nil (direct).
func (p secureSocks) mqtt() mqttconn.ContextDialer {
	if !p.enabled() {
		return nil
	}
	return p.dialer
}
