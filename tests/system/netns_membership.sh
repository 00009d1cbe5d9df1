#!/usr/bin/env bash
# Membership across a real (virtual) network: three shoal nodes, each in its own network
# namespace, linked by veth pairs to a bridge that lives in a fourth namespace (nothing is added
# to the host's own namespace). The test cuts node 3's link (`ip link set ... down` on its bridge
# port), checks nodes 1 and 2 declare it dead (and it sees them dead), brings the link back and
# checks all three see each other alive again (SWIM's reconnect probe of dead members heals it).
#
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2 and python3. Exits 77 (skip) if they
# are missing, 0 on success, 1 on failure. Every namespace and process it made is removed on exit,
# failure and interruption included.
#
# Usage: tests/system/netns_membership.sh [path/to/shoal]   (default: $SHOAL_BIN or build/shoal)
set -u

REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SHOAL="${1:-${SHOAL_BIN:-$REPO_ROOT/build/shoal}}"
DETECT_TIMEOUT=${DETECT_TIMEOUT:-20}   # s: cut-off node declared dead by the others
HEAL_TIMEOUT=${HEAL_TIMEOUT:-40}       # s: back alive (reconnect runs every 10 s)
COOKIE="netns-membership-cookie"
SUBNET="10.231.77"                     # private, and only inside the test namespaces
PORT=7000 CPORT=7100 HPORT=7200

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip >/dev/null || skip "needs iproute2 (ip)"
command -v python3 >/dev/null || skip "needs python3"
[ -x "$SHOAL" ] || { echo "FAIL: shoal binary not found: $SHOAL"; exit 1; }

TAG="shm$$"                  # unique per run: names are <=15 chars (interface name limit)
BR_NS="${TAG}br"
WORK="$(mktemp -d /tmp/shoal-netns.XXXXXX)"
PIDS=()
NSES=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
    for i in 1 2 3; do
      [ -f "$WORK/n$i.log" ] && { echo "--- node $i log ---"; cat "$WORK/n$i.log"; }
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }

# --- network: bridge namespace + one namespace per node -------------------------------------------
ip netns add "$BR_NS" || skip "cannot create network namespaces here"
NSES+=("$BR_NS")
ip -n "$BR_NS" link add br0 type bridge || skip "cannot create a bridge"
ip -n "$BR_NS" link set br0 up
for i in 1 2 3; do
  ns="${TAG}n$i"
  ip netns add "$ns" || skip "cannot create network namespace $ns"
  NSES+=("$ns")
  ip -n "$ns" link set lo up
  # Create the pair inside the node's namespace, then move the bridge end over.
  ip -n "$ns" link add eth0 type veth peer name "p$i" || skip "cannot create veth pairs"
  ip -n "$ns" link set "p$i" netns "$BR_NS"
  ip -n "$BR_NS" link set "p$i" master br0
  ip -n "$BR_NS" link set "p$i" up
  ip -n "$ns" addr add "$SUBNET.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
done

# --- helpers --------------------------------------------------------------------------------------
# counts NODE -> "alive suspect dead left" as node NODE reports them (INFO membership), or "".
counts() {
  ip netns exec "${TAG}n$1" python3 - "$SUBNET.$1" "$PORT" <<'EOF' 2>/dev/null
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    s.sendall(b"*2\r\n$4\r\nINFO\r\n$10\r\nmembership\r\n")
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n")
        if sep and head.startswith(b"$") and len(rest) >= int(head[1:]):
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    info = dict(l.split(":", 1) for l in data.decode().splitlines() if ":" in l)
    print(" ".join(info.get(f"members_{k}", "?").strip() for k in ("alive", "suspect", "dead", "left")))
except Exception:
    pass
EOF
}

# wait_counts TIMEOUT "WANT" NODE... : every NODE reports WANT ("alive suspect dead left").
wait_counts() {
  local timeout=$1 want=$2; shift 2
  local deadline; deadline=$(python3 -c "import time; print(time.monotonic() + $timeout)")
  while :; do
    local ok=1 n
    for n in "$@"; do
      [ "$(counts "$n")" = "$want" ] || { ok=0; break; }
    done
    [ $ok = 1 ] && return 0
    if python3 -c "import sys, time; sys.exit(0 if time.monotonic() > $deadline else 1)"; then
      for n in "$@"; do echo "  node $n: $(counts "$n") (alive suspect dead left)"; done
      return 1
    fi
    sleep 0.1
  done
}

start_node() {
  local i=$1 seeds=""
  [ "$i" != 1 ] && seeds="--seeds $SUBNET.1:$CPORT"
  # shellcheck disable=SC2086
  ip netns exec "${TAG}n$i" env -u SHOAL_SEEDS -u SHOAL_COOKIE "$SHOAL" serve \
      --bind "$SUBNET.$i" --port $PORT --threads 1 --cluster-port $CPORT --http-port $HPORT \
      --cookie "$COOKIE" --data-dir "$WORK/d$i" $seeds >"$WORK/n$i.log" 2>&1 </dev/null &
  PIDS+=($!)
}

# --- the test -------------------------------------------------------------------------------------
for i in 1 2 3; do start_node $i; done
t0=$(now)
wait_counts 20 "3 0 0 0" 1 2 3 || fail "the three nodes did not form a cluster"
echo "ok: cluster of 3 formed across namespaces ($(elapsed "$t0") s)"

t0=$(now)
ip -n "$BR_NS" link set p3 down
wait_counts "$DETECT_TIMEOUT" "2 0 1 0" 1 2 || fail "nodes 1 and 2 did not declare node 3 dead"
echo "ok: node 3 cut off, declared dead by nodes 1 and 2 after $(elapsed "$t0") s"
wait_counts "$DETECT_TIMEOUT" "1 0 2 0" 3 || fail "node 3 did not declare nodes 1 and 2 dead"
echo "ok: node 3 sees nodes 1 and 2 dead ($(elapsed "$t0") s)"
for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a node exited (pid $pid)"; done

t0=$(now)
ip -n "$BR_NS" link set p3 up
wait_counts "$HEAL_TIMEOUT" "3 0 0 0" 1 2 3 || fail "the cluster did not heal after the link came back"
echo "ok: link restored, all three alive again after $(elapsed "$t0") s"
grep -q "is alive" "$WORK/n1.log" || fail "node 1 did not log node 3 coming back"
echo "PASS"
