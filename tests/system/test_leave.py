"""System test of graceful leave: real `shoal serve` processes on loopback (redirect mode, admin
HTTP API on), the leave asked for with `shoal leave`, `shoal leave --force` or SIGTERM.

The leave of values larger than a frame is test_leave_large.py.

AllLeavingTest: SIGTERM to all three nodes at once (Ctrl-C on scripts/run.sh): nobody can take
anyone's buckets, so each hands over what it can, logs what it kept (or that it handed all
over), and exits with status 0 within a bound.

StuckLeaveTest: the two other nodes run with maxmemory 16mb, and the leaver holds a 20 MiB value,
which they refuse as an incoming key. The leaver hands over everything else, keeps retrying the
batch with that key (it stays up, and logs periodically what it still holds and the refusal)
while the others are alive and not leaving; `shoal leave --force` makes it exit (status 0),
logging what it kept.
(A second case: the same stuck leave started by `shoal leave`, ended by a SIGTERM.)

BusyWorkerLeaveTest: the leaver's only worker is stuck in a very long command (KEYS with a
pattern that backtracks exponentially over a long key): SIGTERM still starts the leave at once,
its progress is logged while the worker stays busy, and a second SIGTERM forces it (the worker
itself is not interrupted; the test kills the process).

Every process is started here and killed by its pid; waits poll with deadlines.
"""

import re
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import redis

from shoal_harness import (NUM_BUCKETS, ClusterNode, find_binary, key_slot, slot_owners,
                           wait_settled, wait_until)

COOKIE = "leave-test-cookie"
SETTLE_TIMEOUT = 60.0
BIG = 70 << 20


def all_logs(nodes):
    return "\n".join(f"--- {n.name} (port {n.port}) ---\n{n.log()[-20000:]}" for n in nodes)


def start_nodes(specs):
    """specs: a list of per-node kwargs; the first node is the seed of the others."""
    nodes = []
    try:
        for i, kw in enumerate(specs, start=1):
            node = ClusterNode(f"leave-node{i}", cookie=COOKIE,
                               seeds=[nodes[0].cluster_address] if nodes else [],
                               cluster_mode="redirect", http=True, **kw)
            nodes.append(node)
            node.start()
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


def by_port(nodes):
    return {f"127.0.0.1:{n.port}": n for n in nodes}


def follow(nodes, *args, hops=5):
    """Runs a command on the node that owns its key, following MOVED from the first node."""
    node = nodes[0]
    ports = by_port(nodes)
    for _ in range(hops):
        with node.client(socket_timeout=60) as c:
            try:
                return c.execute_command(*args)
            except redis.ResponseError as e:
                text = str(e)
                if not text.startswith("MOVED "):
                    raise
                node = ports[text.split()[2]]
    raise AssertionError(f"too many redirects for {args}")


def shoal_cli(*args):
    return subprocess.run([find_binary(), *args], capture_output=True, text=True, timeout=30)


def leave(node, force=False):
    argv = ["leave", "--node", f"127.0.0.1:{node.http_port}"]
    if force:
        argv.append("--force")
    r = shoal_cli(*argv)
    if r.returncode != 0:
        raise AssertionError(f"shoal {' '.join(argv)}: {r.returncode}\n{r.stdout}\n{r.stderr}")


def key_owned_by(owners, node, prefix):
    addr = f"127.0.0.1:{node.port}"
    for i in range(100000):
        k = f"{prefix}{i}"
        if owners[key_slot(k)] == addr:
            return k
    raise AssertionError(f"no key of {node.name}")


def write_small(nodes, owners, count):
    """SETs k:i = v:i on each key's owner, pipelined; returns the keys."""
    ports = by_port(nodes)
    groups = {}
    for i in range(count):
        k = f"k:{i}"
        groups.setdefault(owners[key_slot(k)], []).append(k)
    for addr, keys in groups.items():
        with ports[addr].client() as c:
            pipe = c.pipeline(transaction=False)
            for k in keys:
                pipe.set(k, "v:" + k[2:])
            assert all(r is True for r in pipe.execute())
    return [f"k:{i}" for i in range(count)]


KEPT = re.compile(r"exiting with (\d+) bucket\(s\) \((.*?)\) and about (\d+) keys kept here")


class LeaveClusterTest(unittest.TestCase):
    """A fresh cluster per test: one node per entry of `specs` (ClusterNode kwargs)."""

    specs = [{}, {}, {}]

    def setUp(self):
        self.nodes = start_nodes(self.specs)
        self.addCleanup(self._stop)
        wait_settled(self.nodes, timeout=SETTLE_TIMEOUT)

    def _stop(self):
        for n in self.nodes:
            n.stop()


