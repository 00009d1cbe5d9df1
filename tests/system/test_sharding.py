"""System test of sharding: keys spread over real `shoal serve` processes on loopback.

CrashAndRestartTest (5 nodes, forward mode, every node with a data dir):
  1. 5000 keys written through node 1 spread evenly: each node holds 1000 +- 15% (DBSIZE), the
     DBSIZEs add up to 5000, and MGET/MSET through any node reach keys on every node.
  2. kill -9 of node 3: the other four take over its buckets (every GET answers again), exactly
     the keys node 3 held are lost (10-30% of them), every other key keeps its value.
  3. After a refill, node 3 restarts from its data dir (same id, same ports): buckets and keys
     move only to it (each of the four others loses keys and buckets, none gains any; and, where
     CLUSTER SLOTS exists, every slot whose owner changed is now node 3's), it ends with ~1/5 of
     the keys, and every key keeps its value.

MigrationUnderWritesTest (3 nodes, forward mode): four writer threads SET continuously through
nodes of their choice while a 4th node joins and then an original node leaves with SIGTERM
(handing its buckets over). The join moves buckets only to the new node and the leave only the
leaver's (checked slot by slot where CLUSTER SLOTS exists); the leaver exits with status 0.
Every acknowledged write (SET answered OK) must be readable afterwards, through every surviving
node, with its last acknowledged value, and the DBSIZEs must add up to the keys written. Errors
(TRYAGAIN, CLUSTERDOWN, connection errors, failed forwards) are counted and retried, and are
never taken as an acknowledgement.

RealClientsTest (3 nodes, redirect mode): MOVED and CROSSSLOT replies in Redis's format,
`redis-cli -c`, redis-py's RedisCluster and `redis-benchmark --cluster` against the cluster
(skipped if CLUSTER SLOTS is not supported, or if a tool is missing).

Every process is started here and killed by its pid. Readiness is polled with deadlines
(shoal_harness.wait_settled). Measured figures are printed; SHOAL_TEST_LOG_DIR=dir keeps the logs.
"""

import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import redis

from shoal_harness import (NUM_BUCKETS, ClusterNode, RespError, find_binary, key_slot,
                           moved_slots, slot_owners, start_cluster, step, wait_settled,
                           wait_until)

COOKIE = "sharding-test-cookie"
SETTLE_TIMEOUT = 30.0  # formation, joins, leaves
DEATH_TIMEOUT = 30.0   # SWIM declares a crashed node dead in ~4-6 s, then its buckets are adopted


def keep_logs(nodes):
    log_dir = os.environ.get("SHOAL_TEST_LOG_DIR")
    if not log_dir:
        return
    os.makedirs(log_dir, exist_ok=True)
    for n in nodes:
        with open(os.path.join(log_dir, f"sharding-{n.name}.log"), "a") as f:
            f.write(n.log())


def all_logs(nodes):
    return "\n".join(f"--- {n.name} (port {n.port}, cluster {n.cluster_port}) ---\n{n.log()}"
                     for n in nodes)


def dbsizes(nodes):
    return {n.name: n.dbsize() for n in nodes}


def buckets(nodes):
    return {n.name: n.cluster_info()["buckets_served"] for n in nodes}


def mget_all(client, keys, chunk=500):
    out = []
    for i in range(0, len(keys), chunk):
        out.extend(client.mget(keys[i:i + chunk]))
    return out


def set_all(client, items, chunk=500):
    """SETs every (key, value) through one node, pipelined; asserts each answered OK."""
    for i in range(0, len(items), chunk):
        pipe = client.pipeline(transaction=False)
        for k, v in items[i:i + chunk]:
            pipe.set(k, v)
        results = pipe.execute(raise_on_error=False)
        bad = [(items[i + j][0], r) for j, r in enumerate(results) if r is not True]
        if bad:
            raise AssertionError(f"{len(bad)} SETs not acknowledged, e.g. {bad[:5]}")


class ClusterTestCase(unittest.TestCase):
    """A cluster started in setUpClass and killed (by pid) in tearDownClass."""

    count = 3
    mode = None
    with_data_dirs = False
    broken = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shoal-sharding-")
        cls.extra = []  # nodes started by the tests
        cls.nodes = start_cluster(cls.count, cookie=COOKIE, prefix=f"{cls.prefix}-node",
                                  data_root=cls.tmp if cls.with_data_dirs else None,
                                  cluster_mode=cls.mode)
        try:
            cls.formation = wait_settled(cls.nodes, timeout=SETTLE_TIMEOUT)
        except BaseException:
            log = all_logs(cls.nodes)
            cls._stop_all()
            raise AssertionError(f"{cls.__name__}: cluster did not form\n{log}")

    @classmethod
    def _stop_all(cls):
        for n in cls.nodes + cls.extra:
            n.stop()
        keep_logs(cls.nodes + cls.extra)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._stop_all()

    def logs(self):
        return all_logs(self.nodes + self.extra)


