#!/usr/bin/env bash
# Two builds of mesh side by side: for each round and each mode, `mesh bench` runs with build A and at once with
# build B (A first in odd rounds, B first in even ones, so that neither always runs second; each run after a `sync`,
# so that none starts under another's writeback); the table prints, per mode, each build's median and the median of
# the B/A ratios taken run by run, with their range. These machines drift 10-40 % within an hour, so a change is
# judged only on alternating runs like these, and a ratio inside the range of an A/A run (the same build on both
# sides) is no effect.
# With builds that report it (host_steal_pct), the table also gives the share of the machine stolen by the host
# during each side's runs.
#
# Usage: Tools/bench-ab.sh A_BIN B_BIN [ROUNDS] [MODE...]
#        ROUNDS defaults to 10; a MODE is "oneway", "acked", "request" or "request-sync" ("acked-sync" too);
#        default: request request-sync acked oneway. MESSAGES (default 2000; one-way runs 20x that), CALLER
#        (task or node, default task) and DURABILITY (normal or full, default normal) are read from the environment.
# Example: git stash; swift build -c release --product mesh; cp .build/release/mesh /tmp/mesh-a; git stash pop
#          swift build -c release --product mesh; Tools/bench-ab.sh /tmp/mesh-a .build/release/mesh 12
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
a="$1"
b="$2"
rounds="${3:-10}"
shift $(( $# < 3 ? $# : 3 ))
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(request request-sync acked oneway)
messages="${MESSAGES:-2000}"
caller="${CALLER:-task}"
durability="${DURABILITY:-normal}"
case "$durability" in normal|full) ;; *) echo "DURABILITY must be normal or full" >&2; exit 2 ;; esac
for bin in "$a" "$b"; do [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }; done
# Builds from before --handler and --caller take the defaults: each build's options, read once.
options() { "$1" bench pair --help 2>&1 | grep -o -- '--handler\|--caller' | sort -u | tr '\n' ' '; }
options_a=$(options "$a")
options_b=$(options "$b")
for mode in "${modes[@]}"; do
    case "$mode" in oneway|acked|acked-sync|request|request-sync) ;; *) echo "unknown mode: $mode" >&2; exit 2 ;; esac
done
results="$(mktemp /tmp/mesh-bench-ab.XXXXXX)"
trap 'rm -f "$results"' EXIT
for round in $(seq "$rounds"); do
    for mode in "${modes[@]}"; do
        benchmode="${mode%-sync}"
        handler=async
        [ "$mode" != "$benchmode" ] && handler=sync
        count="$messages"
        [ "$benchmode" = oneway ] && count=$((messages * 20))
        order="A B"
        [ $((round % 2)) -eq 0 ] && order="B A"
        for side in $order; do
            bin="$a"
            known="$options_a"
            [ "$side" = B ] && { bin="$b"; known="$options_b"; }
            args=(bench --mode "$benchmode" --messages "$count" --durability "$durability" --json)
            case "$known" in *--handler*) args+=(--handler "$handler") ;; esac
            case "$known" in *--caller*) args+=(--caller "$caller") ;; esac
            sync
            json=$("$bin" "${args[@]}" 2>/dev/null)
            echo "$round $mode $side $json" >> "$results"
        done
    done
    echo "round $round done" >&2
done
python3 - "$results" "$a" "$b" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    round_, mode, side, text = line.split(" ", 3)
    rows.setdefault(mode, {}).setdefault(round_, {})[side] = json.loads(text)
keys = [("p50_us", "p50 µs"), ("p99_us", "p99 µs"), ("msgs_per_s", "msgs/s"), ("cpu_us_per_message", "CPU µs/msg")]
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}\n")
print("| mode | measure | A median | B median | B/A (median of paired runs) | range |")
print("|---|---|---|---|---|---|")
for mode, rounds in rows.items():
    pairs = [r for r in rounds.values() if "A" in r and "B" in r]
    for key, label in keys:
        values = [(p["A"].get(key), p["B"].get(key)) for p in pairs]
        values = [(x, y) for x, y in values if x and y]
        if not values:
            continue
        ratios = [y / x for x, y in values]
        print(f"| {mode} | {label} | {statistics.median(x for x, _ in values):.0f} | {statistics.median(y for _, y in values):.0f} "
              f"| {statistics.median(ratios):.3f} | {min(ratios):.2f}–{max(ratios):.2f} |")
    # The host's steal during each side's runs (builds that report it): a ratio from rounds where one side was
    # stolen from much more than the other says more about the host than about the change.
    steal = [(p["A"].get("host_steal_pct"), p["B"].get("host_steal_pct")) for p in pairs]
    steal = [(x, y) for x, y in steal if x is not None and y is not None]
    if steal:
        print(f"| {mode} | % stolen by the host | {statistics.median(x for x, _ in steal):.1f} "
              f"| {statistics.median(y for _, y in steal):.1f} | — | A {min(x for x, _ in steal):.1f}–{max(x for x, _ in steal):.1f}, "
              f"B {min(y for _, y in steal):.1f}–{max(y for _, y in steal):.1f} |")
EOF
