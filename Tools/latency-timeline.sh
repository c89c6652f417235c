#!/usr/bin/env bash
# Where the microseconds of one request or acknowledged message go, stage by stage, on both nodes of `mesh bench`:
# builds `mesh` with its latency probes (LatencyProbe, -DMESH_PROBES) in .build-probes, runs the bench with
# MESH_PROBE_DIR set, and prints the timeline (Tools/latency-timeline.py). The probes cost a clock read each, so
# the bench's own figures from this build are not the release build's.
#
# Usage: Tools/latency-timeline.sh [request|acked] [sync|async] [MESSAGES] [task|node]
#        (defaults: request async 3000 task; node runs the caller on the node's thread, mesh bench --caller node)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-request}
handler=${2:-async}
messages=${3:-3000}
caller=${4:-task}
case "$mode" in request|acked) ;; *) echo "mode must be request or acked" >&2; exit 2 ;; esac
case "$handler" in sync|async) ;; *) echo "handler must be sync or async" >&2; exit 2 ;; esac
case "$caller" in task|node) ;; *) echo "caller must be task or node" >&2; exit 2 ;; esac
swift build -c release --product mesh --build-path .build-probes -Xswiftc -DMESH_PROBES >&2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
MESH_PROBE_DIR=$dir .build-probes/release/mesh bench --mode "$mode" --handler "$handler" --caller "$caller" --messages "$messages" --json
python3 Tools/latency-timeline.py "$dir"
