"""Fieldline Pico W node: the pure logic.

No MicroPython-only imports here, so the same file runs on the board and under
CPython in the host tests. Hardware and libraries are injected:

  clock    ticks_ms(), ticks_diff(a, b), ticks_add(t, d), sleep_ms(ms), unix_time() -> int | None
  sensors  read_dht() -> (temperature_c, humidity_pct)  (raises on a bad read)
           read_internal() -> chip temperature in C
  mqtt_factory()  -> client with set_last_will(topic, msg, retain, qos),
                     connect(clean_session), publish(topic, msg, retain, qos)
                     and optionally an int attribute `connects` that grows on every
                     successful (re)connect, also ones the client did by itself
  wdt      feed()                    (optional)
  net      isconnected(), connect()  (optional, Wi-Fi)
  ntp      callable() -> bool        (optional, sets the clock)
  rand     callable() -> float in [0, 1)  (jitter)

Wire format (first field report, unchanged):
  <prefix>/temperature/dht22     "22.4"
  <prefix>/humidity/dht22        "39.7"
  <prefix>/temperature/internal  "30.6"
JSON mode: <prefix>/json  {"t": 22.4, "h": 39.7, "tc": 30.6, "ts": 1718000000}
Status:    <prefix>/status  "online" (retained, after connect) / "offline" (retained last will)
"""

import json

DEFAULTS = {
    "wifi_ssid": "",
    "wifi_password": "",
    "wifi_timeout_s": 20,
    "broker_host": "192.168.1.11",
    "broker_port": 1883,
    "mqtt_user": "",
    "mqtt_password": "",
    "client_id": "",  # "" = hexlify(machine.unique_id()), as in the first report
    "topic_prefix": "pico",
    "interval_s": 5,
    "qos": 0,
    "payload": "value",  # "value" | "json"
    "keepalive_s": 60,
    "connect_timeout_s": 4,
    "ntp": True,
    "ntp_host": "pool.ntp.org",
    "ntp_resync_s": 21600,
    "buffer_size": 120,
    "backoff_base_ms": 1000,
    "backoff_cap_ms": 60000,
    "backoff_jitter": 0.5,
    "watchdog_ms": 8000,  # 0 = off; RP2040 maximum is 8388 ms
    "dht_pin": 15,
    "dht_retries": 2,
    "dht_retry_delay_ms": 2000,
    "stats_every": 60,  # print counters every N readings, 0 = never
    "debug": False,
}

PAYLOAD_MODES = ("value", "json")
WDT_MAX_MS = 8300  # RP2040 hardware limit is 8388 ms; keep a margin
MIN_INTERVAL_S = 2  # DHT22: at most one reading every 2 s
MIN_VALID_UNIX = 1704067200  # 2024-01-01: an RTC before that has not been set
UNIX_2000 = 946684800  # seconds from 1970-01-01 to 2000-01-01
SLEEP_CHUNK_MS = 500  # never sleep longer than this without feeding the watchdog
MAX_ITERATION_SLEEP_MS = 1000
WIFI_POLL_MS = 250


def load_settings(raw=None):
    """Merge a user dict (settings.json) over DEFAULTS and validate it.

    Returns (settings, warnings). Raises ValueError for values that cannot work."""
    s = dict(DEFAULTS)
    warnings = []
    for k, v in (raw or {}).items():
        if k.startswith("_"):  # "_comment" keys are allowed
            continue
        if k not in DEFAULTS:
            warnings.append("unknown setting %r ignored" % k)
            continue
        s[k] = v
    if s["payload"] not in PAYLOAD_MODES:
        raise ValueError("payload must be 'value' or 'json', not %r" % (s["payload"],))
    if s["qos"] not in (0, 1):
        raise ValueError("qos must be 0 or 1 (umqtt has no QoS 2)")
    prefix = str(s["topic_prefix"]).strip("/")
    if not prefix or "+" in prefix or "#" in prefix:
        raise ValueError("topic_prefix must be a non-empty topic without wildcards")
    s["topic_prefix"] = prefix
    if s["interval_s"] < MIN_INTERVAL_S:
        warnings.append("interval_s raised to %d (DHT22 limit)" % MIN_INTERVAL_S)
        s["interval_s"] = MIN_INTERVAL_S
    if s["watchdog_ms"] and s["watchdog_ms"] > WDT_MAX_MS:
        warnings.append("watchdog_ms lowered to %d (RP2040 limit)" % WDT_MAX_MS)
        s["watchdog_ms"] = WDT_MAX_MS
    if s["watchdog_ms"] and s["watchdog_ms"] < 2000:
        warnings.append("watchdog_ms raised to 2000")
        s["watchdog_ms"] = 2000
    if s["buffer_size"] < 1:
        s["buffer_size"] = 1
    if s["backoff_base_ms"] < 1:
        s["backoff_base_ms"] = 1
    if s["backoff_cap_ms"] < s["backoff_base_ms"]:
        s["backoff_cap_ms"] = s["backoff_base_ms"]
    if not 0 <= s["backoff_jitter"] <= 1:
        raise ValueError("backoff_jitter must be between 0 and 1")
    if s["dht_retries"] < 0:
        s["dht_retries"] = 0
    if s["keepalive_s"] and s["keepalive_s"] < 2 * s["interval_s"]:
        # umqtt.simple never pings by itself: our publishes are the keepalive traffic
        s["keepalive_s"] = 2 * s["interval_s"]
        warnings.append("keepalive_s raised to %d (2 x interval)" % s["keepalive_s"])
    return s, warnings


