"""Stand-in for MicroPython's machine module (rp2 flavour)."""

import utime

PWRON_RESET = 1
WDT_RESET = 3

UNIQUE_ID = b"\xe6\x61\x41\x04\x03\x2b\x52\x2c"
ADC_VALUES = {4: 13897}  # -> 30.6 C with the RP2040 formula
resets = []
watchdogs = []


def reset_state():
    global ADC_VALUES
    ADC_VALUES = {4: 13897}
    del resets[:]
    del watchdogs[:]


def unique_id():
    return UNIQUE_ID


def reset():
    resets.append(utime.elapsed_ms())
    raise SystemExit("machine.reset() called")


def soft_reset():
    reset()


def reset_cause():
    return PWRON_RESET


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1

    def __init__(self, id, mode=None, pull=None, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull


class ADC:
    def __init__(self, channel):
        self.channel = channel

    def read_u16(self):
        return ADC_VALUES[self.channel]


class WDT:
    """Records every feed in virtual time; `expired` lists gaps longer than the timeout."""

    def __init__(self, id=0, timeout=5000):
        if not 1 <= timeout <= 8388:
            raise ValueError("rp2 WDT timeout must be 1..8388 ms")
        self.timeout = timeout
        self.feeds = []
        self.expired = []
        self._last = utime.elapsed_ms()
        watchdogs.append(self)

    def check(self, now=None):
        now = utime.elapsed_ms() if now is None else now
        if now - self._last > self.timeout:
            self.expired.append((self._last, now))
            self._last = now  # count each starvation once

    def feed(self):
        now = utime.elapsed_ms()
        self.check(now)
        self.feeds.append(now)
        self._last = now
