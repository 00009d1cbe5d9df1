"""System tests: client buffer limits, maxmemory policies and maxclients."""

import socket
import unittest

import redis

from shoal_harness import (RespReader, ServerTestCase, ShoalServer, encode_command, is_closed, read_line,
                           read_until_closed, wait_until, worker_of)

KB = 1024
MB = 1024 * 1024


def client_ids(r):
    return {int(c["id"]) for c in r.client_list()}


class BufferLimitsTest(ServerTestCase):
    server_kwargs = {"threads": 2}

    def setUp(self):
        super().setUp()
        self.r.mset({f"keep:{i}": f"value-{i}" for i in range(100)})

    def check_data_intact(self):
        self.assertTrue(self.r.ping())
        self.assertEqual(self.r.mget([f"keep:{i}" for i in range(100)]),
                         [f"value-{i}".encode() for i in range(100)])

    def test_query_buffer_limit(self):
        r = self.r
        old = r.config_get("client-query-buffer-limit")["client-query-buffer-limit"]
        try:
            self.assertTrue(r.config_set("client-query-buffer-limit", "1mb"))
            self.assertEqual(r.config_get("client-query-buffer-limit"),
                             {"client-query-buffer-limit": str(MB)})
            s = self.raw()
            s.sendall(encode_command("CLIENT", "ID"))
            victim = int(read_line(s)[1:])
            # A 10 MB bulk announced, 2 MB of it streamed: over the 1 MB limit.
            s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$10000000\r\n")
            chunk = b"x" * (64 * KB)
            sent = 0
            try:
                while sent < 2 * MB:
                    s.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed by the server while we were still sending: fine
            data = read_until_closed(s, timeout=10)
            self.assertTrue(data == b"" or data.startswith(b"-ERR"), data[:200])
            wait_until(lambda: victim not in client_ids(r), timeout=5,
                       message="client over the query buffer limit to be dropped")
            self.assertIsNone(r.get("big"))
            # The same limit does not stop a legal 900 KB value.
            self.assertTrue(r.set("fits", b"y" * (900 * KB)))
            self.assertEqual(r.strlen("fits"), 900 * KB)
            self.check_data_intact()
        finally:
            r.config_set("client-query-buffer-limit", old)

    def test_output_buffer_limit(self):
        r = self.r
        old = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
        try:
            self.assertTrue(r.config_set("client-output-buffer-limit", "1mb"))
            value = b"v" * (100 * KB)
            r.set("hundred-k", value)
            # A client that asks for 50 MB of replies and reads none of them.
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._sockets.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KB)
            s.settimeout(10)
            s.connect(("127.0.0.1", self.server.port))
            s.sendall(encode_command("CLIENT", "ID"))
            victim = int(read_line(s)[1:])
            self.assertIn(victim, client_ids(r))
            s.sendall(encode_command("GET", "hundred-k") * 500)
            wait_until(lambda: victim not in client_ids(r), timeout=10,
                       message="client over the output buffer limit to be disconnected")
            received = len(read_until_closed(s, timeout=10, limit=500 * len(value)))
            self.assertLess(received, 500 * len(value), "got every reply: limit not enforced")
            # Other clients are fine and can still fetch the big value.
            self.assertEqual(r.get("hundred-k"), value)
            self.check_data_intact()
            # A client that reads each reply is not limited, even for more than 1 MB in total.
            reader = RespReader(self.raw(), timeout=10)
            for _ in range(30):
                self.assertEqual(reader.command("GET", "hundred-k"), value)
        finally:
            r.config_set("client-output-buffer-limit", old)


