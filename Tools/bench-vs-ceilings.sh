#!/usr/bin/env bash
# Mesh beside the C journaled bus, measured alternately in the same session: for each round, each C ceiling runs
# right before the Mesh figure it is compared with, the ratio is taken run by run, and the table prints the median
# ratio of the rounds (with their range). These machines drift 10-40 % within an hour, so only ratios measured this
# way mean anything.
#
# Usage: Tools/bench-vs-ceilings.sh [ROUNDS]   (default 3; needs gcc, libsqlite3-dev, python3 and a release build:
#        swift build -c release --product mesh). MESH_BIN overrides the mesh binary, MESH_CEILINGS_DIR the C sources.
#
# | row | C ceiling | Mesh |
# | acked p50 / B1 | jbus 20000 1 1 NORMAL 0: per-message latency | mesh bench --mode acked p50 |
# | acked p50 / B1's p50; acked p99 / p50; B1's p99 / p50; B1's mean / p50 | a copy of jbus timing each message | the acked run above |
# | acked sync p50 / B1 | the same | mesh bench --mode acked --handler sync p50 (the receiver's sink inline) |
# | request p50 / B1 | the same | mesh bench --mode request p50 (async handler) |
# | request sync p50 / B1 | the same | mesh bench --mode request --handler sync p50 (inline handler) |
# | acked, caller on the node's thread / B1 | the same | mesh bench --mode acked --caller node p50 |
# | request sync, caller on the node's thread / B1 | the same | mesh bench --mode request --handler sync --caller node p50 |
# | request p99 / its p50 | - | mesh bench --mode request |
# | one-way / B5 | jbus 200000 100 4096 NORMAL 1: msgs/s | mesh bench (one-way) msgs/s |
# | one-way --no-json / B5 | the same | mesh bench --no-json msgs/s |
# | one-way / B5j; B5j / B5 | a copy of jbus journaling the JSON rendering too, 8 KiB pages (B5j), right after | the one-way run above |
# | one-way CPU per message / B5's | B5's CPU (both processes) | cpu_us_per_message of the one-way run |
# | one-way --no-segmentation-offload / B5 | the same | mesh bench --no-segmentation-offload msgs/s (datagram by datagram) |
# | acked --durability full p50 / B2 | jbus 20000 1 1 FULL 0 | mesh bench --mode acked --durability full p50 |
# | acked --durability full p50 / B2's own p50; its p99 / p50; B2's p99 / p50 | a copy of jbus timing each message under FULL | the --durability full run above |
# | acked --idle-spin 0 p50 / B1 | jbus 20000 1 1 NORMAL 0 | mesh bench --mode acked --idle-spin 0 p50 |
# | request sync --idle-spin 0 p50 / B1 | the same | mesh bench --mode request --handler sync --idle-spin 0 p50 |
# | acked CPU per message / B1's | jbus 20000 1 1 NORMAL 0, its CPU (both processes) | cpu_us_per_message |
# | acked 2 ms apart p50 / B1's p50 2 ms apart | the timing copy of jbus sleeping 2 ms before each message | mesh bench --mode acked --gap 2000 p50 |
# | acked 2 ms apart CPU per message / B1's | the same, its CPU | cpu_us_per_message of that run |
# | % of CPU time stolen by the host | /proc/stat around the B5 and B2 runs | host_steal_pct of the sync request, one-way and --durability full runs (reported) |
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mesh="${MESH_BIN:-$root/.build/release/mesh}"
bench="${MESH_CEILINGS_DIR:-$root/../shared/bench}"
rounds="${1:-3}"
[ -x "$mesh" ] || { echo "no release mesh at $mesh: swift build -c release --product mesh" >&2; exit 1; }
[ -f "$bench/journaled_bus.c" ] || { echo "no C ceilings at $bench (set MESH_CEILINGS_DIR)" >&2; exit 1; }
scratch="$(mktemp -d /tmp/mesh-vs-ceilings.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
gcc -O2 -o "$scratch/jbus" "$bench/journaled_bus.c" -lsqlite3
# A copy of the C bus that also times each message (from its BEGIN to its acknowledgement, two clock reads) and
# prints p50_us/p90_us/p99_us: B1 above is its mean (1 / msgs_per_s), as the issue defines it, and a heavy tail
# lifts the mean above the median, so the p50 of the C bus is the like-for-like figure for a p50 ratio.
# A copy of the C bus whose rows are as large as Mesh's default ones (B5j): with each message both ends also render
# its JSON as Mesh's `payload_json` holds it for a bytes payload (`{"body":"<base64>"}`, ~1.4 KB) and journal it
# in a TEXT column, in pages of Mesh's size (8 KiB). `mesh bench` one-way journals that rendering at both ends
# unless `--no-json`; B5 journals only the payload.
# Each copy is skipped (with a note) if the C source no longer has every line its hooks replace.
timed_jbus=""
json_jbus=""
copies=$(python3 - "$bench/journaled_bus.c" "$scratch" <<'COPIES'
import sys
source = open(sys.argv[1]).read()
timing = [
    ("double*sent_at=calloc(count+2,sizeof(double));",
     "double*sent_at=calloc(count+2,sizeof(double)); double*began=calloc(count+2,sizeof(double)); "
     "double*lat=calloc(count+2,sizeof(double)); long nlat=0; "
     "long gap_us=getenv(\"JBUS_GAP_US\")?atol(getenv(\"JBUS_GAP_US\")):0;"),
    ("    if(n>0){\n      step(b);",
     "    if(n>0){\n      if(gap_us>0) usleep(gap_us);\n      { double tb=now(); for(long k=0;k<n;k++) began[next+k]=tb; }\n      step(b);"),
    ("if(id>=1&&id<=(uint64_t)count&&!acked[id]){acked[id]=1;",
     "if(id>=1&&id<=(uint64_t)count&&!acked[id]){acked[id]=1;lat[nlat++]=now()-began[id];"),
    ("  double el=now()-t0;",
     "  double el=now()-t0;\n  { int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}"
     " qsort(lat,nlat,sizeof(double),cmpd); if(nlat) printf(\"p50_us=%.0f p90_us=%.0f p99_us=%.0f \","
     " lat[nlat/2]*1e6, lat[nlat*9/10]*1e6, lat[nlat*99/100]*1e6); }"),
]
render = r'''#define MAXB 1024
static char json_text[2 * PAY + 64];
/* {"body":"<standard base64 of the payload>"}: Mesh's payload_json of a message whose body is these bytes. */
static int render_json(const unsigned char *p, int n) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *o = json_text; memcpy(o, "{\"body\":\"", 9); o += 9; int i = 0;
  for (; i + 3 <= n; i += 3) { unsigned v = p[i] << 16 | p[i + 1] << 8 | p[i + 2];
    *o++ = a[v >> 18]; *o++ = a[(v >> 12) & 63]; *o++ = a[(v >> 6) & 63]; *o++ = a[v & 63]; }
  if (n - i == 1) { unsigned v = p[i] << 16; *o++ = a[v >> 18]; *o++ = a[(v >> 12) & 63]; *o++ = '='; *o++ = '='; }
  else if (n - i == 2) { unsigned v = p[i] << 16 | p[i + 1] << 8; *o++ = a[v >> 18]; *o++ = a[(v >> 12) & 63]; *o++ = a[(v >> 6) & 63]; *o++ = '='; }
  memcpy(o, "\"}", 2); o += 2; return (int)(o - json_text);
}'''
json_rows = [
    ("#define MAXB 1024", render),
    ("acked INT DEFAULT 0)", "acked INT DEFAULT 0, payload_json TEXT)"),
    # Mesh's page size (JournalConfiguration.pageSize): with 4 KiB pages a 2.4 KB row fills a page alone, and this
    # copy runs at about two thirds of its speed with 8 KiB ones.
    ('ex(db,"PRAGMA journal_mode=WAL");', 'ex(db,"PRAGMA page_size=8192"); ex(db,"PRAGMA journal_mode=WAL");'),
    ("INSERT OR IGNORE INTO journal(id,cmd,peer,payload,ts) VALUES(?,?,?,?,?)",
     "INSERT OR IGNORE INTO journal(id,cmd,peer,payload,ts,payload_json) VALUES(?,?,?,?,?,?)"),
    ("INSERT INTO journal(id,cmd,peer,payload,ts) VALUES(?,?,?,?,?)",
     "INSERT INTO journal(id,cmd,peer,payload,ts,payload_json) VALUES(?,?,?,?,?,?)"),
    ("sqlite3_bind_blob(ins,4,bufs[i]+sizeof h,h.len,SQLITE_STATIC);",
     "sqlite3_bind_blob(ins,4,bufs[i]+sizeof h,h.len,SQLITE_STATIC); "
     "sqlite3_bind_text(ins,6,json_text,render_json((unsigned char*)bufs[i]+sizeof h,h.len>PAY?PAY:h.len),SQLITE_STATIC);"),
    ("sqlite3_bind_blob(ins,4,out[k]+sizeof h,PAY,SQLITE_STATIC);",
     "sqlite3_bind_blob(ins,4,out[k]+sizeof h,PAY,SQLITE_STATIC); "
     "sqlite3_bind_text(ins,6,json_text,render_json((unsigned char*)out[k]+sizeof h,PAY),SQLITE_STATIC);"),
]
for name, hooks in (("jbus-timed", timing), ("jbus-json", json_rows)):
    if all(source.count(old) == 1 for old, _ in hooks):
        copy = source
        for old, new in hooks:
            copy = copy.replace(old, new)
        open(f"{sys.argv[2]}/{name}.c", "w").write(copy)
        print(name)
COPIES
)
if echo "$copies" | grep -qx jbus-timed; then
    gcc -O2 -o "$scratch/jbus-timed" "$scratch/jbus-timed.c" -lsqlite3 && timed_jbus="$scratch/jbus-timed"
