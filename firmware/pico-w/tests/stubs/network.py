"""Stand-in for MicroPython's network module (CYW43 on the Pico W)."""

STA_IF = 0
AP_IF = 1
STAT_GOT_IP = 3

LINK_UP = True  # tests switch the access point on and off
connect_calls = []
_instances = []


def reset_state(link_up=True):
    global LINK_UP
    LINK_UP = link_up
    del connect_calls[:]
    del _instances[:]


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface
        self._active = False
        self._config = {}
        _instances.append(self)

    def active(self, value=None):
        if value is None:
            return self._active
        self._active = bool(value)

    def config(self, **kwargs):
        self._config.update(kwargs)

    def connect(self, ssid=None, key=None):
        connect_calls.append((ssid, key))

    def isconnected(self):
        return self._active and bool(connect_calls) and LINK_UP

    def status(self):
        return STAT_GOT_IP if self.isconnected() else 0

    def ifconfig(self):
        return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")
