"""Stand-in for MicroPython's dht module."""

VALUE = (22.4, 39.7)
FAIL_NEXT = 0  # this many upcoming measure() calls raise OSError(ETIMEDOUT)
ALWAYS_FAIL = False
measures = 0


def reset_state():
    global VALUE, FAIL_NEXT, ALWAYS_FAIL, measures
    VALUE = (22.4, 39.7)
    FAIL_NEXT = 0
    ALWAYS_FAIL = False
    measures = 0


class DHT22:
    def __init__(self, pin):
        self.pin = pin
        self._t = self._h = None

    def measure(self):
        global FAIL_NEXT, measures
        measures += 1
        if ALWAYS_FAIL:
            raise OSError(110)  # ETIMEDOUT, what the driver raises without a sensor
        if FAIL_NEXT > 0:
            FAIL_NEXT -= 1
            raise OSError(110)
        self._t, self._h = VALUE

    def temperature(self):
        return self._t

    def humidity(self):
        return self._h