else
    echo "note: $bench/journaled_bus.c changed; the rows against B1's own p50 are skipped" >&2
fi
if echo "$copies" | grep -qx jbus-json; then
    gcc -O2 -o "$scratch/jbus-json" "$scratch/jbus-json.c" -lsqlite3 && json_jbus="$scratch/jbus-json"
else
    echo "note: $bench/journaled_bus.c changed; the rows against B5j (the C bus with Mesh's rows) are skipped" >&2
fi
mkdir -p "$scratch/db"
# key=value output of jbus -> the value of KEY
jbus_value() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
# runs a command, then prints its output and cpu_seconds=U+S (its CPU and its waited-for children's)
with_cpu() {
    python3 -c 'import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True).stdout
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(out.strip(), "cpu_seconds=%f+%f" % (usage.ru_utime, usage.ru_stime))' "$@"
}
# Runs a command and appends "steal=P" to its output: the share of the machine's CPU time (all CPUs, /proc/stat)
# stolen by the host meanwhile, in percent, as mesh bench's host_steal_pct reports it for its own runs; and
# cpu_seconds=U+S as with_cpu does.
with_steal() {
    python3 -c 'import resource, subprocess, sys
def sample():
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:9]]
    return sum(fields), fields[7]
total, steal = sample()
out = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True).stdout
total2, steal2 = sample()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(out.strip(), "steal=%f" % ((steal2 - steal) * 100 / max(1, total2 - total)),
      "cpu_seconds=%f+%f" % (usage.ru_utime, usage.ru_stime))' "$@"
}
# one JSON object of mesh bench -> the value of KEY
json_value() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# The host's steal during a Mesh run (`host_steal_pct`), as a results line "KEY VALUE"; nothing from builds without it.
record_steal() { python3 -c "import json,sys; v=json.load(sys.stdin).get('host_steal_pct'); v is None or print('$1', v)" >> "$results"; }
results="$scratch/results"
# Builds from before `--caller` (MESH_BIN pointing at an older build) skip the rows that need it.
has_caller=$("$mesh" bench pair --help 2>&1 | grep -c -- '--caller' || true)
# Builds from before `--idle-spin` skip the rows that compare with the spin off.
has_idle_spin=$("$mesh" bench pair --help 2>&1 | grep -c -- '--idle-spin' || true)
# Builds from before `--gap` skip the rows of sporadic traffic.
has_gap=$("$mesh" bench pair --help 2>&1 | grep -c -- '--gap' || true)
# Builds from before segmentation offload skip the row that turns it off.
has_gso=$("$mesh" bench pair --help 2>&1 | grep -c -- '--no-segmentation-offload' || true)
: > "$results"
for round in $(seq "$rounds"); do
    # B1 with its CPU (user + system of the sender and of the receiver it forks and waits for) per message.
    b1_out=$(with_cpu "$scratch/jbus" 20000 1 1 NORMAL 0 60 47112 "$scratch/db")
    b1=$(echo "$b1_out" | jbus_value msgs_per_s)
    b1_cpu_us=$(python3 -c "print(($(echo "$b1_out" | jbus_value cpu_seconds)) * 1e6 / 20000)")
    if [ -n "$timed_jbus" ]; then
        b1_timed=$("$timed_jbus" 20000 1 1 NORMAL 0 60 47123 "$scratch/db")
        b1_p50=$(echo "$b1_timed" | jbus_value p50_us)
        echo "b1_tail $(python3 -c "print($(echo "$b1_timed" | jbus_value p99_us) / $b1_p50)")" >> "$results"
        echo "b1_mean_over_p50 $(python3 -c "print((1e6 / $(echo "$b1_timed" | jbus_value msgs_per_s)) / $b1_p50)")" >> "$results"
    fi
    acked_json=$("$mesh" bench --mode acked --messages 3000 --json 2>/dev/null)
    acked=$(echo "$acked_json" | json_value p50_us)
    echo "acked $(python3 -c "print($acked / (1e6 / $b1))")" >> "$results"
    [ -n "$timed_jbus" ] && echo "acked_over_b1_p50 $(python3 -c "print($acked / $b1_p50)")" >> "$results"
    [ -n "$timed_jbus" ] && echo "acked_tail $(python3 -c "print($(echo "$acked_json" | json_value p99_us) / $acked)")" >> "$results"
    acked_cpu_us=$(echo "$acked_json" | json_value cpu_us_per_message)
    echo "acked_cpu $(python3 -c "print($acked_cpu_us / $b1_cpu_us)")" >> "$results"
    echo "acked_cpu_us $acked_cpu_us" >> "$results"
    echo "b1_cpu_us $b1_cpu_us" >> "$results"
    b1=$("$scratch/jbus" 20000 1 1 NORMAL 0 60 47118 "$scratch/db" | jbus_value msgs_per_s)
    acked_sync=$("$mesh" bench --mode acked --handler sync --messages 3000 --json 2>/dev/null | json_value p50_us)
    echo "acked_sync $(python3 -c "print($acked_sync / (1e6 / $b1))")" >> "$results"
    b1=$("$scratch/jbus" 20000 1 1 NORMAL 0 60 47113 "$scratch/db" | jbus_value msgs_per_s)
    request=$("$mesh" bench --mode request --messages 3000 --json 2>/dev/null)
    p50=$(echo "$request" | json_value p50_us)
    p99=$(echo "$request" | json_value p99_us)
    echo "request $(python3 -c "print($p50 / (1e6 / $b1))")" >> "$results"
    echo "request_p99 $(python3 -c "print($p99 / $p50)")" >> "$results"
    echo "commits_async $(echo "$request" | json_value commits_per_message)" >> "$results"
    b1=$("$scratch/jbus" 20000 1 1 NORMAL 0 60 47117 "$scratch/db" | jbus_value msgs_per_s)
    request=$("$mesh" bench --mode request --handler sync --messages 3000 --json 2>/dev/null)
    p50=$(echo "$request" | json_value p50_us)
    p99=$(echo "$request" | json_value p99_us)
    echo "request_sync $(python3 -c "print($p50 / (1e6 / $b1))")" >> "$results"
    echo "request_sync_p99 $(python3 -c "print($p99 / $p50)")" >> "$results"
    echo "commits_sync $(echo "$request" | json_value commits_per_message)" >> "$results"
    echo "frames_request_sync $(echo "$request" | json_value wal_frames_per_message)" >> "$results"
    echo "$request" | record_steal steal_request_sync
    if [ "$has_caller" -gt 0 ]; then
        b1=$("$scratch/jbus" 20000 1 1 NORMAL 0 60 47119 "$scratch/db" | jbus_value msgs_per_s)
        acked_node=$("$mesh" bench --mode acked --caller node --messages 3000 --json 2>/dev/null | json_value p50_us)
        echo "acked_node $(python3 -c "print($acked_node / (1e6 / $b1))")" >> "$results"
        b1=$("$scratch/jbus" 20000 1 1 NORMAL 0 60 47120 "$scratch/db" | jbus_value msgs_per_s)
        request=$("$mesh" bench --mode request --handler sync --caller node --messages 3000 --json 2>/dev/null)
        p50=$(echo "$request" | json_value p50_us)
        echo "request_sync_node $(python3 -c "print($p50 / (1e6 / $b1))")" >> "$results"
        echo "request_sync_node_p99 $(python3 -c "print($(echo "$request" | json_value p99_us) / $p50)")" >> "$results"
    fi
    if [ "$has_idle_spin" -gt 0 ]; then
        # What the idle spin buys: the same two exchanges with the nodes' threads sleeping at once.
        b1=$("$scratch/jbus" 20000 1 1 NORMAL 0 60 47121 "$scratch/db" | jbus_value msgs_per_s)
        acked_nospin=$("$mesh" bench --mode acked --idle-spin 0 --messages 3000 --json 2>/dev/null | json_value p50_us)
        echo "acked_nospin $(python3 -c "print($acked_nospin / (1e6 / $b1))")" >> "$results"
        b1=$("$scratch/jbus" 20000 1 1 NORMAL 0 60 47122 "$scratch/db" | jbus_value msgs_per_s)
        request=$("$mesh" bench --mode request --handler sync --idle-spin 0 --messages 3000 --json 2>/dev/null)
        p50=$(echo "$request" | json_value p50_us)
        echo "request_sync_nospin $(python3 -c "print($p50 / (1e6 / $b1))")" >> "$results"
        echo "request_sync_nospin_p99 $(python3 -c "print($(echo "$request" | json_value p99_us) / $p50)")" >> "$results"
    fi
    b5_out=$(with_steal "$scratch/jbus" 200000 100 4096 NORMAL 1 60 47114 "$scratch/db")
    b5=$(echo "$b5_out" | jbus_value msgs_per_s)
    b5_cpu_us=$(python3 -c "print(($(echo "$b5_out" | jbus_value cpu_seconds)) * 1e6 / 200000)")
    echo "steal_b5 $(echo "$b5_out" | jbus_value steal)" >> "$results"
    oneway=$("$mesh" bench --messages 30000 --json 2>/dev/null)
    echo "oneway $(python3 -c "print($(echo "$oneway" | json_value msgs_per_s) / $b5)")" >> "$results"
    echo "oneway_cpu $(python3 -c "print($(echo "$oneway" | json_value cpu_us_per_message) / $b5_cpu_us)")" >> "$results"
    echo "oneway_cpu_us $(echo "$oneway" | json_value cpu_us_per_message)" >> "$results"
    echo "b5_cpu_us $b5_cpu_us" >> "$results"
    if [ -n "$json_jbus" ]; then
        # The same Mesh run against the C bus journaling rows as large as Mesh's (B5j), run right after it.
        b5j_out=$(with_cpu "$json_jbus" 200000 100 4096 NORMAL 1 60 47127 "$scratch/db")
        echo "oneway_over_b5j $(python3 -c "print($(echo "$oneway" | json_value msgs_per_s) / $(echo "$b5j_out" | jbus_value msgs_per_s))")" >> "$results"
        echo "b5j_over_b5 $(python3 -c "print($(echo "$b5j_out" | jbus_value msgs_per_s) / $b5)")" >> "$results"
        echo "b5j_cpu_us $(python3 -c "print(($(echo "$b5j_out" | jbus_value cpu_seconds)) * 1e6 / 200000)")" >> "$results"
    fi
    echo "frames_oneway $(echo "$oneway" | json_value wal_frames_per_message)" >> "$results"
    echo "bytes_oneway $(echo "$oneway" | json_value receiver_journal_bytes_per_message)" >> "$results"
    echo "$oneway" | record_steal steal_oneway
    b5=$("$scratch/jbus" 200000 100 4096 NORMAL 1 60 47115 "$scratch/db" | jbus_value msgs_per_s)
    nojson=$("$mesh" bench --no-json --messages 30000 --json 2>/dev/null | json_value msgs_per_s)
    echo "oneway_nojson $(python3 -c "print($nojson / $b5)")" >> "$results"
    if [ "$has_gso" -gt 0 ]; then
        b5=$("$scratch/jbus" 200000 100 4096 NORMAL 1 60 47125 "$scratch/db" | jbus_value msgs_per_s)
        nogso=$("$mesh" bench --no-segmentation-offload --messages 30000 --json 2>/dev/null | json_value msgs_per_s)
        echo "oneway_nogso $(python3 -c "print($nogso / $b5)")" >> "$results"
    fi
    b2_out=$(with_steal "$scratch/jbus" 20000 1 1 FULL 0 60 47116 "$scratch/db")
    b2=$(echo "$b2_out" | jbus_value msgs_per_s)
    echo "steal_b2 $(echo "$b2_out" | jbus_value steal)" >> "$results"
    # The C bus timing each message under FULL too: its own p50 (like for like with Mesh's p50) and its tail.
    [ -n "$timed_jbus" ] && b2_timed=$("$timed_jbus" 5000 1 1 FULL 0 60 47126 "$scratch/db")
    full_json=$("$mesh" bench --mode acked --durability full --messages 2000 --json 2>/dev/null)
    full=$(echo "$full_json" | json_value p50_us)
    echo "$full_json" | record_steal steal_full
    echo "acked_full $(python3 -c "print($full / (1e6 / $b2))")" >> "$results"
    if [ -n "$timed_jbus" ]; then
        b2_p50=$(echo "$b2_timed" | jbus_value p50_us)
        echo "acked_full_over_b2_p50 $(python3 -c "print($full / $b2_p50)")" >> "$results"
        echo "acked_full_tail $(python3 -c "print($(echo "$full_json" | json_value p99_us) / $full)")" >> "$results"
        echo "b2_tail $(python3 -c "print($(echo "$b2_timed" | jbus_value p99_us) / $b2_p50)")" >> "$results"
    fi
    if [ -n "$timed_jbus" ] && [ "$has_gap" -gt 0 ]; then
        # Sporadic traffic: each message 2 ms after the last one settled, so every thread of both sides sleeps
        # between them (the C bus blocks in poll; Mesh's nodes stop polling once their polls keep running out).
        gap_out=$(JBUS_GAP_US=2000 with_cpu "$timed_jbus" 2000 1 1 NORMAL 0 60 47124 "$scratch/db")
        gap_b1_p50=$(echo "$gap_out" | jbus_value p50_us)
        gap_b1_cpu_us=$(python3 -c "print(($(echo "$gap_out" | jbus_value cpu_seconds)) * 1e6 / 2000)")
        gap_json=$("$mesh" bench --mode acked --gap 2000 --messages 1500 --json 2>/dev/null)
        echo "acked_gap $(python3 -c "print($(echo "$gap_json" | json_value p50_us) / $gap_b1_p50)")" >> "$results"
        echo "acked_gap_cpu $(python3 -c "print($(echo "$gap_json" | json_value cpu_us_per_message) / $gap_b1_cpu_us)")" >> "$results"
        echo "acked_gap_cpu_us $(echo "$gap_json" | json_value cpu_us_per_message)" >> "$results"
        echo "b1_gap_cpu_us $gap_b1_cpu_us" >> "$results"
    fi
    echo "round $round done" >&2
