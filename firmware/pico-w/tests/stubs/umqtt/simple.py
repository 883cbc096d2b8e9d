"""Stand-in for micropython-lib's umqtt.simple, backed by an in-memory broker.

Same public surface as the real client (constructor, set_last_will, connect with the
optional timeout of umqtt.simple >= 1.4, publish, ping, disconnect, check_msg). The
broker keeps a log of every message with its virtual time, the retained messages,
and fires a client's last will when its connection dies without a DISCONNECT."""

import utime


class MQTTException(Exception):
    pass


class Message:
    def __init__(self, at_ms, client_id, topic, payload, retain, qos):
        self.at_ms = at_ms
        self.client_id = client_id
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos

    def __repr__(self):
        return "Message(%d, %r, %r, retain=%r)" % (self.at_ms, self.topic, self.payload, self.retain)


class _Conn:
    def __init__(self, client_id, will, clean_session, keepalive, user, password):
        self.client_id = client_id
        self.will = will
        self.clean_session = clean_session
        self.keepalive = keepalive
        self.user = user
        self.password = password
        self.alive = True


class Broker:
    def __init__(self):
        self.reset()

    def reset(self):
        self.up = True
        self.messages = []
        self.retained = {}
        self.connections = []
        self.failed_connects = 0
        self.open_sockets = []
        self.required_password = None

    # -- what a real broker does
    def _publish(self, client_id, topic, payload, retain, qos):
        topic = bytes(topic)
        payload = bytes(payload)
        self.messages.append(Message(utime.elapsed_ms(), client_id, topic, payload, retain, qos))
        if retain:
            self.retained[topic] = payload

    def _drop(self, conn, fire_will=True):
        if conn.alive:
            conn.alive = False
            if fire_will and conn.will:
                topic, msg, retain, qos = conn.will
                self._publish(b"$broker", topic, msg, retain, qos)

    # -- test controls
    def crash(self):
        """Broker goes away: every connection dies, last wills are published."""
        for c in self.connections:
            self._drop(c)
        self.up = False

    def restart(self):
        self.up = True

    def kick(self):
        """Connections dropped (e.g. a NAT timeout) but the broker stays reachable."""
        for c in self.connections:
            self._drop(c)

    def published(self, topic=None, client_id=None):
        return [m for m in self.messages
                if (topic is None or m.topic == topic) and m.client_id != b"$broker"
                and (client_id is None or m.client_id == client_id)]

    def payloads(self, topic):
        return [m.payload for m in self.published(topic)]


BROKER = Broker()


class FakeSocket:
    def __init__(self):
        self.closed = False
        self.timeout = None
        BROKER.open_sockets.append(self)

    def settimeout(self, t):
        self.timeout = t

    def setblocking(self, flag):
        self.timeout = None if flag else 0

    def close(self):
        self.closed = True
        if self in BROKER.open_sockets:
            BROKER.open_sockets.remove(self)


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None):
        if port == 0:
            port = 8883 if ssl else 1883
        self.client_id = client_id
        self.sock = None
        self.server = server
        self.port = port
        self.ssl = ssl
        self.pid = 0
        self.cb = None
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.lw_topic = None
        self.lw_msg = None
        self.lw_qos = 0
        self.lw_retain = False
        self._conn = None
        self.connect_timeouts = []

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        assert 0 <= qos <= 2
        assert topic
        self.lw_topic = topic
        self.lw_msg = msg
        self.lw_qos = qos
        self.lw_retain = retain

    def connect(self, clean_session=True, timeout=None):
        self.sock = FakeSocket()  # the real client creates the socket before connecting
        self.sock.settimeout(timeout)
        self.connect_timeouts.append(timeout)
        if not BROKER.up:
            BROKER.failed_connects += 1
            raise OSError(113)  # EHOSTUNREACH
        if BROKER.required_password is not None and self.pswd != BROKER.required_password:
            BROKER.failed_connects += 1
            raise MQTTException(5)  # CONNACK: not authorised
        will = None
        if self.lw_topic:
            will = (self.lw_topic, self.lw_msg, self.lw_retain, self.lw_qos)
        self._conn = _Conn(self.client_id, will, clean_session, self.keepalive, self.user, self.pswd)
        BROKER.connections.append(self._conn)
        return 0

    def _check(self):
        if self.sock is None or self.sock.closed or self._conn is None or not self._conn.alive \
                or not BROKER.up:
            raise OSError(104)  # ECONNRESET

    def publish(self, topic, msg, retain=False, qos=0):
        self._check()
        assert qos in (0, 1)
        BROKER._publish(self.client_id, topic, msg, retain, qos)

    def ping(self):
        self._check()

    def disconnect(self):
        self._check()
        BROKER._drop(self._conn, fire_will=False)
        self.sock.close()

    def wait_msg(self):
        self._check()
        return None

    def check_msg(self):
        return self.wait_msg()
