#!/usr/bin/env bash
# Builds the C ceiling programs from ../shared/bench into a scratch folder and runs them, so Mesh's
# benchmark figures can be set beside ceilings measured on this machine in the same session.
# Usage: Tools/bench-ceilings.sh [RUNS]     (default 3; prints one key=value line per run)
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
for i in $(seq "$runs"); do
    echo "sqlite NORMAL 100/txn: $("$scratch/sqlite_bench" "$scratch/db.sqlite" NORMAL 200000 100 60)"
    echo "sqlite FULL 100/txn:   $("$scratch/sqlite_bench" "$scratch/db.sqlite" FULL 200000 100 60)"
done