done
python3 - "$results" "$rounds" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    key, value = line.split()
    rows.setdefault(key, []).append(float(value))
labels = [
    ("acked", "`mesh bench --mode acked` p50 / B1", "≤ 2.0×"),
    ("acked_over_b1_p50", "`mesh bench --mode acked` p50 / B1's own p50 (the C bus timing each message)", "reported"),
    ("acked_tail", "acked p99 / its p50", "reported"),
    ("b1_tail", "B1's p99 / its p50 (the C bus's own tail on this machine)", "reported"),
    ("b1_mean_over_p50", "B1's mean (what B1 above is) / its p50", "reported"),
    ("acked_sync", "`mesh bench --mode acked --handler sync` p50 / B1 (the receiver's handler inline)", "reported"),
    ("request", "`mesh bench --mode request` p50 / B1 (async handler)", "≤ 3.5×"),
    ("request_sync", "`mesh bench --mode request --handler sync` p50 / B1", "≤ 2.5×"),
    ("request_p99", "request p99 / its p50 (async handler)", "≤ 2×"),
    ("request_sync_p99", "request p99 / its p50 (sync handler)", "≤ 2×"),
    ("acked_node", "`mesh bench --mode acked --caller node` p50 / B1 (caller on the node's thread)", "reported"),
    ("request_sync_node", "`mesh bench --mode request --handler sync --caller node` p50 / B1", "reported"),
    ("request_sync_node_p99", "request p99 / its p50 (sync handler, caller on the node's thread)", "reported"),
    ("acked_nospin", "`mesh bench --mode acked --idle-spin 0` p50 / B1 (the nodes' threads sleep at once)", "reported"),
    ("request_sync_nospin", "`mesh bench --mode request --handler sync --idle-spin 0` p50 / B1", "reported"),
    ("request_sync_nospin_p99", "request p99 / its p50 (sync handler, --idle-spin 0)", "reported"),
    ("oneway", "`mesh bench` one-way / B5", "≥ 0.65×"),
    ("oneway_nojson", "`mesh bench --no-json` one-way / B5", "≥ 0.8×"),
    ("oneway_over_b5j", "`mesh bench` one-way / B5j (the C bus journaling the same JSON rendering at both ends)", "reported"),
    ("b5j_over_b5", "B5j / B5 (what journaling the JSON rendering costs the C bus)", "reported"),
    ("oneway_cpu", "one-way CPU per message, both processes / B5's", "reported"),
    ("oneway_nogso", "`mesh bench --no-segmentation-offload` one-way / B5 (datagram by datagram)", "reported"),
    ("acked_full", "`mesh bench --mode acked --durability full` p50 / B2", "≤ 1.5×"),
    ("acked_full_over_b2_p50", "`--durability full` acked p50 / B2's own p50 (the C bus timing each message)", "reported"),
    ("acked_full_tail", "`--durability full` acked p99 / its p50", "reported"),
    ("b2_tail", "B2's p99 / its p50 (the C bus's own tail under FULL)", "reported"),
    ("acked_cpu", "acked CPU per message, both processes / B1's", "reported"),
    ("acked_gap", "`mesh bench --mode acked --gap 2000` p50 / B1's own p50, messages 2 ms apart", "reported"),
    ("acked_gap_cpu", "the same: CPU per message, both processes / B1's", "reported"),
]
def table(header, entries, unit):
    print(f"| {header} | median | range | bar |")
    print("|---|---|---|---|")
    for key, label, bar in entries:
        values = rows.get(key, [])
        if values:
            print(f"| {label} | {statistics.median(values):.2f}{unit} | {min(values):.2f}–{max(values):.2f} | {bar} |")
