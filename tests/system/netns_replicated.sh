#!/usr/bin/env bash
# Replicated maps across a real (virtual) network partition: three shoal nodes, each in its own
# network namespace, linked by veth pairs to a bridge in a fourth namespace (nothing is added to
# the host's own namespace). Every node declares the replicated map users: -> 'users:'.
#
#   1. writes on node 1 reach nodes 2 and 3;
#   2. node 3's link is cut (`ip link set ... down` on its bridge port) until each side declares
#      the other dead; meanwhile both sides write: keys only one side writes, the same keys on
#      both sides (node 3 first, then node 1 — and the reverse for other keys), and deletes;
#   3. the link comes back; all three nodes converge to identical contents (RMAP.SCAN + GET),
#      where every conflicting key holds the later write and deleted keys stay deleted.
#
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2 and python3. Exits 77 (skip) if they
# are missing, 0 on success, 1 on failure. Every namespace and process it made is removed on exit.
#
# Usage: tests/system/netns_replicated.sh [path/to/shoal]   (default: $SHOAL_BIN or build/shoal)
set -u

REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SHOAL="${1:-${SHOAL_BIN:-$REPO_ROOT/build/shoal}}"
DETECT_TIMEOUT=${DETECT_TIMEOUT:-20}
HEAL_TIMEOUT=${HEAL_TIMEOUT:-60}
COOKIE="netns-replicated-cookie"
SUBNET="10.231.78"
PORT=7000 CPORT=7100 HPORT=7200

TAG="shr$$"
# shellcheck source=netns_lib.sh
. "$(dirname "$0")/netns_lib.sh"
netns_setup 3

start_node() {
  local i=$1 seeds=""
  [ "$i" != 1 ] && seeds="--seeds $SUBNET.1:$CPORT"
  # shellcheck disable=SC2086
  ip netns exec "${TAG}n$i" env -u SHOAL_SEEDS -u SHOAL_COOKIE "$SHOAL" serve \
      --bind "$SUBNET.$i" --port $PORT --threads 2 --cluster-port $CPORT --http-port $HPORT \
      --cookie "$COOKIE" --data-dir "$WORK/d$i" --replicated-map users=users: \
      --set replicated-sync-interval=500 $seeds >"$WORK/n$i.log" 2>&1 </dev/null &
  PIDS+=($!)
}

# resp NODE CMD... : runs one command on node NODE (inside its namespace); prints the reply as
# Python's repr (bytes, ints, lists, or "ERR:..." for an error / "DOWN" if unreachable).
# script NODE <<EOF ... : runs Python with `cmd(*args)` bound to node NODE.
script() {
  local n=$1
  ip netns exec "${TAG}n$n" python3 -c '
import socket, sys
addr = (sys.argv[1], int(sys.argv[2]))
sock = None
buf = b""
def _line():
    global buf
    while b"\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    line, _, buf = buf.partition(b"\r\n")
    return line
def _exact(n):
    global buf
    while len(buf) < n + 2:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    data, buf = buf[:n], buf[n + 2:]
    return data
def _read():
    line = _line()
    t, rest = line[:1], line[1:]
    if t == b"+": return rest
    if t == b"-": return "ERR:" + rest.decode()
    if t == b":": return int(rest)
    if t == b"$": return None if int(rest) < 0 else _exact(int(rest))
    if t == b"*": return None if int(rest) < 0 else [_read() for _ in range(int(rest))]
    raise ValueError(line)
def cmd(*args):
    global sock
    if sock is None:
        sock = socket.create_connection(addr, timeout=3)
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    return _read()
def contents():
    keys, cursor = set(), b"0"
    while True:
        cursor, batch = cmd("RMAP.SCAN", "users", cursor, "COUNT", 1000)
        keys.update(batch)
        if cursor == b"0":
            break
    return {k: cmd("GET", k) for k in sorted(keys)}
try:
    exec(sys.stdin.read())
except (OSError, EOFError) as e:
    print("DOWN", e)
    sys.exit(3)
' "$SUBNET.$n" "$PORT"
}

