package mqttsub

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// sessionOver returns a session whose reader reads data (ReadPacket uses nothing else).
func sessionOver(data []byte) *Session {
	return &Session{r: bufio.NewReaderSize(bytes.NewReader(data), 64<<10)}
}

func encode(t testing.TB, ps ...packets.ControlPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range ps {
		if err := p.Write(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func publish(topic string, qos byte, id uint16, payload []byte) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Qos, p.MessageID, p.Payload, p.Retain = topic, qos, id, payload, qos == 2
	return p
}

// TestReadPacketSkipsOversizedPayloads: a PUBLISH over the limit comes back with its topic, QoS, flags and
// packet identifier (so it can be acknowledged) and no payload, and the packets after it are read as usual;
// packets within the limit come back whole.
func TestReadPacketSkipsOversizedPayloads(t *testing.T) {
	const limit = 1000
	big := bytes.Repeat([]byte("x"), 3<<20) // needs a 4-byte remaining length
	small := []byte("22.4")
	s := sessionOver(encode(t,
		publish("pico/temperature/dht22", 1, 7, small),
		publish("gw/big", 2, 513, big),
		publish("gw/big0", 0, 0, big),
		packets.NewControlPacket(packets.Pingresp),
		publish(strings.Repeat("t", 200), 1, 9, bytes.Repeat([]byte("y"), limit)),
	))
	type want struct {
		topic   string
		qos     byte
		id      uint16
		payload []byte
		skipped int
	}
	for i, w := range []want{
		{"pico/temperature/dht22", 1, 7, small, 0},
		{"gw/big", 2, 513, nil, len(big)},
		{"gw/big0", 0, 0, nil, len(big)},
		{"", 0, 0, nil, 0}, // PINGRESP
		{strings.Repeat("t", 200), 1, 9, bytes.Repeat([]byte("y"), limit), 0},
	} {
		pkt, skipped, err := s.ReadPacket(limit)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if w.topic == "" {
			if _, ok := pkt.(*packets.PingrespPacket); !ok {
				t.Fatalf("packet %d: %s, want PINGRESP", i, PacketName(pkt))
			}
			continue
		}
		p, ok := pkt.(*packets.PublishPacket)
		if !ok {
			t.Fatalf("packet %d: %s, want PUBLISH", i, PacketName(pkt))
		}
		if p.TopicName != w.topic || p.Qos != w.qos || p.MessageID != w.id || !bytes.Equal(p.Payload, w.payload) || skipped != w.skipped {
			t.Errorf("packet %d: topic %.20q qos %d id %d payload %d bytes skipped %d; want %.20q %d %d %d bytes skipped %d",
				i, p.TopicName, p.Qos, p.MessageID, len(p.Payload), skipped, w.topic, w.qos, w.id, len(w.payload), w.skipped)
		}
		if w.qos == 2 && !p.Retain {
			t.Errorf("packet %d: retain flag lost", i)
		}
	}
	if _, _, err := s.ReadPacket(limit); err == nil {
		t.Error("read past the end")
	}
}

// FuzzReadPacket: whatever the bytes, ReadPacket does not panic, and where paho's codec reads a PUBLISH, the
// bounded read returns the same topic, QoS and identifier, with the payload or its size.
func FuzzReadPacket(f *testing.F) {
	f.Add(encode(f, publish("a/b", 1, 1, []byte("1.5"))), 4)
	f.Add(encode(f, publish("a/b", 2, 300, bytes.Repeat([]byte("z"), 70000))), 16)
	f.Add(encode(f, packets.NewControlPacket(packets.Pingresp), publish("x", 0, 0, nil)), 1)
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}, 1)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if limit < 0 || limit > 1<<20 || declaredLength(data) > 4<<20 {
			return // the codec would allocate the declared length: slow, and not what is checked here
		}
		want, wantErr := packets.ReadPacket(bytes.NewReader(data))
		got, skipped, err := sessionOver(data).ReadPacket(limit)
		wp, ok := want.(*packets.PublishPacket)
		if wantErr != nil || !ok {
			return
		}
		if err != nil {
			t.Fatalf("the codec reads %s, the bounded read fails: %v", wp, err)
		}
		gp := got.(*packets.PublishPacket)
		if gp.TopicName != wp.TopicName || gp.Qos != wp.Qos || gp.MessageID != wp.MessageID {
			t.Fatalf("got %s, the codec reads %s", gp, wp)
		}
		if skipped == 0 && !bytes.Equal(gp.Payload, wp.Payload) || skipped > 0 && (skipped != len(wp.Payload) || gp.Payload != nil) {
			t.Fatalf("payload %d bytes, skipped %d; the codec reads %d bytes", len(gp.Payload), skipped, len(wp.Payload))
		}
	})
}

// declaredLength is the remaining length the first packet in data declares (0 when it cannot be read).
func declaredLength(data []byte) int {
	n, shift := 0, 0
	for i := 1; i < len(data) && i <= 4; i++ {
		n |= int(data[i]&0x7f) << shift
		if data[i]&0x80 == 0 {
			return n
		}
		shift += 7
	}
	return 0
}
