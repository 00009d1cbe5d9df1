"""System tests of the admin HTTP API on a real `shoal serve` node.

AdminFloodTest: hundreds of idle and slowloris connections (from 127.0.0.2..127.0.0.11, each
address under the per-client cap) must not starve /health or the API for a probe from 127.0.0.1;
the request deadline closes the slow ones; one address alone cannot hold more than the cap.

AdminTokenTest: a node with admin-token-file wants the bearer token on every POST (401 problem
JSON otherwise) while GETs stay open; the `shoal` CLI sends it (--token, --token-file,
SHOAL_ADMIN_TOKEN). Without a token the admin API listens on 127.0.0.1 only, even with
--bind 127.0.0.2 (the node logs a warning).

FdLimitTest: a node started with a soft open-file limit of 1024 raises it for its listeners.

AdminErrorsTest: a POST without a body (no Content-Length) is answered at once; `shoal status`
against a port nobody listens on prints the whole reason ("Connection refused").

Every process is started here and killed by its pid; every socket is closed at the end.
"""

import http.client
import json
import os
import resource
import select
import socket
import subprocess
import tempfile
import time
import unittest

from shoal_harness import ClusterNode, find_binary, free_port, wait_until

COOKIE = "admin-test-cookie"
TOKEN = "admin-test-token-0123456789"
ATTACK_SOURCES = [f"127.0.0.{i}" for i in range(2, 12)]  # 10 addresses
IDLE_PER_SOURCE = 50   # 500 idle connections in all
SLOW_PER_SOURCE = 50   # 500 slowloris connections in all
PER_CLIENT_CAP = 128   # AdminOptions' default
ATTACK_SECONDS = 10.0
PROBE_TIMEOUT = 3.0    # "answers within a few seconds": a liveness bound, not a latency target
READ_TIMEOUT = 5.0     # the admin request deadline (AdminOptions' default)


def raise_fd_limit(want=8192):
    """Raises this process's soft RLIMIT_NOFILE (the shoal child inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connect_from(source, port, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def http_call(host, port, method, path, body=None, headers=None, timeout=PROBE_TIMEOUT):
    """(status, parsed JSON body or raw text, response headers); raises on no answer."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode(errors="replace")
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return resp.status, parsed, dict(resp.getheaders())
    finally:
        conn.close()


def readable(sock):
    """True if `sock` has data or EOF pending (poll: descriptors past FD_SETSIZE are fine)."""
    p = select.poll()
    p.register(sock, select.POLLIN)
    return bool(p.poll(0))


def closed_by_peer(sock):
    """True if the peer has closed `sock` (EOF or reset); never blocks. Discards pending data."""
    try:
        if not readable(sock):
            return False
        sock.setblocking(False)
        try:
            return sock.recv(65536) == b""
        finally:
            sock.setblocking(True)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
    socks.clear()


