#!/usr/bin/env python3
"""Per-stage timeline of `mesh bench --mode request|acked` from a probe build's marks (see LatencyProbe).

Usage: latency-timeline.py DIR — DIR holds the probe-<pid>.txt files of the bench's two processes. The caller's
node (the one whose file has call marks) is A, the other B. Every call (callStart .. next callStart) is one cycle;
the first 100 are warm-up. The cycles whose sequence of marks is the most common one are lined up and each mark's
median offset from the call is printed, with the step from the mark before it. Below the timeline: the median
total over every cycle, and the median of each side's transaction phases (BEGIN, statements, COMMIT). Last,
the tail: in the slowest 2 % of cycles, the largest step of each cycle, counted by its two marks; and how many
cycles ran while a checkpoint did (a background pass or the writer's inline one, on either node), among all cycles,
the slowest 2 % and the fastest half (a slow cycle overlaps more by its length alone, so compare the shares).
"""
import bisect
import collections
import glob
import itertools
import os
import statistics
import sys

NAMES = {
    1: "call", 2: "call committed", 3: "datagram in", 4: "batch committed", 5: "confirmed", 6: "call returns",
    7: "batch received", 8: "lane start", 9: "handler returned", 10: "response committed", 11: "datagram written",
    12: "flushed", 13: "mailbox drained", 15: "flush start", 20: "BEGIN", 21: "begun", 22: "COMMIT",
    23: "committed", 24: "transaction done", 40: "ingested", 42: "read complete",
}
CHECKPOINT_START, CHECKPOINT_END = 50, 51


def load(path):
    marks = []
    with open(path) as f:
        for line in f:
            point, ns = line.split()
            marks.append((int(ns), int(point)))
    return marks


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: latency-timeline.py DIR")
    files = glob.glob(os.path.join(sys.argv[1], "probe-*.txt"))
    sides = {}
    for path in files:
        marks = load(path)
        sides["A" if any(p == 1 for _, p in marks) else "B"] = marks
    if set(sides) != {"A", "B"}:
        sys.exit(f"need the marks of both processes (found {len(files)} files)")
    events = sorted((t, side, p) for side, marks in sides.items() for t, p in marks
                    if p not in (CHECKPOINT_START, CHECKPOINT_END))
    cycles, current = [], None
    for t, side, p in events:
        if side == "A" and p == 1:
            if current:
                cycles.append(current)
            current = [(t, side, p)]
        elif current is not None:
            current.append((t, side, p))
    cycles = cycles[100:]
    if not cycles:
        sys.exit("no complete cycles (too few messages?)")
    shapes = collections.Counter(tuple((s, p) for _, s, p in c) for c in cycles)
    shape, count = shapes.most_common(1)[0]
    chosen = [c for c in cycles if tuple((s, p) for _, s, p in c) == shape]
    print(f"{len(cycles)} cycles; the most common sequence of marks: {count} ({100 * count / len(cycles):.0f} %)")
    print(f"{'side':4} {'mark':20} {'µs':>8} {'step':>8}")
    previous = 0.0
    for k, (side, p) in enumerate(shape):
        offset = statistics.median(c[k][0] - c[0][0] for c in chosen) / 1000
        print(f"{side:4} {NAMES.get(p, str(p)):20} {offset:8.1f} {offset - previous:+8.1f}")
        previous = offset
    timed = timed_cycles(cycles)
    if timed:
        print(f"median total over all cycles: {statistics.median(t for t, _ in timed) / 1000:.1f} µs")
    tail(timed)
    checkpoint_overlap(timed, checkpoints(sides))
    phases = collections.defaultdict(list)
    for c in cycles:
        opened = {"A": {}, "B": {}}
        for t, s, p in c:
            if p in (20, 21, 22):
                opened[s][p] = t
            elif p == 23 and len(opened[s]) == 3:
                phases[(s, "BEGIN")].append(opened[s][21] - opened[s][20])
                phases[(s, "statements")].append(opened[s][22] - opened[s][21])
                phases[(s, "COMMIT")].append(t - opened[s][22])
                opened[s] = {}
    for (side, phase), values in sorted(phases.items()):
        print(f"{side} transactions, {phase}: median {statistics.median(values) / 1000:.1f} µs ({len(values)})")


def timed_cycles(cycles):
    """(total, cycle) for every cycle whose call returned (A's mark 6), the total from the call to that return."""
    timed = []
    for c in cycles:
        end = next((t for t, s, p in c if s == "A" and p == 6), None)
        if end is not None:
            timed.append((end - c[0][0], c))
    return timed


def tail(timed):
    """The slowest 2 % of the (total, cycle) pairs: where each one's largest step lies (the two marks around it)."""
    if len(timed) < 50:
        return
    timed.sort(key=lambda x: x[0])
    slow = timed[int(len(timed) * 0.98):]
    kinds = collections.defaultdict(list)
    for total, c in slow:
        steps = [(c[k + 1][0] - c[k][0], c[k], c[k + 1]) for k in range(len(c) - 1)]
        gap, (_, s0, p0), (_, s1, p1) = max(steps)
        kinds[f"{s0} {NAMES.get(p0, str(p0))} -> {s1} {NAMES.get(p1, str(p1))}"].append(gap)
    print(f"slowest 2 % of cycles ({len(slow)}, totals from {slow[0][0] / 1000:.0f} µs, median of all "
          f"{statistics.median(t for t, _ in timed) / 1000:.0f} µs): each one's largest step")
    for kind, gaps in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(gaps):4} × {kind}: median {statistics.median(gaps) / 1000:.0f} µs")


def checkpoints(sides):
    """The (start, end) spans during which a checkpoint ran on either side (overlapping ones of a side merged)."""
    spans = []
    for marks in sides.values():
        depth, start = 0, None
        for t, p in sorted(marks):
            if p == CHECKPOINT_START:
                if depth == 0:
                    start = t
                depth += 1
            elif p == CHECKPOINT_END and depth > 0:
                depth -= 1
                if depth == 0:
                    spans.append((start, t))
    return sorted(spans)


def checkpoint_overlap(timed, spans):
    """The share of cycles (the call to its return) that overlap a checkpoint: all, slowest 2 %, fastest half."""
    if not spans or len(timed) < 50:
        return
    timed = sorted(timed, key=lambda x: x[0])
    # latest[k]: the latest end among the first k + 1 spans (sorted by start).
    latest = list(itertools.accumulate((b for _, b in spans), max))

    def share(part):
        hits = 0
        for total, c in part:
            begin, end = c[0][0], c[0][0] + total
            k = bisect.bisect_left(spans, (end,))  # spans starting before the cycle ends: the first k
            hits += k > 0 and latest[k - 1] > begin
        return 100 * hits / len(part)

    lengths = [(b - a) / 1000 for a, b in spans]
    print(f"checkpoints (both nodes): {len(spans)}, median {statistics.median(lengths):.0f} µs; cycles running beside "
          f"one: all {share(timed):.0f} %, slowest 2 % {share(timed[int(len(timed) * 0.98):]):.0f} %, "
          f"fastest half {share(timed[:len(timed) // 2]):.0f} %")


if __name__ == "__main__":
    main()