def parse_settings_json(text):
    return load_settings(json.loads(text))


# ---------------------------------------------------------------- formatting

def format_value(x):
    """ASCII with one decimal, as the first report: 22.4 -> b"22.4"."""
    s = "%.1f" % x
    if s == "-0.0":
        s = "0.0"
    return s.encode()


def internal_temperature(raw_u16):
    """RP2040 sensor on ADC4, per the RP2040 datasheet."""
    v = raw_u16 * 3.3 / 65535
    return 27 - (v - 0.706) / 0.001721


def unix_offset(gmtime0_year):
    """Seconds to add to time.time() to get Unix time (ports with a 2000 epoch)."""
    return UNIX_2000 if gmtime0_year == 2000 else 0


class Topics:
    def __init__(self, prefix="pico"):
        p = prefix.strip("/")
        self.temperature = (p + "/temperature/dht22").encode()
        self.humidity = (p + "/humidity/dht22").encode()
        self.internal = (p + "/temperature/internal").encode()
        self.json = (p + "/json").encode()
        self.status = (p + "/status").encode()


ONLINE = b"online"
OFFLINE = b"offline"


def json_payload(t, h, tc, ts):
    """{"t": 22.4, "h": 39.7, "tc": 30.6, "ts": 1718000000}; missing values are left out."""
    parts = []
    for key, val in (("t", t), ("h", h), ("tc", tc)):
        if val is not None:
            parts.append('"%s": %s' % (key, format_value(val).decode()))
    if ts is not None:
        parts.append('"ts": %d' % ts)
    return ("{" + ", ".join(parts) + "}").encode()


def messages(reading, topics, mode):
    """A reading (t, h, tc, ts) -> list of (topic, payload) in publish order."""
    t, h, tc, ts = reading
    if mode == "json":
        if t is None and h is None and tc is None:
            return []
        return [(topics.json, json_payload(t, h, tc, ts))]
    out = []
    if t is not None:
        out.append((topics.temperature, format_value(t)))
    if h is not None:
        out.append((topics.humidity, format_value(h)))
    if tc is not None:
        out.append((topics.internal, format_value(tc)))
    return out


def valid_dht(t, h):
    """DHT22 range: -40..80 C, 0..100 %RH; NaN fails both comparisons."""
    try:
        return -40.0 <= t <= 80.0 and 0.0 <= h <= 100.0
    except TypeError:
        return False


# ---------------------------------------------------------------- backoff

def backoff_ms(attempt, base_ms=1000, cap_ms=60000, jitter=0.5, r=0.0):
    """Exponential backoff, capped, with jitter taken *below* the step.

    step = min(cap, base * 2**attempt); delay = step - step * jitter * r, r in [0, 1).
    Never above the cap, and still spread out once the cap is reached, so a room full
    of nodes does not reconnect in lock-step after the broker comes back."""
    step = base_ms
    for _ in range(attempt):
        step *= 2
        if step >= cap_ms:
            break
    if step > cap_ms:
        step = cap_ms
    return int(step - step * jitter * r)


# ---------------------------------------------------------------- offline buffer

class RingBuffer:
    """Fixed-capacity FIFO; pushing into a full buffer drops the oldest item."""

    def __init__(self, capacity):
        self.capacity = max(1, int(capacity))
        self._items = [None] * self.capacity
        self._head = 0
        self._len = 0
        self.dropped = 0

    def __len__(self):
        return self._len

    def push(self, item):
        """Append; returns True when the oldest item had to be dropped."""
        dropped = False
        if self._len == self.capacity:
            self._items[self._head] = None
            self._head = (self._head + 1) % self.capacity
            self._len -= 1
            self.dropped += 1
            dropped = True
        self._items[(self._head + self._len) % self.capacity] = item
        self._len += 1
        return dropped

    def peek(self):
        if not self._len:
            raise IndexError("empty")
        return self._items[self._head]

    def pop(self):
        item = self.peek()
        self._items[self._head] = None
        self._head = (self._head + 1) % self.capacity
        self._len -= 1
        return item

    def items(self):
        return [self._items[(self._head + i) % self.capacity] for i in range(self._len)]


