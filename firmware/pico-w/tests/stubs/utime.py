"""Virtual clock standing in for MicroPython's utime. Nothing really sleeps."""

TICKS_PERIOD = 1 << 30  # MicroPython's ticks_ms() wraps at 2**30
TICKS_MAX = TICKS_PERIOD - 1
TICKS_HALF = TICKS_PERIOD // 2

EPOCH_YEAR = 2000  # rp2 before 1.23 counted from 2000; set 1970 to test newer ports
RTC_DEFAULT = 662688000  # 2021-01-01 in a 2000 epoch: what an unset rp2 RTC says

_elapsed_ms = 0
_tick_origin = 0
_rtc_base = RTC_DEFAULT  # epoch seconds at _rtc_set_ms
_rtc_set_ms = 0
_sleep_hooks = []


def reset(start_ticks=0, epoch_year=2000):
    global _elapsed_ms, _tick_origin, _rtc_base, _rtc_set_ms, EPOCH_YEAR
    _elapsed_ms = 0
    _tick_origin = start_ticks
    EPOCH_YEAR = epoch_year
    _rtc_base = RTC_DEFAULT if epoch_year == 2000 else RTC_DEFAULT + 946684800
    _rtc_set_ms = 0
    del _sleep_hooks[:]


def elapsed_ms():
    """Virtual milliseconds since reset() (test helper, not in MicroPython)."""
    return _elapsed_ms


def advance(ms):
    global _elapsed_ms
    _elapsed_ms += int(ms)
    for hook in list(_sleep_hooks):
        hook(_elapsed_ms)


def on_time(hook):
    """Call hook(elapsed_ms) after every advance (test helper)."""
    _sleep_hooks.append(hook)


def set_rtc_unix(unix_seconds):
    """What ntptime.settime() does: the RTC now reads this Unix time."""
    global _rtc_base, _rtc_set_ms
    _rtc_base = unix_seconds - (946684800 if EPOCH_YEAR == 2000 else 0)
    _rtc_set_ms = _elapsed_ms


def ticks_ms():
    return (_tick_origin + _elapsed_ms) & TICKS_MAX


def ticks_add(ticks, delta):
    return (ticks + delta) & TICKS_MAX


def ticks_diff(ticks1, ticks2):
    return ((ticks1 - ticks2 + TICKS_HALF) & TICKS_MAX) - TICKS_HALF


def sleep_ms(ms):
    if ms > 0:
        advance(ms)


def sleep(s):
    sleep_ms(int(s * 1000))


def time():
    return _rtc_base + (_elapsed_ms - _rtc_set_ms) // 1000


def gmtime(secs=None):
    if secs == 0:
        return (EPOCH_YEAR, 1, 1, 0, 0, 0, 5 if EPOCH_YEAR == 2000 else 3, 1)
    import time as _t
    base = 946684800 if EPOCH_YEAR == 2000 else 0
    g = _t.gmtime((time() if secs is None else secs) + base)
    return (g.tm_year, g.tm_mon, g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec, g.tm_wday, g.tm_yday)


localtime = gmtime
