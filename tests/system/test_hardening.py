"""System tests: a node stays available and honest under the inputs a careless or hostile client
sends — exponential glob patterns, long KEYS, replies that could never be sent, HTTP requests on
the RESP port, maxclients changed at run time, TOUCH."""

import pathlib
import select
import socket
import subprocess
import sys
import time
import unittest

from shoal_harness import (RespError, RespReader, ServerTestCase, ShoalServer, encode_command,
                           read_until_closed, wait_until, worker_of)

MB = 1024 * 1024


def adversarial_pattern(stars=24):
    return "a*" * stars + "b"


class GlobAndKeysTest(ServerTestCase):
    server_kwargs = {"threads": 2}

    def test_exponential_patterns_answer_at_once(self):
        # 300 keys of 64 characters and a 24-star pattern: with a backtracking matcher this kept a
        # worker at 100% for more than ten minutes (every command on its keys stalled with it).
        r = self.r
        keys = {("a" * 60) + f"{i:04d}": "v" for i in range(300)}
        r.mset(keys)
        pattern = adversarial_pattern()
        reader = RespReader(self.raw(timeout=30), timeout=30)
        self.assertEqual(reader.command("KEYS", pattern), [])
        self.assertEqual(reader.command("KEYS", "a*a*a*0299"), [("a" * 60 + "0299").encode()])
        cursor, found = b"0", []
        while True:
            cursor, batch = reader.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            found += batch
            if cursor == b"0":
                break
        self.assertEqual(found, [])
        r.hset("h", mapping={("a" * 64) + str(i): "x" for i in range(200)})
        self.assertEqual(reader.command("HSCAN", "h", "0", "MATCH", pattern, "COUNT", "1000"),
                         [b"0", []])
        # PSUBSCRIBE with such a pattern, and a PUBLISH that must be matched against it.
        sub = RespReader(self.raw(timeout=30), timeout=30)
        sub.command("PSUBSCRIBE", pattern)
        self.assertEqual(reader.command("PUBLISH", "a" * 64, "m"), 0)
        self.assertEqual(reader.command("PUBLISH", "a" * 64 + "b", "m"), 1)
        self.assertTrue(r.ping())

    def test_keys_yields_to_other_clients(self):
        # KEYS over many keys runs in short steps: a GET sent right after it is answered before
        # KEYS's own reply is complete, not after the whole keyspace has been walked.
        r = self.r
        n = 300_000
        pipe = r.pipeline(transaction=False)
        for start in range(0, n, 2000):
            pipe.mset({f"key:{i}": "v" for i in range(start, min(start + 2000, n))})
        pipe.execute()
        self.assertEqual(r.dbsize(), n)
        kc = self.raw(timeout=60)
        getter = RespReader(self.raw(timeout=60), timeout=60)
        kc.sendall(encode_command("KEYS", "*"))
        # KEYS answers only once it has walked everything. Count the GETs (on keys of both
        # workers) answered before its first byte arrives: a KEYS holding every worker for the
        # whole walk lets at most the first one through, and only after its own reply.
        answered = 0
        while not select.select([kc], [], [], 0)[0] and answered < 100_000:
            self.assertEqual(getter.command("GET", f"key:{answered % 1000}"), b"v")
            answered += 1
        self.assertGreaterEqual(answered, 3)
        keys = RespReader(kc, timeout=60).read()
        self.assertEqual(len(keys), n)
        self.assertEqual(len(set(keys)), n)

    def test_keys_reply_over_the_output_limit_is_refused(self):
        r = self.r
        r.mset({f"long:{i}:" + "x" * 100: "v" for i in range(20_000)})  # about 2.2 MB of names
        old = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
        try:
            r.config_set("client-output-buffer-limit", "normal 1mb 0 0")
            with self.assertRaises(Exception) as ctx:
                r.keys("long:*")
            self.assertIn("client-output-buffer-limit", str(ctx.exception))
            self.assertEqual(len(r.keys("long:1:*")), 1)  # small replies still pass
        finally:
            r.config_set("client-output-buffer-limit", old)
        self.assertEqual(len(r.keys("long:*")), 20_000)

    def test_scan_with_a_huge_count_still_walks_everything_once(self):
        r = self.r
        r.mset({f"s:{i}": "v" for i in range(5000)})
        cursor, seen = 0, []
        while True:
            cursor, batch = r.scan(cursor, count=10**12)
            seen += batch
            if cursor == 0:
                break
        self.assertEqual(len(seen), 5000)
        self.assertEqual(len(set(seen)), 5000)


