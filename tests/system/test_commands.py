"""System tests: shoal's commands over real sockets, with redis-py and raw RESP."""

import subprocess
import threading
import time
import unittest

import redis

from shoal_harness import (RespError, RespReader, ServerTestCase, ShoalServer, encode_command,
                           find_binary, is_closed, keys_on_workers, read_line, read_until_closed,
                           wait_until, worker_of)


def many_keys(n, prefix="key:"):
    return [f"{prefix}{i}" for i in range(n)]


class CommandsTest(ServerTestCase):
    server_kwargs = {"threads": 2}

    # -- basics ----------------------------------------------------------------------------------

    def test_ping_echo(self):
        self.assertTrue(self.r.ping())
        raw = RespReader(self.raw())
        self.assertEqual(raw.command("PING"), b"PONG")
        self.assertEqual(raw.command("PING", "hello"), b"hello")
        self.assertIsInstance(raw.command("PING", "a", "b"), RespError)
        self.assertEqual(self.r.echo("abc\r\n\x00def"), b"abc\r\n\x00def")
        with self.assertRaisesRegex(redis.ResponseError, "wrong number of arguments for 'echo'"):
            self.r.execute_command("ECHO")

    def test_set_get_options(self):
        r = self.r
        self.assertTrue(r.set("k", "v1"))
        self.assertEqual(r.get("k"), b"v1")
        self.assertIsNone(r.get("missing"))
        # NX / XX
        self.assertIsNone(r.set("k", "v2", nx=True))
        self.assertEqual(r.get("k"), b"v1")
        self.assertTrue(r.set("k", "v2", xx=True))
        self.assertEqual(r.get("k"), b"v2")
        self.assertIsNone(r.set("nx-missing", "x", xx=True))
        self.assertEqual(r.exists("nx-missing"), 0)
        self.assertTrue(r.set("nx-new", "x", nx=True))
        self.assertEqual(r.get("nx-new"), b"x")
        # GET returns the old value
        self.assertEqual(r.set("k", "v3", get=True), b"v2")
        self.assertEqual(r.get("k"), b"v3")
        self.assertIsNone(r.set("fresh", "f", get=True))
        self.assertEqual(r.get("fresh"), b"f")
        # EX / PX set a TTL; a plain SET clears it; KEEPTTL keeps it.
        self.assertTrue(r.set("t", "1", ex=100))
        self.assertTrue(95 <= r.ttl("t") <= 100)
        self.assertTrue(r.set("t", "2", px=50000))
        self.assertTrue(45000 <= r.pttl("t") <= 50000)
        self.assertTrue(r.set("t", "3", keepttl=True))
        self.assertTrue(45000 <= r.pttl("t") <= 50000)
        self.assertEqual(r.get("t"), b"3")
        self.assertTrue(r.set("t", "4"))
        self.assertEqual(r.ttl("t"), -1)
        self.assertEqual(r.ttl("missing"), -2)
        # Errors
        with self.assertRaisesRegex(redis.ResponseError, "syntax error"):
            r.execute_command("SET", "k", "v", "NX", "XX")
        with self.assertRaisesRegex(redis.ResponseError, "syntax error"):
            r.execute_command("SET", "k", "v", "EX", "10", "PX", "100")
        with self.assertRaisesRegex(redis.ResponseError, "invalid expire time"):
            r.execute_command("SET", "k", "v", "EX", "0")
        with self.assertRaisesRegex(redis.ResponseError, "not an integer"):
            r.execute_command("SET", "k", "v", "EX", "abc")
        self.assertEqual(r.get("k"), b"v3")

    def test_ttl_expiry_observed(self):
        r = self.r
        a, b = keys_on_workers("exp")
        r.set(a, "x", px=1000)
        r.set(b, "y")
        self.assertTrue(r.expire(b, 1))
        self.assertTrue(0 < r.pttl(a) <= 1000)
        self.assertEqual(r.ttl(b), 1)
        self.assertEqual(r.exists(a, b), 2)
        wait_until(lambda: r.get(a) is None, timeout=5, message="PX 1000 key to expire")
        wait_until(lambda: r.exists(b) == 0, timeout=5, message="EXPIRE 1 key to expire")
        self.assertEqual(r.ttl(a), -2)
        self.assertEqual(r.dbsize(), 0)
        # Active expiry: keys nobody touches disappear from DBSIZE too.
        for i in range(50):
            r.set(f"active:{i}", "v", px=100)
        r.set("keeper", "v")
        wait_until(lambda: r.dbsize() == 1, timeout=5, message="active expiry of 50 keys")
        self.assertEqual(r.get("keeper"), b"v")
        # PERSIST removes a TTL.
        r.set("p", "v", ex=100)
        self.assertTrue(r.persist("p"))
        self.assertEqual(r.ttl("p"), -1)

    def test_incr_family(self):
        r = self.r
        self.assertEqual(r.incr("c"), 1)
        self.assertEqual(r.incr("c"), 2)
        self.assertEqual(r.incrby("c", 40), 42)
        self.assertEqual(r.decr("c"), 41)
        self.assertEqual(r.decrby("c", 50), -9)
        self.assertEqual(r.get("c"), b"-9")
        self.assertEqual(r.decr("d"), -1)
        self.assertAlmostEqual(r.incrbyfloat("f", 1.5), 1.5)
        self.assertAlmostEqual(r.incrbyfloat("f", "-0.25"), 1.25)
        self.assertEqual(r.get("f"), b"1.25")
        r.set("big", str(2**63 - 1))
        with self.assertRaisesRegex(redis.ResponseError, "overflow"):
            r.incr("big")
        self.assertEqual(r.get("big"), str(2**63 - 1).encode())
        r.set("s", "abc")
        with self.assertRaisesRegex(redis.ResponseError, "not an integer"):
            r.incr("s")
        r.set("ttl", "5", ex=100)
        self.assertEqual(r.incr("ttl"), 6)
        self.assertGreater(r.ttl("ttl"), 0, "INCR must keep the TTL")

    def test_mset_mget_del_exists_across_workers(self):
        r = self.r
        keys = many_keys(200)
        self.assertEqual({worker_of(k) for k in keys}, {0, 1}, "keys must span both workers")
        self.assertTrue(r.mset({k: f"v{i}" for i, k in enumerate(keys)}))
        self.assertEqual(r.mget(keys), [f"v{i}".encode() for i in range(200)])
        self.assertEqual(r.mget(keys + ["nope"])[-1], None)
        self.assertEqual(r.exists(*keys), 200)
        self.assertEqual(r.exists("key:0", "key:0", "nope"), 2)  # counts repeats, like Redis
        self.assertEqual(r.dbsize(), 200)
        self.assertEqual(r.delete(*keys[:100], "nope"), 100)
        self.assertEqual(r.exists(*keys), 100)
        self.assertEqual(r.mget(keys[:100]), [None] * 100)
        self.assertEqual(r.mget(keys[100:]), [f"v{i}".encode() for i in range(100, 200)])
        self.assertEqual(r.unlink(*keys[100:]), 100)
        self.assertEqual(r.dbsize(), 0)

    def test_msetnx_atomic(self):
        r = self.r
        keys = many_keys(200, "nx:")
        self.assertTrue(r.msetnx({k: "1" for k in keys}))
        self.assertEqual(r.mget(keys), [b"1"] * 200)
        # One key exists (on one worker): nothing is set on any worker.
        fresh = many_keys(200, "nx2:")
        self.assertEqual({worker_of(k) for k in fresh}, {0, 1})
        mapping = {k: "2" for k in fresh}
        mapping[keys[7]] = "2"
        self.assertFalse(r.msetnx(mapping))
        self.assertEqual(r.exists(*fresh), 0)
        self.assertEqual(r.get(keys[7]), b"1")

    def test_rename_across_workers(self):
        r = self.r
        src, dst = keys_on_workers("ren")
        self.assertNotEqual(worker_of(src), worker_of(dst))
        r.set(src, "value", ex=1000)
        self.assertTrue(r.rename(src, dst))
        self.assertEqual(r.exists(src), 0)
        self.assertEqual(r.get(dst), b"value")
        self.assertGreater(r.ttl(dst), 900, "RENAME keeps the TTL")
        # Back again, overwriting an existing key of another type.
        r.hset(src, "f", "v")
        self.assertTrue(r.rename(dst, src))
        self.assertEqual(r.type(src), b"string")
        self.assertEqual(r.get(src), b"value")
        # A hash moves whole.
        r.hset(dst, mapping={f"f{i}": i for i in range(50)})
        self.assertTrue(r.rename(dst, src))
        self.assertEqual(r.hlen(src), 50)
        self.assertEqual(r.exists(dst), 0)
        # RENAMENX refuses to overwrite.
        r.set(dst, "other")
        self.assertFalse(r.renamenx(src, dst))
        self.assertEqual(r.get(dst), b"other")
        with self.assertRaisesRegex(redis.ResponseError, "no such key"):
            r.rename("missing", dst)

    def test_hash_commands(self):
        r = self.r
        self.assertEqual(r.hset("h", mapping={"a": "1", "b": "2"}), 2)
        self.assertEqual(r.hset("h", "a", "10"), 0)
        self.assertEqual(r.hgetall("h"), {b"a": b"10", b"b": b"2"})
        self.assertEqual(r.hincrby("h", "a", 5), 15)
        self.assertEqual(r.hincrby("h", "new", -3), -3)
        self.assertAlmostEqual(r.hincrbyfloat("h", "fl", 0.5), 0.5)
        with self.assertRaisesRegex(redis.ResponseError, "not an integer"):
            r.hincrby("h", "fl", 1)
        self.assertEqual(r.hget("h", "a"), b"15")
        self.assertEqual(r.hmget("h", "a", "zz", "b"), [b"15", None, b"2"])
        self.assertTrue(r.hexists("h", "b"))
        self.assertEqual(r.hdel("h", "b", "zz"), 1)
        self.assertEqual(r.hlen("h"), 3)
        self.assertEqual(r.type("h"), b"hash")
        self.assertEqual(r.hgetall("missing"), {})
        # HSCAN over 500 fields sees each exactly once.
        fields = {f"field:{i}": str(i) for i in range(500)}
        r.hset("big", mapping=fields)
        seen = []
        cursor = 0
        while True:
            cursor, chunk = r.hscan("big", cursor, count=37)
            seen.extend(chunk.items())
            if cursor == 0:
                break
        self.assertEqual(len(seen), 500)
        self.assertEqual({k.decode(): v.decode() for k, v in seen}, fields)
        matched = dict(r.hscan_iter("big", match="field:1*"))
        self.assertEqual(set(matched), {k.encode() for k in fields if k.startswith("field:1")})
        # Deleting the last field deletes the key.
        r.hset("one", "f", "v")
        r.hdel("one", "f")
        self.assertEqual(r.exists("one"), 0)

    def test_keys_and_scan_full_iteration(self):
        r = self.r
        keys = many_keys(1000, "scan:")
        r.mset({k: "v" for k in keys})
        r.hset("ahash", "f", "v")
        expected = set(keys) | {"ahash"}
        self.assertEqual(sorted(k.decode() for k in r.keys("*")), sorted(expected))
        self.assertEqual(len(r.keys("scan:99*")), 11)  # scan:99, scan:990..999
        for count in (10, 100, 1000):
            seen = []
            cursor = 0
            rounds = 0
            while True:
                cursor, chunk = r.scan(cursor, count=count)
                seen.extend(k.decode() for k in chunk)
                rounds += 1
                self.assertLess(rounds, 10000, "SCAN does not terminate")
                if cursor == 0:
                    break
            self.assertEqual(len(seen), len(expected), f"COUNT {count}: duplicates or missing keys")
            self.assertEqual(set(seen), expected)
        self.assertEqual(set(r.scan_iter(match="scan:1??")), {f"scan:{i}".encode() for i in range(100, 200)})
        self.assertEqual(list(r.scan_iter(_type="hash")), [b"ahash"])

    def test_dbsize_flushall_type_randomkey(self):
        r = self.r
        self.assertEqual(r.dbsize(), 0)
        self.assertIsNone(r.randomkey())
        self.assertEqual(r.type("nothing"), b"none")
        keys = many_keys(200, "rk:")
        r.mset({k: "v" for k in keys})
        r.hset("h", "f", "v")
        self.assertEqual(r.type("rk:1"), b"string")
        self.assertEqual(r.type("h"), b"hash")
        self.assertEqual(r.dbsize(), 201)
        seen = set()
        for _ in range(200):
            k = r.randomkey()
            self.assertIn(k.decode(), set(keys) | {"h"})
            seen.add(k)
        self.assertGreater(len(seen), 10, "RANDOMKEY is not random")
        self.assertEqual({worker_of(k) for k in seen}, {0, 1}, "RANDOMKEY must pick from every worker")
        self.assertTrue(r.flushall())
        self.assertEqual(r.dbsize(), 0)
        self.assertEqual(r.keys("*"), [])
        self.assertIsNone(r.randomkey())
        r.set("x", "1")
        self.assertTrue(r.flushdb())
        self.assertEqual(r.dbsize(), 0)

    def test_info_sections(self):
        r = self.r
        r.mset({k: "v" for k in many_keys(150, "info:")})
        for i in range(30):
            r.set(f"vol:{i}", "v", ex=1000)
        r.get("info:1")
        r.get("absent")
        info = r.info("all")
        for field in ("redis_version", "process_id", "tcp_port", "connected_clients", "used_memory",
                      "maxmemory_policy", "total_commands_processed", "keyspace_hits",
                      "evicted_keys", "cluster_enabled", "db0"):
            self.assertIn(field, info)
        self.assertEqual(info["process_id"], self.server.proc.pid)
        self.assertEqual(info["tcp_port"], self.server.port)
        self.assertEqual(info["db0"]["keys"], 180)
        self.assertEqual(info["db0"]["expires"], 30)
        self.assertGreaterEqual(info["connected_clients"], 1)
        self.assertGreater(info["used_memory"], 0)
        self.assertGreaterEqual(info["keyspace_hits"], 1)
        self.assertGreaterEqual(info["keyspace_misses"], 1)
        self.assertEqual(info["cluster_enabled"], 1)  # a one-node cluster owning every bucket
        raw = RespReader(self.raw())
        text = raw.command("INFO").decode()
        for section in ("# Server", "# Clients", "# Memory", "# Stats", "# Keyspace", "# Cluster"):
            self.assertIn(section, text)
        self.assertIn("db0:keys=180,expires=30,", text)
        # A single section has only that section.
        mem = raw.command("INFO", "memory").decode()
        self.assertIn("# Memory", mem)
        self.assertNotIn("# Server", mem)
        self.assertEqual(r.info("keyspace")["db0"]["keys"], 180)
        r.flushall()
        self.assertEqual(r.info("keyspace"), {})

    def test_info_journal_lsn_per_worker(self):
        r = self.r

        def lsns():
            info = r.info("journal")
            return [info[f"journal_lsn_worker_{i}"] for i in range(2)]

        r.flushall()  # no key left to expire while this test counts records
        before = lsns()
        r.set("jl:a", "1")
        r.set("jl:a", "2", nx=True)  # changes nothing: no record
        r.delete("jl:absent")        # changes nothing: no record
        after_one = lsns()
        self.assertEqual(sum(after_one) - sum(before), 1)
        r.mset({k: "v" for k in many_keys(20, "jl:m:")})
        after = lsns()
        self.assertEqual(sum(after) - sum(after_one), 20)
        self.assertTrue(all(a > b for a, b in zip(after, before)), (before, after))

    def test_config_get_set(self):
        r = self.r
        old = r.config_get("maxmemory-policy")["maxmemory-policy"]
        try:
            self.assertTrue(r.config_set("maxmemory-policy", "allkeys-lru"))
            self.assertEqual(r.config_get("maxmemory-policy"), {"maxmemory-policy": "allkeys-lru"})
            self.assertEqual(r.info("memory")["maxmemory_policy"], "allkeys-lru")
            self.assertTrue(r.config_set("maxmemory", "64mb"))
            self.assertEqual(r.config_get("maxmemory"), {"maxmemory": str(64 * 1024 * 1024)})
            got = r.config_get("maxmemory*")
            self.assertIn("maxmemory", got)
            self.assertIn("maxmemory-policy", got)
            self.assertIn("maxmemory-samples", got)
            with self.assertRaises(redis.ResponseError):
                r.config_set("maxmemory-policy", "no-such-policy")
            self.assertEqual(r.config_get("maxmemory-policy"), {"maxmemory-policy": "allkeys-lru"})
            with self.assertRaises(redis.ResponseError):
                r.config_set("no-such-setting", "1")
            with self.assertRaises(redis.ResponseError):
                r.config_set("port", "1234")  # startup only
            self.assertEqual(r.config_get("port"), {"port": str(self.server.port)})
            self.assertEqual(r.config_get("no-such-setting"), {})
        finally:
            r.config_set("maxmemory-policy", old)
            r.config_set("maxmemory", "0")

    def test_client_commands(self):
        r = self.r
        my_id = r.client_id()
        self.assertIsInstance(my_id, int)
        self.assertIsNone(r.client_getname())
        self.assertTrue(r.client_setname("tester"))
        self.assertEqual(r.client_getname(), "tester")
        with self.assertRaises(redis.ResponseError):
            r.client_setname("has space")
        # Another connection, identified by its own CLIENT ID.
        other = self.raw()
        other.sendall(encode_command("CLIENT", "SETNAME", "victim") + encode_command("CLIENT", "ID"))
        self.assertEqual(read_line(other), b"+OK\r\n")
        line = read_line(other)
        self.assertTrue(line.startswith(b":"), line)
        other_id = int(line[1:])
        self.assertNotEqual(other_id, my_id)
        clients = {int(c["id"]): c for c in r.client_list()}
        self.assertIn(my_id, clients)
        self.assertIn(other_id, clients)
        self.assertEqual(clients[my_id]["name"], "tester")
        self.assertEqual(clients[other_id]["name"], "victim")
        self.assertTrue(clients[my_id]["cmd"].startswith("client"), clients[my_id]["cmd"])
        # CLIENT KILL ID closes that connection, and only that one.
        self.assertEqual(r.client_kill_filter(_id=other_id), 1)
        self.assertTrue(is_closed(other, timeout=5), "killed connection still open")
        wait_until(lambda: other_id not in {int(c["id"]) for c in r.client_list()}, timeout=5,
                   message="killed client to leave CLIENT LIST")
        self.assertEqual(r.client_kill_filter(_id=other_id), 0)
        self.assertEqual(r.client_id(), my_id)
        self.assertTrue(r.ping())

    def test_client_kill_across_workers(self):
        # Connections land on either worker; kill ten of them from one client.
        socks = [self.raw() for _ in range(10)]
        ids = []
        for s in socks:
            s.sendall(encode_command("CLIENT", "ID"))
            ids.append(int(read_line(s)[1:]))
        for s, cid in zip(socks, ids):
            self.assertEqual(self.r.client_kill_filter(_id=cid), 1)
            self.assertTrue(is_closed(s, timeout=5))

    def test_hello3_resp3_map(self):
        self.r.hset("h", mapping={"f1": "v1", "f2": "v2"})
        reader = RespReader(self.raw())
        reader.sock.sendall(encode_command("HELLO", "3"))
        t, hello = reader.read_typed()
        self.assertEqual(t, b"%", "HELLO 3 reply is not a RESP3 map")
        self.assertEqual(hello[b"proto"], 3)
        self.assertEqual(hello[b"server"], b"redis")
        self.assertIsInstance(hello[b"id"], int)
        reader.sock.sendall(encode_command("HGETALL", "h"))
        t, value = reader.read_typed()
        self.assertEqual(t, b"%", "HGETALL under RESP3 must be a map")
        self.assertEqual(value, {b"f1": b"v1", b"f2": b"v2"})
        reader.sock.sendall(encode_command("GET", "missing"))
        self.assertEqual(reader.read_typed(), (b"_", None))
        # HELLO 2 goes back to RESP2: arrays and $-1.
        reader.sock.sendall(encode_command("HELLO", "2"))
        t, hello = reader.read_typed()
        self.assertEqual(t, b"*")
        self.assertIn(b"proto", hello)
        self.assertEqual(hello[hello.index(b"proto") + 1], 2)
        reader.sock.sendall(encode_command("HGETALL", "h"))
        t, value = reader.read_typed()
        self.assertEqual(t, b"*")
        self.assertEqual(sorted(value), [b"f1", b"f2", b"v1", b"v2"])
        reader.sock.sendall(encode_command("GET", "missing"))
        self.assertEqual(reader.read_typed(), (b"$", None))
        reply = reader.command("HELLO", "4")
        self.assertIsInstance(reply, RespError)
        self.assertTrue(str(reply).startswith("NOPROTO"), str(reply))
        self.assertEqual(reader.command("PING"), b"PONG")

    def test_select(self):
        self.assertTrue(self.r.execute_command("SELECT", "0"))
        with self.assertRaisesRegex(redis.ResponseError, "DB index is out of range"):
            self.r.execute_command("SELECT", "1")
        with self.assertRaises(redis.ResponseError):
            self.r.execute_command("SELECT", "x")

    def test_command_introspection(self):
        r = self.r
        count = r.execute_command("COMMAND COUNT")
        names = r.execute_command("COMMAND LIST")
        self.assertEqual(count, len(names))
        self.assertGreater(count, 50)
        names = {n.decode().lower() for n in names}
        for n in ("get", "set", "mset", "hset", "scan", "client", "config", "info"):
            self.assertIn(n, names)
        info = r.execute_command("COMMAND", "INFO", "get", "mset")
        self.assertEqual(info["get"]["arity"], 2)
        self.assertEqual(info["get"]["first_key_pos"], 1)
        self.assertEqual(info["mset"]["arity"], -3)
        self.assertEqual(info["mset"]["step_count"], 2)
        raw = RespReader(self.raw())
        reply = raw.command("COMMAND", "INFO", "get", "nosuch")
        self.assertEqual(len(reply), 2)
        self.assertEqual(reply[0][0], b"get")
        self.assertIsNone(reply[1])
        self.assertEqual(r.execute_command("COMMAND GETKEYS", "MSET", "a", "1", "b", "2"), ["a", "b"])
        self.assertEqual(r.execute_command("COMMAND GETKEYS", "GET", "k1"), ["k1"])
        with self.assertRaises(redis.ResponseError):
            r.execute_command("COMMAND GETKEYS", "PING")

    def test_time(self):
        sec, usec = self.r.time()
        self.assertLess(abs(sec + usec / 1e6 - time.time()), 5)
        self.assertTrue(0 <= usec < 1_000_000)

    def test_quit_closes(self):
        s = self.raw()
        s.sendall(encode_command("SET", "q", "1") + encode_command("QUIT") + encode_command("SET", "q", "2"))
        data = read_until_closed(s, timeout=5)
        self.assertEqual(data, b"+OK\r\n+OK\r\n")
        self.assertEqual(self.r.get("q"), b"1", "commands after QUIT must not run")

    # -- pipelining and concurrency --------------------------------------------------------------

    def test_pipeline_10000_mixed(self):
        r = self.r
        keys = many_keys(100, "pl:")
        pipe = r.pipeline(transaction=False)
        expected = []
        counters = {}
        values = {}
        for i in range(10000):
            k = keys[i % len(keys)]
            op = i % 4
            if op == 0:
                pipe.set(k, f"s{i}")
                values[k] = f"s{i}".encode()
                counters.pop(k, None)
                expected.append(True)
            elif op == 1:
                pipe.get(k)
                expected.append(values.get(k))
            elif op == 2:
                ck = f"cnt:{i % 37}"
                pipe.incr(ck)
                counters[ck] = counters.get(ck, 0) + 1
                expected.append(counters[ck])
            else:
                k2 = keys[(i * 7 + 3) % len(keys)]
                pipe.mset({k: f"m{i}", k2: f"n{i}"})
                values[k] = f"m{i}".encode()
                values[k2] = f"n{i}".encode()
                expected.append(True)
        replies = pipe.execute()
        self.assertEqual(len(replies), 10000)
        for i, (got, want) in enumerate(zip(replies, expected)):
            if got != want:
                self.fail(f"reply {i} out of order or wrong: got {got!r}, want {want!r}")
        self.assertEqual(r.mget(keys), [values.get(k) for k in keys])

    def test_concurrent_incr(self):
        counters = [f"ctr:{i}" for i in range(10)]
        self.assertEqual({worker_of(k) for k in counters}, {0, 1})
        errors = []

        def work():
            try:
                c = self.server.client()
                for i in range(2000):
                    c.incr(counters[i % 10])
                c.close()
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual([int(v) for v in self.r.mget(counters)], [8 * 2000 // 10] * 10)

    def test_mset_mget_atomic_across_workers(self):
        a, b = keys_on_workers("atom")
        self.assertNotEqual(worker_of(a), worker_of(b))
        self.r.mset({a: 0, b: 0})
        stop = threading.Event()
        errors = []
        torn = []

        def writer():
            try:
                c = self.server.client()
                i = 0
                while not stop.is_set():
                    i += 1
                    c.mset({a: i, b: i})
                c.close()
            except Exception as e:
                errors.append(e)

        def reader():
            try:
                c = self.server.client()
                for _ in range(2000):
                    va, vb = c.mget(a, b)
                    if va != vb:
                        torn.append((va, vb))
                c.close()
            except Exception as e:
                errors.append(e)

        w = threading.Thread(target=writer)
        rd = threading.Thread(target=reader)
        w.start()
        rd.start()
        rd.join(60)
        stop.set()
        w.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(torn[:5], [], f"MGET saw a half-applied MSET {len(torn)} times")
        va, vb = self.r.mget(a, b)
        self.assertEqual(va, vb)
        self.assertGreater(int(va), 0)


class AuthTest(ServerTestCase):
    server_kwargs = {"threads": 2, "requirepass": "s3cret"}

    def test_auth(self):
        s = self.raw()
        s.sendall(encode_command("GET", "k"))
        self.assertTrue(read_line(s).startswith(b"-NOAUTH"))
        s.sendall(encode_command("SET", "k", "v"))
        self.assertTrue(read_line(s).startswith(b"-NOAUTH"))
        s.sendall(encode_command("AUTH", "wrong"))
        self.assertTrue(read_line(s).startswith(b"-WRONGPASS"))
        s.sendall(encode_command("AUTH", "default", "wrong"))
        self.assertTrue(read_line(s).startswith(b"-WRONGPASS"))
        s.sendall(encode_command("GET", "k"))
        self.assertTrue(read_line(s).startswith(b"-NOAUTH"))
        s.sendall(encode_command("AUTH", "s3cret"))
        self.assertEqual(read_line(s), b"+OK\r\n")
        s.sendall(encode_command("SET", "k", "v") + encode_command("GET", "k"))
        self.assertEqual(read_line(s), b"+OK\r\n")
        self.assertEqual(read_line(s), b"$1\r\n")
        # The two-argument form works too, on a fresh connection.
        s2 = self.raw()
        s2.sendall(encode_command("AUTH", "default", "s3cret") + encode_command("GET", "k"))
        self.assertEqual(read_line(s2), b"+OK\r\n")
        self.assertEqual(read_line(s2), b"$1\r\n")
        # HELLO with AUTH.
        s3 = self.raw()
        s3.sendall(encode_command("HELLO", "2", "AUTH", "default", "bad"))
        self.assertTrue(read_line(s3).startswith(b"-WRONGPASS"))
        # redis-py with the wrong password fails; with the right one works.
        bad = self.server.client(password="nope")
        with self.assertRaisesRegex(redis.ResponseError, "WRONGPASS"):
            bad.ping()
        bad.close()
        self.assertEqual(self.r.get("k"), b"v")


class StartupTest(unittest.TestCase):
    def test_port_in_use_is_refused(self):
        # Like Redis, a second server on a port already in use must fail to start, not share the
        # port (SO_REUSEPORT would split clients between two unrelated nodes).
        first = ShoalServer(threads=1)
        first.start()
        try:
            argv = [find_binary(), "serve", "--port", str(first.port), "--threads", "1",
                    "--bind", "127.0.0.1"]
            second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
            try:
                try:
                    second.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                still_running = second.poll() is None
            finally:
                if second.poll() is None:
                    second.kill()
                second.wait(timeout=10)
                second.stdout.close()
            self.assertFalse(still_running, "second shoal started on a port already in use")
            self.assertNotEqual(second.returncode, 0)
            c = first.client()
            self.assertEqual(c.info("server")["process_id"], first.proc.pid)
            c.close()
        finally:
            first.stop()


if __name__ == "__main__":
    unittest.main()
