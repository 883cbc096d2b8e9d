package mqttlive

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

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fieldline-iot/fieldline/pkg/live/readpace"
)

// session is one connection to the broker. Its reader goroutine owns r; writes from any goroutine go through
// wmu. Acknowledgements are queued and written in one go just before the reader's next socket read, so a
// group of messages read together is acknowledged with one write.
type session struct {
	conn         net.Conn
	r            *bufio.Reader
	pace         *readpace.Pacer
	writeTimeout time.Duration
	lastRead     atomic.Int64 // Unix ns of the last socket read that returned

	wmu  sync.Mutex
	acks bytes.Buffer // queued acknowledgements
	out  bytes.Buffer // scratch for one packet
}

func newSession(conn net.Conn, readInterval, writeTimeout time.Duration) *session {
	s := &session{conn: conn, writeTimeout: writeTimeout}
	s.lastRead.Store(time.Now().UnixNano())
	s.pace = readpace.New(conn, readInterval)
	s.r = bufio.NewReaderSize(&spacedReader{s: s, pace: s.pace}, 64<<10)
	return s
}

// send writes p at once (after any queued acknowledgements, keeping the order).
func (s *session) send(p packets.ControlPacket) error {
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
	ackPuback  byte = 0x40
	ackPubrec  byte = 0x50
	ackPubcomp byte = 0x70
)

// queueAck adds an acknowledgement (PUBACK, PUBREC or PUBCOMP of message id) to be written before the next socket
// read. The 4 bytes are written directly: paho's packet types allocate a packet and a buffer for each (13 % of
// the live client's CPU at 1 000 msg/s); TestAckBytesMatchPaho keeps them equal to paho's encoding.
func (s *session) queueAck(kind byte, id uint16) {
	s.wmu.Lock()
	s.acks.Write([]byte{kind, 2, byte(id >> 8), byte(id)})
	s.wmu.Unlock()
}

func (s *session) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.flushLocked()
}

func (s *session) flushLocked() error {
	if s.acks.Len() == 0 {
		return nil
	}
	err := s.write(s.acks.Bytes())
	s.acks.Reset()
	return err
}

func (s *session) write(b []byte) error {
	if s.writeTimeout > 0 {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
	_, err := s.conn.Write(b)
	return err
}

// keepAlive sends PINGREQ every keepAlive and closes the connection when nothing has been read from the
// broker for keepAlive + pingTimeout (a PINGRESP, at least, should have come back).
func (s *session) keepAlive(ctx context.Context, keepAlive, pingTimeout time.Duration, log *slog.Logger) {
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
		if err := s.send(packets.NewControlPacket(packets.Pingreq)); err != nil {
			_ = s.conn.Close()
			return
		}
	}
}

// spacedReader is the socket side of the session's bufio.Reader: every call is one system call.
type spacedReader struct {
	s    *session
	pace *readpace.Pacer
}

func (r *spacedReader) Read(p []byte) (int, error) {
	n, err := r.s.conn.Read(p)
	r.pace.Done()
	r.s.lastRead.Store(time.Now().UnixNano())
	return n, err
}

// beforeRead is called by the reader between packets when nothing is buffered: the next packet needs a
// socket read, so the queued acknowledgements are written, and under load the read is spaced (readpace).
// A packet that arrived in part is read on at once.
func (s *session) beforeRead() error {
	if err := s.flush(); err != nil {
		return fmt.Errorf("write acknowledgements: %w", err)
	}
	s.pace.Wait()
	return nil
}
