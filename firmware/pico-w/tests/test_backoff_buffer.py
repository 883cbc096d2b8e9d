"""Backoff (grows, capped, jittered) and the bounded offline buffer, on the pure Node."""

import unittest

from tests.support import FakeClock, FakeSensors, World, settings
import fieldline_node as fn


class Backoff(unittest.TestCase):
    def test_grows_exponentially(self):
        got = [fn.backoff_ms(a, 1000, 60000, 0.5, 0.0) for a in range(7)]
        self.assertEqual(got, [1000, 2000, 4000, 8000, 16000, 32000, 60000])

    def test_capped_even_for_huge_attempts(self):
        for a in (6, 7, 20, 1000):
            for r in (0.0, 0.3, 0.999):
                self.assertLessEqual(fn.backoff_ms(a, 1000, 60000, 0.5, r), 60000)
        self.assertEqual(fn.backoff_ms(1000, 1000, 60000, 0.5, 0.0), 60000)

    def test_jitter_spreads_within_bounds(self):
        for a in range(10):
            step = min(60000, 1000 * 2 ** a)
            values = set()
            for i in range(10):
                d = fn.backoff_ms(a, 1000, 60000, 0.5, i / 10)
                self.assertGreaterEqual(d, step * 0.5)
                self.assertLessEqual(d, step)
                values.add(d)
            self.assertEqual(len(values), 10, "jitter must vary the delay, also at the cap")

    def test_no_jitter(self):
        self.assertEqual(fn.backoff_ms(3, 500, 10000, 0.0, 0.9), 4000)


class RingBufferTest(unittest.TestCase):
    def test_keeps_at_most_n_and_drops_oldest(self):
        b = fn.RingBuffer(3)
        for i in range(5):
            b.push(i)
        self.assertEqual(len(b), 3)
        self.assertEqual(b.items(), [2, 3, 4])
        self.assertEqual(b.dropped, 2)
        self.assertEqual([b.pop(), b.pop(), b.pop()], [2, 3, 4])
        self.assertEqual(len(b), 0)
        with self.assertRaises(IndexError):
            b.peek()

    def test_wraps_repeatedly(self):
        b = fn.RingBuffer(4)
        out = []
        for i in range(50):
            b.push(i)
            if i % 3 == 0:
                out.append(b.pop())
        while len(b):
            out.append(b.pop())
        self.assertEqual(out, sorted(out))
        self.assertEqual(len(out) + b.dropped, 50)


def make_node(world_down=False, **over):
    clock = FakeClock(unix=1718000000)
    world = World(clock)
    world.down = world_down
    delays = iter([0.0, 0.25, 0.5, 0.75] * 1000)
    node = fn.Node(settings(**over), clock, FakeSensors(), world.factory,
                   rand=lambda: next(delays))
    return node, world, clock


def run_until(node, clock, ms):
    end = clock.now + ms
    while clock.now < end:
        node.step()


class NodeBackoff(unittest.TestCase):
    def test_reconnect_attempts_back_off_and_cap(self):
        node, world, clock = make_node(world_down=True, backoff_base_ms=1000,
                                       backoff_cap_ms=8000, backoff_jitter=0.0)
        run_until(node, clock, 60000)
        gaps = [b - a for a, b in zip(world.connect_times, world.connect_times[1:])]
        self.assertEqual(gaps[:5], [1000, 2000, 4000, 8000, 8000])
        self.assertTrue(all(g == 8000 for g in gaps[3:]))
        self.assertEqual(node.stats["connect_failures"], len(world.connect_times))

    def test_jitter_applied_to_schedule(self):
        node, world, clock = make_node(world_down=True, backoff_base_ms=1000,
                                       backoff_cap_ms=4000, backoff_jitter=0.5)
        run_until(node, clock, 40000)
        gaps = [b - a for a, b in zip(world.connect_times, world.connect_times[1:])]
        self.assertTrue(all(g <= 4000 for g in gaps))
        self.assertGreater(len(set(gaps[3:])), 1, gaps)

    def test_backoff_resets_after_success(self):
        node, world, clock = make_node(world_down=True, backoff_jitter=0.0)
        run_until(node, clock, 20000)
        self.assertGreater(node._attempt, 2)
        world.down = False
        run_until(node, clock, 70000)
        self.assertTrue(node.connected)
        self.assertEqual(node._attempt, 0)
        world.down = True
        n = len(world.connect_times)
        while node.connected:
            node.step()
        t_fail = world.fail_times[-1]
        run_until(node, clock, 1500)
        self.assertEqual(world.connect_times[n] - t_fail, 1000)  # back to the base step


class NodeBuffer(unittest.TestCase):
    def test_buffer_bounded_drops_oldest_and_flushes_in_order(self):
        node, world, clock = make_node(world_down=True, buffer_size=4, payload="json",
                                       backoff_cap_ms=2000, backoff_jitter=0.0)
        run_until(node, clock, 35000)  # 7 readings at 0,5,...,30 s while the broker is down
        self.assertEqual(node.stats["readings"], 7)
        self.assertEqual(len(node.buffer), 4)
        self.assertEqual(node.stats["dropped"], 3)
        self.assertEqual(world.sent, [])
        world.down = False
        run_until(node, clock, 12000)
        stamps = [int(m.split(b'"ts": ')[1].rstrip(b"}")) for _, m in world.data()]
        # the 4 newest buffered readings, oldest first, then the live ones
        self.assertEqual(stamps[:4], [1718000015, 1718000020, 1718000025, 1718000030])
        self.assertEqual(stamps, list(range(1718000015, 1718000015 + 5 * len(stamps), 5)))
        self.assertEqual(len(node.buffer), 0)
        self.assertEqual(node.stats["dropped"], 3)

    def test_partial_reading_resumes_without_duplicates(self):
        node, world, clock = make_node(backoff_jitter=0.0, backoff_base_ms=500)
        run_until(node, clock, 4000)
        self.assertEqual(len(world.data()), 3)
        world.fail_after = len(world.sent) + 1  # temperature goes out, humidity fails
        run_until(node, clock, 2000)
        self.assertFalse(node.connected)
        self.assertEqual(len(node.buffer), 1)
        world.down = False
        run_until(node, clock, 3000)
        topics = [t for t, _ in world.data()]
        self.assertEqual(topics, [b"pico/temperature/dht22", b"pico/humidity/dht22",
                                  b"pico/temperature/internal"] * 2)

    def test_dropping_a_partly_sent_reading(self):
        node, world, clock = make_node(buffer_size=2, backoff_jitter=0.0, backoff_base_ms=60000)
        run_until(node, clock, 4000)
        world.fail_after = len(world.sent) + 1  # next reading: temperature out, then the link breaks
        run_until(node, clock, 2000)
        self.assertEqual(len(node.buffer), 1)
        run_until(node, clock, 10000)  # two more readings push the partly sent one out
        self.assertEqual(node.stats["dropped"], 1)
        world.down = False
        run_until(node, clock, 60000)
        topics = [t for t, _ in world.data()]
        per_reading = [b"pico/temperature/dht22", b"pico/humidity/dht22", b"pico/temperature/internal"]
        self.assertEqual(topics[:4], per_reading + [b"pico/temperature/dht22"])
        self.assertEqual(topics[4:], per_reading * ((len(topics) - 4) // 3))

    def test_status_lwt_and_online(self):
        node, world, clock = make_node()
        node.step()
        c = world.clients[0]
        self.assertEqual(c.will, (b"pico/status", b"offline", True, 0))
        self.assertEqual(world.sent[0], (b"pico/status", b"online", True, 0))


if __name__ == "__main__":
    unittest.main()
