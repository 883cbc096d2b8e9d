"""The firmware as wired by fieldline_board/main.py against the MicroPython stubs:
umqtt.robust subclass, LWT, reconnects, JSON+NTP, sensor failures, watchdog."""

import json
import os
import tempfile
import unittest

from tests import support
from tests.support import BROKER, board_node, reset_stubs, run_for
import dht
import machine
import network
import ntptime
import utime
import fieldline_board as board

T, H, TC = b"pico/temperature/dht22", b"pico/humidity/dht22", b"pico/temperature/internal"
STATUS = b"pico/status"


class Base(unittest.TestCase):
    def setUp(self):
        reset_stubs()

    def tearDown(self):
        for w in machine.watchdogs:
            w.check()
            self.assertEqual(w.expired, [], "watchdog starved (virtual ms %r)" % w.expired)
        self.assertEqual(machine.resets, [], "machine.reset() was called")


class ReportWireFormat(Base):
    def test_main_publishes_report_topics_every_5s(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "settings.json")
            with open(path, "w") as f:
                json.dump({"wifi_ssid": "lab", "wifi_password": "pw", "broker_host": "10.0.0.2"}, f)
            logs = []
            node = board.main(iterations=40, path=path, log=logs.append)
        self.assertIsNotNone(node)
        self.assertEqual(BROKER.payloads(T)[:3], [b"22.4"] * 3)
        self.assertEqual(BROKER.payloads(H)[:3], [b"39.7"] * 3)
        self.assertEqual(BROKER.payloads(TC)[:3], [b"30.6"] * 3)
        data = [m for m in BROKER.published() if m.topic != STATUS]
        self.assertEqual([m.topic for m in data[:3]], [T, H, TC])
        self.assertTrue(all(m.qos == 0 and not m.retain for m in data))
        times = [m.at_ms for m in BROKER.published(T)]
        self.assertEqual([b - a for a, b in zip(times, times[1:])], [5000] * (len(times) - 1))
        # client id defaults to hexlify(machine.unique_id()), as in the report
        self.assertEqual(data[0].client_id, b"e6614104032b522c")
        self.assertEqual(len(machine.watchdogs), 1)
        self.assertLessEqual(machine.watchdogs[0].timeout, 8300)

    def test_main_without_settings_file_does_not_crash(self):
        logs = []
        self.assertIsNone(board.main(iterations=1, path="/nonexistent/settings.json",
                                     log=logs.append))
        self.assertIn("settings.example.json", logs[0])
        self.assertEqual(machine.watchdogs, [])  # no WDT armed when nothing will feed it

    def test_connect_uses_credentials_keepalive_and_timeout(self):
        node, _ = board_node(mqtt_user="pico", mqtt_password="pw", client_id="kitchen",
                             connect_timeout_s=3)
        BROKER.required_password = "pw"
        run_for(node, 500)
        conn = BROKER.connections[0]
        self.assertEqual((conn.client_id, conn.user, conn.password, conn.keepalive),
                         (b"kitchen", "pico", "pw", 60))
        self.assertEqual(node.client.connect_timeouts, [3])


class MainPy(Base):
    def test_main_py_only_starts_the_board(self):
        import importlib
        import sys
        calls = []
        real = board.main
        board.main = lambda *a, **k: calls.append((a, k))
        try:
            sys.modules.pop("main", None)
            importlib.import_module("main")
        finally:
            board.main = real
            sys.modules.pop("main", None)
        self.assertEqual(calls, [((), {})])

    def test_client_is_umqtt_robust(self):
        from umqtt import robust
        node, _ = board_node()
        run_for(node, 500)
        self.assertIsInstance(node.client, robust.MQTTClient)


class LastWill(Base):
    def test_lwt_retained_offline_and_online_retained(self):
        node, _ = board_node()
        run_for(node, 500)
        c = node.client
        self.assertEqual((c.lw_topic, c.lw_msg, c.lw_retain), (STATUS, b"offline", True))
        first = BROKER.messages[0]
        self.assertEqual((first.topic, first.payload, first.retain), (STATUS, b"online", True))
        self.assertEqual(BROKER.retained[STATUS], b"online")
        BROKER.crash()
        self.assertEqual(BROKER.retained[STATUS], b"offline")  # the broker fired the will
        run_for(node, 6000)
        BROKER.restart()
        run_for(node, 70000)
        self.assertTrue(node.connected)
        self.assertEqual(BROKER.retained[STATUS], b"online")


