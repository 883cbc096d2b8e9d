"""Fieldline Pico W node: wiring to the MicroPython modules.

machine (Pin, ADC, WDT, unique_id), network (WLAN), dht (DHT22), umqtt.robust,
ntptime, utime. The logic lives in fieldline_node.py; main.py only calls main().
The host tests import this module with stubs for all of the above.
"""

import gc
import json
import random

try:
    import utime as time
except ImportError:  # newer firmware without the u-aliases
    import time
try:
    import ubinascii as binascii
except ImportError:
    import binascii

import machine
import network

import fieldline_node as fn

from umqtt.simple import MQTTClient as _Simple

try:
    from umqtt.robust import MQTTClient as _Base
except ImportError:  # umqtt.robust not installed: plain umqtt.simple still works
    _Base = _Simple

SETTINGS_FILE = "settings.json"


class FieldlineMQTT(_Base):
    """umqtt.robust with a bounded reconnect.

    umqtt.robust retries forever inside publish() (2 s apart). That would stop sensor
    reads, starve the watchdog and leave the offline buffer unused. Here a failed
    publish gets ONE immediate reconnect (robust's reconnect(), resuming the session);
    if that fails too, the error goes back to the Node, which buffers the reading and
    retries with exponential backoff + jitter while it keeps feeding the watchdog.
    Every connect closes the previous socket first (lwIP has few sockets), uses a
    socket timeout, and counts itself in `connects` so the Node republishes "online"
    after a reconnect it did not start itself."""

    connect_timeout = 4
    feed = None  # the watchdog's feed(), called before each blocking connect

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connects = 0
        self._budget = 0
        self._timeout_ok = True

    def delay(self, i):
        # robust.reconnect() calls this after a failed attempt and then loops; stop here
        raise OSError("mqtt: reconnect failed")

    def reconnect(self):
        if self._budget <= 0:
            raise OSError("mqtt: reconnect budget spent")
        self._budget -= 1
        return super().reconnect()

    def publish(self, topic, msg, retain=False, qos=0):
        self._budget = 1
        if self.sock is not None and self.connect_timeout:
            try:
                self.sock.settimeout(self.connect_timeout)  # wait_msg() resets it to blocking
            except Exception:
                pass
        return super().publish(topic, msg, retain, qos)

    def _close(self):
        s = self.sock
        self.sock = None
        if s is not None:
            try:
                s.close()
            except Exception:
                pass

    def connect(self, clean_session=True):
        self._close()
        if self.feed is not None:
            self.feed()
        if self._timeout_ok:
            try:
                r = _Simple.connect(self, clean_session, timeout=self.connect_timeout)
            except TypeError:  # umqtt.simple before 1.4 has no timeout argument
                self._timeout_ok = False
                self._close()
                r = _Simple.connect(self, clean_session)
        else:
            r = _Simple.connect(self, clean_session)
        self.connects += 1
        return r


class Clock:
    def __init__(self):
        self.offset = fn.unix_offset(time.gmtime(0)[0])

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def ticks_add(self, t, d):
        return time.ticks_add(t, d)

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def unix_time(self):
        return time.time() + self.offset


class Sensors:
    def __init__(self, dht_pin=15):
        import dht
        self.dht = dht.DHT22(machine.Pin(dht_pin))
        self.adc = machine.ADC(4)  # RP2040 internal temperature sensor

    def read_dht(self):
        self.dht.measure()
        return self.dht.temperature(), self.dht.humidity()

    def read_internal(self):
        return fn.internal_temperature(self.adc.read_u16())


class Wifi:
    def __init__(self, ssid, password):
        self.ssid = ssid
        self.password = password
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        try:
            self.wlan.config(pm=0xA11140)  # CYW43 power save off: fewer dropped links
        except Exception:
            pass

    def isconnected(self):
        return self.wlan.isconnected()

    def connect(self):
        self.wlan.connect(self.ssid, self.password)


def make_ntp(host):
    def sync():
        import ntptime
        ntptime.host = host
        ntptime.settime()  # sets the RTC to UTC
        return True
    return sync


def default_client_id():
    return binascii.hexlify(machine.unique_id())


def read_settings(path=SETTINGS_FILE):
    with open(path) as f:
        return fn.parse_settings_json(f.read())


def rand():
    return random.getrandbits(16) / 65536


def build(settings, wdt=None, log=print):
    """The Node and its collaborators, from validated settings."""
    s = settings
    client_id = s["client_id"] or default_client_id()
    if isinstance(client_id, str):
        client_id = client_id.encode()

    def mqtt_factory():
        c = FieldlineMQTT(client_id, s["broker_host"], port=s["broker_port"],
                          user=s["mqtt_user"] or None, password=s["mqtt_password"] or None,
                          keepalive=s["keepalive_s"])
        c.connect_timeout = s["connect_timeout_s"]
        c.DEBUG = bool(s["debug"])
        if wdt is not None:
            c.feed = wdt.feed
        return c

    net = Wifi(s["wifi_ssid"], s["wifi_password"]) if s["wifi_ssid"] else None
    return fn.Node(s, Clock(), Sensors(s["dht_pin"]), mqtt_factory, wdt=wdt, net=net,
                   ntp=make_ntp(s["ntp_host"]), rand=rand, log=log)


def main(iterations=None, path=SETTINGS_FILE, log=print):
    try:
        settings, warnings = read_settings(path)
    except OSError:
        log("fieldline: %s not found - copy settings.example.json to %s and edit it" % (path, path))
        return None
    except ValueError as e:
        log("fieldline: bad %s: %s" % (path, e))
        return None
    for w in warnings:
        log("fieldline: " + w)
    try:
        log("fieldline: reset cause %r" % (machine.reset_cause(),))
    except Exception:
        pass
    wdt = None
    if settings["watchdog_ms"]:
        # started last, right before the loop: from here on every wait feeds it
        wdt = machine.WDT(timeout=settings["watchdog_ms"])
    node = build(settings, wdt=wdt, log=log)
    gc.collect()
    log("fieldline: publishing to %s:%d as %s/..., every %ss, payload %s" % (
        settings["broker_host"], settings["broker_port"], settings["topic_prefix"],
        settings["interval_s"], settings["payload"]))
    node.run(iterations)
    return node
