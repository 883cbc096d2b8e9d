"""Host tests for the Pico W firmware (CPython 3.11 stdlib unittest only).

Importing this package puts tests/stubs (machine, network, dht, utime, ntptime,
ubinascii, umqtt) and the firmware directory first on sys.path."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIRMWARE = os.path.dirname(HERE)
STUBS = os.path.join(HERE, "stubs")

for _p in (FIRMWARE, STUBS):
    if _p in sys.path:
        sys.path.remove(_p)
    sys.path.insert(0, _p)