class CrashAndRestartTest(ClusterTestCase):
    """Seed 002's experiment: 5 nodes, 5000 keys, kill -9 one node, restart it."""

    count = 5
    prefix = "crash"
    with_data_dirs = True
    KEYS = 5000
    figures = {}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls.figures:
            print("\nsharding crash/restart: " +
                  ", ".join(f"{k}={v}" for k, v in cls.figures.items()), flush=True)

    def items(self, generation):
        return [(f"key:{i}", f"value:{generation}:{i}") for i in range(self.KEYS)]

    @step
    def test_1_keys_spread_evenly(self):
        self.figures["formation_s"] = round(self.formation, 2)
        items = self.items(1)
        with self.nodes[0].client() as c:
            set_all(c, items)
        wait_settled(self.nodes, total_keys=self.KEYS)
        sizes = dbsizes(self.nodes)
        self.figures["keys_per_node"] = sizes
        self.assertEqual(sum(sizes.values()), self.KEYS, sizes)
        for name, n in sizes.items():
            self.assertGreaterEqual(n, 850, f"{name} holds too few keys: {sizes}")
            self.assertLessEqual(n, 1150, f"{name} holds too many keys: {sizes}")
        # Forward mode: multi-key commands through any node reach keys on every node.
        for node in self.nodes:
            with node.client() as c:
                got = mget_all(c, [k for k, _ in items])
            self.assertEqual(got, [v.encode() for _, v in items], f"MGET through {node.name}")
        spread = {f"spread:{i}": f"s{i}" for i in range(100)}
        with self.nodes[1].client() as c:
            self.assertTrue(c.mset(spread))
        with self.nodes[2].client() as c:
            self.assertEqual(c.mget(list(spread)), [v.encode() for v in spread.values()])
            self.assertEqual(c.delete(*spread), len(spread))
        wait_settled(self.nodes, total_keys=self.KEYS)

    @step
    def test_2_kill9_loses_the_victims_keys_only(self):
        victim = self.nodes[2]
        others = [n for n in self.nodes if n is not victim]
        type(self).victim_id = victim.info("membership")["node_id"]
        victim_keys = victim.dbsize()
        t0 = time.monotonic()
        victim.kill9()
        try:
            took = wait_settled(others, timeout=DEATH_TIMEOUT)
        except AssertionError as e:
            self.fail(f"{e}\n{self.logs()}")
        self.figures["takeover_after_kill9_s"] = round(time.monotonic() - t0, 2)
        self.assertGreater(took, 0)
        items = self.items(1)
        with self.nodes[0].client() as c:
            got = mget_all(c, [k for k, _ in items])
        lost = [k for (k, _), g in zip(items, got) if g is None]
        wrong = [(k, v, g) for (k, v), g in zip(items, got) if g is not None and g != v.encode()]
        self.figures["keys_lost"] = f"{len(lost)}/{self.KEYS}"
        self.assertEqual(wrong, [], "surviving keys with a wrong value")
        self.assertEqual(len(lost), victim_keys, "lost keys must be exactly the victim's")
        self.assertGreaterEqual(len(lost), 0.10 * self.KEYS)
        self.assertLessEqual(len(lost), 0.30 * self.KEYS)
        # The survivors hold the rest, and the victim's buckets are all served again.
        self.assertEqual(sum(dbsizes(others).values()), self.KEYS - len(lost))

    @step
    def test_3_restarted_node_takes_buckets_only_from_the_others(self):
        victim = self.nodes[2]
        others = [n for n in self.nodes if n is not victim]
        with self.nodes[0].client() as c:
            set_all(c, self.items(2))
        wait_settled(others, total_keys=self.KEYS)
        keys_before = dbsizes(others)
        buckets_before = buckets(others)
        map_before = slot_owners(self.nodes[0])
        self.assertEqual(sum(keys_before.values()), self.KEYS)
        t0 = time.monotonic()
        victim.start(keep_ports=True)
        self.assertEqual(victim.info("membership")["node_id"], self.victim_id,
                         "restarted from its data dir: same id")
        try:
            wait_settled(self.nodes, timeout=SETTLE_TIMEOUT, total_keys=self.KEYS)
        except AssertionError as e:
            self.fail(f"{e}\n{self.logs()}")
        self.figures["rebalance_after_restart_s"] = round(time.monotonic() - t0, 2)
        keys_after = dbsizes(others)
        buckets_after = buckets(others)
        victim_buckets = victim.cluster_info()["buckets_served"]
        victim_keys = victim.dbsize()
        self.figures["keys_before_restart"] = keys_before
        self.figures["keys_after_restart"] = dict(keys_after, **{victim.name: victim_keys})
        self.figures["buckets_to_restarted"] = victim_buckets
        for name in keys_before:
            self.assertLess(keys_after[name], keys_before[name], f"{name} must lose keys")
            self.assertLess(buckets_after[name], buckets_before[name], f"{name} must give buckets")
        # Every bucket that moved went to the restarted node, and no key appeared elsewhere.
        self.assertEqual(sum(buckets_before[n] - buckets_after[n] for n in buckets_before),
                         victim_buckets)
        self.assertEqual(sum(keys_before[n] - keys_after[n] for n in keys_before), victim_keys)
        self.assertGreaterEqual(victim_keys, 850)
        self.assertLessEqual(victim_keys, 1150)
        # Bucket by bucket: every bucket that moved went to it.
        moves = moved_slots(map_before, slot_owners(self.nodes[0]))
        self.assertEqual({new for _, new in moves}, {f"127.0.0.1:{victim.port}"}, moves)
        self.assertEqual(sum(moves.values()), victim_buckets)
        items = self.items(2)
        with self.nodes[3].client() as c:
            got = mget_all(c, [k for k, _ in items])
        self.assertEqual(got, [v.encode() for _, v in items], "values after the rebalance")