class Reconnect(Base):
    def test_broker_outage_then_publishing_resumes_with_buffer(self):
        node, wdt = board_node(backoff_cap_ms=8000)
        run_for(node, 10000)
        before = len(BROKER.payloads(T))
        self.assertEqual(before, 2)
        BROKER.crash()
        run_for(node, 30000)  # six readings while the broker is away
        self.assertFalse(node.connected)
        self.assertGreater(BROKER.failed_connects, 2)
        self.assertEqual(len(BROKER.payloads(T)), before)
        BROKER.restart()
        run_for(node, 12000)
        self.assertTrue(node.connected)
        # every reading taken during the outage arrived, in order, nothing dropped
        self.assertEqual(len(BROKER.payloads(T)), node.stats["readings"])
        self.assertGreaterEqual(node.stats["readings"], before + 6 + 2)
        self.assertEqual(len(node.buffer), 0)
        self.assertEqual(node.stats["dropped"], 0)
        self.assertLessEqual(len(BROKER.open_sockets), 1, "old sockets must be closed")
        gaps = [b - a for a, b in zip(wdt.feeds, wdt.feeds[1:])]
        self.assertLess(max(gaps), wdt.timeout)

    def test_robust_inline_reconnect_keeps_every_reading(self):
        node, _ = board_node()
        run_for(node, 6000)
        BROKER.kick()  # link dropped, broker still reachable: robust reconnects inside publish
        self.assertEqual(BROKER.retained[STATUS], b"offline")
        run_for(node, 5000)
        self.assertTrue(node.connected)
        self.assertEqual(node.stats["inline_reconnects"], 1)
        self.assertEqual(BROKER.retained[STATUS], b"online")
        self.assertEqual(BROKER.payloads(T), [b"22.4"] * 3)
        self.assertEqual(node.client.connects, 2)

    def test_robust_reconnect_does_not_block_forever(self):
        node, wdt = board_node()
        run_for(node, 1000)
        BROKER.crash()
        t0 = utime.elapsed_ms()
        with self.assertRaises(OSError):
            node.client.publish(T, b"1.0")
        self.assertLess(utime.elapsed_ms() - t0, 100)  # robust's own 2 s loop was cut short
        self.assertEqual(BROKER.failed_connects, 1)

    def test_bad_credentials_back_off_without_reset(self):
        node, _ = board_node(mqtt_password="wrong")
        BROKER.required_password = "right"
        run_for(node, 60000)
        self.assertFalse(node.connected)
        self.assertGreater(node.stats["connect_failures"], 3)
        self.assertLess(node.stats["connect_failures"], 15)
        self.assertEqual(len(node.buffer), 12)

    def test_wifi_down_at_boot(self):
        reset_stubs(link_up=False)
        node, _ = board_node(wifi_timeout_s=5, backoff_jitter=0.0)
        run_for(node, 20000)
        self.assertFalse(node.connected)
        self.assertGreaterEqual(len(network.connect_calls), 2)
        self.assertEqual(network.connect_calls[0], ("lab", "secret"))
        # readings start when the Wi-Fi timeout ends the boot wait: at 5, 10 and 15 s
        self.assertEqual(node.stats["readings"], 3)
        self.assertEqual(len(node.buffer), 3)
        network.LINK_UP = True
        run_for(node, 8000)
        self.assertTrue(node.connected)
        self.assertEqual(len(BROKER.payloads(T)), node.stats["readings"])
        self.assertEqual(len(node.buffer), 0)


