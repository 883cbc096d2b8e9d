"""Shared helpers: reset the stubs, build nodes, run them in virtual time."""

import machine
import network
import dht
import ntptime
import utime
from umqtt import simple

import fieldline_node as fn
import fieldline_board as board

BROKER = simple.BROKER
NEAR_WRAP = (1 << 30) - 7000  # start ticks_ms just below the 2**30 wrap


def _check_watchdogs(now):
    for w in machine.watchdogs:
        w.check(now)


def reset_stubs(start_ticks=NEAR_WRAP, epoch_year=2000, link_up=True):
    utime.reset(start_ticks=start_ticks, epoch_year=epoch_year)
    utime.on_time(_check_watchdogs)
    machine.reset_state()
    network.reset_state(link_up=link_up)
    dht.reset_state()
    ntptime.reset_state()
    BROKER.reset()


def settings(**over):
    raw = {"wifi_ssid": "lab", "wifi_password": "secret", "broker_host": "10.0.0.2",
           "stats_every": 0}
    raw.update(over)
    s, _ = fn.load_settings(raw)
    return s


def board_node(watchdog=True, log=None, **over):
    """A Node wired by fieldline_board to the stubs, with a started watchdog."""
    s = settings(**over)
    wdt = machine.WDT(timeout=s["watchdog_ms"]) if watchdog and s["watchdog_ms"] else None
    node = board.build(s, wdt=wdt, log=log or (lambda *a: None))
    return node, wdt


def run_for(node, ms, max_iterations=100000):
    """Step the node until `ms` more virtual milliseconds have passed."""
    end = utime.elapsed_ms() + ms
    n = 0
    while utime.elapsed_ms() < end:
        node.step()
        n += 1
        if n > max_iterations:
            raise AssertionError("node did not let virtual time advance")
    return n


class FakeClock:
    """Plain monotonic clock for Node tests that do not go through the board."""

    def __init__(self, unix=None):
        self.now = 0
        self.unix = unix
        self.sleeps = []

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, t, d):
        return t + d

    def sleep_ms(self, ms):
        self.sleeps.append(ms)
        self.now += ms

    def unix_time(self):
        return None if self.unix is None else self.unix + self.now // 1000


class FakeSensors:
    def __init__(self, t=22.4, h=39.7, tc=30.6):
        self.values = (t, h)
        self.tc = tc
        self.fail = 0

    def read_dht(self):
        if self.fail:
            self.fail -= 1
            raise OSError(110)
        return self.values

    def read_internal(self):
        return self.tc


class FakeClient:
    """Minimal client; `down` makes connect and publish fail."""

    def __init__(self, world):
        self.world = world
        self.will = None
        self.connects = 0

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.will = (topic, msg, retain, qos)

    def connect(self, clean_session=True):
        self.world.connect_times.append(self.world.clock.now)
        if self.world.down:
            raise OSError(113)
        self.connects += 1

    def publish(self, topic, msg, retain=False, qos=0):
        if self.world.down or (self.world.fail_after is not None and
                               len(self.world.sent) >= self.world.fail_after):
            self.world.fail_after = None
            self.world.down = True
            self.world.fail_times.append(self.world.clock.now)
            raise OSError(104)
        self.world.sent.append((topic, msg, retain, qos))


class World:
    def __init__(self, clock):
        self.clock = clock
        self.down = False
        self.fail_after = None  # publish number at which the link breaks
        self.sent = []
        self.connect_times = []
        self.fail_times = []
        self.clients = []

    def factory(self):
        c = FakeClient(self)
        self.clients.append(c)
        return c

    def data(self):
        return [(t, m) for (t, m, r, q) in self.sent if not t.endswith(b"/status")]
