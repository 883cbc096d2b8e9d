package mqttsub

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
)

// Connect opens a session: it dials the first of o's brokers that answers, through d (nil: direct; the plugin
// passes Grafana's secure SOCKS proxy dialer), and completes CONNECT/CONNACK with o's client id, keep-alive and
// credentials, for a clean or a persistent session, within o's connect timeout. sessionPresent is the broker's
// word that it resumed a persistent session. When ctx ends the session sends DISCONNECT (after any queued
// acknowledgements) and closes; Close releases it either way. readInterval spaces socket reads under load
// (internal/readpace; <= 0: no spacing).
func Connect(ctx context.Context, d mqttconn.ContextDialer, o *mqtt.ClientOptions, clean bool, readInterval time.Duration) (s *Session, sessionPresent bool, err error) {
	conn, err := dial(d, o)
	if err != nil {
		return nil, false, err
	}
	s = newSession(conn, readInterval, mqtt.NewOptionsReader(o))
	s.stop = context.AfterFunc(ctx, s.Disconnect)
	if sessionPresent, err = s.handshake(clean); err != nil {
		_ = s.Close()
		return nil, false, err
	}
	return s, sessionPresent, nil
}

// dial opens a connection to the first of o's brokers that answers. Every failure is in the error, broker by
// broker (no credentials: URLs are reduced to scheme and host).
func dial(d mqttconn.ContextDialer, o *mqtt.ClientOptions) (net.Conn, error) {
	var errs []error
	r := mqtt.NewOptionsReader(o)
	for _, u := range r.Servers() {
		conn, err := mqttconn.DialVia(d, u, *o)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("%s://%s: %w", u.Scheme, u.Host, err))
	}
	if len(errs) == 0 {
		return nil, errors.New("mqtt: no broker configured")
	}
	return nil, errors.Join(errs...)
}

// handshake sends CONNECT (MQTT 3.1.1) and waits for a CONNACK that accepts it.
func (s *Session) handshake(clean bool) (sessionPresent bool, err error) {
	r := s.opts
	p := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	p.ProtocolName, p.ProtocolVersion = "MQTT", 4
	p.CleanSession = clean
	p.ClientIdentifier = r.ClientID()
	p.Keepalive = uint16(r.KeepAlive() / time.Second)
	if u := r.Username(); u != "" {
		p.UsernameFlag, p.Username = true, u
	}
	if pw := r.Password(); pw != "" {
		p.PasswordFlag, p.Password = true, []byte(pw)
	}
	if err := s.Send(p); err != nil {
		return false, fmt.Errorf("send CONNECT: %w", err)
	}
	timeout := r.ConnectTimeout()
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(timeout))
	reply, err := packets.ReadPacket(s.r)
	if err != nil {
		return false, fmt.Errorf("read CONNACK: %w", err)
	}
	_ = s.conn.SetReadDeadline(time.Time{})
	ack, ok := reply.(*packets.ConnackPacket)
	if !ok {
		return false, fmt.Errorf("expected CONNACK, got %s", PacketName(reply))
	}
	if ack.ReturnCode != packets.Accepted {
		if err := packets.ConnErrors[ack.ReturnCode]; err != nil {
			return false, fmt.Errorf("broker refused the connection: %w", err)
		}
		return false, fmt.Errorf("broker refused the connection: return code %d", ack.ReturnCode)
	}
	return ack.SessionPresent, nil
}

// Disconnect sends DISCONNECT (the broker then drops the will and, for a persistent session, keeps it) and
// closes the connection.
func (s *Session) Disconnect() {
	_ = s.Send(packets.NewControlPacket(packets.Disconnect))
	_ = s.conn.Close()
}

// Close closes the connection without DISCONNECT and releases the session from Connect's context.
func (s *Session) Close() error {
	if s.stop != nil {
		s.stop()
	}
	return s.conn.Close()
}

// Reader is the session's buffered reader, for its one read loop: read packets with ReadPacket, and call
// BeforeRead first whenever Buffered() is 0.
func (s *Session) Reader() *bufio.Reader { return s.r }

// PacketName is the packet's type name (CONNACK, PUBLISH, …) from paho's String form.
func PacketName(p packets.ControlPacket) string {
	name, _, _ := strings.Cut(p.String(), ":")
	return name
}

// AckKind is the acknowledgement a received PUBLISH needs once its owner is done with it: PUBACK for QoS 1,
// PUBREC for QoS 2 (the broker then sends PUBREL, answered with PUBCOMP by the read loop), none for QoS 0.
func AckKind(qos byte) (kind byte, ok bool) {
	switch qos {
	case 1:
		return AckPuback, true
	case 2:
		return AckPubrec, true
	}
	return 0, false
}

// ReadPacket reads the next packet from the session's reader. A PUBLISH whose payload is longer than
// maxPayload (when > 0) is read through without being kept: it comes back with a nil Payload and the payload's
// size in skipped. paho's codec allocates a whole packet before anyone can look at it — MQTT allows 256 MB, and
// a 250 MB message took the ingester to about 1 GB — so one oversized message from any publisher no longer
// costs more memory than the reader's buffer.
func (s *Session) ReadPacket(maxPayload int) (pkt packets.ControlPacket, skipped int, err error) {
	whole := func() (packets.ControlPacket, int, error) { // the codec reads it (and reports what is wrong)
		pkt, err := packets.ReadPacket(s.r)
		return pkt, 0, err
	}
	if maxPayload <= 0 {
		return whole()
	}
	head, err := s.r.Peek(2)
	if err != nil || head[0]>>4 != packets.Publish {
		return whole()
	}
	// Remaining length: a variable-length integer of 1 to 4 bytes (MQTT 3.1.1 §2.2.3). Each continuation bit
	// promises another byte, so Peek does not wait for bytes that are not coming.
	var remaining, shift int
	n := 1
	for {
		b, err := s.r.Peek(n + 1)
		if err != nil {
			return whole()
		}
		c := b[n]
		remaining |= int(c&0x7f) << shift
		n++
		if c&0x80 == 0 {
			break
		}
		if shift += 7; shift > 21 {
			return nil, 0, errors.New("mqtt: malformed remaining length")
		}
	}
	qos := (head[0] >> 1) & 3
	varHeader := 2 + 65535 + 2 // topic length, the longest topic, packet identifier
	if remaining <= maxPayload+varHeader {
		return whole() // small enough whatever its topic; its payload is checked by the consumer's decoder
	}
	if _, err := s.r.Discard(n); err != nil {
		return nil, 0, err
	}
	var lenBuf [2]byte
	if _, err := io.ReadFull(s.r, lenBuf[:]); err != nil {
		return nil, 0, err
	}
	topicLen := int(lenBuf[0])<<8 | int(lenBuf[1])
	left := remaining - 2 - topicLen
	if qos > 0 {
		left -= 2
	}
	if qos > 2 || left < 0 {
		return nil, 0, errors.New("mqtt: malformed PUBLISH")
	}
	topic := make([]byte, topicLen)
	if _, err := io.ReadFull(s.r, topic); err != nil {
		return nil, 0, err
	}
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Dup, p.Qos, p.Retain = head[0]&0x08 != 0, qos, head[0]&0x01 != 0
	p.RemainingLength = remaining
	p.TopicName = string(topic)
	if qos > 0 {
		if _, err := io.ReadFull(s.r, lenBuf[:]); err != nil {
			return nil, 0, err
		}
		p.MessageID = uint16(lenBuf[0])<<8 | uint16(lenBuf[1])
	}
	if _, err := s.r.Discard(left); err != nil {
		return nil, 0, err
	}
	return p, left, nil
}