# ---------------------------------------------------------------- the node

class Node:
    def __init__(self, settings, clock, sensors, mqtt_factory, wdt=None, net=None,
                 ntp=None, rand=None, log=None):
        self.s = settings
        self.clock = clock
        self.sensors = sensors
        self.mqtt_factory = mqtt_factory
        self.wdt = wdt
        self.net = net
        self.ntp = ntp if settings["ntp"] else None
        self.rand = rand or (lambda: 0.5)
        self.log = log or (lambda *a: None)
        self.topics = Topics(settings["topic_prefix"])
        self.mode = settings["payload"]
        self.qos = settings["qos"]
        self.interval_ms = int(settings["interval_s"] * 1000)
        self.buffer = RingBuffer(settings["buffer_size"])
        self.client = None
        self.connected = False
        self._head_sent = 0  # messages of the buffer's head reading already published
        self._attempt = 0
        self._seen_connects = None
        self._wifi_since = None
        now = clock.ticks_ms()
        # Readings start once the first MQTT connect attempt has finished (either way),
        # so the first reading already has NTP time; at the latest after the Wi-Fi timeout.
        self._booting = True
        self._boot_until = clock.ticks_add(now, int(settings["wifi_timeout_s"] * 1000))
        self._next_connect = now
        self._next_reading = now
        self._next_ntp = now
        self.iterations = 0
        self.stats = {
            "readings": 0, "sent": 0, "dht_errors": 0, "dht_failed_readings": 0,
            "internal_errors": 0, "publish_errors": 0, "connects": 0,
            "connect_failures": 0, "inline_reconnects": 0, "ntp_syncs": 0,
            "ntp_failures": 0, "dropped": 0,
        }

    # -- time helpers
    def _now(self):
        return self.clock.ticks_ms()

    def _due(self, deadline, now):
        return self.clock.ticks_diff(deadline, now) <= 0

    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def sleep_ms(self, ms):
        """Sleep in chunks, feeding the watchdog around each one."""
        while ms > 0:
            self.feed()
            chunk = ms if ms < SLEEP_CHUNK_MS else SLEEP_CHUNK_MS
            self.clock.sleep_ms(chunk)
            ms -= chunk
        self.feed()

    # -- sensors
    def sample(self):
        t = h = None
        retries = self.s["dht_retries"]
        for attempt in range(retries + 1):
            try:
                rt, rh = self.sensors.read_dht()
                if not valid_dht(rt, rh):
                    raise ValueError("DHT22 out of range: %r %r" % (rt, rh))
                t, h = rt, rh
                break
            except Exception as e:  # OSError (timeout, CRC) or a bogus value
                self.stats["dht_errors"] += 1
                if self.s["debug"]:
                    self.log("dht22 read failed (%d/%d): %r" % (attempt + 1, retries + 1, e))
                if attempt < retries:
                    self.sleep_ms(self.s["dht_retry_delay_ms"])
        if t is None:
            self.stats["dht_failed_readings"] += 1
        try:
            tc = self.sensors.read_internal()
        except Exception:
            tc = None
            self.stats["internal_errors"] += 1
        ts = None
        if self.mode == "json":
            try:
                ts = self.clock.unix_time()
            except Exception:
                ts = None
            if ts is not None and ts < MIN_VALID_UNIX:
                ts = None  # clock never set: let the ingester stamp it on receipt
        self.stats["readings"] += 1
        return (t, h, tc, ts)

    # -- NTP
    def _maybe_ntp(self, now):
        if self.ntp is None or not self._due(self._next_ntp, now):
            return
        if self.net is not None and not self.net.isconnected():
            return
        self.feed()
        try:
            ok = self.ntp()
        except Exception as e:
            ok = False
            self.log("ntp failed: %r" % (e,))
        self.feed()
        if ok is not False:
            self.stats["ntp_syncs"] += 1
            self._next_ntp = self.clock.ticks_add(self._now(), int(self.s["ntp_resync_s"] * 1000))
        else:
            self.stats["ntp_failures"] += 1
            self._next_ntp = self.clock.ticks_add(self._now(), 60000)

    # -- MQTT
    def _schedule_reconnect(self):
        delay = backoff_ms(self._attempt, self.s["backoff_base_ms"], self.s["backoff_cap_ms"],
                           self.s["backoff_jitter"], self.rand())
        self._attempt += 1
        self._next_connect = self.clock.ticks_add(self._now(), delay)
        return delay

    def _wifi_ready(self, now):
        """Non-blocking: kick Wi-Fi and poll it once a second, so sensors keep being read."""
        if self.net is None or self.net.isconnected():
            self._wifi_since = None
            return True
        if self._wifi_since is not None and \
                self.clock.ticks_diff(now, self._wifi_since) >= self.s["wifi_timeout_s"] * 1000:
            self._wifi_since = None
            self.stats["connect_failures"] += 1
            delay = self._schedule_reconnect()
            self.log("wifi: not connected after %ds, retry in %d ms" % (self.s["wifi_timeout_s"], delay))
            return False
        if self._wifi_since is None:
            try:
                self.net.connect()
            except Exception as e:
                self.log("wifi connect: %r" % (e,))
            self._wifi_since = now
        self._next_connect = self.clock.ticks_add(now, WIFI_POLL_MS)
        return False

    def connect(self):
        now = self._now()
        if not self._wifi_ready(now):
            return False
        self._maybe_ntp(now)
        self.feed()
        ok = self._connect_mqtt()
        if self._booting:
            self._end_boot()
        if ok:
            self.flush()
        return self.connected

    def _end_boot(self):
        self._booting = False
        self._next_reading = self._now()

    def _connect_mqtt(self):
        try:
            if self.client is None:
                self.client = self.mqtt_factory()
            c = self.client
            c.set_last_will(self.topics.status, OFFLINE, True, self.qos)
            c.connect(True)
            self.feed()
            self._seen_connects = getattr(c, "connects", None)
            c.publish(self.topics.status, ONLINE, True, self.qos)
            self._seen_connects = getattr(c, "connects", None)
        except Exception as e:
            self.connected = False
            self.stats["connect_failures"] += 1
            delay = self._schedule_reconnect()
            self.log("mqtt: connect failed (%r), retry in %d ms" % (e, delay))
            return False
        self.connected = True
        self._attempt = 0
        self.stats["connects"] += 1
        self.log("mqtt: connected, %d buffered" % len(self.buffer))
        return True

    def _publish(self, topic, payload, retain=False):
        c = self.client
        c.publish(topic, payload, retain, self.qos)
        n = getattr(c, "connects", None)
        if n is not None and n != self._seen_connects:
            # the client reconnected by itself (umqtt.robust): the broker has fired our
            # last will, so say "online" again
            self._seen_connects = n
            self.stats["inline_reconnects"] += 1
            c.publish(self.topics.status, ONLINE, True, self.qos)

    def _lost(self, e):
        self.connected = False
        self.stats["publish_errors"] += 1
        delay = self._schedule_reconnect()
        self.log("mqtt: publish failed (%r), buffering, retry in %d ms" % (e, delay))

    def deliver(self, reading):
        if self.buffer.push(reading):
            self._head_sent = 0  # the partly sent head reading was the one dropped
            self.stats["dropped"] = self.buffer.dropped
        if self.connected:
            self.flush()

    def flush(self):
        """Publish buffered readings oldest first; stop at the first error."""
        buf = self.buffer
        while len(buf):
            msgs = messages(buf.peek(), self.topics, self.mode)
            while self._head_sent < len(msgs):
                topic, payload = msgs[self._head_sent]
                try:
                    self._publish(topic, payload)
                except Exception as e:
                    self._lost(e)
                    return False
                self._head_sent += 1
                self.stats["sent"] += 1
                self.feed()
            buf.pop()
            self._head_sent = 0
        return True

    # -- the loop
    def step(self):
        """One loop iteration: feed, (re)connect when due, read+publish when due, short sleep."""
        self.iterations += 1
        self.feed()
        now = self._now()
        if not self.connected and self._due(self._next_connect, now):
            self.connect()
        elif self.connected:
            self._maybe_ntp(now)
        now = self._now()
        if self._booting and self._due(self._boot_until, now):
            self._end_boot()  # no network yet: start reading into the buffer anyway
        if not self._booting and self._due(self._next_reading, now):
            self.deliver(self.sample())
            self._next_reading = self.clock.ticks_add(self._next_reading, self.interval_ms)
            now = self._now()
            if self._due(self._next_reading, now):  # fell behind (retries, long flush): skip ahead
                self._next_reading = self.clock.ticks_add(now, self.interval_ms)
            every = self.s["stats_every"]
            if every and self.stats["readings"] % every == 0:
                self.log("stats: %r buffered=%d" % (self.stats, len(self.buffer)))
        wait = self.clock.ticks_diff(self._boot_until if self._booting else self._next_reading, now)
        if not self.connected:
            wait = min(wait, self.clock.ticks_diff(self._next_connect, now))
        if wait > MAX_ITERATION_SLEEP_MS:
            wait = MAX_ITERATION_SLEEP_MS
        if wait > 0:
            self.sleep_ms(wait)

    def run(self, iterations=None):
        while iterations is None or self.iterations < iterations:
            self.step()
