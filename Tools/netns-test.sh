#!/usr/bin/env bash
# Mesh across three hosts: three network namespaces joined by veth pairs to a bridge, one `mesh node` in each
# with its own address, discovery from one seed, traffic in a ring (1 -> 2 -> 3 -> 1), then host 3's link taken
# down for longer than the member timeout and brought back: the others mark it down, the messages pending to it
# resume when it returns (the give-up time is 30 s), nothing acknowledged is lost, nothing is journaled twice.
#
# Usage: Tools/netns-test.sh [MESH_BINARY] [MESSAGES]   (root on Linux, iproute2 and sqlite3; default
# .build/debug/mesh and 20000, sent at 1,000 a second so the link goes down mid-stream on any machine). Creates and
# removes namespaces mesh-ns1..3 and bridge mesh-br0 itself.
# Exits 0 on success, 1 on a failed check, 77 (skipped, with the reason on stderr) where it cannot run.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mesh="${1:-$root/.build/debug/mesh}"
messages="${2:-20000}"
skip() { echo "netns test skipped: $*" >&2; exit 77; }
[ "$(uname -s)" = Linux ] || skip "not Linux"
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
[ -x "$mesh" ] || skip "no mesh binary at $mesh"
ip netns add mesh-probe-$$ 2>/dev/null || skip "cannot create network namespaces here"
ip netns del mesh-probe-$$

work="$(mktemp -d /tmp/mesh-netns.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    for i in 1 2 3; do ip netns del "mesh-ns$i" 2>/dev/null; ip link del "mesh-v$i" 2>/dev/null; done
    ip link del mesh-br0 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "netns test FAILED: $*" >&2
    for i in 1 2 3; do echo "--- node $i (reachable members: $(reachable $i))" >&2; tail -5 "$work/n$i.log" >&2; done
    exit 1
}
q() { sqlite3 -readonly "$work/n$1.sqlite" "$2" 2>/dev/null; }
# Reachable members as node N sees them (itself included), from its Prometheus endpoint inside its namespace.
reachable() {
    ip netns exec "mesh-ns$1" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null |
        awk '/^mesh_members_reachable/ { print int($2) }'
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do [ $SECONDS -lt $deadline ] || fail "$what (waited ${limit} s)"; sleep 0.2; done
}

ip link add mesh-br0 type bridge && ip link set mesh-br0 up || skip "cannot create a bridge"
for i in 1 2 3; do
    ip netns add "mesh-ns$i"
    ip link add "mesh-v$i" type veth peer name eth0 netns "mesh-ns$i"
    ip link set "mesh-v$i" master mesh-br0 up
    ip -n "mesh-ns$i" addr add "10.77.0.$i/24" dev eth0
    ip -n "mesh-ns$i" link set eth0 up
    ip -n "mesh-ns$i" link set lo up
done
"$mesh" keygen > "$work/cluster.key"
next() { echo $(( $1 % 3 + 1 )); }
for i in 1 2 3; do
    seed=(); [ "$i" = 1 ] || seed=(--seed 10.77.0.1:7000)
    ip netns exec "mesh-ns$i" "$mesh" node --bind "10.77.0.$i:7000" --journal "$work/n$i.sqlite" --key-file "$work/cluster.key" \
        "${seed[@]}" --metrics-port 9100 --sink 1024 --send-to "10.77.0.$(next $i):7000" --send-command 1024 --send-count "$messages" \
        --send-rate 1000 \
        > "$work/n$i.log" 2>&1 &
    pids+=($!)
done

# Discovery through the one seed: every node knows the other two, online.
knows_all() { for i in 1 2 3; do [ "$(q $i "SELECT count(*) FROM mesh_peer WHERE address IS NOT NULL AND status = 1")" = 2 ] || return 1; done; }
wait_for 60 "the three nodes did not discover each other from one seed" knows_all
all_reachable() { for i in 1 2 3; do [ "$(reachable $i)" = 3 ] || return 1; done; }
wait_for 30 "the nodes do not all report 3 reachable members" all_reachable
echo "discovery: each node knows the other two"

# Traffic is flowing in every direction; then host 3 loses its link.
received() { q "$1" "SELECT count(*) FROM mesh_inbound WHERE command_id = 1024"; }
flowing() { for i in 1 2 3; do [ "$(received $i)" -gt 100 ] 2>/dev/null || return 1; done; }
midway() { for i in 1 2 3; do [ "$(received $i)" -lt "$messages" ] 2>/dev/null || return 1; done; }
wait_for 60 "traffic did not flow between the hosts" flowing
midway || fail "a stream had finished before the link went down (use more messages)"
# The switch side of host 3's cable: host 3 keeps its interface and route, its packets go nowhere. (Taking
# eth0 down inside the namespace instead makes sends fail with ENETUNREACH, which SwiftNIO treats as fatal for
# the socket; see the note in README "Several hosts".)
ip link set mesh-v3 down
echo "host 3 link down"
down_at() { [ "$(reachable "$1")" = 2 ]; }
wait_for 30 "node 1 did not mark host 3 down" down_at 1
wait_for 30 "node 2 did not mark host 3 down" down_at 2
echo "membership: nodes 1 and 2 marked host 3 down"
# What this test is about: node 2 (whose ring neighbour is host 3) has messages pending to it while it is away.
pending_to_3() { [ "$(q 2 "SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status = 'pending'")" -gt 0 ] 2>/dev/null; }
pending_to_3 || fail "node 2 had no message pending to host 3 while its link was down"
echo "node 2 holds $(q 2 "SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status = 'pending'") messages pending to host 3"
ip link set mesh-v3 up
echo "host 3 link up"

# Everything completes: each receiver journaled every message once and handled it; each sender saw all acked.
done_all() {
    for i in 1 2 3; do
        [ "$(q $i "SELECT count(*), count(DISTINCT origin_seq) FROM mesh_inbound WHERE command_id = 1024")" = "$messages|$messages" ] || return 1
        [ "$(q $i "SELECT count(*) FROM mesh_outbound_state WHERE command_id = 1024 AND status = 1")" = "$messages" ] || return 1
    done
}
wait_for 180 "the streams did not complete after the link came back" done_all
for i in 1 2 3; do
    [ "$(q $i "SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status <> 'handled'")" = 0 ] || fail "node $i has unhandled messages"
    [ "$(q $i "SELECT count(*) FROM mesh_outbound_state WHERE status = 2")" = 0 ] || fail "node $i has failed messages"
done
up_again() { [ "$(reachable "$1")" = 3 ]; }
wait_for 30 "node 1 did not see host 3 back" up_again 1

# Now the interface inside host 3 goes down: its sends fail with ENETUNREACH, SwiftNIO closes the socket, the
# transport binds a new one; when the interface is back, host 3 is a member again in both directions.
ip -n mesh-ns3 link set eth0 down
echo "host 3 interface down"
wait_for 30 "node 1 did not mark host 3 down (interface down)" down_at 1
ip -n mesh-ns3 link set eth0 up
echo "host 3 interface up"
wait_for 30 "node 1 did not see host 3 back after its interface came up" up_again 1
wait_for 30 "host 3 did not see the others back after its interface came up" up_again 3
echo "host 3 replaced its socket $(grep -c 'closed unexpectedly' "$work/n3.log") time(s) while its interface was down"
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do wait "$pid" || fail "a node did not shut down cleanly"; done
pids=()
for i in 1 2 3; do [ "$(q $i "PRAGMA integrity_check")" = ok ] || fail "node $i journal integrity"; done
echo "netns test passed: 3 hosts, $messages messages each way in a ring, host 3 partitioned and back; each message journaled once, all acked"