class AllLeavingTest(LeaveClusterTest):
    def test_every_node_exits_and_logs_what_it_kept(self):
        # A leave request with a body that is not {"force": bool} is refused, and leaves nothing.
        for body in (b'{"force": "yes"}', b"[1]", b"{"):
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.nodes[0].http_port}/api/v1/leave", data=body,
                method="POST", headers={"Content-Type": "application/json"})
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req, timeout=10)
            self.assertEqual(cm.exception.code, 400, body)
        self.assertTrue(self.nodes[0].alive())
        self.assertNotIn("leave requested", self.nodes[0].log())
        owners = slot_owners(self.nodes[0])
        write_small(self.nodes, owners, 1000)
        for n in self.nodes:
            n.send_sigterm()
        # Bounded: each stops once its migrations in flight end (RPC timeouts of a few seconds).
        deadline = time.monotonic() + 60
        rcs = [n.wait_exit(timeout=max(1.0, deadline - time.monotonic())) for n in self.nodes]
        self.assertEqual(rcs, [0, 0, 0], f"exit statuses\n{all_logs(self.nodes)}")
        kept = 0
        for n in self.nodes:
            log = n.log()
            m = KEPT.search(log)
            if m is None:
                self.assertIn("buckets handed over", log, f"{n.name} logged neither\n{log}")
                continue
            self.assertIn("no member that is not leaving can take the remaining buckets", log)
            kept += int(m.group(1))
        self.assertGreater(kept, 0, all_logs(self.nodes))
        self.assertLessEqual(kept, NUM_BUCKETS)


class StuckLeaveTest(LeaveClusterTest):
    """The leaver (node 1, the seed) holds a value the others refuse (their maxmemory)."""

    VALUE = 20 << 20
    specs = [{}, {"maxmemory": "16mb"}, {"maxmemory": "16mb"}]

    def setUp(self):
        super().setUp()
        self.leaver = self.nodes[0]
        owners = slot_owners(self.nodes[0])
        self.big_key = key_owned_by(owners, self.leaver, "big:")
        with self.leaver.client(socket_timeout=60) as c:
            self.assertTrue(c.set(self.big_key, b"x" * self.VALUE))
        self.small = write_small(self.nodes, owners, 2000)

    def wait_retrying(self):
        """The leaver hands over all but the stuck batch, stays up and reports it twice."""
        leaver = self.leaver
        try:
            wait_until(lambda: leaver.log().count("still holding") >= 2 or not leaver.alive(),
                       timeout=60, message="two progress reports")
        except AssertionError as e:
            self.fail(f"{e}\n{all_logs(self.nodes)}")
        self.assertTrue(leaver.alive(), f"the leaver exited\n{all_logs(self.nodes)}")
        log = leaver.log()
        self.assertIn("exceeds this node's limit", log)
        served = leaver.cluster_info()["buckets_served"]
        self.assertGreater(served, 0)
        self.assertLessEqual(served, 256, "only the batch with the big key stays")
        for n in self.nodes[1:]:
            self.assertTrue(n.alive())

    def check_forced_exit(self):
        rc = self.leaver.wait_exit(timeout=30)
        log = self.leaver.log()
        self.assertEqual(rc, 0, f"exit status after the force\n{all_logs(self.nodes)}")
        m = KEPT.search(log)
        self.assertIsNotNone(m, log[-5000:])
        self.assertIn("leave forced", log)
        self.assertGreater(int(m.group(1)), 0)
        self.assertGreater(int(m.group(3)), 0)  # the big key at least
        # Everything else went over: the others serve at least every bucket but the kept ones
        # (on a slow build they may already have adopted the kept ones too, left by their owner).
        rest = self.nodes[1:]
        wait_until(lambda: sum(n.cluster_info()["buckets_served"] for n in rest) >=
                   NUM_BUCKETS - int(m.group(1)), timeout=60, message="the rest served")

    def test_sigterm_leave_retries_until_forced_by_the_cli(self):
        self.leaver.send_sigterm()
        self.wait_retrying()
        leave(self.leaver, force=True)
        self.check_forced_exit()

    def test_cli_leave_retries_until_forced_by_a_second_sigterm(self):
        leave(self.leaver)
        self.wait_retrying()
        self.leaver.send_sigterm()
        self.check_forced_exit()


class BusyWorkerLeaveTest(LeaveClusterTest):
    specs = [{"settings": {"enable-debug-command": "local"}}, {}]

    def test_sigterm_starts_the_leave_while_a_worker_is_busy(self):
        leaver = self.nodes[0]
        owners = slot_owners(leaver)
        key = key_owned_by(owners, leaver, "a" * 60 + ":")
        with leaver.client() as c:
            c.set(key, "x")
        # DEBUG SLEEP holds the node's only worker far longer than this test.
        busy = leaver.raw(timeout=5)
        self.addCleanup(busy.close)
        busy.sendall(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$2\r\n60\r\n")

        def worker_busy():  # one worker: a PING on a new connection goes unanswered
            try:
                with leaver.client(socket_timeout=0.5) as c:
                    c.ping()
                return False
            except redis.TimeoutError:
                return True

        wait_until(worker_busy, timeout=10, message="the worker busy with DEBUG SLEEP")
        leaver.send_sigterm()
        try:
            wait_until(lambda: "signal 15 received" in leaver.log(), timeout=5,
                       message="the signal logged")
            wait_until(lambda: "still holding" in leaver.log(), timeout=15,
                       message="a progress report of the leave")
        except AssertionError as e:
            self.fail(f"{e}\n{all_logs(self.nodes)}")
        self.assertTrue(leaver.alive())
        leaver.send_sigterm()
        try:
            wait_until(lambda: "leave forced" in leaver.log(), timeout=10,
                       message="the forced leave logged")
        except AssertionError as e:
            self.fail(f"{e}\n{all_logs(self.nodes)}")
        self.assertRegex(leaver.log(), KEPT)


if __name__ == "__main__":
    unittest.main()