print(f"Mesh beside the C journaled bus, {sys.argv[2]} alternating rounds (median ratio, range):\n")
table("measure", labels, "×")
counts = [
    ("commits_async", "commits per request, both nodes (async handler)", "≤ 3"),
    ("commits_sync", "commits per request, both nodes (sync handler)", "≤ 3"),
    ("frames_request_sync", "WAL frames per request, both nodes (sync handler)", "reported"),
    ("frames_oneway", "WAL frames per one-way message, both nodes", "reported"),
    ("bytes_oneway", "receiver journal bytes per one-way message (file + WAL)", "reported"),
    ("acked_cpu_us", "CPU µs per acked message, both processes (`cpu_us_per_message`)", "reported"),
    ("b1_cpu_us", "CPU µs per B1 message, both processes", "reported"),
    ("oneway_cpu_us", "CPU µs per one-way message, both processes (`cpu_us_per_message`)", "reported"),
    ("b5_cpu_us", "CPU µs per B5 message, both processes", "reported"),
    ("b5j_cpu_us", "CPU µs per B5j message, both processes", "reported"),
    ("acked_gap_cpu_us", "CPU µs per acked message 2 ms apart, both processes", "reported"),
    ("b1_gap_cpu_us", "CPU µs per B1 message 2 ms apart, both processes", "reported"),
    ("steal_request_sync", "% of the machine's CPU time stolen by the host during the sync request runs (`host_steal_pct`)", "reported"),
    ("steal_oneway", "the same, during the one-way runs", "reported"),
    ("steal_b5", "the same, during the C bus's B5 runs", "reported"),
    ("steal_full", "the same, during the `--durability full` acked runs", "reported"),
    ("steal_b2", "the same, during the C bus's B2 runs", "reported"),
]
print()
table("count (same runs)", counts, "")
PY
