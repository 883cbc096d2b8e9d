package mqttconn

import "github.com/eclipse/paho.mqtt.golang/packets"

// NoStore is a paho Store that keeps nothing. paho's default memory store records every inbound QoS-1 message
// and every PUBACK (a map entry keyed by fmt.Sprintf per message: 13 % of the ingester's CPU). A client that
// publishes nothing, re-subscribes on every connect and relies on the broker to redeliver what it has not
// acknowledged has nothing for paho to resend from a store.
type NoStore struct{}

func (NoStore) Open()                             {}
func (NoStore) Put(string, packets.ControlPacket) {}
func (NoStore) Get(string) packets.ControlPacket  { return nil }
func (NoStore) All() []string                     { return nil }
func (NoStore) Del(string)                        {}
func (NoStore) Close()                            {}
func (NoStore) Reset()                            {}