class ReplySizeTest(ServerTestCase):
    server_kwargs = {"threads": 2}

    def test_hrandfield_count_that_cannot_fit_is_refused_at_once(self):
        # Before: no reply for 108 s, then the connection dropped with a 14 GB output buffer.
        r = self.r
        r.hset("h", mapping={f"f{i}": f"v{i}" for i in range(10)})
        reader = RespReader(self.raw(timeout=10), timeout=10)
        reply = reader.command("HRANDFIELD", "h", "-1000000000", "WITHVALUES")
        self.assertIsInstance(reply, RespError)
        self.assertIn("client-output-buffer-limit", str(reply))
        self.assertEqual(len(reader.command("HRANDFIELD", "h", "-100", "WITHVALUES")), 200)
        self.assertEqual(len(reader.command("HRANDFIELD", "h", "1000000000")), 10)
        self.assertEqual(reader.command("PING"), b"PONG")
        self.assertLess(self.server_rss(), 1024 * MB)

    def server_rss(self):
        with open(f"/proc/{self.server.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


class CrossProtocolTest(ServerTestCase):
    server_kwargs = {"threads": 2}

    def check_closed_without_running(self, request):
        s = self.raw(timeout=10)
        s.sendall(request)
        data = read_until_closed(s, timeout=10)
        self.assertEqual(data, b"")  # closed, nothing answered
        self.assertIsNone(self.r.get("pwned"))

    def test_http_post_on_the_resp_port_is_closed_and_logged(self):
        body = b"SET pwned 1\r\n"
        self.check_closed_without_running(
            b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" %
            (len(body), body))
        self.check_closed_without_running(b"Host: 127.0.0.1\r\nSET pwned 1\r\n")
        self.check_closed_without_running(encode_command("post", "x") + encode_command("SET", "pwned", "1"))
        wait_until(lambda: "HTTP request" in self.server.log(), timeout=5, message="the log line")
        self.assertTrue(self.r.ping())


class RuntimeMaxClientsTest(unittest.TestCase):
    def test_config_set_maxclients_is_enforced(self):
        with ShoalServer(threads=2) as server:
            first = RespReader(server.raw())
            wait_until(lambda: b"connected_clients:1\r" in first.command("INFO", "clients"),
                       timeout=5, message="only one client connected")
            self.assertEqual(first.command("CONFIG", "SET", "maxclients", "3"), b"OK")
            self.assertIn(b"maxclients:3\r", first.command("INFO", "clients"))
            socks = [server.raw() for _ in range(2)]
            try:
                for s in socks:
                    self.assertEqual(RespReader(s).command("PING"), b"PONG")
                # The setting reaches both workers: every further connection is refused,
                # whichever worker accepts it.
                for _ in range(4):
                    extra = server.raw()
                    self.assertEqual(read_until_closed(extra, timeout=10),
                                     b"-ERR max number of clients reached\r\n")
                    extra.close()
                self.assertEqual(first.command("CONFIG", "SET", "maxclients", "10"), b"OK")

                def accepted():  # each worker applies the new value on its own loop
                    s = server.raw()
                    socks.append(s)
                    return RespReader(s).command("PING") == b"PONG"

                wait_until(accepted, timeout=5, message="a client accepted under maxclients 10")
            finally:
                for s in socks:
                    s.close()


class DebugCommandTest(ServerTestCase):
    server_kwargs = {"threads": 1}

    def test_debug_is_refused_unless_enabled(self):
        reader = RespReader(self.raw())
        reply = reader.command("DEBUG", "SLEEP", "0")
        self.assertIsInstance(reply, RespError)
        self.assertIn("enable-debug-command", str(reply))

    def test_debug_sleep_when_enabled_locally(self):
        with ShoalServer(threads=1, settings={"enable-debug-command": "local"}) as server:
            reader = RespReader(server.raw())
            self.assertEqual(reader.command("DEBUG", "SLEEP", "0.01"), b"OK")
            self.assertIsInstance(reader.command("DEBUG", "NOPE"), RespError)


class ExampleHandlerTest(unittest.TestCase):
    """docs/examples/echo_handler.py keeps serving when its connection is killed."""

    def test_echo_handler_reconnects_and_serves_again(self):
        example = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples" / "echo_handler.py"
        with ShoalServer(threads=1) as server:
            r = RespReader(server.raw())
            self.assertEqual(r.command("BUS.CREATE", "svc", "REQUEST", "round_robin"), b"OK")
            proc = subprocess.Popen([sys.executable, str(example), str(server.port), "svc"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                def served(payload):
                    reply = r.command("BUS.REQUEST", "svc", "k", payload, "TIMEOUT", "2000")
                    return reply == b"echo:" + payload.encode()

                wait_until(lambda: served("one"), timeout=10, message="the handler serving")
                # Kill the handler's connection (a node restart or a proxy looks the same).
                handlers = [c for c in r.command("CLIENT", "LIST").decode().splitlines()
                            if "cmd=bus.serve" in c or "cmd=bus.reply" in c]
                self.assertEqual(len(handlers), 1, handlers)
                cid = handlers[0].split("id=")[1].split()[0]
                self.assertEqual(r.command("CLIENT", "KILL", "ID", cid), 1)
                wait_until(lambda: served("two"), timeout=15, message="the handler back")
                self.assertIsNone(proc.poll())
            finally:
                proc.kill()
                proc.wait(timeout=10)


class TouchTest(ServerTestCase):
    server_kwargs = {"threads": 2}

    def test_touch_counts_existing_keys_over_workers(self):
        r = self.r
        keys = [k for k in (f"t{i}" for i in range(20))]
        on0 = [k for k in keys if worker_of(k) == 0][:2]
        on1 = [k for k in keys if worker_of(k) == 1][:2]
        r.set(on0[0], "a")
        r.set(on1[0], "b")
        self.assertEqual(r.touch(on0[0]), 1)
        self.assertEqual(r.touch(on0[0], on1[0], on0[1], on1[1], on0[0]), 3)
        self.assertEqual(r.touch("missing"), 0)
        with self.assertRaises(Exception):
            r.execute_command("TOUCH")


if __name__ == "__main__":
    unittest.main()
