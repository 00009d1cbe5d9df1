"""System test of cluster membership (SWIM over UDP + authenticated RPC over TCP) on loopback.

Five real `shoal serve` processes form a cluster through one seed (node 1), then the test crashes
one (kill -9) and checks the others declare it dead within 10 s, restarts it from the same data
dir (same id, higher incarnation), starts an impostor with the wrong cookie (it must not get in),
and stops one with SIGTERM (a graceful leave). Membership is read through INFO membership and
through the admin HTTP API (GET /api/v1/members), which every member runs.

The steps share one cluster and run in order (test_1_... to test_6_...); once a step fails the
later ones are skipped rather than failing for the same cause. Every process is started by this
file and killed by its pid in tearDownClass. The measured times (death detection, leave, ...) are
printed at the end; SHOAL_TEST_LOG_DIR=dir keeps every node's log.

The same over network namespaces is netns_membership.sh (ctest system_netns_membership).
"""

import json
import os
import shutil
import socket
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from shoal_harness import ClusterNode, parse_info, step, wait_until

COOKIE = "membership-test-cookie"
WRONG_COOKIE = "not-the-membership-test-cookie"
N = 5
# The requirement: a crashed node is declared dead by every other node within this.
DEATH_DEADLINE = 10.0
# How long the test polls before giving up (more than the requirement, so a slow detection is
# reported with its measured time instead of as a bare timeout).
POLL_TIMEOUT = 20.0
IMPOSTOR_WATCH = 5.0


class ClusterMember(ClusterNode):
    """A harness ClusterNode with a data dir and the admin HTTP API on."""

    def __init__(self, name, *, cookie, data_dir, seeds=(), **kw):
        super().__init__(name, cookie=cookie, seeds=seeds, data_dir=data_dir, http=True, **kw)

    def membership(self):
        """INFO membership as a dict of strings; None if the node does not answer."""
        try:
            with self.client(socket_timeout=2) as c:
                raw = c.execute_command("INFO", "membership")
        except Exception:
            return None
        if isinstance(raw, bytes):
            raw = raw.decode()
        if isinstance(raw, dict):  # redis-py may already parse INFO
            return {k: str(v) for k, v in raw.items()}
        return parse_info(raw)

    def http_get(self, path, timeout=3.0):
        """(status, parsed JSON or None); None if nothing listens on the HTTP port."""
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                body = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None


def counts(info):
    return {s: int(info.get(f"members_{s}", -1)) for s in ("alive", "suspect", "dead", "left")}


