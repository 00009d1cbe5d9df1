"""System test of the metrics registry on a real `shoal serve` node (one node, two workers, the
admin HTTP API on).

GET /metrics answers Prometheus text format 0.0.4 that a real parser reads
(prometheus_client.parser.text_string_to_metric_families, Debian's python3-prometheus-client)
and that `promtool check metrics` (Debian's prometheus) accepts; the counters move when
commands run; GET /api/v1/metrics carries the same registry as JSON; INFO reads the same
counters. Skips only when one of those two tools is missing.

The node is started here and stopped by its pid.
"""

import http.client
import json
import shutil
import subprocess
import unittest

from shoal_harness import ClusterNode, parse_info, wait_until

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # the tool is missing: the tests that need it skip
    text_string_to_metric_families = None

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def http_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, res.getheader("Content-Type"), res.read().decode()
    finally:
        conn.close()


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = ClusterNode("m1", cookie="metrics-test", http=True, threads=2).start()
        cls.r = cls.node.client()
        wait_until(lambda: parse_info(cls.r.execute_command("CLUSTER", "INFO"))["cluster_state"]
                   == "ok", timeout=30, message="the lone node holds every bucket")

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.node.stop()

    def scrape_text(self):
        status, ctype, body = http_get(self.node.http_port, "/metrics")
        self.assertEqual(status, 200, body)
        self.assertEqual(ctype, CONTENT_TYPE)
        return body

    def scrape(self):
        """{(sample name, frozenset(labels)): value} from a parsed /metrics, and the families."""
        if text_string_to_metric_families is None:
            self.skipTest("python3-prometheus-client is not installed")
        samples, families = {}, {}
        for fam in text_string_to_metric_families(self.scrape_text()):
            families[fam.name] = fam
            for s in fam.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
        return samples, families

    @staticmethod
    def value(samples, name, **labels):
        return samples.get((name, frozenset(labels.items())), 0.0)

    def test_values_move_when_commands_run(self):
        before, families = self.scrape()
        for name in ["shoal_connected_clients", "shoal_memory_used_bytes", "shoal_db_keys",
                     "shoal_keyspace_hits_total", "shoal_keyspace_misses_total",
                     "shoal_expired_keys_total", "shoal_evicted_keys_total",
                     "shoal_net_input_bytes_total", "shoal_net_output_bytes_total",
                     "shoal_swim_pings_sent_total", "shoal_buckets",
                     "shoal_forwarded_commands_total", "shoal_bus_requests_total"]:
            # prometheus_client names a counter family without its _total suffix.
            base = name[:-len("_total")] if name.endswith("_total") else name
            self.assertIn(base, families, name)
        self.assertEqual(families["shoal_commands"].type, "counter")
        self.assertEqual(families["shoal_commands_duration_seconds"].type, "histogram")
        self.assertEqual(families["shoal_connected_clients"].type, "gauge")
        self.assertGreaterEqual(self.value(before, "shoal_connected_clients"), 1)

        for i in range(5):
            self.r.set(f"metrics:k{i}", "v" * 100)
        for i in range(3):
            self.assertIsNotNone(self.r.get(f"metrics:k{i}"))
        for i in range(2):
            self.assertIsNone(self.r.get(f"metrics:absent{i}"))
        self.r.set("metrics:short", "x", px=1)
        # The key expires: read it until it is gone (lazy expiry counts it).
        wait_until(lambda: self.r.get("metrics:short") is None, message="the key expired")

        after, _ = self.scrape()
        v = self.value
        self.assertEqual(v(after, "shoal_commands_total", cmd="set") -
                         v(before, "shoal_commands_total", cmd="set"), 6)
        self.assertGreaterEqual(v(after, "shoal_commands_total", cmd="get") -
                                v(before, "shoal_commands_total", cmd="get"), 6)
        self.assertGreaterEqual(v(after, "shoal_keyspace_hits_total") -
                                v(before, "shoal_keyspace_hits_total"), 3)
        self.assertGreaterEqual(v(after, "shoal_keyspace_misses_total") -
                                v(before, "shoal_keyspace_misses_total"), 2)
        self.assertGreaterEqual(v(after, "shoal_expired_keys_total") -
                                v(before, "shoal_expired_keys_total"), 1)
        self.assertEqual(v(after, "shoal_db_keys") - v(before, "shoal_db_keys"), 5)
        self.assertGreater(v(after, "shoal_memory_used_bytes"),
                           v(before, "shoal_memory_used_bytes"))
        self.assertGreater(v(after, "shoal_net_input_bytes_total"),
                           v(before, "shoal_net_input_bytes_total"))
        self.assertGreater(v(after, "shoal_net_output_bytes_total"),
                           v(before, "shoal_net_output_bytes_total"))
        # The duration histogram: every SET was timed; buckets are cumulative up to +Inf.
        count = v(after, "shoal_commands_duration_seconds_count", cmd="set")
        self.assertGreaterEqual(count - v(before, "shoal_commands_duration_seconds_count",
                                          cmd="set"), 6)
        self.assertEqual(v(after, "shoal_commands_duration_seconds_bucket", cmd="set",
                           le="+Inf"), count)
        self.assertGreater(v(after, "shoal_commands_duration_seconds_sum", cmd="set"), 0)
        buckets = sorted((float(dict(labels)["le"]), value) for (name, labels), value
                         in after.items()
                         if name == "shoal_commands_duration_seconds_bucket"
                         and dict(labels).get("cmd") == "set")
        self.assertGreater(len(buckets), 5)
        self.assertEqual([b[1] for b in buckets], sorted(b[1] for b in buckets))
        # A one-node cluster holds every bucket.
        self.assertEqual(v(after, "shoal_buckets", state="active"), 16384)

    def test_info_reads_the_same_counters(self):
        self.r.get("metrics:info-miss")
        samples, _ = self.scrape()
        info = parse_info(self.r.execute_command("INFO", "stats"))
        # INFO after the scrape: at least what the scrape saw, and it moved with the miss.
        self.assertGreaterEqual(int(info["keyspace_misses"]),
                                self.value(samples, "shoal_keyspace_misses_total"))
        self.assertGreaterEqual(int(info["keyspace_misses"]), 1)
        # INFO commandstats: Redis's calls and usec per command, from the same registry.
        self.r.set("metrics:stat", "1")
        stats = self.r.info("commandstats")  # redis-py parses "calls=1,usec=..." into a dict
        self.assertIn("cmdstat_set", stats)
        self.assertGreaterEqual(int(stats["cmdstat_set"]["calls"]), 1)
        self.assertIn("usec_per_call", stats["cmdstat_set"])
        self.assertNotIn("cmdstat_set", self.r.info())

    def test_json_api_carries_the_registry(self):
        self.r.execute_command("INCR", "metrics:counter")  # redis-py's incr() sends INCRBY
        status, ctype, body = http_get(self.node.http_port, "/api/v1/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "application/json")
        metrics = {m["name"]: m for m in json.loads(body)["metrics"]}
        cmds = metrics["shoal_commands_total"]
        self.assertEqual(cmds["type"], "counter")
        incr = [s for s in cmds["samples"] if s["labels"] == {"cmd": "incr"}]
        self.assertEqual(len(incr), 1)
        self.assertGreaterEqual(incr[0]["value"], 1)
        hist = metrics["shoal_commands_duration_seconds"]
        self.assertEqual(hist["type"], "histogram")
        h = [s for s in hist["samples"] if s["labels"] == {"cmd": "incr"}][0]
        self.assertGreaterEqual(h["count"], 1)
        self.assertEqual(sorted(b["count"] for b in h["buckets"]),
                         [b["count"] for b in h["buckets"]])

    def test_promtool_accepts_the_output(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool (Debian's prometheus) is not installed")
        self.r.set("metrics:p", "1")
        text = self.scrape_text()
        res = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                             capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout.decode() + res.stderr.decode())


if __name__ == "__main__":
    unittest.main()
