"""System test of a cluster's memory of itself: real `shoal serve` processes on loopback.

RememberedPeersTest (3 nodes, each with a data dir; node 1 is everyone's seed and has no seeds):
  1. Every node writes the other two's cluster addresses to <data-dir>/peers.
  2. kill -9 of node 1, restart without --seeds: it rejoins the others through its remembered
     peers instead of forming a cluster of its own; 101 writes acknowledged through it right
     after the restart are all still there once the cluster settles, and no node ever dropped a
     duplicate bucket (cluster_formed_alone:0 everywhere).
  3. The same after a graceful leave (SIGTERM hands node 1's buckets over first).
  4. All its peers down (kill -9 of nodes 2 and 3, then of node 1): restarted, node 1 owns no
     bucket, says cluster_state:fail and answers writes with CLUSTERDOWN, and logs that it keeps
     trying its remembered peers (checked after the point where a node given only --seeds would
     have formed a cluster alone).
  5. Restarted with --new-cluster it forms a new cluster, and says so (log warning and
     cluster_formed_alone:1).

ClusterStateTest (3 nodes with data dirs): kill -9 of two nodes; the survivor (which remembers
them, so adopts nothing alone) reports cluster_state:fail and counts every bucket it does not own
as not ok; both return and the state is ok again.

RequirepassMismatchTest (2 nodes with different requirepass): each warns about the other in its
log and counts it in INFO membership (requirepass_mismatched_peers:1); after CONFIG SET makes
the passwords equal the count falls to 0.

Every process is started here and killed by its pid; waits poll with deadlines.
"""

import os
import shutil
import tempfile
import time
import unittest

from shoal_harness import (NUM_BUCKETS, ClusterNode, RespError, parse_info, start_cluster, step,
                           wait_settled, wait_until)

COOKIE = "rejoin-test-cookie"
SETTLE_TIMEOUT = 40.0
DEATH_TIMEOUT = 30.0


def all_logs(nodes):
    return "\n".join(f"--- {n.name} (port {n.port}, cluster {n.cluster_port}) ---\n{n.log()}"
                     for n in nodes)


def read_peers(node):
    path = os.path.join(node.data_dir, "peers")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return set(lines[1:-1]) if lines and lines[-1].startswith("end ") else None


def sharding_info(node):
    return node.info("sharding") or {}