class Writer(threading.Thread):
    """SETs random keys of its own (w<i>:<n>) with distinct values through one node at a time,
    chosen at random among `targets` (re-chosen after a connection error). Records the last
    acknowledged value per key; an unacknowledged write is retried with the same key and value
    until it is acknowledged, so a write that failed ambiguously is either overwritten by the same
    value or left pending (recorded) when the writer stops."""

    KEYS = 2000
    RETRY_AFTER_STOP = 10.0

    def __init__(self, index, targets, stop, seed):
        super().__init__(name=f"writer{index}", daemon=True)
        self.index = index
        self.targets = targets  # shared list of nodes, updated by the test
        self.stop_event = stop
        self.rng = random.Random(seed)
        self.acked = {}      # key -> last acknowledged value
        self.pending = {}    # key -> value of a write never acknowledged (at stop)
        self.ack_times = []  # monotonic time of every acknowledgement
        self.errors = {}     # kind -> count
        self.max_wait = 0.0  # longest time from first attempt to acknowledgement
        self.client = None
        self.failure = None

    def _connect(self):
        if self.client is not None:
            self.client.close()
        node = self.rng.choice([n for n in self.targets if n.alive()])
        self.client = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=15,
                                  socket_connect_timeout=2)

    def _count(self, kind):
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def run(self):
        try:
            self._run()
        except BaseException as e:  # reported by the test
            self.failure = repr(e)

    def _run(self):
        self._connect()
        seq = 0
        while not self.stop_event.is_set():
            key = f"w{self.index}:{self.rng.randrange(self.KEYS)}"
            seq += 1
            value = f"{self.index}:{seq}"
            first = time.monotonic()
            while True:
                try:
                    reply = self.client.set(key, value)
                    if reply is True:
                        now = time.monotonic()
                        self.acked[key] = value
                        self.ack_times.append(now)
                        self.max_wait = max(self.max_wait, now - first)
                        break
                    self._count(f"reply {reply!r}")
                except redis.ResponseError as e:
                    text = str(e)
                    self._count("ERR forwarding" if "forwarding" in text else text.split(" ")[0])
                except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                    self._count(type(e).__name__)
                    time.sleep(0.01)
                    self._connect()
                if (self.stop_event.is_set() and
                        time.monotonic() - self.stop_event.stopped_at > self.RETRY_AFTER_STOP):
                    self.pending[key] = value
                    break
                time.sleep(0.005)
        self.client.close()


class StopEvent(threading.Event):
    stopped_at = None

    def set(self):
        self.stopped_at = time.monotonic()
        super().set()