class HostNode(ClusterNode):
    """A ClusterNode whose client (RESP) listener is on `host` instead of 127.0.0.1, and whose
    extra settings come from `extra` (argv)."""

    def __init__(self, name, *, host="127.0.0.1", extra=(), **kw):
        super().__init__(name, cookie=COOKIE, http=True, **kw)
        self.host = host
        self.extra = list(extra)

    def _argv(self):
        argv = super()._argv()
        i = argv.index("--bind")
        argv[i + 1] = self.host
        return argv + self.extra

    def _wait_ready(self):
        deadline = time.monotonic() + 15.0
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shoal exited with status {self.proc.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no PONG from {self.host}:{self.port}")
            time.sleep(0.02)

    def client(self, **kw):
        import redis
        kw.setdefault("socket_timeout", 10)
        return redis.Redis(host=self.host, port=self.port, **kw)


def cli_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(extra)
    return env


def run_cli(args, env=None, timeout=30):
    return subprocess.run([find_binary(), *args], capture_output=True, text=True, timeout=timeout,
                          env=env or cli_env(), stdin=subprocess.DEVNULL)


class AdminFloodTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fd_limit = raise_fd_limit()
        cls.node = HostNode("flood")
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def setUp(self):
        self.socks = []
        if self.fd_limit < 2 * (IDLE_PER_SOURCE + SLOW_PER_SOURCE) * len(ATTACK_SOURCES) + 200:
            self.skipTest(f"RLIMIT_NOFILE is {self.fd_limit}: too low for the flood")

    def tearDown(self):
        close_all(self.socks)
        self.assertTrue(self.node.alive(), "shoal died:\n" + self.node.log())

    def probe(self):
        """/health and GET /api/v1/members from 127.0.0.1, each within PROBE_TIMEOUT."""
        for path in ("/health", "/api/v1/members"):
            start = time.monotonic()
            try:
                status, body, _ = http_call("127.0.0.1", self.node.http_port, "GET", path)
            except OSError as e:
                self.fail(f"GET {path} got no answer within {PROBE_TIMEOUT}s: {e!r}")
            self.assertEqual(status, 200, f"GET {path}: {body}")
            if path == "/health":
                self.assertEqual(body, {"status": "ok"})
            else:
                self.assertIn("members", body)
            yield time.monotonic() - start

    def test_idle_and_slowloris_connections_do_not_starve_the_api(self):
        port = self.node.http_port
        idle, slow = [], []
        for src in ATTACK_SOURCES:
            for _ in range(IDLE_PER_SOURCE):
                idle.append(connect_from(src, port))
            for _ in range(SLOW_PER_SOURCE):
                s = connect_from(src, port)
                s.sendall(b"GET /api/v1/members HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                slow.append((src, s))
        self.socks.extend(idle)
        self.socks.extend(s for _, s in slow)
        started = time.monotonic()
        originals = [s for _, s in slow] + idle
        closed_originals = set()
        reopened = 0
        probes = []
        last_drip = started
        # Bounded: stops after ATTACK_SECONDS. Closed slowloris connections are reopened so the
        # pressure stays up for the whole window.
        while time.monotonic() - started < ATTACK_SECONDS:
            probes.extend(self.probe())
            if time.monotonic() - last_drip >= 1.0:
                last_drip = time.monotonic()
                for i, (src, s) in enumerate(slow):
                    try:
                        s.send(b"a")
                        if not closed_by_peer(s):
                            continue
                    except OSError:
                        pass
                    closed_originals.add(id(s))
                    s2 = connect_from(src, port)
                    s2.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
                    self.socks.append(s2)
                    slow[i] = (src, s2)
                    reopened += 1
            time.sleep(0.2)
        for s in idle:
            if closed_by_peer(s):
                closed_originals.add(id(s))
        print(f"\n  {len(probes)} probes during {ATTACK_SECONDS:.0f}s of "
              f"{len(idle)} idle + {len(slow)} slowloris connections: slowest "
              f"{max(probes):.3f}s; {reopened} slowloris connections closed by the server and "
              f"reopened")
        self.assertGreaterEqual(len(probes), 10)
        # The deadline (READ_TIMEOUT) closed the first wave, idle and slow alike.
        self.assertEqual(len(closed_originals), len(originals),
                         f"only {len(closed_originals)} of {len(originals)} attack connections "
                         f"were closed by the request deadline")
        close_all(self.socks)

    def test_one_address_cannot_exceed_the_per_client_cap(self):
        port = self.node.http_port
        extra = 72
        conns = [connect_from("127.0.0.12", port) for _ in range(PER_CLIENT_CAP + extra)]
        self.socks.extend(conns)
        # Those over the cap get a 503 and are closed at once; the others are held until the
        # request deadline closes them without an answer.
        refused = set()

        def count():
            for i, s in enumerate(conns):
                if i in refused:
                    continue
                if readable(s):
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if data.startswith(b"HTTP/1.1 503"):
                        refused.add(i)
            return len(refused) >= extra

        wait_until(count, timeout=READ_TIMEOUT * 0.8, message=f"{extra} connections refused")
        self.assertEqual(len(refused), extra)
        # The probe from another address is unaffected.
        for _ in self.probe():
            pass
        close_all(self.socks)


class AdminTokenTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.token_file = os.path.join(self.tmp.name, "admin.token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.stop()
        self.tmp.cleanup()

    def start(self, **kw):
        node = HostNode(f"tok{len(self.nodes)}", **kw)
        self.nodes.append(node)
        return node.start()

    def test_posts_need_the_token_and_the_cli_sends_it(self):
        node = self.start(host="127.0.0.2", extra=["--admin-token-file", self.token_file])
        # With a token the admin API follows --bind.
        host, port = "127.0.0.2", node.http_port
        status, body, headers = http_call(host, port, "POST", "/api/v1/maps/save", body="{}")
        self.assertEqual(status, 401, body)
        self.assertEqual(body["title"], "Unauthorized")
        self.assertTrue(body["detail"])
        self.assertEqual(headers.get("WWW-Authenticate"), 'Bearer realm="shoal"')
        status, body, _ = http_call(host, port, "POST", "/api/v1/maps/save", body="{}",
                                    headers={"Authorization": "Bearer wrong"})
        self.assertEqual(status, 401, body)
        status, body, _ = http_call(host, port, "POST", "/api/v1/maps/save", body="{}",
                                    headers={"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(status, 200, body)
        # GETs stay open.
        for path in ("/health", "/api/v1/members"):
            status, body, _ = http_call(host, port, "GET", path)
            self.assertEqual(status, 200, f"{path}: {body}")

        address = f"{host}:{port}"
        st = run_cli(["status", "--node", address])
        self.assertEqual(st.returncode, 0, st.stderr)
        self.assertIn(f"{host}:{node.cluster_port}", st.stdout)
        join = run_cli(["join", "--node", address, node.cluster_address])
        self.assertEqual(join.returncode, 1, join.stdout)
        self.assertIn("401", join.stderr)
        join = run_cli(["join", "--node", address, "--token-file", self.token_file,
                        node.cluster_address])
        self.assertEqual(join.returncode, 0, join.stderr)
        join = run_cli(["join", "--node", address, "--token", TOKEN, node.cluster_address])
        self.assertEqual(join.returncode, 0, join.stderr)
        # The environment works too; `leave` makes the node exit.
        leave = run_cli(["leave", "--node", address], env=cli_env(SHOAL_ADMIN_TOKEN=TOKEN))
        self.assertEqual(leave.returncode, 0, leave.stderr)
        self.assertIsNotNone(node.wait_exit(timeout=30), "the node did not exit after leave")

    def test_without_a_token_the_admin_api_is_on_loopback_only(self):
        node = self.start(host="127.0.0.2")
        # RESP follows --bind ...
        with node.client() as c:
            self.assertTrue(c.ping())
        # ... the admin API does not.
        status, body, _ = http_call("127.0.0.1", node.http_port, "GET", "/health")
        self.assertEqual(status, 200, body)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.2", node.http_port), timeout=3).close()
        self.assertIn("no admin token set", node.log())
        self.assertIn("listens on 127.0.0.1 only, not on 127.0.0.2", node.log())
        # No token: POSTs are open (to whoever is on this host).
        status, body, _ = http_call("127.0.0.1", node.http_port, "POST", "/api/v1/maps/save",
                                    body="{}")
        self.assertEqual(status, 200, body)


class AdminErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = HostNode("errors")
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def raw_request(self, request, timeout=PROBE_TIMEOUT):
        """Sends `request` as is; returns (status, body JSON) of the answer."""
        with socket.create_connection(("127.0.0.1", self.node.http_port), timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(rest) < length:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
            return int(head.split(b" ")[1]), json.loads(rest) if rest else None

    def test_a_post_without_a_body_is_answered_at_once(self):
        # No Content-Length at all: HTTP/1.1 says there is no body; nothing waits for one (a
        # read timeout here would be the socket's PROBE_TIMEOUT).
        status, body = self.raw_request(b"POST /api/v1/maps/save HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status, 200, body)
        self.assertIn("saved", body)
        status, body = self.raw_request(
            b"POST /api/v1/maps/save HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(status, 200, body)
        # An empty body where something is needed: a fast 400 that says what is missing.
        status, body = self.raw_request(b"POST /api/v1/join HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status, 400, body)
        self.assertIn("seeds", body["detail"])
        status, body = self.raw_request(
            b"POST /api/v1/join HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{nope")
        self.assertEqual(status, 400, body)
        self.assertIn("not valid JSON", body["detail"])

    def test_status_against_a_closed_port_says_why(self):
        port = free_port()
        st = run_cli(["status", "--node", f"127.0.0.1:{port}"])
        self.assertEqual(st.returncode, 1)
        self.assertEqual(st.stderr.strip(),
                         f"shoal status: cannot reach 127.0.0.1:{port}: Connection refused")


class FdLimitTest(unittest.TestCase):
    def test_the_node_raises_its_soft_open_file_limit(self):
        # maxclients (10000) + the admin API's cap (4096) + 256 for the rest, up to the hard limit.
        want = 10000 + 4096 + 256
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard <= 1024:
            self.skipTest(f"hard RLIMIT_NOFILE is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        node = HostNode("fd")
        try:
            node.start()  # inherits the soft limit of 1024
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            with open(f"/proc/{node.proc.pid}/limits") as f:
                line = next(ln for ln in f if ln.startswith("Max open files"))
            got = int(line.split()[3])
            self.assertEqual(got, want if hard == resource.RLIM_INFINITY else min(want, hard))
        finally:
            node.stop()


if __name__ == "__main__":
    unittest.main()