class MembershipTest(unittest.TestCase):
    broken = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shoal-membership-")
        cls.nodes = []
        cls.extra = []  # processes started by steps (the impostor)
        cls.timings = {}  # seconds, printed at the end
        cls.counters = {}
        try:
            seed = None
            for i in range(1, N + 1):
                node = ClusterMember(f"node{i}", cookie=COOKIE,
                                     data_dir=os.path.join(cls.tmp, f"node{i}"),
                                     seeds=[seed] if seed else [])
                node.start()
                cls.nodes.append(node)
                if seed is None:
                    seed = node.cluster_address
        except BaseException:
            cls._stop_all()
            raise

    @classmethod
    def _stop_all(cls):
        for node in cls.nodes + cls.extra:
            node.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        log_dir = os.environ.get("SHOAL_TEST_LOG_DIR")  # keep every node's log for a post-mortem
        for node in cls.nodes + cls.extra:
            node.stop()
            if log_dir:
                os.makedirs(log_dir, exist_ok=True)
                with open(os.path.join(log_dir, f"{node.name}.log"), "a") as f:
                    f.write(node.log())
        cls._stop_all()
        if cls.timings:
            print("\nmembership timings: " +
                  ", ".join(f"{k}={v:.2f}s" for k, v in cls.timings.items()) +
                  "".join(f", {k}={v}" for k, v in cls.counters.items()), flush=True)

    # -- helpers ----------------------------------------------------------------------------

    def running(self, exclude=()):
        return [n for n in self.nodes if n.alive() and n not in exclude]

    def logs(self, nodes=None):
        out = []
        for n in nodes or (self.nodes + self.extra):
            out.append(f"--- {n.name} (port {n.port}, cluster {n.cluster_port}) ---\n{n.log()}")
        return "\n".join(out)

    def views(self, nodes):
        return {n.name: n.membership() for n in nodes}

    def describe(self, nodes):
        parts = []
        for name, info in self.views(nodes).items():
            parts.append(f"{name}: {counts(info) if info else 'no answer'}")
        return "; ".join(parts)

    def wait_all(self, nodes, want, timeout=POLL_TIMEOUT, what="membership"):
        """Polls until every node in `nodes` reports exactly the counts in `want` (a dict over
        alive/suspect/dead/left; missing keys mean 0). Returns the seconds it took."""
        want = {s: want.get(s, 0) for s in ("alive", "suspect", "dead", "left")}
        t0 = time.monotonic()

        def ok():
            for n in nodes:
                info = n.membership()
                if info is None or counts(info) != want:
                    return False
            return True

        try:
            wait_until(ok, timeout=timeout, interval=0.05, message=what)
        except AssertionError:
            self.fail(f"{what}: wanted {want} on {[n.name for n in nodes]} within {timeout}s; "
                      f"now {self.describe(nodes)}\n{self.logs()}")
        return time.monotonic() - t0

    def check_http_members(self, node, expected_states):
        """GET /api/v1/members on `node` (every member runs the admin API) matches
        `expected_states` ({node_id: state})."""
        got = node.http_get("/api/v1/members")
        self.assertIsNotNone(got, f"GET /api/v1/members on {node.name}: no answer")
        status, body = got
        self.assertEqual(status, 200, f"GET /api/v1/members on {node.name}: {body}")
        self.assertIsInstance(body, dict)
        members = body.get("members")
        self.assertIsInstance(members, list, body)
        states = {m["id"]: m["state"] for m in members}
        self.assertEqual(len(members), len(states), f"duplicate ids: {members}")
        self.assertEqual(states, expected_states, f"members seen by {node.name}: {members}")
        for m in members:
            self.assertIn(m["state"], ("alive", "suspect", "dead", "left"))
            self.assertIsInstance(m["incarnation"], int)
            self.assertRegex(m["id"], r"^[0-9a-f]{32}$")
            self.assertRegex(m["address"], r"^127\.0\.0\.1:\d+$")

    def wait_http_members(self, nodes, expected_states, timeout=POLL_TIMEOUT):
        """check_http_members on every node, polled until it holds (the view converges)."""
        deadline = time.monotonic() + timeout
        for node in nodes:
            while True:
                try:
                    self.check_http_members(node, expected_states)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    # -- steps ------------------------------------------------------------------------------

    @step
    def test_1_five_nodes_form_a_cluster_through_one_seed(self):
        # Usually well under a second; a member that misses the seed's gossip of a joiner only
        # learns of it at its next push-pull (the first one falls anywhere in 0-30 s).
        took = self.wait_all(self.nodes, {"alive": N}, timeout=30.0, what="cluster formation")
        self.timings["formation_after_last_start"] = took
        ids = {}
        for n in self.nodes:
            info = n.membership()
            self.assertRegex(info["node_id"], r"^[0-9a-f]{32}$")
            self.assertEqual(info["node_address"], n.cluster_address)
            self.assertEqual(info["incarnation"], "0", f"{n.name}: first start is incarnation 0")
            self.assertEqual(info["rpc_handshake_failures"], "0", n.name)
            self.assertEqual(info["swim_bad_auth_packets"], "0", n.name)
            ids[n.name] = info["node_id"]
        self.assertEqual(len(set(ids.values())), N, f"node ids are not distinct: {ids}")
        type(self).ids = ids
        # The identity is kept in the data dir.
        for n in self.nodes:
            with open(os.path.join(n.data_dir, "node.id")) as f:
                self.assertEqual(f.read().strip(), ids[n.name])

    @step
    def test_2_crashed_node_is_declared_dead_within_10s(self):
        victim = self.nodes[2]  # node3: not the seed
        others = self.running(exclude=[victim])
        self.wait_all(self.nodes, {"alive": N}, what="all alive before the crash")
        before = victim.membership()
        type(self).victim_before = before
        t_kill = time.monotonic()
        victim.kill9()
        self.wait_all(others, {"alive": N - 1, "dead": 1},
                      what="crashed node declared dead by all others")
        detect = time.monotonic() - t_kill
        self.timings["death_detected_by_all"] = detect
        self.assertLessEqual(detect, DEATH_DEADLINE,
                             f"crashed node declared dead by all after {detect:.2f}s "
                             f"(requirement: {DEATH_DEADLINE}s)")
        # The log says which member died.
        for n in others:
            self.assertIn(f"cluster: member {before['node_id']} at {victim.cluster_address} is dead",
                          n.log(), n.name)
        states = {i: "alive" for i in self.ids.values()}
        states[before["node_id"]] = "dead"
        self.wait_http_members(others, states)

    @step
    def test_3_restarted_node_keeps_its_id_with_a_higher_incarnation(self):
        victim = self.nodes[2]
        before = self.victim_before
        t0 = time.monotonic()
        victim.start(keep_ports=True)
        after = victim.membership()
        self.assertEqual(after["node_id"], before["node_id"], "restart from the same data dir")
        self.assertGreater(int(after["incarnation"]), int(before["incarnation"]))
        self.wait_all(self.nodes, {"alive": N}, what="restarted node alive again on every node")
        self.timings["rejoin_after_restart"] = time.monotonic() - t0
        # Every other node logged the comeback. (The node may have had to refute a suspicion
        # since it started, so its incarnation can be above its start incarnation by now.)
        for n in self.running(exclude=[victim]):
            self.assertRegex(n.log(), rf"cluster: member {before['node_id']} at "
                             rf"{victim.cluster_address} is (alive|joined|updated) "
                             rf"\(incarnation [1-9]\d*\)", n.name)
        now_inc = int(victim.membership()["incarnation"])
        if now_inc != int(after["incarnation"]):
            print(f"\nnote: restarted node started at incarnation {after['incarnation']} and is "
                  f"at {now_inc} now (it refuted a suspicion)", flush=True)
        self.counters["restart_extra_refutations"] = now_inc - int(after["incarnation"])
        self.wait_http_members(self.nodes, {i: "alive" for i in self.ids.values()})

        # Every node (admin API) holds the victim's current incarnation.
        def same_incarnation():
            want = int(victim.membership()["incarnation"])
            for n in self.nodes:
                got = n.http_get("/api/v1/members")
                if got is None or got[0] != 200:
                    return False
                inc = {m["id"]: m["incarnation"] for m in got[1]["members"]}
                if inc[before["node_id"]] != want:
                    return False
            return True
        wait_until(same_incarnation, timeout=POLL_TIMEOUT, interval=0.05,
                   message="every node holding the restarted node's incarnation")

    @step
    def test_4_node_with_the_wrong_cookie_is_kept_out(self):
        seed = self.nodes[0]
        base = seed.membership()
        impostor = ClusterMember("impostor", cookie=WRONG_COOKIE,
                                 data_dir=os.path.join(self.tmp, "impostor"),
                                 seeds=[seed.cluster_address])
        self.extra.append(impostor)
        impostor.start()
        # Its INFO shows its id once the control thread has published its first view to the
        # workers (a moment after the port opens; longer under TSan).
        impostor_info = {}
        deadline = time.monotonic() + 10
        while "node_id" not in impostor_info and time.monotonic() < deadline:
            impostor_info = impostor.membership() or {}
            if "node_id" not in impostor_info:
                time.sleep(0.05)
        impostor_id = impostor_info["node_id"]
        rejected = False
        deadline = time.monotonic() + IMPOSTOR_WATCH
        while time.monotonic() < deadline:
            for n in self.nodes:
                info = n.membership()
                self.assertIsNotNone(info, f"{n.name} stopped answering")
                # Exactly the five members, whatever their states: the impostor never gets in.
                # (Not necessarily all alive: a node may still be refuting a stale suspicion.)
                total = sum(counts(info).values())
                self.assertEqual(total, N, f"{n.name} while the impostor runs: {counts(info)}\n"
                                 f"{self.logs()}")
            info = impostor.membership()
            self.assertEqual(counts(info), {"alive": 1, "suspect": 0, "dead": 0, "left": 0},
                             f"the impostor sees others: {info}\n{impostor.log()}")
            s = seed.membership()
            if (int(s["rpc_handshake_failures"]) > int(base["rpc_handshake_failures"]) or
                    int(s["swim_bad_auth_packets"]) > int(base["swim_bad_auth_packets"])):
                rejected = True
            time.sleep(0.1)
        s = seed.membership()
        self.assertTrue(rejected, f"the seed counted no rejected handshake or packet: {s}")
        for k in ("rpc_handshake_failures", "swim_bad_auth_packets"):
            self.counters[f"seed_{k}_during_impostor"] = int(s[k]) - int(base[k])
        for n in self.nodes:
            self.assertNotIn(impostor_id, n.log(), f"{n.name} logged the impostor")
        self.assertNotIn("is joined", impostor.log())
        impostor.stop()
        self.wait_all(self.nodes, {"alive": N}, what="all alive after the impostor")
        self.wait_http_members(self.nodes, {i: "alive" for i in self.ids.values()})

    @step
    def test_5_sigterm_leaves_gracefully(self):
        leaver = self.nodes[4]  # node5
        others = self.running(exclude=[leaver])
        self.wait_all(self.nodes, {"alive": N}, what="all alive before the leave")
        t0 = time.monotonic()
        leaver.send_sigterm()
        # Polled while the node is still shutting down: the leave must spread before it exits.
        self.wait_all(others, {"alive": N - 1, "left": 1}, timeout=10.0,
                      what="left node reported as left by all others")
        self.timings["leave_seen_by_all_after_sigterm"] = time.monotonic() - t0
        rc = leaver.wait_exit()
        self.timings["exit_after_sigterm"] = time.monotonic() - t0
        self.assertEqual(rc, 0, f"exit status after SIGTERM\n{leaver.log()}")
        for n in others:
            self.assertIn(f"cluster: member {self.ids[leaver.name]} at {leaver.cluster_address} "
                          f"is left", n.log(), n.name)

    @step
    def test_6_http_members_match_info(self):
        leaver = self.nodes[4]
        others = self.running(exclude=[leaver])
        expected = {i: "alive" for i in self.ids.values()}
        expected[self.ids[leaver.name]] = "left"
        got = others[0].http_get("/health")
        self.assertIsNotNone(got, "GET /health: no answer")
        self.assertEqual(got[0], 200, got)
        self.wait_http_members(others, expected)
        for n in others:
            info = n.membership()
            status, body = n.http_get("/api/v1/members")
            self.assertEqual(status, 200)
            by_id = {m["id"]: m for m in body["members"]}
            me = by_id[info["node_id"]]
            self.assertEqual(me["address"], info["node_address"], n.name)
            self.assertEqual(me["incarnation"], int(info["incarnation"]), n.name)
            self.assertEqual(me["state"], "alive")
            if "self" in me:
                self.assertTrue(me["self"], n.name)
            # Every running node is listed at its cluster address under the id INFO gives.
            for peer in others:
                self.assertEqual(by_id[self.ids[peer.name]]["address"], peer.cluster_address)
            self.assertEqual(sum(counts(info).values()), len(body["members"]))


if __name__ == "__main__":
    unittest.main()
