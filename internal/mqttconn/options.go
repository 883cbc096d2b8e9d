package mqttconn

import (
	"crypto/tls"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Broker is what every Fieldline MQTT client needs to reach a broker: the ingester's client, the plugin's live
// client (pkg/live/mqttlive) and the plugin's health check, which so tests the very connection its streams use.
// Both clients (internal/mqttsub) read paho's ClientOptions.
type Broker struct {
	URL                string
	ClientID           string
	Username, Password string
	// TLS for secure schemes (ssl, tls, mqtts, tcps, wss) and for brokers that require a client certificate;
	// nil on a secure scheme means TLS 1.2+ with the system roots (see Dial).
	TLS            *tls.Config
	ConnectTimeout time.Duration // default 10 s
	WriteTimeout   time.Duration // bounds each write to the broker; 0: no bound
}

// ClientOptions returns paho options with b's broker, identity, credentials, TLS and timeouts. Callers add
// their keep-alive.
func (b Broker) ClientOptions() *mqtt.ClientOptions {
	connect := b.ConnectTimeout
	if connect <= 0 {
		connect = 10 * time.Second
	}
	o := mqtt.NewClientOptions().
		AddBroker(b.URL).
		SetClientID(b.ClientID).
		SetConnectTimeout(connect).
		SetWriteTimeout(b.WriteTimeout)
	if b.Username != "" {
		o.SetUsername(b.Username)
	}
	if b.Password != "" {
		o.SetPassword(b.Password)
	}
	if b.TLS != nil {
		o.SetTLSConfig(b.TLS.Clone())
	}
	return o
}
