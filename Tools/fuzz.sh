#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time: Tools/fuzz.sh TARGET [SECONDS]   (default 60)
#   codec               MeshCodec.decode / re-encode / JSON from the bytes (same text, same errors) / DataCapsule.unpack
#   datagram            a datagram from anyone, before authentication (TransportFuzzing.datagram)
#   authenticated-body  the frames of an authentic datagram from an open session (TransportFuzzing.authenticatedBody)
#   fragments           fragment sets fed to the reassembler (TransportFuzzing.fragments)
#   all                 each of the above for SECONDS
# The targets are the Fuzz/ package, built once with --sanitize=fuzzer --sanitize=address (several minutes the
# first time), in debug: a release build ran but gave libFuzzer almost no coverage of the Mesh modules (28 edges
# instead of ~1,500 for authenticated-body), so it was not coverage-guided. The whole package is built at once:
# building one product at a time (--product) also left the Mesh modules without coverage. Committed seeds: Fuzz/codec-seeds, Fuzz/transport-seeds. The corpus grows in Fuzz/.corpus-TARGET
# (not committed); a crash input is written to Fuzz/artifacts/ and the script exits non-zero — each crash
# should become a regression test. `swift test` runs the same entry points on the seeds and their mutations.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${1:?usage: Tools/fuzz.sh codec|datagram|authenticated-body|fragments|all [SECONDS]}"
seconds="${2:-60}"
if [ "$target" = all ]; then
    for t in codec datagram authenticated-body fragments; do "$0" "$t" "$seconds"; done
    exit 0
fi
case "$target" in
    codec) product=FuzzCodec; seeds="$root/Fuzz/codec-seeds"; maxlen=4096 ;;
    datagram) product=FuzzDatagram; seeds="$root/Fuzz/transport-seeds"; maxlen=1500 ;;
    authenticated-body) product=FuzzAuthenticatedBody; seeds="$root/Fuzz/transport-seeds"; maxlen=1500 ;;
    fragments) product=FuzzFragments; seeds="$root/Fuzz/transport-seeds"; maxlen=4096 ;;
    *) echo "unknown target $target (known: codec, datagram, authenticated-body, fragments, all)" >&2; exit 2 ;;
esac
log="$(mktemp /tmp/mesh-fuzz-build.XXXXXX)"
trap 'rm -f "$log"' EXIT
swift build --package-path "$root/Fuzz" -c debug --sanitize=fuzzer --sanitize=address > "$log" 2>&1 \
    || { tail -40 "$log" >&2; exit 1; }
binary="$(swift build --package-path "$root/Fuzz" -c debug --sanitize=fuzzer --sanitize=address --show-bin-path)/$product"
corpus="$root/Fuzz/.corpus-$target"
mkdir -p "$corpus" "$root/Fuzz/artifacts"
echo "fuzzing $target for $seconds s"
"$binary" "$corpus" "$seeds" -max_total_time="$seconds" -max_len="$maxlen" -print_final_stats=1 \
    -artifact_prefix="$root/Fuzz/artifacts/" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==|SUMMARY|Done)|cov:" | tail -6 || true
test -z "$(ls -A "$root/Fuzz/artifacts" 2>/dev/null)" || { echo "crash inputs in Fuzz/artifacts" >&2; exit 1; }
