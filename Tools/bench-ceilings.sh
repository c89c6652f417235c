#!/usr/bin/env bash
# Builds the C ceiling programs from ../shared/bench into a scratch folder and runs them, so Mesh's
# benchmark figures can be set beside ceilings measured on this machine in the same session.
# Usage: Tools/bench-ceilings.sh [RUNS]     (default 3; prints one key=value line per program and run)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bench="${MESH_CEILINGS_DIR:-$root/../shared/bench}"
runs="${1:-3}"
if [ ! -f "$bench/sqlite_bench.c" ]; then
    echo "no C ceilings at $bench (set MESH_CEILINGS_DIR)" >&2
    exit 1
fi
scratch="$(mktemp -d /tmp/mesh-ceilings.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
gcc -O2 -o "$scratch/sqlite_bench" "$bench/sqlite_bench.c" -lsqlite3
gcc -O2 -o "$scratch/jbus" "$bench/journaled_bus.c" -lsqlite3
gcc -O2 -o "$scratch/udp_oneway" "$bench/udp_oneway.c"
gcc -O2 -o "$scratch/udp_pingpong" "$bench/udp_pingpong.c"
mkdir -p "$scratch/db"
for i in $(seq "$runs"); do
    echo "S4 sqlite NORMAL 100/txn: $("$scratch/sqlite_bench" "$scratch/db.sqlite" NORMAL 200000 100 60)"
    echo "S9 sqlite FULL 100/txn:   $("$scratch/sqlite_bench" "$scratch/db.sqlite" FULL 200000 100 60)"
    echo "B5 journaled bus:         $("$scratch/jbus" 200000 100 4096 NORMAL 1 60 47011 "$scratch/db")"
    echo "B1 journaled bus 1-by-1:  $("$scratch/jbus" 20000 1 1 NORMAL 0 60 47012 "$scratch/db")"
    echo "U1 udp one-way:           $("$scratch/udp_oneway" 1000000 1024 4194304 1 20 47013)"
    echo "U4 udp ping-pong:         $("$scratch/udp_pingpong" 100000 1024 30 47014 0 -1 -1)"
done