# wait_for TIMEOUT NODE PYTHON-EXPR : polls until the expression (with cmd/contents) is true.
wait_for() {
  local timeout=$1 n=$2 expr=$3
  local deadline=$(( $(date +%s) + timeout ))
  while :; do
    if script "$n" <<<"import sys; sys.exit(0 if ($expr) else 1)" >/dev/null 2>&1; then return 0; fi
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

alive_count() {  # NODE -> members_alive as the node reports it
  script "$1" <<<'print(dict(l.split(":", 1) for l in cmd("INFO", "membership").decode().splitlines() if ":" in l).get("members_alive", "?").strip())' 2>/dev/null
}
wait_alive() {  # TIMEOUT WANT NODE...
  local timeout=$1 want=$2; shift 2
  local deadline=$(( $(date +%s) + timeout )) n ok
  while :; do
    ok=1
    for n in "$@"; do [ "$(alive_count "$n")" = "$want" ] || { ok=0; break; }; done
    [ $ok = 1 ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

for i in 1 2 3; do start_node $i; done
wait_alive 30 3 1 2 3 || fail "the three nodes did not form a cluster"
echo "ok: cluster of 3 formed across namespaces"

script 1 <<'EOF' || fail "writes on node 1"
for i in range(200):
    assert cmd("SET", f"users:base{i}", f"v{i}") == b"OK"
assert cmd("SET", "users:gone", "x") == b"OK"
EOF
wait_for 10 3 'cmd("GET", "users:base199") == b"v199" and cmd("GET", "users:gone") == b"x"' ||
  fail "node 3 did not get node 1's writes"
echo "ok: writes on node 1 visible on node 3"

ip -n "$BR_NS" link set p3 down
wait_alive "$DETECT_TIMEOUT" 2 1 2 || fail "nodes 1 and 2 did not declare node 3 dead"
wait_alive "$DETECT_TIMEOUT" 1 3 || fail "node 3 did not declare nodes 1 and 2 dead"
echo "ok: node 3 cut off; each side sees the other dead"

# Writes on both sides. Order matters for the conflicting keys: the later write must win.
script 3 <<'EOF' || fail "writes on node 3 (cut off)"
for i in range(100):
    cmd("SET", f"users:only3-{i}", "three")
for i in range(50):
    cmd("SET", f"users:both{i}", "first-on-3")
cmd("DEL", "users:base0")
EOF
sleep 0.05  # a later HLC on the other side: the writes below are the newer ones
script 1 <<'EOF' || fail "writes on node 1"
for i in range(100):
    cmd("SET", f"users:only1-{i}", "one")
for i in range(50):
    cmd("SET", f"users:both{i}", "second-on-1")
for i in range(50):
    cmd("SET", f"users:rev{i}", "first-on-1")
cmd("DEL", "users:gone")
EOF
sleep 0.05
script 3 <<'EOF' || fail "later writes on node 3"
for i in range(50):
    cmd("SET", f"users:rev{i}", "second-on-3")
EOF
echo "ok: both sides wrote during the partition"

ip -n "$BR_NS" link set p3 up
wait_alive "$HEAL_TIMEOUT" 3 1 2 3 || fail "the membership did not heal"
echo "ok: link restored, membership healed"
check='
c = contents()
assert len([k for k in c if k.startswith(b"users:only3-")]) == 100
assert len([k for k in c if k.startswith(b"users:only1-")]) == 100
assert all(c[b"users:both%d" % i] == b"second-on-1" for i in range(50))
assert all(c[b"users:rev%d" % i] == b"second-on-3" for i in range(50))
assert b"users:gone" not in c and b"users:base0" not in c, {k: c[k] for k in (b"users:gone", b"users:base0") if k in c}
assert len(c) == 199 + 100 + 100 + 50 + 50, len(c)
'
for n in 1 2 3; do
  wait_for "$HEAL_TIMEOUT" "$n" "exec(compile($(python3 -c 'import sys; print(repr(sys.argv[1]))' "$check"), 'c', 'exec')) is None" ||
    { script "$n" <<<"$check"; script "$n" <<<'print(cmd("INFO", "replicated").decode())'; fail "node $n did not converge"; }
done
h1=$(script 1 <<<'import hashlib; print(hashlib.sha256(repr(sorted(contents().items())).encode()).hexdigest())')
h2=$(script 2 <<<'import hashlib; print(hashlib.sha256(repr(sorted(contents().items())).encode()).hexdigest())')
h3=$(script 3 <<<'import hashlib; print(hashlib.sha256(repr(sorted(contents().items())).encode()).hexdigest())')
[ "$h1" = "$h2" ] && [ "$h2" = "$h3" ] || fail "contents differ after healing ($h1 $h2 $h3)"
echo "ok: all three converged: later writes won on both sides, deletes stayed deleted"
for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a node exited (pid $pid)"; done
echo "PASS"
