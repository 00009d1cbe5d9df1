# Shared by the netns_*.sh tests: a bridge namespace plus one namespace per node, joined by veth
# pairs (nothing is added to the host's own namespace), and the cleanup that removes every
# namespace and process the test made, on success, failure and interruption alike.
#
# The sourcing script sets SHOAL, SUBNET (e.g. 10.231.77) and TAG (unique, <= 10 chars), then
# calls `netns_setup N`; it records the processes it starts in PIDS. On failure the nodes' logs
# ($WORK/n<i>.log) are printed. Helpers: skip (exit 77), fail (exit 1).

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip >/dev/null || skip "needs iproute2 (ip)"
command -v python3 >/dev/null || skip "needs python3"
[ -x "$SHOAL" ] || { echo "FAIL: shoal binary not found: $SHOAL"; exit 1; }

BR_NS="${TAG}br"
WORK="$(mktemp -d /tmp/shoal-netns.XXXXXX)"
PIDS=()
NSES=()
NETNS_NODES=0

netns_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
    for i in $(seq 1 "$NETNS_NODES"); do
      [ -f "$WORK/n$i.log" ] && { echo "--- node $i log ---"; tail -80 "$WORK/n$i.log"; }
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap netns_cleanup EXIT
trap 'exit 130' INT TERM

# netns_setup N: namespaces ${TAG}n1..N with eth0 = $SUBNET.i/24, their peers p1..pN on bridge
# br0 in $BR_NS. `ip -n "$BR_NS" link set pI down` cuts node I off.
netns_setup() {
  NETNS_NODES=$1
  ip netns add "$BR_NS" || skip "cannot create network namespaces here"
  NSES+=("$BR_NS")
  ip -n "$BR_NS" link add br0 type bridge || skip "cannot create a bridge"
  ip -n "$BR_NS" link set br0 up
  local i ns
  for i in $(seq 1 "$1"); do
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
}
