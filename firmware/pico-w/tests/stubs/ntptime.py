"""Stand-in for MicroPython's ntptime."""

import utime

host = "pool.ntp.org"
NOW = 1718000000  # Unix time the fake NTP server hands out at the first sync
FAIL = False
calls = []
_origin_ms = None


def reset_state():
    global host, FAIL, _origin_ms
    host = "pool.ntp.org"
    FAIL = False
    _origin_ms = None
    del calls[:]


def settime():
    calls.append(host)
    if FAIL:
        raise OSError(110)
    global _origin_ms
    if _origin_ms is None:
        _origin_ms = utime.elapsed_ms()
    utime.set_rtc_unix(NOW + (utime.elapsed_ms() - _origin_ms) // 1000)
