#!/usr/bin/env bash
# Recovery after a crash with 100,000 pending outbound messages (MESSAGES to change it): `mesh send --count 0` on
# the crashed sender's journal resumes them. Prints the time from the process's start to the first resent message
# journaled by the receiver (what the README's "first resend within 1 s" means), and to the last.
set -euo pipefail
M="${MESH_BIN:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/mesh}"
N="${MESSAGES:-100000}"
D=$(mktemp -d /tmp/mesh-recovery.XXXX)
trap 'kill $NODE 2>/dev/null || true; rm -rf $D' EXIT
$M keygen > $D/k
chmod 600 $D/k
$M node --bind 127.0.0.1:0 --journal $D/r.sqlite --key-file $D/k --sink 1024 > $D/node.out 2>/dev/null &
NODE=$!
for i in $(seq 50); do [ -s $D/node.out ] && break; sleep 0.1; done
ADDR=$(awk '{print $3}' $D/node.out)
$M send --to $ADDR --command 1024 --data '{"body":"'$(head -c 700 /dev/zero | tr '\0' 'x')'"}' --count 1 --key-file $D/k --journal $D/s.sqlite --quiet
sqlite3 $D/s.sqlite <<SQL
PRAGMA foreign_keys=ON;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i+1 FROM n WHERE i < $N + 1)
INSERT INTO mesh_outbound(seq, command_id, kind, peer, created_at, payload, payload_json)
  SELECT i, 1024, 0, (SELECT peer FROM mesh_outbound WHERE seq = 1), (SELECT created_at FROM mesh_outbound WHERE seq = 1),
         (SELECT payload FROM mesh_outbound WHERE seq = 1), (SELECT payload_json FROM mesh_outbound WHERE seq = 1) FROM n;
UPDATE mesh_node SET last_out_seq = $N + 1;
COMMIT;
SQL
BEFORE=$(sqlite3 -readonly $D/r.sqlite 'SELECT count(*) FROM mesh_inbound')
echo "pending: $(sqlite3 -readonly $D/s.sqlite "SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status = 'pending'")"
START=$(date +%s.%N)
$M send --to $ADDR --command 1024 --count 0 --key-file $D/k --journal $D/s.sqlite --timeout 300 --json > $D/send.json &
SEND=$!
until [ "$(sqlite3 -readonly $D/r.sqlite 'SELECT count(*) FROM mesh_inbound' 2>/dev/null || echo 0)" -gt "$BEFORE" ]; do
    kill -0 $SEND 2>/dev/null || break
    sleep 0.005
done
FIRST=$(date +%s.%N)
wait $SEND
END=$(date +%s.%N)
cat $D/send.json
echo "first resend journaled by the receiver after: $(echo "$FIRST - $START" | bc) s (process start included)"
echo "all resent and acknowledged after: $(echo "$END - $START" | bc) s"
echo "receiver journaled: $(( $(sqlite3 -readonly $D/r.sqlite 'SELECT count(*) FROM mesh_inbound') - BEFORE )) of $N"