def set_until_acknowledged(node, key, value, timeout=30.0):
    """SETs through `node`, retrying errors (CLUSTERDOWN, TRYAGAIN, forwarding errors) until OK."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = node.command("SET", key, value)
            if last == b"OK" or last == "OK":
                return
        except (OSError, EOFError) as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"SET {key} through {node.name} never acknowledged: {last}")


class RejoinCase(unittest.TestCase):
    count = 3
    broken = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shoal-rejoin-")
        cls.nodes = start_cluster(cls.count, cookie=COOKIE, prefix=cls.prefix, data_root=cls.tmp)
        try:
            wait_settled(cls.nodes, timeout=SETTLE_TIMEOUT)
        except BaseException:
            log = all_logs(cls.nodes)
            cls.tearDownClass()
            raise AssertionError(f"{cls.__name__}: cluster did not form\n{log}")

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.stop()
        log_dir = os.environ.get("SHOAL_TEST_LOG_DIR")
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
            for n in cls.nodes:
                with open(os.path.join(log_dir, f"rejoin-{n.name}.log"), "a") as f:
                    f.write(n.log())
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def logs(self):
        return all_logs(self.nodes)

    def wait_peers_files(self):
        for n in self.nodes:
            want = {o.cluster_address for o in self.nodes if o is not n}
            wait_until(lambda: (read_peers(n) or set()) >= want, timeout=15,
                       message=f"{n.name}'s peers file lists {want}")


class RememberedPeersTest(RejoinCase):
    prefix = "rp"

    @step
    def test_1_peers_file_lists_the_others(self):
        self.assertEqual(self.nodes[0].seeds, [])
        self.wait_peers_files()

    def restart_and_write_through_it(self, tag):
        node1 = self.nodes[0]
        node1.start(keep_ports=True)
        info = sharding_info(node1)
        self.assertEqual(info.get("remembered_peers"), "2", info)
        # Written right away, while it is still finding its peers: every acknowledged write must
        # survive (a node that formed a cluster alone would have its copy dropped later).
        items = [(f"{tag}:{i}", f"v{i}") for i in range(101)]
        for k, v in items:
            set_until_acknowledged(node1, k, v)
        try:
            wait_settled(self.nodes, timeout=SETTLE_TIMEOUT)
        except AssertionError as e:
            self.fail(f"{e}\n{self.logs()}")
        for n in self.nodes:
            with n.client() as c:
                got = c.mget([k for k, _ in items])
            self.assertEqual(got, [v.encode() for _, v in items], f"values through {n.name}")
            info = sharding_info(n)
            self.assertEqual(info.get("buckets_dropped_duplicates"), "0", f"{n.name}: {info}")
            self.assertEqual(info.get("cluster_formed_alone"), "0", f"{n.name}: {info}")
        self.assertIn("rejoining the cluster", node1.log())

    @step
    def test_2_kill9_then_restart_without_seeds_rejoins(self):
        node1 = self.nodes[0]
        node1.kill9()
        try:
            wait_settled(self.nodes[1:], timeout=DEATH_TIMEOUT)
        except AssertionError as e:
            self.fail(f"{e}\n{self.logs()}")
        self.restart_and_write_through_it("after-kill")

    @step
    def test_3_graceful_leave_then_restart_without_seeds_rejoins(self):
        node1 = self.nodes[0]
        node1.send_sigterm()
        self.assertEqual(node1.wait_exit(timeout=60), 0, node1.log())
        try:
            wait_settled(self.nodes[1:], timeout=SETTLE_TIMEOUT)
        except AssertionError as e:
            self.fail(f"{e}\n{self.logs()}")
        self.restart_and_write_through_it("after-leave")

    @step
    def test_4_with_every_peer_down_it_claims_nothing(self):
        self.wait_peers_files()
        for n in self.nodes[1:]:
            n.kill9()
        node1 = self.nodes[0]
        node1.kill9()
        node1.start(keep_ports=True)
        # Logged after 10 s alone: past the point where a node with only --seeds adopts.
        wait_until(lambda: "none of the 2 remembered peer(s) answers yet" in node1.log(),
                   timeout=30, message="the lone node's warning")
        info = node1.cluster_info()
        self.assertEqual(info["buckets_served"], 0, info)
        cinfo = parse_info(node1.command("CLUSTER", "INFO"))
        self.assertEqual(cinfo["cluster_state"], "fail", cinfo)
        self.assertEqual(cinfo["cluster_slots_ok"], "0", cinfo)
        reply = node1.command("SET", "k", "v")
        self.assertIsInstance(reply, RespError)
        self.assertTrue(str(reply).startswith("CLUSTERDOWN"), reply)
        self.assertEqual(sharding_info(node1).get("cluster_formed_alone"), "0")

    @step
    def test_5_new_cluster_forms_alone_and_says_so(self):
        node1 = self.nodes[0]
        node1.kill9()
        node1.settings["new-cluster"] = "yes"
        try:
            node1.start(keep_ports=True)
        finally:
            del node1.settings["new-cluster"]
        wait_until(lambda: node1.cluster_info()["buckets_served"] == NUM_BUCKETS, timeout=15,
                   message="the new cluster's buckets")
        wait_until(lambda: sharding_info(node1).get("cluster_formed_alone") == "1", timeout=5,
                   message="cluster_formed_alone:1")
        # INFO's flag is set just before the warning is written.
        wait_until(lambda: "FORMED A NEW CLUSTER ON ITS OWN" in node1.log(), timeout=5,
                   message="the new-cluster warning in the log")
        self.assertIn("forgetting the 2 peer(s)", node1.log())
        self.assertEqual(node1.command("SET", "k", "v"), b"OK")
        wait_until(lambda: parse_info(node1.command("CLUSTER", "INFO"))["cluster_state"] == "ok",
                   timeout=15, message="cluster_state:ok on the new cluster")


class ClusterStateTest(RejoinCase):
    prefix = "cs"

    @step
    def test_1_state_fails_while_buckets_have_no_live_owner(self):
        self.wait_peers_files()
        survivor = self.nodes[0]
        own = survivor.cluster_info()["buckets_served"]
        self.assertLess(own, NUM_BUCKETS)
        for n in self.nodes[1:]:
            n.kill9()

        def failed():
            c = parse_info(survivor.command("CLUSTER", "INFO"))
            return (c["cluster_state"] == "fail" and int(c["cluster_slots_ok"]) == own
                    and NUM_BUCKETS - own ==
                    int(c["cluster_slots_fail"]) + NUM_BUCKETS - int(c["cluster_slots_assigned"]))
        try:
            wait_until(failed, timeout=DEATH_TIMEOUT, message="cluster_state:fail")
        except AssertionError as e:
            self.fail(f"{e}: {survivor.command('CLUSTER', 'INFO')}\n{self.logs()}")

    @step
    def test_2_state_is_ok_again_when_they_return(self):
        for n in self.nodes[1:]:
            n.start(keep_ports=True)
        try:
            wait_settled(self.nodes, timeout=SETTLE_TIMEOUT)
        except AssertionError as e:
            self.fail(f"{e}\n{self.logs()}")
        for n in self.nodes:
            c = parse_info(n.command("CLUSTER", "INFO"))
            self.assertEqual(c["cluster_state"], "ok", f"{n.name}: {c}")
            self.assertEqual(c["cluster_slots_ok"], str(NUM_BUCKETS), f"{n.name}: {c}")


class RequirepassMismatchTest(unittest.TestCase):
    def test_differing_requirepass_is_warned_about(self):
        a = ClusterNode("pw-a", cookie=COOKIE, requirepass="alpha")
        nodes = [a]
        try:
            a.start()
            b = ClusterNode("pw-b", cookie=COOKIE, seeds=[a.cluster_address], requirepass="beta")
            nodes.append(b)
            b.start()
            c = ClusterNode("pw-c", cookie=COOKIE, seeds=[a.cluster_address])  # none at all
            nodes.append(c)
            c.start()

            def mismatched(n):
                with n.client(socket_timeout=2) as cl:
                    return int(cl.info("membership")["requirepass_mismatched_peers"])
            for n in nodes:
                wait_until(lambda: mismatched(n) == 2, timeout=20,
                           message=f"{n.name} counts 2 mismatched peers")
                self.assertIn("has a different requirepass", n.log())
                self.assertNotIn("alpha", n.log())
                self.assertNotIn("beta", n.log())
            self.assertIn("none here, set there", c.log())
            with b.client() as cl:
                cl.config_set("requirepass", "alpha")
            b.requirepass = "alpha"
            wait_until(lambda: mismatched(a) == 1 and mismatched(b) == 1, timeout=20,
                       message="a and b agree after CONFIG SET")
            self.assertEqual(mismatched(c), 2)
        except BaseException:
            print(all_logs(nodes))
            raise
        finally:
            for n in nodes:
                n.stop()


if __name__ == "__main__":
    unittest.main()