class JsonAndNtp(Base):
    def test_json_mode_with_ntp_timestamp(self):
        node, _ = board_node(payload="json")
        run_for(node, 10000)
        self.assertEqual(ntptime.calls, ["pool.ntp.org"])
        msgs = BROKER.published(b"pico/json")
        self.assertEqual(len(msgs), 2)
        self.assertEqual(msgs[0].payload, b'{"t": 22.4, "h": 39.7, "tc": 30.6, "ts": 1718000000}')
        self.assertEqual(json.loads(msgs[1].payload)["ts"], 1718000005)
        self.assertEqual(BROKER.payloads(T), [])

    def test_json_epoch_1970_port(self):
        reset_stubs(epoch_year=1970)
        node, _ = board_node(payload="json")
        run_for(node, 500)
        self.assertEqual(json.loads(BROKER.published(b"pico/json")[0].payload)["ts"], 1718000000)

    def test_json_without_ntp_leaves_time_to_ingester(self):
        ntptime.FAIL = True
        node, _ = board_node(payload="json")
        run_for(node, 500)
        self.assertEqual(BROKER.published(b"pico/json")[0].payload,
                         b'{"t": 22.4, "h": 39.7, "tc": 30.6}')
        self.assertEqual(node.stats["ntp_failures"], 1)

    def test_buffered_json_keeps_reading_time(self):
        node, _ = board_node(payload="json", backoff_cap_ms=4000)
        run_for(node, 500)
        BROKER.crash()
        run_for(node, 15000)
        BROKER.restart()
        run_for(node, 10000)
        ts = [json.loads(m.payload)["ts"] for m in BROKER.published(b"pico/json")]
        self.assertEqual(ts, [1718000000 + 5 * i for i in range(len(ts))])


class SensorFailures(Base):
    def test_dht_error_retried_and_counted(self):
        dht.FAIL_NEXT = 2
        node, _ = board_node()
        run_for(node, 500)
        self.assertEqual(node.stats["dht_errors"], 2)
        self.assertEqual(node.stats["dht_failed_readings"], 0)
        self.assertEqual(BROKER.payloads(T), [b"22.4"])
        self.assertEqual(dht.measures, 3)

    def test_dead_sensor_never_crashes_loop(self):
        dht.ALWAYS_FAIL = True
        node, _ = board_node()
        run_for(node, 30000)
        self.assertEqual(BROKER.payloads(T), [])
        self.assertEqual(BROKER.payloads(H), [])
        self.assertEqual(len(BROKER.payloads(TC)), node.stats["readings"])
        self.assertGreaterEqual(node.stats["dht_failed_readings"], 5)
        self.assertEqual(node.stats["dht_errors"], 3 * node.stats["dht_failed_readings"])
        dht.ALWAYS_FAIL = False
        run_for(node, 5000)
        self.assertEqual(BROKER.payloads(T), [b"22.4"])

    def test_out_of_range_value_rejected(self):
        dht.VALUE = (float("nan"), 39.7)
        node, _ = board_node(dht_retries=0)
        run_for(node, 500)
        self.assertEqual(node.stats["dht_errors"], 1)
        self.assertEqual(BROKER.payloads(T), [])

    def test_internal_sensor_error_counted(self):
        machine.ADC_VALUES = {}
        node, _ = board_node()
        run_for(node, 500)
        self.assertEqual(node.stats["internal_errors"], 1)
        self.assertEqual(BROKER.payloads(T), [b"22.4"])


class Watchdog(Base):
    def test_fed_every_iteration(self):
        node, wdt = board_node()
        for _ in range(50):
            n = len(wdt.feeds)
            node.step()
            self.assertGreater(len(wdt.feeds), n)

    def test_never_starved_through_outages_and_retries(self):
        dht.FAIL_NEXT = 100
        node, wdt = board_node(dht_retries=3, backoff_cap_ms=60000)
        run_for(node, 20000)
        BROKER.crash()
        run_for(node, 120000)
        BROKER.restart()
        run_for(node, 70000)
        self.assertTrue(node.connected)
        gaps = [b - a for a, b in zip(wdt.feeds, wdt.feeds[1:])]
        self.assertLessEqual(max(gaps), 1000)

    def test_watchdog_timeout_within_rp2040_limit(self):
        s = support.settings(watchdog_ms=9999)
        self.assertLessEqual(s["watchdog_ms"], 8300)
        machine.WDT(timeout=s["watchdog_ms"])  # the stub enforces rp2's 8388 ms


if __name__ == "__main__":
    unittest.main()
