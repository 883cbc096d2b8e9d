package pipeline

import "github.com/eclipse/paho.mqtt.golang/packets"

// noStore is a paho Store that keeps nothing. paho's default memory store records every inbound QoS-1 message
// and every PUBACK (a map entry keyed by fmt.Sprintf per message: 13 % of the ingester's CPU). The ingester
// publishes nothing, re-subscribes on every connect, and relies on the broker's persistent session to
// redeliver what it has not acknowledged, so there is nothing for paho to resend from a store.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
