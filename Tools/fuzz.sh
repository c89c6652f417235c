#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time: Tools/fuzz.sh TARGET SECONDS
#   codec   MeshCodec.decode / re-encode / DataCapsule.unpack (MeshCore sources + Fuzz/CodecFuzzTarget.swift)
# Committed seeds are in Fuzz/TARGET-seeds; the corpus grows in Fuzz/.corpus-TARGET (not committed); crash inputs
# are written to Fuzz/artifacts/ and the script exits non-zero. Each crash should become a regression test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${1:?usage: Tools/fuzz.sh codec SECONDS}"
seconds="${2:-60}"
work="$(mktemp -d /tmp/mesh-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT
case "$target" in
    codec)
        swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name MeshCoreFuzz \
            "$root"/Sources/MeshCore/*.swift "$root/Fuzz/CodecFuzzTarget.swift" -o "$work/fuzz-codec" \
            > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
        ;;
    *) echo "unknown target $target (known: codec)" >&2; exit 2 ;;
esac
corpus="$root/Fuzz/.corpus-$target"
mkdir -p "$corpus" "$root/Fuzz/artifacts"
"$work/fuzz-$target" "$corpus" "$root/Fuzz/$target-seeds" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$root/Fuzz/artifacts/" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::|==|SUMMARY|Done)" || true
test -z "$(ls -A "$root/Fuzz/artifacts" 2>/dev/null)" || { echo "crash inputs in Fuzz/artifacts" >&2; exit 1; }
