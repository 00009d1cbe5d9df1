"""System test of the messaging bus over RESP (and the embedded C++ API) on a 3-node cluster.

One cluster of three `shoal serve` processes with two workers each (started by the first test
class, killed by pid in tearDownModule) serves every test; each test uses channel and exchange
names of its own.

PubSubTest — Redis pub-sub, cluster-wide (redis-py and raw sockets):
  * subscribers on all three nodes (SUBSCRIBE, PSUBSCRIBE), PUBLISH on node 1: the integer reply
    is the cluster-wide receiver count, each subscriber gets the message exactly once (checked by
    a marker published afterwards: the next message must be the marker), pattern subscribers get
    pmessage with their pattern, and a client subscribed to a channel and a matching pattern
    gets both (as Redis);
  * a PUBLISH on another node right after SUBSCRIBE returned reaches the subscriber (no sleep in
    between: that is the guarantee SUBSCRIBE gives) — also for a node's second subscriber of a
    channel and for a re-subscription right after UNSUBSCRIBE;
  * UNSUBSCRIBE (and closing) stops delivery; PUBSUB CHANNELS [pattern] / NUMSUB / NUMPAT are
    cluster-wide; glob patterns; binary payloads;
  * SSUBSCRIBE / SPUBLISH; RESP2 subscribed mode refuses GET with Redis's text and answers PING
    with [pong, ""]; RESP3 (HELLO 3 on a raw socket: redis-py 4.3 has no RESP3) gets '>' pushes.

RequestResponseTest — BUS.* request-response with Python handlers served over RESP (a thread per
handler on a raw socket: BUS.SERVE, then pushes ["bus.request", exchange, id, key, payload, tag,
group] answered with BUS.REPLY, whose +OK replies interleave with the pushes):
  * the issue's test: a Python handler served on node 3 answers requests from redis-cli (node 1)
    and from the C++ caller examples/bus_client (an embedded node joining through node 1);
  * TAG comes back ([tag, payload]); BUS.REPLY id ERROR msg gives the caller "HANDLERERR msg"; no
    handler gives NOHANDLER at once; a handler that never answers gives TIMEOUT after the TIMEOUT
    option (its late BUS.REPLY is acknowledged and counted, and the caller counts the
    timeout); round_robin alternates over two handlers;
    broadcast returns every handler's reply; sticky keeps a key on its handler; groups;
    BUS.HANDLERS lists the leader first; on a leader exchange, closing the leader's connection
    makes the next handler leader everywhere (and it gets a "leader" event push); requests no
    longer route to a closed handler, and the requests a handler held when its connection closed
    (or it ran BUS.UNSERVE) fail at once with UNREACHABLE; binary and 2 MiB payloads; a RESP3
    handler gets '>' pushes.

BusPubSubTest — BUS.PUBLISH / BUS.SUBSCRIBE with NATS patterns ('orders.*', 'orders.>').

BadInputTest — unknown exchange, wrong pattern, invalid subject pattern, BUS.REPLY of an unknown
id, wrong arity, bad options: each a clear error, and every node still answers PING.

Readiness and propagation are polled with deadlines (never slept on). The C++ caller is taken
from SHOAL_BUS_CLIENT (set by ctest: the test fails if it is not built), or else next to the
shoal binary (both are built into the build directory's root), and skipped if missing.
SHOAL_TEST_LOG_DIR=dir keeps the nodes' logs.
"""

import itertools
import os
import shutil
import socket
import subprocess
import threading
import time
import unittest


from shoal_harness import (RespError, RespReader, encode_command, find_binary, free_cluster_port,
                           free_port, parse_info, start_cluster, wait_until)

COOKIE = "bus-test-cookie"
POLL_TIMEOUT = 10.0  # registry propagation, membership formation: normally well under a second
MSG_TIMEOUT = 5.0    # a message that must arrive

_names = itertools.count(1)


