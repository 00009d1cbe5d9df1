"""System test of replicated maps on a 3-node cluster of real `shoal serve` processes.

Every node declares two replicated maps (users: -> 'users:', sess: -> 'sess:') with a short
anti-entropy interval, two workers each, and a data dir (snapshots go there).

ReplicatedMapTest (ordered steps on one cluster):
  1. a write on one node becomes visible on every node (strings, hashes, TTLs, INCR, DEL,
     EXPIRE/PERSIST, MSET/RENAME within a map); reads are answered locally: a node's forwarded-
     command counter does not move while it serves replicated reads;
  2. in cluster-mode redirect a replicated key is answered by whichever node is asked (never
     MOVED) while a sharded key owned elsewhere gets MOVED; mixing a map's keys with others in
     one command is a clear CROSSSLOT error;
  3. concurrent writers on all three nodes to the same keys converge to one value per key on
     every node;
  4. a node killed with SIGKILL misses writes and deletes, comes back, and syncs from one peer:
     it ends with exactly the others' contents, and its sync moved far fewer bytes than the map;
  5. RMAP.SAVE writes a snapshot; a node restarted without seeds (alone) serves the saved data
     at once (preload before joining); a snapshot with one flipped byte, or truncated, makes the
     node refuse to start with an error naming the file, and the file is left unchanged; so
     does a snapshot older than replicated-tombstone-ttl (its deleted keys could come back).
Propagation is polled with deadlines, never slept on. SHOAL_TEST_LOG_DIR=dir keeps the logs.
"""

import os
import shutil
import tempfile
import threading
import time

import redis
import unittest

from shoal_harness import ClusterNode, RespError, start_cluster, step, wait_settled, wait_until

COOKIE = "replicated-test-cookie"
SETTINGS = {"replicated-maps": "users=users:,sess=sess:", "replicated-sync-interval": "200"}


def map_info(node, name):
    """INFO replicated's map_<name> line as a dict of strings, or None."""
    try:
        text = node.command("INFO", "replicated")
    except OSError:
        return None
    if isinstance(text, RespError):
        return None
    for line in text.decode().splitlines():
        if line.startswith(f"map_{name}:"):
            return dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split(","))
    return None


def contents(node, name="users", prefix="users:"):
    """Every key of a map with its value (strings) or sorted fields (hashes), over RMAP.SCAN."""
    with node.client(socket_timeout=10) as c:
        keys = set()
        cursor = 0
        while True:
            cursor, batch = c.execute_command("RMAP.SCAN", name, cursor, "COUNT", 1000)
            keys.update(k.decode() for k in batch)
            cursor = int(cursor)
            if cursor == 0:
                break
        out = {}
        for k in sorted(keys):
            t = c.type(k).decode()
            out[k] = c.get(k) if t == "string" else sorted(c.hgetall(k).items())
        return out


class ReplicatedMapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shoal-replicated-")
        cls.nodes = start_cluster(3, cookie=COOKIE, threads=2, data_root=cls.tmp,
                                  settings=SETTINGS)
        try:
            wait_settled(cls.nodes)
            # Every node subscribed and did its first sync.
            for n in cls.nodes:
                wait_until(lambda n=n: (map_info(n, "users") or {}).get("synced") == "1", 15,
                           message=f"{n.name} synced")
        except BaseException:
            cls.tearDownClass()  # unittest does not call it when setUpClass fails
            raise

    @classmethod
    def tearDownClass(cls):
        log_dir = os.environ.get("SHOAL_TEST_LOG_DIR")
        for n in cls.nodes:
            n.stop()
            if log_dir:
                os.makedirs(log_dir, exist_ok=True)
                with open(os.path.join(log_dir, f"replicated-{n.name}.log"), "w") as f:
                    f.write(n.log())
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def c(self, i):
        return self.nodes[i].client(socket_timeout=10)

    def wait_everywhere(self, fn, expected, message, timeout=10):
        for n in self.nodes:
            with n.client(socket_timeout=5) as c:
                wait_until(lambda c=c: fn(c) == expected, timeout,
                           message=f"{message} on {n.name} (last {fn(c)!r})")

    @step
    def test_1_writes_reach_every_node_and_reads_are_local(self):
        with self.c(0) as a:
            self.assertTrue(a.set("users:ann", "Ann"))
            a.hset("users:bob", mapping={"name": "Bob", "visits": "1"})
            a.hincrby("users:bob", "visits", 2)
            a.set("users:tmp", "x", ex=1000)
            a.set("users:n", 10)
            self.assertEqual(a.incr("users:n"), 11)
            self.assertEqual(a.get("users:ann"), b"Ann")  # read-your-writes on the same node
        self.wait_everywhere(lambda c: c.get("users:ann"), b"Ann", "users:ann")
        self.wait_everywhere(lambda c: c.hgetall("users:bob"), {b"name": b"Bob", b"visits": b"3"},
                             "users:bob")
        self.wait_everywhere(lambda c: c.get("users:n"), b"11", "users:n")
        with self.c(2) as c:  # RMAP.SCAN takes SCAN's options
            cursor, keys = c.execute_command("RMAP.SCAN", "users", 0, "COUNT", 100000, "TYPE",
                                             "hash", "MATCH", "users:*")
            self.assertEqual((int(cursor), keys), (0, [b"users:bob"]))
            with self.assertRaises(redis.ResponseError):
                c.execute_command("RMAP.SCAN", "users", 0, "COUNT", 0)
        self.wait_everywhere(lambda c: 900 < c.ttl("users:tmp") <= 1000, True, "users:tmp TTL")
        # Writes on other nodes, of every kind.
        with self.c(1) as b:
            b.persist("users:tmp")
            b.delete("users:ann")
            b.mset({"sess:1": "a", "sess:2": "b"})
            b.rename("sess:2", "sess:3")
        self.wait_everywhere(lambda c: c.ttl("users:tmp"), -1, "PERSIST")
        self.wait_everywhere(lambda c: c.exists("users:ann"), 0, "DEL")
        self.wait_everywhere(lambda c: c.mget("sess:1", "sess:2", "sess:3"), [b"a", None, b"b"],
                             "MSET + RENAME")
        with self.c(2) as c:
            c.expire("sess:1", 1)
        self.wait_everywhere(lambda c: c.exists("sess:1"), 0, "expiry", timeout=15)
        # Reads are answered on the node asked: nothing is forwarded.
        before = int(self.nodes[2].info("sharding")["forwarded_commands"])
        with self.c(2) as c:
            for _ in range(200):
                self.assertEqual(c.get("users:n"), b"11")
                self.assertEqual(c.hget("users:bob", "name"), b"Bob")
        after = int(self.nodes[2].info("sharding")["forwarded_commands"])
        self.assertEqual(after, before)

    @step
    def test_2_never_moved_in_redirect_mode(self):
        for n in self.nodes:
            self.assertEqual(n.command("CONFIG", "SET", "cluster-mode", "redirect"), b"OK")
        try:
            with self.c(0) as a:
                a.set("users:redirect", "r")
            self.wait_everywhere(lambda c: c.get("users:redirect"), b"r", "users:redirect")
            # Every node answers every replicated key itself, whoever owns its slot.
            for n in self.nodes:
                for i in range(50):
                    reply = n.command("GET", "users:redirect" if i == 0 else f"users:k{i}")
                    self.assertNotIsInstance(reply, RespError, f"{n.name}: {reply}")
            # A sharded key owned by another node is MOVED (the contrast).
            moved = 0
            for i in range(50):
                reply = self.nodes[0].command("GET", f"plain{i}")
                if isinstance(reply, RespError) and str(reply).startswith("MOVED"):
                    moved += 1
            self.assertGreater(moved, 0)
        finally:
            for n in self.nodes:
                n.command("CONFIG", "SET", "cluster-mode", "forward")
        reply = self.nodes[0].command("MGET", "users:ann", "plain1")
        self.assertIsInstance(reply, RespError)
        self.assertIn("CROSSSLOT", str(reply))
        self.assertIn("users", str(reply))
        reply = self.nodes[0].command("MGET", "users:ann", "sess:1")
        self.assertIn("CROSSSLOT", str(reply))

    @step
    def test_3_concurrent_writers_converge(self):
        keys = [f"users:c{i}" for i in range(100)]
        errors = []

        def writer(i):
            try:
                with self.c(i) as c:
                    for round_ in range(20):
                        p = c.pipeline(transaction=False)
                        for k in keys:
                            p.set(k, f"n{i}-r{round_}")
                        p.execute()
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

        def values(node):
            with node.client(socket_timeout=5) as c:
                return c.mget(keys)

        def agree():
            v = [values(n) for n in self.nodes]
            return v[0] == v[1] == v[2] and all(x is not None for x in v[0])

        wait_until(agree, 15, message="the three nodes agree on every key")
        final = values(self.nodes[0])
        # Each key ends with some writer's last round (LWW keeps one of the concurrent writes).
        for v in final:
            self.assertTrue(v.decode().endswith("-r19"), v)

    @step
    def test_4_killed_node_returns_and_syncs_from_a_peer(self):
        victim = self.nodes[2]
        victim.kill9()
        with self.c(0) as a:
            p = a.pipeline(transaction=False)
            for i in range(2000):
                p.set(f"users:bulk{i}", f"value-{i}-" + "x" * 40)
            p.execute()
            a.delete("users:bob")
            a.hset("users:carol", "name", "Carol")
        with self.c(1) as b:
            b.set("users:n", "42")
        victim.start(keep_ports=True)
        want = contents(self.nodes[0])
        self.assertEqual(len([k for k in want if k.startswith("users:bulk")]), 2000)
        wait_until(lambda: contents(victim) == want, 20,
                   message="the returned node has the peers' contents")
        self.assertEqual(contents(self.nodes[1]), want)
        info = map_info(victim, "users")
        received = int(info["sync_entries_received"])
        self.assertGreaterEqual(received, 2000)
        # It got the map about once, from one peer, not n-1 times over (what the seed's
        # broadcast did): anti-entropy rounds after it caught up find nothing to move.
        entries = int(info["keys"]) + int(info["tombstones"])
        self.assertLess(received, 1.5 * entries)

    @step
    def test_5_snapshot_preload_and_corrupt_snapshots(self):
        node = self.nodes[1]
        self.assertEqual(node.command("RMAP.SAVE"), b"OK")
        path = os.path.join(node.data_dir, "replicated", "users.snap")
        self.assertTrue(os.path.isfile(path))
        want = contents(node)
        node.kill9()
        # Alone (no seeds): what it serves comes from the snapshot, loaded before it joins.
        alone = ClusterNode("alone", cookie=COOKIE, data_dir=node.data_dir, threads=2,
                            settings=SETTINGS)
        try:
            alone.start()
            self.assertEqual(contents(alone), want)
        finally:
            alone.stop()
        with open(path, "rb") as f:
            good = f.read()
        for label, bad, needle in (
            ("flipped", good[:len(good) // 2] + bytes([good[len(good) // 2] ^ 0x10]) +
             good[len(good) // 2 + 1:], "checksum mismatch"),
            ("truncated", good[:len(good) - 100], "truncated"),
        ):
            with open(path, "wb") as f:
                f.write(bad)
            broken = ClusterNode("broken", cookie=COOKIE, data_dir=node.data_dir, threads=2,
                                 settings=SETTINGS)
            with self.assertRaises(RuntimeError, msg=label) as ctx:
                broken.start(attempts=1)
            self.assertIn(needle, str(ctx.exception), label)
            self.assertIn("users.snap", str(ctx.exception), label)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), bad, f"{label}: the file was left as it was")
        with open(path, "wb") as f:
            f.write(good)
        # A snapshot older than the tombstone ttl could bring deleted keys back: refused too.
        wait_until(lambda: time.time() - os.path.getmtime(path) > 2.5, 10, message="2 s pass")
        stale = ClusterNode("stale", cookie=COOKIE, data_dir=node.data_dir, threads=2,
                            settings={**SETTINGS, "replicated-tombstone-ttl": "1"})
        with self.assertRaises(RuntimeError) as ctx:
            stale.start(attempts=1)
        self.assertIn("longer than replicated-tombstone-ttl", str(ctx.exception))
        node.start(keep_ports=True)
        wait_until(lambda: contents(node) == contents(self.nodes[0]), 20,
                   message="the restarted node agrees again")


if __name__ == "__main__":
    unittest.main()
