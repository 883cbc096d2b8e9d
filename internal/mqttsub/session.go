// Package mqttsub is the subscriber side of an MQTT 3.1.1 connection, written for CPU per message: ONE
// goroutine reads packets with paho's packets codec (bufio over the socket, reads optionally spaced by
// internal/readpace), and acknowledgements are 4-byte writes queued under a mutex and sent together — after
// a read's messages were handed on (the plugin's live client, pkg/live/mqttlive) or after a batch committed
// (the ingester, ingester/pipeline). paho's full client spends a goroutine hand-off per inbound message and
// three per acknowledgement (reader → router → handler; acker → router → outgoing), which on the 2-core
// machines we measure on were most of the CPU of both (docs/benchmarks.md); it also has no way to send a
// group of acknowledgements in one write. Connection options (brokers, credentials, TLS, WebSocket, timeouts)
// are paho's ClientOptions, and dialing is internal/mqttconn's, so every Fieldline MQTT client is configured the
// same way.
//
// A Session is one connection, opened by Connect; the owner's read loop calls BeforeRead whenever Reader() has
// nothing buffered and reads packets with ReadPacket.
package mqttsub

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fieldline-iot/fieldline/internal/readpace"
)

// Session is one connection to the broker. Its reader goroutine owns r; writes from any goroutine go through
// wmu. Acknowledgements are queued and written in one go just before the reader's next socket read, so a
// group of messages read together is acknowledged with one write.
type Session struct {
	conn         net.Conn
	r            *bufio.Reader
	pace         *readpace.Pacer
	opts         mqtt.ClientOptionsReader // client id, credentials, keep-alive, timeouts
	writeTimeout time.Duration
	stop         func() bool  // releases Connect's context hook
	lastRead     atomic.Int64 // Unix ns of the last socket read that returned

	wmu  sync.Mutex
	acks bytes.Buffer // queued acknowledgements
	out  bytes.Buffer // scratch for one packet
}

func newSession(conn net.Conn, readInterval time.Duration, opts mqtt.ClientOptionsReader) *Session {
	s := &Session{conn: conn, opts: opts, writeTimeout: opts.WriteTimeout()}
	s.lastRead.Store(time.Now().UnixNano())
	s.pace = readpace.New(conn, readInterval)
	s.r = bufio.NewReaderSize(&spacedReader{s: s, pace: s.pace}, 64<<10)
	return s
}

// Send writes p at once (after any queued acknowledgements, keeping the order).
func (s *Session) Send(p packets.ControlPacket) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.out.Reset()
	if err := p.Write(&s.out); err != nil {
		return err
	}
	if s.acks.Len() > 0 {
		s.acks.Write(s.out.Bytes())
		return s.flushLocked()
	}
	return s.write(s.out.Bytes())
}

// Acknowledgement packet types (MQTT 3.1.1 §3.4–3.7): the first byte of PUBACK, PUBREC and PUBCOMP.
const (
	AckPuback  byte = 0x40
	AckPubrec  byte = 0x50
	AckPubcomp byte = 0x70
)

// QueueAck adds an acknowledgement (PUBACK, PUBREC or PUBCOMP of message id) to be written before the next socket
// read. The 4 bytes are written directly: paho's packet types allocate a packet and a buffer for each (13 % of
// the live client's CPU at 1 000 msg/s); TestAckBytesMatchPaho keeps them equal to paho's encoding.
func (s *Session) QueueAck(kind byte, id uint16) {
	s.wmu.Lock()
	s.acks.Write([]byte{kind, 2, byte(id >> 8), byte(id)})
	s.wmu.Unlock()
}

// Flush writes the queued acknowledgements now.
func (s *Session) Flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.flushLocked()
}

func (s *Session) flushLocked() error {
	if s.acks.Len() == 0 {
		return nil
	}
	err := s.write(s.acks.Bytes())
	s.acks.Reset()
	return err
}

func (s *Session) write(b []byte) error {
	if s.writeTimeout > 0 {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
	_, err := s.conn.Write(b)
	return err
}

// KeepAlive sends PINGREQ every keep-alive interval of the session's options and closes the connection when
// nothing has been read from the broker for that interval plus the ping timeout (a PINGRESP, at least, should
// have come back). It returns when ctx ends or the connection is closed.
func (s *Session) KeepAlive(ctx context.Context, log *slog.Logger) {
	keepAlive, pingTimeout := s.opts.KeepAlive(), s.opts.PingTimeout()
	if keepAlive <= 0 {
		return
	}
	t := time.NewTicker(keepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if silent := time.Since(time.Unix(0, s.lastRead.Load())); silent > keepAlive+pingTimeout {
			log.Warn("MQTT broker did not answer the keep-alive ping; closing the connection", "silent", silent.Round(time.Millisecond))
			_ = s.conn.Close()
			return
		}
		if err := s.Send(packets.NewControlPacket(packets.Pingreq)); err != nil {
			_ = s.conn.Close()
			return
		}
	}
}

// spacedReader is the socket side of the Session's bufio.Reader: every call is one system call.
type spacedReader struct {
	s    *Session
	pace *readpace.Pacer
}

func (r *spacedReader) Read(p []byte) (int, error) {
	n, err := r.s.conn.Read(p)
	r.pace.Done()
	r.s.lastRead.Store(time.Now().UnixNano())
	return n, err
}

// BeforeRead is called by the reader between packets when nothing is buffered: the next packet needs a
// socket read, so the queued acknowledgements are written, and under load the read is spaced (readpace).
// A packet that arrived in part is read on at once.
func (s *Session) BeforeRead() error {
	if err := s.Flush(); err != nil {
		return fmt.Errorf("write acknowledgements: %w", err)
	}
	s.pace.Wait()
	return nil
}
