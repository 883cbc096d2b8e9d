"""Topics and payloads exactly as in the first field report, and the JSON mode."""

import json
import os
import unittest

from tests import FIRMWARE
import fieldline_node as fn


class TopicsAndPayloads(unittest.TestCase):
    def test_report_topics(self):
        t = fn.Topics("pico")
        self.assertEqual(t.temperature, b"pico/temperature/dht22")
        self.assertEqual(t.humidity, b"pico/humidity/dht22")
        self.assertEqual(t.internal, b"pico/temperature/internal")
        self.assertEqual(t.status, b"pico/status")
        self.assertEqual(t.json, b"pico/json")

    def test_prefix(self):
        t = fn.Topics("greenhouse/")
        self.assertEqual(t.temperature, b"greenhouse/temperature/dht22")
        self.assertEqual(t.status, b"greenhouse/status")

    def test_value_payload_is_ascii_one_decimal(self):
        self.assertEqual(fn.format_value(22.4), b"22.4")
        self.assertEqual(fn.format_value(39.7), b"39.7")
        self.assertEqual(fn.format_value(30.61), b"30.6")
        self.assertEqual(fn.format_value(22), b"22.0")
        self.assertEqual(fn.format_value(-3.25), b"-3.2")  # %.1f, round-half-even on the binary value
        self.assertEqual(fn.format_value(-0.04), b"0.0")  # no "-0.0" on the wire
        self.assertEqual(fn.format_value(22.4).decode("ascii"), "22.4")

    def test_value_mode_messages_in_report_order(self):
        msgs = fn.messages((22.4, 39.7, 30.6, None), fn.Topics("pico"), "value")
        self.assertEqual(msgs, [
            (b"pico/temperature/dht22", b"22.4"),
            (b"pico/humidity/dht22", b"39.7"),
            (b"pico/temperature/internal", b"30.6"),
        ])

    def test_value_mode_without_dht(self):
        msgs = fn.messages((None, None, 30.6, None), fn.Topics("pico"), "value")
        self.assertEqual(msgs, [(b"pico/temperature/internal", b"30.6")])

    def test_internal_temperature_formula(self):
        # 27 - (v - 0.706)/0.001721, v = raw * 3.3 / 65535
        raw_at_27 = round(0.706 * 65535 / 3.3)
        self.assertAlmostEqual(fn.internal_temperature(raw_at_27), 27.0, delta=0.05)
        self.assertEqual(fn.format_value(fn.internal_temperature(13897)), b"30.6")
        v = 12000 * 3.3 / 65535
        self.assertAlmostEqual(fn.internal_temperature(12000), 27 - (v - 0.706) / 0.001721)

    def test_dht_validation(self):
        self.assertTrue(fn.valid_dht(22.4, 39.7))
        self.assertFalse(fn.valid_dht(float("nan"), 39.7))
        self.assertFalse(fn.valid_dht(22.4, 101.0))
        self.assertFalse(fn.valid_dht(-41, 50))
        self.assertFalse(fn.valid_dht(None, None))


class JsonMode(unittest.TestCase):
    def test_json_payload_exact(self):
        msgs = fn.messages((22.4, 39.7, 30.6, 1718000000), fn.Topics("pico"), "json")
        self.assertEqual(msgs, [(b"pico/json",
                                 b'{"t": 22.4, "h": 39.7, "tc": 30.6, "ts": 1718000000}')])
        self.assertEqual(json.loads(msgs[0][1]), {"t": 22.4, "h": 39.7, "tc": 30.6, "ts": 1718000000})

    def test_json_without_time_or_dht(self):
        self.assertEqual(fn.json_payload(None, None, 30.6, None), b'{"tc": 30.6}')
        self.assertEqual(fn.messages((None, None, None, 5), fn.Topics("pico"), "json"), [])

    def test_unix_offset(self):
        self.assertEqual(fn.unix_offset(2000), 946684800)
        self.assertEqual(fn.unix_offset(1970), 0)


class Settings(unittest.TestCase):
    def test_defaults_match_report(self):
        s, w = fn.load_settings({})
        self.assertEqual(w, [])
        self.assertEqual(s["topic_prefix"], "pico")
        self.assertEqual(s["interval_s"], 5)
        self.assertEqual(s["payload"], "value")
        self.assertEqual(s["qos"], 0)
        self.assertEqual(s["dht_pin"], 15)
        self.assertLessEqual(s["watchdog_ms"], 8300)

    def test_example_file_is_complete_and_valid(self):
        with open(os.path.join(FIRMWARE, "settings.example.json")) as f:
            raw = json.load(f)
        s, warnings = fn.load_settings(raw)
        self.assertEqual(warnings, [])
        self.assertEqual(set(k for k in raw if not k.startswith("_")), set(fn.DEFAULTS))

    def test_real_settings_are_git_ignored(self):
        with open(os.path.join(FIRMWARE, ".gitignore")) as f:
            self.assertIn("settings.json", f.read().split())

    def test_rejects_and_clamps(self):
        with self.assertRaises(ValueError):
            fn.load_settings({"payload": "xml"})
        with self.assertRaises(ValueError):
            fn.load_settings({"qos": 2})
        with self.assertRaises(ValueError):
            fn.load_settings({"topic_prefix": "pico/#"})
        s, w = fn.load_settings({"watchdog_ms": 20000, "interval_s": 1, "bogus": 1})
        self.assertEqual(s["watchdog_ms"], 8300)
        self.assertEqual(s["interval_s"], 2)
        self.assertEqual(len(w), 3)
        s, _ = fn.load_settings({"interval_s": 60, "keepalive_s": 60})
        self.assertGreaterEqual(s["keepalive_s"], 120)


if __name__ == "__main__":
    unittest.main()