def unique(prefix):
    """A channel/exchange name no other test uses."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


def text(v):
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, list):
        return [text(x) for x in v]
    return v


def bus_client_binary():
    """The examples/bus_client binary: SHOAL_BUS_CLIENT (set by ctest; then it must exist), or
    next to the shoal binary; None if neither."""
    path = os.environ.get("SHOAL_BUS_CLIENT")
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise AssertionError(f"SHOAL_BUS_CLIENT={path!r} is not an executable: build the "
                                 "bus_client target")
        return path
    try:
        path = os.path.join(os.path.dirname(find_binary()), "bus_client")
    except RuntimeError:
        return None
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


class Conn:
    """A raw RESP connection to a node: commands and pushes read with RespReader. In RESP2 a push
    is an array whose first element names it (message, pmessage, bus.request, ...)."""

    def __init__(self, node, timeout=MSG_TIMEOUT):
        self.sock = node.raw(timeout)
        self.reader = RespReader(self.sock, timeout)

    def send(self, *args):
        self.sock.sendall(encode_command(*args))

    def read(self):
        return self.reader.read()

    def read_typed(self):
        return self.reader.read_typed()

    def command(self, *args):
        self.send(*args)
        return self.read()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class PyHandler:
    """A bus handler written in Python, served over RESP (RESP2) on one node: a thread reads the
    pushes and answers each request with `answer(request)`, which returns ("ok", payload),
    ("error", message) or None (never answer). BUS.REPLY's own replies (+OK or an error) are
    collected in `reply_results`; events in `events`; requests in `requests`."""

    def __init__(self, node, exchange, tag, *, group=None, answer=None):
        self.node = node
        self.exchange = exchange
        self.tag = tag
        self.answer = answer or (lambda req: ("ok", f"{tag}:".encode() + req["payload"]))
        self.sock = node.raw(MSG_TIMEOUT)
        self.reader = RespReader(self.sock, MSG_TIMEOUT)
        self.lock = threading.Lock()  # sendall from the reader thread and from the test
        self.cond = threading.Condition()
        self.requests, self.events, self.reply_results, self.others = [], [], [], []
        self.closed = False
        args = ["BUS.SERVE", exchange, "TAG", tag]
        if group is not None:
            args += ["GROUP", group]
        self.sock.sendall(encode_command(*args))
        while True:  # the handler id (pushes could only be events, kept)
            reply = self.reader.read()
            if isinstance(reply, list) and reply and reply[0] == b"bus.event":
                self.events.append(reply)
                continue
            break
        if not isinstance(reply, int):
            self.sock.close()
            raise AssertionError(f"BUS.SERVE {exchange} on {node.name}: {reply!r}")
        self.id = reply
        self.sock.settimeout(None)  # the reader thread blocks; close() shuts the socket down
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _send(self, *args):
        with self.lock:
            self.sock.sendall(encode_command(*args))

    def _run(self):
        try:
            while True:
                msg = self.reader.read()
                with self.cond:
                    if isinstance(msg, list) and msg and msg[0] == b"bus.request":
                        _, exchange, rid, key, payload, tag, group = msg
                        req = {"exchange": exchange, "id": rid, "key": key, "payload": payload,
                               "tag": tag, "group": group}
                        self.requests.append(req)
                        ans = self.answer(req)
                        if ans is not None:
                            kind, value = ans
                            if kind == "ok":
                                self._send("BUS.REPLY", rid, value)
                            else:
                                self._send("BUS.REPLY", rid, "ERROR", value)
                    elif isinstance(msg, list) and msg and msg[0] == b"bus.event":
                        self.events.append(msg)
                    elif isinstance(msg, (bytes, RespError)):
                        self.reply_results.append(msg)
                    else:
                        self.others.append(msg)
                    self.cond.notify_all()
        except (EOFError, OSError, ValueError):
            pass
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def wait(self, predicate, timeout=MSG_TIMEOUT, what="handler condition"):
        """Waits (on the reader thread's notifications) until predicate(self) holds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.tag}: timed out after {timeout}s waiting for {what}; requests="
                        f"{self.requests} events={self.events} replies={self.reply_results}")
                self.cond.wait(left)

    def send_reply(self, rid, payload):
        """A BUS.REPLY sent by the test (not by `answer`); its result lands in reply_results."""
        self._send("BUS.REPLY", rid, payload)

    def close(self):
        """Closes the handler's connection (the node withdraws the handler)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(timeout=5)
        self.sock.close()


class BusClusterTest(unittest.TestCase):
    """Three nodes shared by every test of the module's classes."""

    nodes = None

    @classmethod
    def setUpClass(cls):
        if BusClusterTest.nodes is None:
            # Two workers per node: a node's subscribers and handlers spread over both (the
            # kernel picks a worker per connection), so per-worker fan-out is exercised too.
            BusClusterTest.nodes = start_cluster(3, cookie=COOKIE, prefix="bus-node", threads=2)

            def formed():
                for n in BusClusterTest.nodes:
                    info = n.info("membership")
                    if info is None or info.get("members_alive") != "3":
                        return False
                return True

            try:
                wait_until(formed, timeout=30.0, message="3 nodes alive in every view")
            except BaseException:
                cls._stop_cluster()
                raise
        cls.n1, cls.n2, cls.n3 = BusClusterTest.nodes

    @staticmethod
    def _stop_cluster():
        nodes, BusClusterTest.nodes = BusClusterTest.nodes, None
        if not nodes:
            return
        log_dir = os.environ.get("SHOAL_TEST_LOG_DIR")
        for n in nodes:
            if log_dir:
                os.makedirs(log_dir, exist_ok=True)
                with open(os.path.join(log_dir, f"bus-{n.name}.log"), "a") as f:
                    f.write(n.log())
            n.stop()

    def setUp(self):
        for n in self.nodes:
            self.assertTrue(n.alive(), f"{n.name} died:\n{n.log()}")
        self._closers = []

    def tearDown(self):
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                pass
        for n in self.nodes:
            self.assertTrue(n.alive(), f"{n.name} died:\n{n.log()}")

    # -- helpers -------------------------------------------------------------------------------

    def client(self, node, **kw):
        c = node.client(decode_responses=True, **kw)
        self._closers.append(c.close)
        return c

    def conn(self, node):
        c = Conn(node)
        self._closers.append(c.close)
        return c

    def handler(self, node, exchange, tag, **kw):
        h = PyHandler(node, exchange, tag, **kw)
        self._closers.append(h.close)
        return h

    def pubsub(self, node):
        p = self.client(node).pubsub()
        self._closers.append(p.close)
        return p

    @staticmethod
    def next_message(p, timeout=MSG_TIMEOUT):
        """The next message of a redis-py PubSub (subscribe confirmations included)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no message within {timeout}s")
            m = p.get_message(timeout=min(left, 0.5))
            if m is not None:
                return m

    def subscribe(self, p, *channels, patterns=()):
        """SUBSCRIBE / PSUBSCRIBE and wait for their confirmations: the subscriptions are then in
        effect cluster-wide."""
        if channels:
            p.subscribe(*channels)
        if patterns:
            p.psubscribe(*patterns)
        want = {("subscribe", c) for c in channels} | {("psubscribe", c) for c in patterns}
        while want:
            m = self.next_message(p)
            self.assertIn((m["type"], m["channel"]), want)
            want.discard((m["type"], m["channel"]))

    def messages_until(self, p, marker, timeout=MSG_TIMEOUT):
        """Messages of PubSub `p` up to and including the first whose data is `marker`."""
        out = []
        while True:
            m = self.next_message(p, timeout)
            out.append((m["type"], m.get("pattern"), m["channel"], m["data"]))
            if m["data"] == marker:
                return out

    def raw_until(self, conn, marker):
        """Raw pushes (lists) of `conn` up to and including the first whose last element is
        `marker` (bytes)."""
        out = []
        while True:
            m = conn.read()
            out.append(m)
            if isinstance(m, list) and m and m[-1] == marker:
                return out

    def create_exchange(self, name, pattern, strategy=None, node=None):
        """BUS.CREATE on `node` (node 1), then waits until every node knows the exchange."""
        args = ["BUS.CREATE", name, pattern] + ([strategy] if strategy else [])
        self.assertEqual((node or self.n1).command(*args), b"OK")

        def everywhere():
            for n in self.nodes:
                exs = n.command("BUS.EXCHANGES")
                if isinstance(exs, RespError) or name.encode() not in [e[0] for e in exs]:
                    return False
            return True

        wait_until(everywhere, timeout=POLL_TIMEOUT, message=f"exchange {name} on every node")

    @staticmethod
    def bus_counter(node, name):
        """One counter of INFO bus (refreshed by the node every 10 ms)."""
        return int(parse_info(node.command("INFO", "bus"))[name])

    @staticmethod
    def handlers(node, exchange):
        """BUS.HANDLERS as a list of dicts (str keys, str/int values)."""
        reply = node.command("BUS.HANDLERS", exchange)
        if isinstance(reply, RespError):
            raise AssertionError(f"BUS.HANDLERS {exchange} on {node.name}: {reply}")
        out = []
        for h in reply:
            if isinstance(h, dict):
                out.append({text(k): text(v) for k, v in h.items()})
            else:
                out.append({text(h[i]): text(h[i + 1]) for i in range(0, len(h), 2)})
        return out

    def wait_handler_tags(self, exchange, tags, nodes=None):
        """Waits until BUS.HANDLERS on each node lists exactly `tags`, in that (leader) order."""
        for n in nodes or self.nodes:
            wait_until(lambda n=n: [h["tag"] for h in self.handlers(n, exchange)] == list(tags),
                       timeout=POLL_TIMEOUT,
                       message=f"{exchange} handlers {tags} on {n.name} "
                               f"(now {self.handlers(n, exchange)})")


def tearDownModule():
    BusClusterTest._stop_cluster()


# ------------------------------------------------------------------------------------------------


class PubSubTest(BusClusterTest):

    def test_publish_reaches_every_node_once_with_cluster_count(self):
        ch = unique("news")
        marker = "end-of-test"
        s1 = self.pubsub(self.n1)  # on the publisher's node too
        self.subscribe(s1, ch)
        s2 = self.pubsub(self.n2)
        self.subscribe(s2, ch)
        s3 = self.pubsub(self.n3)
        self.subscribe(s3, ch)
        p3 = self.pubsub(self.n3)
        pattern = ch[:-1] + "*"  # matches ch
        self.subscribe(p3, patterns=[pattern])
        both = self.pubsub(self.n2)  # a channel and a matching pattern: gets both (as Redis)
        self.subscribe(both, ch, patterns=[pattern])

        pub = self.client(self.n1)
        # Published right after the subscriptions returned, from another node: must arrive.
        self.assertEqual(pub.publish(ch, "hello"), 6)  # s1, s2, s3, p3, both x2
        self.assertEqual(pub.publish(ch, marker), 6)

        msg = ("message", None, ch, "hello")
        end = ("message", None, ch, marker)
        self.assertEqual(self.messages_until(s1, marker), [msg, end])
        self.assertEqual(self.messages_until(s2, marker), [msg, end])
        self.assertEqual(self.messages_until(s3, marker), [msg, end])
        self.assertEqual(self.messages_until(p3, marker),
                         [("pmessage", pattern, ch, "hello"), ("pmessage", pattern, ch, marker)])
        got = self.messages_until(both, marker)
        got += self.messages_until(both, marker)  # the marker comes twice too
        self.assertCountEqual(got, [msg, ("pmessage", pattern, ch, "hello"), end,
                                    ("pmessage", pattern, ch, marker)])
        self.assertEqual(pub.publish(unique("nobody"), "x"), 0)

    def test_publish_right_after_subscribe_from_other_nodes(self):
        # Repeatedly: subscribe on node 2 or 3, and at once publish on node 1 and on the other.
        pub1 = self.client(self.n1)
        for i in range(10):
            node, other = (self.n2, self.n3) if i % 2 == 0 else (self.n3, self.n2)
            ch = unique("fresh")
            s = self.pubsub(node)
            self.subscribe(s, ch)
            self.assertEqual(pub1.publish(ch, "a"), 1, f"round {i}: {ch} on {node.name}")
            self.assertEqual(other.command("PUBLISH", ch, "b"), 1)
            self.assertEqual(self.messages_until(s, "b"),
                             [("message", None, ch, "a"), ("message", None, ch, "b")])
            s.close()

    def test_unsubscribe_stops_delivery(self):
        ch, keep = unique("unsub"), unique("keep")
        s = self.pubsub(self.n2)
        self.subscribe(s, ch, keep)
        other = self.pubsub(self.n3)
        self.subscribe(other, ch)
        pub = self.client(self.n1)
        self.assertEqual(pub.publish(ch, "one"), 2)
        self.assertEqual(self.next_message(s)["data"], "one")
        s.unsubscribe(ch)
        m = self.next_message(s)
        self.assertEqual((m["type"], m["channel"], m["data"]), ("unsubscribe", ch, 1))
        self.assertEqual(pub.publish(ch, "two"), 1)  # only `other` now
        self.assertEqual(pub.publish(keep, "marker"), 1)
        self.assertEqual(self.messages_until(s, "marker"), [("message", None, keep, "marker")])
        self.assertEqual([m[3] for m in self.messages_until(other, "two")], ["one", "two"])
        # A closed subscriber stops counting too (once its node has seen the close).
        other.close()
        wait_until(lambda: pub.publish(ch, "three") == 0, timeout=POLL_TIMEOUT,
                   message="closed subscriber no longer counted")

    def test_second_subscriber_on_a_node_is_reached_at_once(self):
        # The node already advertises the channel for its first subscriber: the second one's
        # SUBSCRIBE must still not return before a PUBLISH from elsewhere reaches it.
        for i in range(10):
            ch = unique("second")
            node = self.n2 if i % 2 == 0 else self.n3
            first, second = self.conn(node), self.conn(node)
            first.send("SUBSCRIBE", ch)  # not waited for
            self.assertEqual(second.command("SUBSCRIBE", ch), [b"subscribe", ch.encode(), 1])
            self.assertGreaterEqual(self.n1.command("PUBLISH", ch, "m"), 1, f"round {i}")
            self.assertEqual(second.read(), [b"message", ch.encode(), b"m"])
            self.assertEqual(first.read(), [b"subscribe", ch.encode(), 1])
            first.close()
            second.close()

    def test_resubscribe_after_unsubscribe_is_reached_at_once(self):
        c = self.conn(self.n2)
        ch = unique("again")
        for i in range(10):
            self.assertEqual(c.command("SUBSCRIBE", ch), [b"subscribe", ch.encode(), 1])
            self.assertEqual(self.n3.command("PUBLISH", ch, f"m{i}"), 1, f"round {i}")
            self.assertEqual(c.read(), [b"message", ch.encode(), f"m{i}".encode()])
            self.assertEqual(c.command("UNSUBSCRIBE", ch), [b"unsubscribe", ch.encode(), 0])
            self.assertEqual(self.n1.command("PUBLISH", ch, "gone"), 0, f"round {i}")

    def test_glob_patterns_and_binary_payloads(self):
        pre = unique("glob")
        c = self.conn(self.n3)
        self.assertEqual(c.command("PSUBSCRIBE", f"{pre}.h[ae]llo"),
                         [b"psubscribe", f"{pre}.h[ae]llo".encode(), 1])
        self.assertEqual(c.command("PSUBSCRIBE", f"{pre}.x?"),
                         [b"psubscribe", f"{pre}.x?".encode(), 2])
        payload = bytes(range(256)) + b"\r\n*1\r\n"
        for ch, n in ((f"{pre}.hello", 1), (f"{pre}.hallo", 1), (f"{pre}.hillo", 0),
                      (f"{pre}.x1", 1), (f"{pre}.x12", 0)):
            self.assertEqual(self.n1.command("PUBLISH", ch, payload), n, ch)
        got = [c.read() for _ in range(3)]
        self.assertEqual(got, [
            [b"pmessage", f"{pre}.h[ae]llo".encode(), f"{pre}.hello".encode(), payload],
            [b"pmessage", f"{pre}.h[ae]llo".encode(), f"{pre}.hallo".encode(), payload],
            [b"pmessage", f"{pre}.x?".encode(), f"{pre}.x1".encode(), payload]])

    def test_pubsub_introspection_is_cluster_wide(self):
        pre = unique("intro")
        a, b = f"{pre}.a", f"{pre}.b"
        c1 = self.client(self.n1)
        # Pattern subscribers of other tests close with their tests; wait for their nodes to see it.
        wait_until(lambda: c1.execute_command("PUBSUB", "NUMPAT") == 0, timeout=POLL_TIMEOUT,
                   message="no pattern subscriptions left")
        s2 = self.pubsub(self.n2)
        self.subscribe(s2, a, patterns=[f"{pre}.*"])
        s3 = self.pubsub(self.n3)
        self.subscribe(s3, a, b, patterns=[f"{pre}.*", f"{pre}.?"])
        s3b = self.pubsub(self.n3)
        self.subscribe(s3b, b)

        for node in self.nodes:
            c = self.client(node)
            self.assertEqual(sorted(c.pubsub_channels(f"{pre}.*")), [a, b], node.name)
            self.assertEqual(sorted(c.pubsub_channels(f"{pre}.a")), [a], node.name)
            self.assertIn(a, c.pubsub_channels())
            self.assertEqual(c.pubsub_numsub(a, b, f"{pre}.none"),
                             [(a, 2), (b, 2), (f"{pre}.none", 0)], node.name)
            self.assertEqual(c.pubsub_numpat(), 2, node.name)  # distinct patterns

        s3.close()
        wait_until(lambda: c1.pubsub_numsub(a, b) == [(a, 1), (b, 1)], timeout=POLL_TIMEOUT,
                   message="NUMSUB after a subscriber closed")
        wait_until(lambda: c1.pubsub_numpat() == 1, timeout=POLL_TIMEOUT,
                   message="NUMPAT after a subscriber closed")

    def test_ssubscribe_spublish(self):
        ch = unique("shard")
        s2 = self.conn(self.n2)
        self.assertEqual(s2.command("SSUBSCRIBE", ch), [b"ssubscribe", ch.encode(), 1])
        s3 = self.conn(self.n3)
        self.assertEqual(s3.command("SSUBSCRIBE", ch), [b"ssubscribe", ch.encode(), 1])
        # A plain channel of the same name is another namespace.
        self.assertEqual(self.n1.command("PUBLISH", ch, "plain"), 0)
        self.assertEqual(self.n1.command("SPUBLISH", ch, "sharded"), 2)
        for s in (s2, s3):
            self.assertEqual(s.read(), [b"smessage", ch.encode(), b"sharded"])
        self.assertEqual(self.n1.command("PUBSUB", "SHARDCHANNELS", ch), [ch.encode()])
        self.assertEqual(self.n1.command("PUBSUB", "SHARDNUMSUB", ch), [ch.encode(), 2])
        self.assertEqual(s2.command("SUNSUBSCRIBE", ch), [b"sunsubscribe", ch.encode(), 0])
        self.assertEqual(self.n1.command("SPUBLISH", ch, "again"), 1)
        self.assertEqual(s3.read(), [b"smessage", ch.encode(), b"again"])

    def test_resp2_subscribed_mode(self):
        ch = unique("mode")
        c = self.conn(self.n2)
        self.assertEqual(c.command("SUBSCRIBE", ch), [b"subscribe", ch.encode(), 1])
        err = c.command("GET", "k")
        self.assertIsInstance(err, RespError)
        self.assertEqual(str(err),
                         "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING "
                         "/ QUIT / RESET are allowed in this context")
        self.assertEqual(c.command("PING"), [b"pong", b""])
        self.assertEqual(c.command("PING", "hi"), [b"pong", b"hi"])
        # Still subscribed, and still served.
        self.assertEqual(self.n3.command("PUBLISH", ch, "x"), 1)
        self.assertEqual(c.read(), [b"message", ch.encode(), b"x"])
        self.assertEqual(c.command("UNSUBSCRIBE"), [b"unsubscribe", ch.encode(), 0])
        self.assertEqual(c.command("ECHO", "out"), b"out")  # out of subscribed mode
        self.assertEqual(c.command("PING"), b"PONG")
        # RESET leaves subscribed mode and drops the subscriptions (allowed while subscribed).
        self.assertEqual(c.command("PSUBSCRIBE", ch + "*"), [b"psubscribe", (ch + "*").encode(), 1])
        self.assertEqual(c.command("RESET"), b"RESET")
        self.assertEqual(self.n1.command("PUBLISH", ch, "after reset"), 0)
        self.assertEqual(c.command("ECHO", "free"), b"free")

    def test_resp3_pushes(self):
        ch = unique("r3")
        c = self.conn(self.n3)
        hello = c.command("HELLO", "3")
        self.assertIsInstance(hello, dict, hello)
        c.send("SUBSCRIBE", ch)
        self.assertEqual(c.read_typed(), (b">", [b"subscribe", ch.encode(), 1]))
        c.send("PSUBSCRIBE", ch + "*")
        self.assertEqual(c.read_typed(), (b">", [b"psubscribe", (ch + "*").encode(), 2]))
        # RESP3 has no subscribed mode: other commands work, with ordinary replies. (No key
        # command: the cluster's buckets may still be settling.)
        c.send("ECHO", "still here")
        self.assertEqual(c.read_typed(), (b"$", b"still here"))
        c.send("PING")
        self.assertEqual(c.read_typed(), (b"+", b"PONG"))
        self.assertEqual(self.n1.command("PUBLISH", ch, "p"), 2)
        got = [c.read_typed(), c.read_typed()]
        self.assertCountEqual(got, [(b">", [b"message", ch.encode(), b"p"]),
                                    (b">", [b"pmessage", (ch + "*").encode(), ch.encode(), b"p"])])


# ------------------------------------------------------------------------------------------------


class RequestResponseTest(BusClusterTest):

    def request(self, node, *args):
        return node.command("BUS.REQUEST", *args, timeout=10.0)

    def test_python_handler_answers_redis_cli_and_cpp_caller(self):
        ex = unique("svc")
        self.create_exchange(ex, "REQUEST", "round_robin")
        h = self.handler(self.n3, ex, "py")
        self.wait_handler_tags(ex, ["py"])

        # redis-cli on node 1 (the handler is on node 3).
        cli = shutil.which("redis-cli")
        if cli is None:
            self.skipTest("redis-cli not installed")
        out = subprocess.run([cli, "-p", str(self.n1.port), "BUS.REQUEST", ex, "k", "hello"],
                             capture_output=True, timeout=30, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "py:hello")
        self.assertEqual(h.requests[-1]["key"], b"k")

        # The C++ caller: an embedded node joining the cluster through node 1.
        binary = bus_client_binary()
        if binary is None:
            self.skipTest("examples/bus_client not built (set SHOAL_BUS_CLIENT)")
        before = len(h.requests)
        proc = None
        for attempt in range(3):  # the ports were free a moment ago; retry if one raced away
            argv = [binary, "--port", str(free_port()), "--cluster-port",
                    str(free_cluster_port()), "--seed", self.n1.cluster_address, "--cookie",
                    COOKIE, "--exchange", ex, "--key", "cpp-key", "--payload", "from-c++",
                    "--count", "3", "--wait-ms", "20000"]
            proc = subprocess.run(argv, capture_output=True, timeout=60, text=True)
            if "cannot start the node" not in proc.stderr:
                break
        self.assertEqual(proc.returncode, 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        self.assertEqual(proc.stdout.splitlines(), ["py:from-c++"] * 3, proc.stderr)
        self.assertEqual([r["key"] for r in h.requests[before:]], [b"cpp-key"] * 3)
        # Every reply the handler sent was accepted.
        h.wait(lambda h: len(h.reply_results) == len(h.requests), what="BUS.REPLY answers")
        self.assertEqual(set(h.reply_results), {b"OK"})

    def test_tag_handler_error_no_handler_and_timeout(self):
        ex = unique("svc")
        self.create_exchange(ex, "REQUEST")  # round_robin by default

        # No handler: NOHANDLER at once.
        t0 = time.monotonic()
        reply = self.request(self.n1, ex, "k", "x", "TIMEOUT", "5000")
        self.assertIsInstance(reply, RespError)
        self.assertTrue(str(reply).startswith("NOHANDLER "), reply)
        self.assertLess(time.monotonic() - t0, 2.0)

        def answer(req):
            if req["payload"] == b"fail":
                return ("error", "boom happened")
            if req["payload"] == b"silent":
                return None
            return ("ok", b"re:" + req["payload"] + b"/" + req["tag"])

        h = self.handler(self.n2, ex, "py", answer=answer)
        self.wait_handler_tags(ex, ["py"])

        self.assertEqual(self.request(self.n1, ex, "k", "plain"), b"re:plain/")
        # TAG comes back with the reply, and the handler sees it.
        self.assertEqual(self.request(self.n3, ex, "k", "tagged", "TAG", "t-1"),
                         [b"t-1", b"re:tagged/t-1"])
        # The handler's error.
        reply = self.request(self.n1, ex, "k", "fail")
        self.assertIsInstance(reply, RespError)
        self.assertEqual(str(reply), "HANDLERERR boom happened")
        # A handler that never answers: TIMEOUT after the request's TIMEOUT.
        expired_before = self.bus_counter(self.n2, "bus_expired")
        timeouts_before = self.bus_counter(self.n3, "bus_timeouts")
        t0 = time.monotonic()
        reply = self.request(self.n3, ex, "k", "silent", "TIMEOUT", "300")
        took = time.monotonic() - t0
        self.assertIsInstance(reply, RespError)
        self.assertTrue(str(reply).startswith("TIMEOUT "), reply)
        self.assertGreaterEqual(took, 0.25)
        self.assertLess(took, 3.0)
        # Its late reply is refused once the handler's node has dropped the request.
        silent = [r for r in h.requests if r["payload"] == b"silent"]
        self.assertEqual(len(silent), 1)
        wait_until(lambda: self.bus_counter(self.n2, "bus_expired") == expired_before + 1,
                   timeout=POLL_TIMEOUT, message="the request expired on the handler's node")
        # The caller counts the timeout, though the handler's node is the one that gave up.
        wait_until(lambda: self.bus_counter(self.n3, "bus_timeouts") >= timeouts_before + 1,
                   timeout=POLL_TIMEOUT, message="the caller's bus_timeouts")
        # A late reply is acknowledged (an error would kill a handler loop over a race it cannot
        # avoid) and counted as late on the handler's node.
        late_before = self.bus_counter(self.n2, "bus_late_replies")
        answers_before = len(h.reply_results)
        h.send_reply(silent[0]["id"], "too late")
        h.wait(lambda h: len(h.reply_results) > answers_before, what="the late BUS.REPLY's answer")
        self.assertEqual(h.reply_results[-1], b"OK")
        self.assertFalse(any(isinstance(r, RespError) for r in h.reply_results), h.reply_results)
        wait_until(lambda: self.bus_counter(self.n2, "bus_late_replies") == late_before + 1,
                   timeout=POLL_TIMEOUT, message="the late reply counted")
        # Still serving.
        self.assertEqual(self.request(self.n1, ex, "k", "after"), b"re:after/")
        # A group nobody serves.
        reply = self.request(self.n1, ex, "k", "x", "GROUP", "nobody")
        self.assertIsInstance(reply, RespError)
        self.assertTrue(str(reply).startswith("NOHANDLER "), reply)

    def test_round_robin_alternates_and_skips_closed_handler(self):
        ex = unique("rr")
        self.create_exchange(ex, "REQUEST", "round_robin")
        ha = self.handler(self.n3, ex, "A")
        hb = self.handler(self.n3, ex, "B")
        self.wait_handler_tags(ex, ["A", "B"])
        replies = [self.request(self.n1, ex, f"k{i}", str(i)) for i in range(6)]
        who = [r.split(b":")[0] for r in replies]
        self.assertEqual(set(who), {b"A", b"B"}, replies)
        for i in range(1, 6):
            self.assertNotEqual(who[i], who[i - 1], f"not alternating: {replies}")
        self.assertEqual((len(ha.requests), len(hb.requests)), (3, 3))

        # A closes: once node 1 sees it, every request goes to B.
        ha.close()
        self.wait_handler_tags(ex, ["B"])
        before = len(ha.requests)
        replies = [self.request(self.n1, ex, "k", f"after{i}") for i in range(4)]
        self.assertEqual(replies, [f"B:after{i}".encode() for i in range(4)])
        self.assertEqual(len(ha.requests), before)

    def test_broadcast_returns_every_reply(self):
        ex = unique("bc")
        self.create_exchange(ex, "REQUEST", "broadcast")
        self.handler(self.n2, ex, "first")
        self.wait_handler_tags(ex, ["first"])
        self.handler(self.n3, ex, "second", answer=lambda req: (
            ("error", "second refuses") if req["payload"] == b"bad" else
            ("ok", b"second:" + req["payload"])))
        self.wait_handler_tags(ex, ["first", "second"])
        self.assertEqual(self.request(self.n1, ex, "k", "hi"), [b"first:hi", b"second:hi"])
        self.assertEqual(self.request(self.n3, ex, "k", "hi", "TAG", "t"),
                         [b"t", [b"first:hi", b"second:hi"]])
        # One handler's error is its element of the array; the others' replies still come.
        reply = self.request(self.n1, ex, "k", "bad")
        self.assertEqual(reply[0], b"first:bad")
        self.assertIsInstance(reply[1], RespError)
        self.assertEqual(str(reply[1]), "HANDLERERR second refuses")

    def test_leader_handover_when_leader_connection_closes(self):
        ex = unique("lead")
        self.create_exchange(ex, "REQUEST", "leader")
        la = self.handler(self.n2, ex, "A")
        self.wait_handler_tags(ex, ["A"])  # A registers first: the oldest is the leader
        lb = self.handler(self.n3, ex, "B")
        self.wait_handler_tags(ex, ["A", "B"])

        hs = self.handlers(self.n1, ex)
        self.assertEqual([(h["tag"], h["leader"]) for h in hs], [("A", 1), ("B", 0)])
        self.assertEqual(hs[0]["id"], la.id)
        self.assertEqual(hs[1]["id"], lb.id)
        self.assertLessEqual(hs[0]["registered-us"], hs[1]["registered-us"])
        self.assertNotEqual(hs[0]["node"], hs[1]["node"])
        self.assertEqual(self.request(self.n1, ex, "k", "x"), b"A:x")
        self.assertEqual(self.request(self.n3, ex, "k", "y"), b"A:y")
        # BUS.EXCHANGES: name, pattern, strategy, live handlers.
        exs = {text(e[0]): e for e in self.n1.command("BUS.EXCHANGES")}
        self.assertEqual(exs[ex], [ex.encode(), b"request", b"leader", 2])

        la.close()
        # Every node appoints B, and B hears of it.
        self.wait_handler_tags(ex, ["B"])
        self.assertEqual(self.handlers(self.n1, ex)[0]["leader"], 1)

        def b_told_leader(h):
            return any(e[1] == ex.encode() and e[2] == b"leader" and e[3] is not None and
                       e[3].startswith(b"B@") and e[4] == 1 for e in h.events)

        lb.wait(b_told_leader, timeout=POLL_TIMEOUT, what="a leader event naming B")
        self.assertEqual(self.request(self.n1, ex, "k", "z"), b"B:z")

    def test_closed_or_unserved_handler_fails_its_held_requests_at_once(self):
        ex = unique("held")
        self.create_exchange(ex, "REQUEST")
        h = self.handler(self.n3, ex, "py", answer=lambda req: None)
        self.wait_handler_tags(ex, ["py"], nodes=[self.n1])
        caller = self.conn(self.n1)
        caller.send("BUS.REQUEST", ex, "k", "p", "TIMEOUT", "20000")
        h.wait(lambda h: len(h.requests) == 1, what="the request")
        t0 = time.monotonic()
        h.close()
        reply = caller.read()
        self.assertIsInstance(reply, RespError)
        self.assertTrue(str(reply).startswith("UNREACHABLE "), reply)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.wait_handler_tags(ex, [])
        reply = self.request(self.n1, ex, "k", "p")
        self.assertTrue(str(reply).startswith("NOHANDLER "), reply)

        # BUS.UNSERVE: the same, and the connection stays usable.
        h2 = self.handler(self.n2, ex, "py2", answer=lambda req: None)
        self.wait_handler_tags(ex, ["py2"], nodes=[self.n1])
        caller.send("BUS.REQUEST", ex, "k", "p", "TIMEOUT", "20000")
        h2.wait(lambda h: len(h.requests) == 1, what="the request")
        h2._send("BUS.UNSERVE", h2.id)
        reply = caller.read()
        self.assertIsInstance(reply, RespError)
        self.assertTrue(str(reply).startswith("UNREACHABLE "), reply)
        h2.wait(lambda h: b"OK" in h.reply_results, what="BUS.UNSERVE's OK")
        self.wait_handler_tags(ex, [])
        h2._send("PING")
        h2.wait(lambda h: b"PONG" in h.reply_results, what="PING after BUS.UNSERVE")

    def test_binary_and_large_payloads(self):
        ex = unique("bin")
        self.create_exchange(ex, "REQUEST")
        self.handler(self.n3, ex, "py", answer=lambda req: ("ok", req["payload"][::-1]))
        self.wait_handler_tags(ex, ["py"], nodes=[self.n1])
        payload = bytes(range(256)) + b"\r\n$-1\r\n" + b"\x00" * 10
        self.assertEqual(self.request(self.n1, ex, payload, payload), payload[::-1])
        big = os.urandom(2 << 20)
        self.assertEqual(self.request(self.n1, ex, "k", big), big[::-1])

    def test_sticky_keeps_a_key_on_its_handler(self):
        ex = unique("sticky")
        self.create_exchange(ex, "REQUEST", "sticky")
        self.handler(self.n2, ex, "A")
        self.handler(self.n3, ex, "B")
        self.wait_handler_tags(ex, ["A", "B"], nodes=[self.n1])
        first = {}
        for k in range(20):
            first[k] = self.request(self.n1, ex, f"key{k}", "x").split(b":")[0]
        self.assertEqual(set(first.values()), {b"A", b"B"}, first)  # 20 keys: both get some
        for k in range(20):
            node = self.nodes[k % 3]
            if node is not self.n1:
                self.wait_handler_tags(ex, ["A", "B"], nodes=[node])
            self.assertEqual(self.request(node, ex, f"key{k}", "y").split(b":")[0], first[k])

    def test_resp3_handler_gets_push_requests(self):
        ex = unique("r3svc")
        self.create_exchange(ex, "REQUEST")
        c = self.conn(self.n2)
        self.assertIsInstance(c.command("HELLO", "3"), dict)
        c.send("BUS.SERVE", ex, "TAG", "r3")
        t, hid = c.read_typed()
        while t == b">":  # an event may come first
            t, hid = c.read_typed()
        self.assertEqual(t, b":")
        self.wait_handler_tags(ex, ["r3"], nodes=[self.n1])
        caller = self.conn(self.n1)
        caller.send("BUS.REQUEST", ex, "key", "ping?", "TAG", "t9")
        while True:
            t, push = c.read_typed()
            self.assertEqual(t, b">", push)
            if push[0] == b"bus.request":
                break
        self.assertEqual(push[1], ex.encode())
        self.assertEqual(push[3:], [b"key", b"ping?", b"t9", b""])
        c.send("BUS.REPLY", push[2], "pong!")
        while True:
            t, r = c.read_typed()
            if t != b">":
                break
        self.assertEqual((t, r), (b"+", b"OK"))
        self.assertEqual(caller.read(), [b"t9", b"pong!"])

    def test_handler_queue_is_bounded(self):
        # A handler holds at most 1024 unanswered requests; more are refused at once with BUSY
        # (and counted), never dropped.
        ex = unique("full")
        self.create_exchange(ex, "REQUEST")
        h = self.handler(self.n2, ex, "silent", answer=lambda req: None)
        self.wait_handler_tags(ex, ["silent"], nodes=[self.n1])
        before = self.bus_counter(self.n2, "bus_overflow")
        expired_before = self.bus_counter(self.n2, "bus_expired")
        c = self.conn(self.n1)
        n = 1030
        c.sock.sendall(b"".join(encode_command("BUS.REQUEST", ex, "k", str(i), "TIMEOUT", "1000")
                                for i in range(n)))
        kinds = {}
        for _ in range(n):
            r = c.read()
            kind = str(r).split()[0] if isinstance(r, RespError) else repr(r)
            kinds[kind] = kinds.get(kind, 0) + 1
        self.assertEqual(kinds, {"TIMEOUT": 1024, "BUSY": 6})
        self.assertEqual(len(h.requests), 1024)
        wait_until(lambda: self.bus_counter(self.n2, "bus_overflow") == before + 6,
                   timeout=POLL_TIMEOUT, message="bus_overflow counted")
        # The held ones were dropped from the handler's queue at their deadline.
        wait_until(lambda: self.bus_counter(self.n2, "bus_expired") == expired_before + 1024,
                   timeout=POLL_TIMEOUT, message="bus_expired counted")

    def test_resp2_handler_that_also_subscribes_can_reply(self):
        ex, ev = unique("svc"), unique("ev")
        self.create_exchange(ex, "REQUEST")
        self.create_exchange(ev, "PUBSUB")
        h = self.handler(self.n3, ex, "py")
        h._send("BUS.SUBSCRIBE", ev, "a.*")
        h.wait(lambda h: any(m[0] == b"bus.subscribe" for m in h.others if isinstance(m, list)),
               what="BUS.SUBSCRIBE's answer")
        self.wait_handler_tags(ex, ["py"], nodes=[self.n1])
        self.assertEqual(self.request(self.n1, ex, "k", "hi", "TIMEOUT", "2000"), b"py:hi")

    def test_groups_route_to_their_handlers(self):
        ex = unique("grp")
        self.create_exchange(ex, "REQUEST", "round_robin")
        self.handler(self.n2, ex, "eu", group="eu")
        self.handler(self.n3, ex, "us", group="us")
        self.wait_handler_tags(ex, ["eu", "us"], nodes=[self.n1])
        for _ in range(3):
            self.assertEqual(self.request(self.n1, ex, "k", "x", "GROUP", "us"), b"us:x")
            self.assertEqual(self.request(self.n1, ex, "k", "x", "GROUP", "eu"), b"eu:x")
        groups = {h["tag"]: h["group"] for h in self.handlers(self.n1, ex)}
        self.assertEqual(groups, {"eu": "eu", "us": "us"})


# ------------------------------------------------------------------------------------------------


class BusPubSubTest(BusClusterTest):

    def test_nats_patterns(self):
        ex = unique("events")
        self.create_exchange(ex, "PUBSUB")
        e = ex.encode()
        star = self.conn(self.n2)
        self.assertEqual(star.command("BUS.SUBSCRIBE", ex, "orders.*", "end"),
                         [b"bus.subscribe", b"orders.*", 1])
        self.assertEqual(star.read(), [b"bus.subscribe", b"end", 2])
        tail = self.conn(self.n3)
        self.assertEqual(tail.command("BUS.SUBSCRIBE", ex, "orders.>"),
                         [b"bus.subscribe", b"orders.>", 1])
        exact = self.conn(self.n3)
        self.assertEqual(exact.command("BUS.SUBSCRIBE", ex, "orders.eu.paris", "end"),
                         [b"bus.subscribe", b"orders.eu.paris", 1])
        self.assertEqual(exact.read(), [b"bus.subscribe", b"end", 2])

        pub = self.n1
        self.assertEqual(pub.command("BUS.PUBLISH", ex, "orders.eu", "p1"), 2)  # star, tail
        self.assertEqual(pub.command("BUS.PUBLISH", ex, "orders.eu.paris", "p2"), 2)  # tail, exact
        self.assertEqual(pub.command("BUS.PUBLISH", ex, "orders", "p3"), 0)
        self.assertEqual(pub.command("BUS.PUBLISH", ex, "other.eu", "p4"), 0)
        self.assertEqual(self.n2.command("BUS.PUBLISH", ex, "orders.us", "p5"), 2)
        self.assertEqual(pub.command("BUS.PUBLISH", ex, "end", "fin"), 2)
        self.assertEqual(pub.command("BUS.PUBLISH", ex, "orders.end", "fin"), 2)

        self.assertEqual(self.raw_until(star, b"fin"), [
            [b"bus.message", e, b"orders.*", b"orders.eu", b"p1"],
            [b"bus.message", e, b"orders.*", b"orders.us", b"p5"],
            [b"bus.message", e, b"end", b"end", b"fin"]])
        self.assertEqual(self.raw_until(star, b"fin"),
                         [[b"bus.message", e, b"orders.*", b"orders.end", b"fin"]])
        self.assertEqual(self.raw_until(tail, b"fin"), [
            [b"bus.message", e, b"orders.>", b"orders.eu", b"p1"],
            [b"bus.message", e, b"orders.>", b"orders.eu.paris", b"p2"],
            [b"bus.message", e, b"orders.>", b"orders.us", b"p5"],
            [b"bus.message", e, b"orders.>", b"orders.end", b"fin"]])
        self.assertEqual(self.raw_until(exact, b"fin"), [
            [b"bus.message", e, b"orders.eu.paris", b"orders.eu.paris", b"p2"],
            [b"bus.message", e, b"end", b"end", b"fin"]])

        # BUS.UNSUBSCRIBE stops delivery of that pattern only.
        self.assertEqual(star.command("BUS.UNSUBSCRIBE", ex, "orders.*"),
                         [b"bus.unsubscribe", b"orders.*", 1])
        self.assertEqual(pub.command("BUS.PUBLISH", ex, "orders.eu", "p6"), 1)  # tail
        self.assertEqual(pub.command("BUS.PUBLISH", ex, "end", "fin2"), 2)
        self.assertEqual(self.raw_until(star, b"fin2"),
                         [[b"bus.message", e, b"end", b"end", b"fin2"]])
        self.assertEqual(self.raw_until(tail, b"p6"),
                         [[b"bus.message", e, b"orders.>", b"orders.eu", b"p6"]])

    def test_bus_subscribe_on_a_fresh_connection_right_before_publish(self):
        ex = unique("fresh-ev")
        self.create_exchange(ex, "PUBSUB")
        for i in range(5):
            node, other = (self.n2, self.n3) if i % 2 == 0 else (self.n3, self.n2)
            c = Conn(node)
            try:
                subject = f"s{i}.x"
                self.assertEqual(c.command("BUS.SUBSCRIBE", ex, f"s{i}.*"),
                                 [b"bus.subscribe", f"s{i}.*".encode(), 1])
                self.assertEqual(self.n1.command("BUS.PUBLISH", ex, subject, "a"), 1)
                self.assertEqual(other.command("BUS.PUBLISH", ex, subject, "b"), 1)
                self.assertEqual([m[-1] for m in self.raw_until(c, b"b")], [b"a", b"b"])
            finally:
                c.close()


# ------------------------------------------------------------------------------------------------


class BadInputTest(BusClusterTest):

    def assertError(self, reply, prefix, *fragments):
        self.assertIsInstance(reply, RespError, f"expected an error {prefix!r}, got {reply!r}")
        self.assertTrue(str(reply).startswith(prefix), f"{reply} does not start with {prefix!r}")
        for f in fragments:
            self.assertIn(f, str(reply))

    def test_bad_bus_commands_get_clear_errors(self):
        req, ps = unique("req"), unique("ps")
        self.create_exchange(req, "REQUEST")
        self.create_exchange(ps, "PUBSUB")
        n1 = self.n1
        c = self.conn(self.n2)

        # Unknown exchange.
        self.assertError(n1.command("BUS.REQUEST", "no-such-ex", "k", "p"), "ERR",
                         "no exchange 'no-such-ex'")
        self.assertError(n1.command("BUS.PUBLISH", "no-such-ex", "a.b", "p"), "ERR",
                         "no exchange 'no-such-ex'")
        self.assertError(c.command("BUS.SERVE", "no-such-ex"), "ERR", "no exchange 'no-such-ex'")
        self.assertError(c.command("BUS.SUBSCRIBE", "no-such-ex", "a.*"), "ERR",
                         "no exchange 'no-such-ex'")
        self.assertError(n1.command("BUS.HANDLERS", "no-such-ex"), "ERR",
                         "no exchange 'no-such-ex'")
        # Wrong pattern.
        self.assertError(c.command("BUS.SERVE", ps), "ERR", "publish-subscribe")
        self.assertError(c.command("BUS.SUBSCRIBE", req, "a.*"), "ERR", "request-response")
        self.assertError(n1.command("BUS.REQUEST", ps, "k", "p"), "ERR")
        self.assertError(n1.command("BUS.PUBLISH", req, "a.b", "p"), "ERR")
        # Invalid subject patterns and subjects.
        for bad in ("orders..x", "a.>.b", "a.b*", "", "a b"):
            self.assertError(c.command("BUS.SUBSCRIBE", ps, bad), "ERR", "invalid pattern")
        self.assertError(n1.command("BUS.PUBLISH", ps, "a.*", "p"), "ERR", "invalid subject")
        # BUS.REPLY to a request this connection does not hold.
        self.assertError(c.command("BUS.REPLY", "987654321", "x"), "ERR",
                         "request 987654321 was not delivered to this connection")
        self.assertError(c.command("BUS.REPLY", "not-a-number", "x"), "ERR",
                         "request id is not an integer")
        self.assertError(c.command("BUS.UNSERVE", "424242"), "ERR", "no such handler")
        # Wrong arity.
        for args, name in ((("BUS.REQUEST", req, "k"), "bus.request"),
                           (("BUS.CREATE", "x"), "bus.create"),
                           (("BUS.PUBLISH", ps, "a.b"), "bus.publish"),
                           (("BUS.REPLY", "1"), "bus.reply"),
                           (("BUS.SERVE",), "bus.serve"),
                           (("BUS.SUBSCRIBE", ps), "bus.subscribe"),
                           (("BUS.HANDLERS",), "bus.handlers"),
                           (("PUBLISH", "ch"), "publish"),
                           (("SUBSCRIBE",), "subscribe")):
            self.assertError(n1.command(*args), "ERR",
                             f"wrong number of arguments for '{name}' command")
        # Bad options and kinds.
        self.assertError(n1.command("BUS.CREATE", unique("x"), "BOGUS"), "ERR",
                         "REQUEST or PUBSUB")
        self.assertError(n1.command("BUS.CREATE", unique("x"), "REQUEST", "no_such_strategy"),
                         "ERR")
        self.assertError(n1.command("BUS.CREATE", unique("x"), "PUBSUB", "round_robin"), "ERR",
                         "broadcast")
        self.assertError(n1.command("BUS.CREATE", req, "REQUEST", "leader"), "ERR", "exists")
        self.assertEqual(n1.command("BUS.CREATE", req, "REQUEST", "round_robin"), b"OK")
        self.assertError(n1.command("BUS.REQUEST", req, "k", "p", "TIMEOUT", "0"), "ERR",
                         "TIMEOUT is milliseconds")
        self.assertError(n1.command("BUS.REQUEST", req, "k", "p", "TIMEOUT", "abc"), "ERR",
                         "TIMEOUT is milliseconds")
        self.assertError(n1.command("BUS.REQUEST", req, "k", "p", "BOGUS", "1"), "ERR",
                         "syntax error")
        self.assertError(n1.command("BUS.REQUEST", req, "k", "p", "TIMEOUT"), "ERR",
                         "syntax error")
        self.assertError(c.command("BUS.SERVE", req, "TAG"), "ERR", "syntax error")
        self.assertError(n1.command("PUBSUB", "BOGUS"), "ERR", "unknown subcommand")
        self.assertError(n1.command("PUBSUB", "NUMPAT", "extra"), "ERR", "wrong number")

        # The connection that got all those errors still works, and every node answers PING.
        self.assertEqual(c.command("PING"), b"PONG")
        for n in self.nodes:
            self.assertEqual(n.command("PING"), b"PONG", n.name)

    def test_bus_reply_from_another_connection_is_refused(self):
        ex = unique("svc")
        self.create_exchange(ex, "REQUEST")
        h = self.handler(self.n2, ex, "py", answer=lambda req: None)  # holds its requests
        self.wait_handler_tags(ex, ["py"], nodes=[self.n1])
        caller = self.conn(self.n1)
        caller.send("BUS.REQUEST", ex, "k", "p", "TIMEOUT", "5000")
        h.wait(lambda h: len(h.requests) == 1, what="the request")
        rid = h.requests[0]["id"]
        # Another connection on the same node cannot answer it...
        self.assertError(self.n2.command("BUS.REPLY", rid, "x"), "ERR", "was not delivered")
        # ...the handler can, once.
        h.send_reply(rid, "answered")
        self.assertEqual(caller.read(), b"answered")
        h.send_reply(rid, "twice")
        h.wait(lambda h: len(h.reply_results) == 2, what="both BUS.REPLY answers")
        self.assertEqual(h.reply_results[0], b"OK")
        self.assertError(h.reply_results[1], "ERR", "was not delivered")
        for n in self.nodes:
            self.assertEqual(n.command("PING"), b"PONG", n.name)


if __name__ == "__main__":
    unittest.main()
