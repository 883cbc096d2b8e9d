package mqttsub

import (
	"bytes"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestAckBytesMatchPaho: the acknowledgements QueueAck writes are byte for byte paho's PUBACK, PUBREC and PUBCOMP.
func TestAckBytesMatchPaho(t *testing.T) {
	for _, id := range []uint16{1, 255, 256, 0x1234, 0xffff} {
		for kind, pkt := range map[byte]packets.ControlPacket{
			AckPuback:  &packets.PubackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Puback}, MessageID: id},
			AckPubrec:  &packets.PubrecPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pubrec}, MessageID: id},
			AckPubcomp: &packets.PubcompPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pubcomp}, MessageID: id},
		} {
			var want bytes.Buffer
			if err := pkt.Write(&want); err != nil {
				t.Fatal(err)
			}
			s := &Session{}
			s.QueueAck(kind, id)
			if !bytes.Equal(s.acks.Bytes(), want.Bytes()) {
				t.Errorf("%s id %d: %x, paho writes %x", pkt, id, s.acks.Bytes(), want.Bytes())
			}
		}
	}
}