class MaxmemoryTest(ServerTestCase):
    server_kwargs = {"threads": 2}

    def setUp(self):
        super().setUp()
        self.r.config_set("maxmemory", "0")
        self.r.config_set("maxmemory-policy", "noeviction")

    def tearDown(self):
        try:
            self.r.config_set("maxmemory", "0")
            self.r.config_set("maxmemory-policy", "noeviction")
        finally:
            super().tearDown()

    def fill(self, prefix, n, size, ex=None, batch=200):
        """SETs n keys of `size` bytes in pipelined batches; returns the replies in order."""
        value = b"x" * size
        replies = []
        for start in range(0, n, batch):
            pipe = self.r.pipeline(transaction=False)
            for i in range(start, min(n, start + batch)):
                pipe.set(f"{prefix}{i}", value, ex=ex)
            replies.extend(pipe.execute(raise_on_error=False))
        return replies

    def test_noeviction_refuses_writes(self):
        r = self.r
        r.set("before", "1")
        evicted_before = r.info("stats")["evicted_keys"]
        self.assertTrue(r.config_set("maxmemory", "2mb"))
        self.assertEqual(r.info("memory")["maxmemory"], 2 * MB)
        replies = self.fill("oom:", 6000, 1 * KB)  # 6 MB: cannot all fit
        errors = [e for e in replies if isinstance(e, Exception)]
        self.assertTrue(errors, "no SET was refused at 3x maxmemory")
        for e in errors:
            self.assertIsInstance(e, redis.ResponseError)
            self.assertEqual(str(e), "OOM command not allowed when used memory > 'maxmemory'.")
        self.assertTrue(all(x is True for x in replies[:100]), "the first SETs should fit")
        ok = sum(1 for x in replies if x is True)
        self.assertEqual(r.dbsize(), ok + 1)
        info = r.info()
        self.assertEqual(info["evicted_keys"], evicted_before, "noeviction evicted keys")
        self.assertGreater(info["rejected_oom_commands"], 0)
        self.assertLessEqual(info["used_memory"], 3 * MB)
        # Reads and deletes still work; a refused write changed nothing.
        self.assertEqual(r.get("before"), b"1")
        with self.assertRaisesRegex(redis.ResponseError, "^OOM command not allowed"):
            for i in range(2000):  # every worker is full by now
                r.set(f"more:{i}", b"y" * KB)
        self.assertEqual(r.exists(f"more:{i}"), 0)
        self.assertEqual(r.delete(*[f"oom:{i}" for i in range(6000)]), ok)
        # With room again, writes succeed.
        self.assertTrue(r.set("after", b"z" * KB))
        self.assertEqual(r.get("before"), b"1")

    def test_allkeys_lru_evicts(self):
        r = self.r
        self.assertTrue(r.config_set("maxmemory-policy", "allkeys-lru"))
        self.assertTrue(r.config_set("maxmemory", "2mb"))
        evicted_before = r.info("stats")["evicted_keys"]
        replies = self.fill("lru:", 20000, 1 * KB)  # 20 MB through a 2 MB node
        self.assertEqual([x for x in replies if x is not True][:3], [], "allkeys-lru refused writes")
        info = r.info()
        evicted = info["evicted_keys"] - evicted_before
        self.assertGreater(evicted, 0)
        self.assertLessEqual(info["used_memory"], int(2.5 * MB))
        n = r.dbsize()
        self.assertGreater(n, 100, "evicted far more than needed")
        self.assertLess(n, 2 * MB // KB, "more 1 KB values than fit in 2 MB")
        # Evicted keys are gone, not lost track of (the background cycle may evict a few more).
        self.assertGreaterEqual(evicted + n, 20000)
        self.assertLessEqual(evicted + n, 20000 + 50)
        # Approximate LRU (sampled, one-second clock like Redis): the oldest writes are mostly
        # gone and the newest mostly kept.
        def survivors(rng):
            return sum(v is not None for v in r.mget([f"lru:{i}" for i in rng]))
        oldest, newest = survivors(range(0, 2000)), survivors(range(18000, 20000))
        self.assertLess(oldest, 200, f"oldest 2000: {oldest} kept, newest 2000: {newest} kept")
        self.assertGreater(newest, 3 * max(oldest, 1))

    def test_volatile_lru_keeps_persistent_keys(self):
        r = self.r
        self.assertTrue(r.config_set("maxmemory-policy", "volatile-lru"))
        persistent = {f"persist:{i}": f"p{i}" for i in range(500)}
        self.assertEqual({worker_of(k) for k in persistent}, {0, 1})
        r.mset(persistent)
        self.assertTrue(r.config_set("maxmemory", "2mb"))
        evicted_before = r.info("stats")["evicted_keys"]
        replies = self.fill("vol:", 10000, 1 * KB, ex=3600)  # 10 MB of volatile keys
        self.assertEqual([x for x in replies if x is not True][:3], [],
                         "volatile-lru refused writes while volatile keys could be evicted")
        info = r.info()
        self.assertGreater(info["evicted_keys"] - evicted_before, 0)
        self.assertLessEqual(info["used_memory"], int(2.5 * MB))
        self.assertEqual(r.mget(list(persistent)), [v.encode() for v in persistent.values()],
                         "volatile-lru evicted a key without a TTL")
        # INFO reads each worker's counters without pausing it, so keys and expires may be read
        # either side of a background eviction: poll for the settled figure.
        def persistent_count():
            db = r.info("keyspace")["db0"]
            return db["keys"] - db["expires"]
        wait_until(lambda: persistent_count() == 500, 10,
                   message="500 keys without a TTL (INFO keyspace)")
        # With only persistent keys left to evict, writes are refused rather than evicting them.
        r.delete(*[f"vol:{i}" for i in range(10000)])
        with self.assertRaisesRegex(redis.ResponseError, "^OOM command not allowed"):
            for i in range(5000):
                r.set(f"nottl:{i}", b"n" * KB)
        self.assertEqual(r.mget(list(persistent)), [v.encode() for v in persistent.values()])


class MaxclientsTest(unittest.TestCase):
    def setUp(self):
        self.server = ShoalServer(threads=2, settings={"maxclients": 5}).start()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.server.stop()

    def connect(self):
        s = self.server.raw(timeout=10)
        self.socks.append(s)
        return s

    def test_maxclients(self):
        first = RespReader(self.connect())
        # Wait until the start-up probes of the harness have been let go.
        wait_until(lambda: b"connected_clients:1\r" in first.command("INFO", "clients"),
                   timeout=5, message="only one client connected")
        self.assertIn(b"maxclients:5\r", first.command("INFO", "clients"))
        others = [RespReader(self.connect()) for _ in range(4)]
        for c in others:
            self.assertEqual(c.command("PING"), b"PONG")
        sixth = self.connect()
        data = read_until_closed(sixth, timeout=10)
        self.assertEqual(data, b"-ERR max number of clients reached\r\n")
        self.assertIn(b"connected_clients:5\r", first.command("INFO", "clients"))
        self.assertIn(b"rejected_connections:1\r", first.command("INFO", "stats"))
        for c in others:
            self.assertEqual(c.command("PING"), b"PONG")
        # Once one leaves, a new client is accepted.
        others[0].sock.close()
        wait_until(lambda: b"connected_clients:4\r" in first.command("INFO", "clients"),
                   timeout=5, message="closed client to be gone")
        again = RespReader(self.connect())
        self.assertEqual(again.command("PING"), b"PONG")


if __name__ == "__main__":
    unittest.main()


class IdleTimeoutTest(unittest.TestCase):
    def test_idle_clients_are_closed_active_ones_stay(self):
        with ShoalServer(threads=2, settings={"timeout": "1"}) as server:
            idle = server.raw()
            busy = server.client()
            self.assertTrue(busy.ping())
            # The busy client keeps talking; the idle one says nothing and must be closed.
            closed = False
            for _ in range(60):
                self.assertTrue(busy.ping())
                if is_closed(idle, timeout=0.1):
                    closed = True
                    break
            self.assertTrue(closed, "idle client not closed within ~6 s of a 1 s timeout")
            self.assertTrue(busy.ping())
            self.assertEqual(busy.config_get("timeout"), {"timeout": "1"})