class MigrationUnderWritesTest(ClusterTestCase):
    count = 3
    prefix = "migr"
    WRITERS = 4

    def test_join_and_leave_under_writes_lose_no_acknowledged_write(self):
        figures = {}
        targets = list(self.nodes)
        stop = StopEvent()
        writers = [Writer(i, targets, stop, seed=1000 + i) for i in range(self.WRITERS)]
        joiner = ClusterNode("migr-node4", cookie=COOKIE, seeds=[self.nodes[0].cluster_address])
        self.extra.append(joiner)
        leaver = self.nodes[1]
        try:
            for w in writers:
                w.start()

            def acks():
                return sum(len(w.ack_times) for w in writers)

            wait_until(lambda: all(w.ack_times for w in writers) or
                       any(w.failure for w in writers), timeout=10, message="first writes")
            # Let the writers run a little on the stable cluster (bounded by acks, not time).
            base = acks()
            wait_until(lambda: acks() >= base + 2000 or any(w.failure for w in writers),
                       timeout=20, message="2000 writes before the join")
            figures["keys_per_node_before_join"] = dbsizes(self.nodes)
            map_before_join = slot_owners(self.nodes[0])

            # -- join --------------------------------------------------------------------
            t_join = time.monotonic()
            joiner.start()
            targets.append(joiner)
            members = self.nodes + [joiner]
            try:
                settle = wait_settled(members, timeout=SETTLE_TIMEOUT)
            except AssertionError as e:
                self.fail(f"join: {e}\n{self.logs()}")
            t_joined = time.monotonic()
            figures["join_settled_s"] = round(t_joined - t_join, 2)
            figures["buckets_to_new_node"] = joiner.cluster_info()["buckets_served"]
            figures["keys_per_node_after_join"] = dbsizes(members)
            self.assertGreater(settle, 0)
            map_after_join = slot_owners(self.nodes[0])
            # Every bucket that moved went to the new node.
            moves = moved_slots(map_before_join, map_after_join)
            self.assertEqual({new for _, new in moves}, {f"127.0.0.1:{joiner.port}"}, moves)
            self.assertEqual(sum(moves.values()), figures["buckets_to_new_node"])

            base = acks()
            wait_until(lambda: acks() >= base + 1000 or any(w.failure for w in writers),
                       timeout=20, message="1000 writes between join and leave")

            # -- graceful leave of an original node --------------------------------------
            leaver_buckets = leaver.cluster_info()["buckets_served"]
            targets.remove(leaver)  # reconnections go elsewhere; its clients stay until it exits
            t_leave = time.monotonic()
            leaver.send_sigterm()
            rc = leaver.wait_exit(timeout=30)
            t_exit = time.monotonic()
            self.assertEqual(rc, 0, f"exit status after SIGTERM\n{leaver.log()}")
            self.assertIn("buckets handed over", leaver.log())
            remaining = [n for n in members if n is not leaver]
            try:
                wait_settled(remaining, timeout=SETTLE_TIMEOUT)
            except AssertionError as e:
                self.fail(f"leave: {e}\n{self.logs()}")
            figures["leave_exit_s"] = round(t_exit - t_leave, 2)
            figures["leave_settled_s"] = round(time.monotonic() - t_leave, 2)
            figures["buckets_from_leaver"] = leaver_buckets
            # Only the leaver's buckets moved.
            moves = moved_slots(map_after_join, slot_owners(self.nodes[0]))
            self.assertEqual({old for old, _ in moves}, {f"127.0.0.1:{leaver.port}"}, moves)
            self.assertEqual(sum(moves.values()), leaver_buckets)

            base = acks()
            wait_until(lambda: acks() >= base + 1000 or any(w.failure for w in writers),
                       timeout=20, message="1000 writes after the leave")
        finally:
            stop.set()
            for w in writers:
                w.join(timeout=Writer.RETRY_AFTER_STOP + 20)

        for w in writers:
            self.assertFalse(w.is_alive(), f"{w.name} did not stop")
            self.assertIsNone(w.failure, f"{w.name} failed")
        remaining = [n for n in self.nodes + [joiner] if n.alive()]
        figures["keys_per_node_after_leave"] = dbsizes(remaining)

        acked = {}
        pending = {}
        errors = {}
        for w in writers:
            acked.update(w.acked)
            pending.update(w.pending)
            for k, v in w.errors.items():
                errors[k] = errors.get(k, 0) + v
            # Each writer made progress after the cluster changed twice.
            self.assertTrue(any(t > t_exit for t in w.ack_times), f"{w.name}: no ack after leave")
        keys = sorted(set(acked) | set(pending))
        mismatched = []
        for node in remaining:
            with node.client() as c:
                got = mget_all(c, keys)
            for k, g in zip(keys, got):
                g = g.decode() if g is not None else None
                allowed = {acked.get(k)} | ({pending[k]} if k in pending else set())
                if k not in acked:
                    allowed.add(None)  # never acknowledged: may not exist
                if g not in allowed:
                    mismatched.append((node.name, k, g, sorted(allowed, key=str)))
        self.assertEqual(mismatched[:20], [], f"{len(mismatched)} keys without their last "
                         f"acknowledged value\n{self.logs()}")
        total = sum(figures["keys_per_node_after_leave"].values())
        self.assertGreaterEqual(total, len(acked))
        self.assertLessEqual(total, len(keys))

        figures["acked_writes"] = sum(len(w.ack_times) for w in writers)
        figures["acked_during_join"] = sum(
            1 for w in writers for t in w.ack_times if t_join <= t <= t_joined)
        figures["acked_during_leave"] = sum(
            1 for w in writers for t in w.ack_times if t_leave <= t <= t_exit)
        figures["distinct_keys"] = len(acked)
        figures["pending_at_stop"] = len(pending)
        figures["errors"] = errors
        figures["max_ack_wait_s"] = round(max(w.max_wait for w in writers), 3)
        print("\nsharding migration under writes: " +
              ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


class RealClientsTest(ClusterTestCase):
    """redirect mode: nodes answer MOVED/ASK; cluster-aware clients follow."""

    count = 3
    prefix = "redir"
    mode = "redirect"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        reply = cls.nodes[0].command("CLUSTER", "SLOTS")
        # An error reply (or a map naming a port no node has) is a failure of every test here.
        cls.slots_error = f"CLUSTER SLOTS: {reply}" if isinstance(reply, RespError) else None
        cls.owner_of_slot = {}
        if cls.slots_error is None:
            by_port = {n.port: n for n in cls.nodes}
            for entry in reply:
                start, end, port = entry[0], entry[1], entry[2][1]
                if port not in by_port:
                    cls.slots_error = f"CLUSTER SLOTS names port {port}: {reply}"
                    break
                for s in range(start, end + 1):
                    cls.owner_of_slot[s] = by_port[port]

    def setUp(self):
        self.assertIsNone(self.slots_error)

    def owner(self, key):
        return self.owner_of_slot[key_slot(key)]

    def key_on(self, node, prefix="k", exclude=()):
        """A key whose slot `node` owns."""
        for i in range(100000):
            k = f"{prefix}{i}"
            if self.owner(k) is node and k not in exclude:
                return k
        raise AssertionError(f"no key found on {node.name}")

    def test_cluster_slots_cover_every_slot(self):
        self.assertEqual(len(self.owner_of_slot), NUM_BUCKETS)
        self.assertEqual(set(self.owner_of_slot.values()), set(self.nodes))
        for node in self.nodes:
            info = node.command("CLUSTER", "INFO")
            self.assertIn(b"cluster_state:ok", info)

    def test_moved_reply_names_the_owner(self):
        a = self.nodes[0]
        for other in self.nodes[1:]:
            key = self.key_on(other)
            reply = a.command("GET", key)
            self.assertIsInstance(reply, RespError)
            self.assertEqual(str(reply), f"MOVED {key_slot(key)} 127.0.0.1:{other.port}")
            reply = a.command("SET", key, "x")
            self.assertEqual(str(reply), f"MOVED {key_slot(key)} 127.0.0.1:{other.port}")
            self.assertEqual(other.command("SET", key, "x"), b"OK")
            self.assertEqual(other.command("GET", key), b"x")
        mine = self.key_on(a)
        self.assertEqual(a.command("SET", mine, "here"), b"OK")
        self.assertEqual(a.command("GET", mine), b"here")

    def test_crossslot(self):
        a = self.nodes[0]
        k1 = self.key_on(a, "c")
        k2 = next(k for k in (f"c{i}" for i in range(100000))
                  if self.owner(k) is a and key_slot(k) != key_slot(k1))
        far = self.key_on(self.nodes[1], "c")
        for keys in ((k1, k2), (k1, far)):
            reply = a.command("MGET", *keys)
            self.assertIsInstance(reply, RespError, keys)
            self.assertTrue(str(reply).startswith("CROSSSLOT"), reply)
            reply = a.command("MSET", keys[0], "1", keys[1], "2")
            self.assertTrue(str(reply).startswith("CROSSSLOT"), reply)
        # Keys with one hash tag are one slot: served where the tag lives, MOVED elsewhere.
        tag = next(t for t in (f"t{i}" for i in range(10000)) if self.owner(t) is a)
        keys = [f"{{{tag}}}:{i}" for i in range(5)]
        self.assertEqual(a.command("MSET", *[x for k in keys for x in (k, k)]), b"OK")
        self.assertEqual(a.command("MGET", *keys), [k.encode() for k in keys])
        reply = self.nodes[1].command("MGET", *keys)
        self.assertEqual(str(reply), f"MOVED {key_slot(tag)} 127.0.0.1:{a.port}")

    def test_redis_cli_follows_moved(self):
        cli = shutil.which("redis-cli")
        if cli is None:
            self.skipTest("redis-cli not installed")
        a = self.nodes[0]
        for other in self.nodes[1:]:
            key = self.key_on(other, "cli")

            def run(*args):
                out = subprocess.run([cli, "-c", "-h", "127.0.0.1", "-p", str(a.port), *args],
                                     capture_output=True, text=True, timeout=20)
                self.assertEqual(out.returncode, 0, out.stderr)
                return out.stdout.strip()

            self.assertEqual(run("SET", key, f"via-{a.name}"), "OK")
            self.assertEqual(run("GET", key), f"via-{a.name}")
            self.assertEqual(other.command("GET", key), f"via-{a.name}".encode(),
                             "the key lives on its owner")
            self.assertIsInstance(a.command("GET", key), RespError)

    def test_redis_py_cluster_client(self):
        try:
            from redis.cluster import RedisCluster
        except ImportError:
            self.skipTest("this redis-py has no redis.cluster.RedisCluster")
        rc = RedisCluster(host="127.0.0.1", port=self.nodes[0].port, socket_timeout=10)
        try:
            self.assertEqual({n.port for n in rc.get_nodes()}, {n.port for n in self.nodes})
            keys = [f"py:{i}" for i in range(200)]
            for k in keys:
                self.assertTrue(rc.set(k, k + "!"))
            self.assertEqual([rc.get(k) for k in keys], [(k + "!").encode() for k in keys])
            self.assertEqual(rc.mget_nonatomic(keys), [(k + "!").encode() for k in keys])
            tagged = [f"{{py}}:{i}" for i in range(10)]
            self.assertTrue(rc.mset_nonatomic({k: "t" for k in tagged}))
            self.assertEqual(rc.mget(tagged), [b"t"] * 10)  # one slot: a real MGET
            owners = {self.owner(k).name for k in keys}
            self.assertEqual(len(owners), len(self.nodes), "the keys span every node")
            for node in self.nodes:  # each key is stored on its owner
                with node.client() as c:
                    mine = [k for k in keys if self.owner(k) is node]
                    self.assertEqual([c.get(k) for k in mine], [(k + "!").encode() for k in mine])
        finally:
            rc.close()

    def test_redis_benchmark_cluster(self):
        bench = shutil.which("redis-benchmark")
        if bench is None:
            self.skipTest("redis-benchmark not installed")
        out = subprocess.run([bench, "--cluster", "-h", "127.0.0.1", "-p", str(self.nodes[0].port),
                              "-t", "set,get", "-n", "20000", "-q"],
                             capture_output=True, text=True, timeout=120)
        text = out.stdout.replace("\r", "\n") + out.stderr.replace("\r", "\n")
        self.assertEqual(out.returncode, 0, text)
        self.assertIn(f"Cluster has {len(self.nodes)} master nodes", text)
        rates = dict(re.findall(r"^\s*(SET|GET): ([\d.]+) requests per second", text, re.M))
        self.assertEqual(set(rates), {"SET", "GET"}, text)
        # A smoke run, not a measurement (bench/cluster_compare.sh is): with --cluster the run time
        # is rounded up to redis-benchmark's 250 ms tick, so these rps are lower bounds.
        print(f"\nredis-benchmark --cluster smoke run (3 nodes, -n 20000): "
              f"SET {rates['SET']} rps, GET {rates['GET']} rps (lower bounds)", flush=True)


if __name__ == "__main__":
    find_binary()
    unittest.main()
