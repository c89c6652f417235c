#!/usr/bin/env python3
"""Where threads wait instead of running: the scheduler's side of a latency tail.

Usage: Tools/offcpu.py [--threads PATTERN] [--long US] -- COMMAND [ARG...]
       Tools/offcpu.py [--threads PATTERN] [--long US] --script FILE

The first form runs COMMAND (e.g. `.build/release/mesh bench --mode request --handler sync --messages 3000`)
under `perf record -e sched:sched_switch,sched:sched_wakeup` (its child processes too: the bench's receiver node),
then reads the events with `perf script`. The second reads the output of
`perf script -F comm,tid,cpu,time,event,trace` saved earlier.

For each thread name (threads of the same name summed across processes) it prints three distributions, in µs:
- preempted: switched out while still runnable (a yield, a tick, a wake-up preemption) until it ran again. A node
  thread's idle poll yields its core between two checks, so its preemptions are where a datagram can wait unread;
- wake->run: from its wake-up (a datagram, a hand-off, a timer) until it ran;
- blocked: switched out in uninterruptible sleep (disk I/O, a kernel lock) until its wake-up.
Then, for the threads whose name contains PATTERN (default NIO-ELT: a node's own thread), the threads that held the
same CPU during their preemptions longer than US µs (default 300): who took the core.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

LINE = re.compile(r"\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)")
SWITCH = re.compile(r"prev_comm=(.*) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)")
WAKEUP = re.compile(r"comm=.* pid=(\d+) prio=")


def record(command):
    """Runs `command` under perf and returns the text of `perf script`."""
    if shutil.which("perf") is None:
        sys.exit("perf is not installed (Debian: apt-get install linux-perf)")
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "perf.data")
        recorded = subprocess.run(["perf", "record", "-q", "-e", "sched:sched_switch,sched:sched_wakeup", "-o", data,
                                   "--"] + command)
        if recorded.returncode != 0:
            sys.exit(f"perf record or the command failed (exit {recorded.returncode}); "
                     "reading scheduler tracepoints needs root or kernel.perf_event_paranoid <= 1")
        script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,cpu,time,event,trace"],
                                capture_output=True, text=True)
        if script.returncode != 0:
            sys.exit(f"perf script failed: {script.stderr.strip()}")
        return script.stdout


def analyse(text, pattern, long_us):
    names = {}
    preempted_at, woken_at, blocked_at = {}, {}, {}
    preempted = collections.defaultdict(list)
    wake_to_run = collections.defaultdict(list)
    blocked = collections.defaultdict(list)
    # Per CPU, the threads that ran there since each watched thread was preempted from it.
    watching = {}
    culprits = collections.Counter()
    events = 0
    for line in text.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        _comm, _tid, cpu, time, event, rest = match.groups()
        now = float(time) * 1e6
        if event == "sched:sched_wakeup":
            woken = WAKEUP.search(rest)
            if not woken:
                continue
            pid = int(woken.group(1))
            woken_at[pid] = now
            if pid in blocked_at:
                blocked[names.get(pid, "?")].append(now - blocked_at.pop(pid))
            events += 1
            continue
        if event != "sched:sched_switch":
            continue
        switch = SWITCH.search(rest)
        if not switch:
            continue
        events += 1
        prev_comm, prev_pid, state, next_comm, next_pid = switch.groups()
        prev_pid, next_pid = int(prev_pid), int(next_pid)
        names[prev_pid], names[next_pid] = prev_comm, next_comm
        for pid, (cpu_of, ran) in watching.items():
            if cpu_of == cpu and pid != next_pid:
                ran.add(next_comm)
        if state.startswith("R"):
            preempted_at[prev_pid] = now
            if pattern in prev_comm:
                watching[prev_pid] = (cpu, {next_comm})
        else:
            preempted_at.pop(prev_pid, None)
            if state.startswith("D"):
                blocked_at[prev_pid] = now
        if next_pid in preempted_at:
            waited = now - preempted_at.pop(next_pid)
            preempted[next_comm].append(waited)
            held = watching.pop(next_pid, None)
            if held and waited > long_us:
                culprits.update(held[1])
        if next_pid in woken_at:
            wake_to_run[next_comm].append(now - woken_at.pop(next_pid))
    if events == 0:
        sys.exit("no scheduler events found (was the trace recorded with sched:sched_switch and sched:sched_wakeup?)")
    return preempted, wake_to_run, blocked, culprits


def summary(values):
    if not values:
        return "none"
    values = sorted(values)
    n = len(values)
    at = lambda q: values[min(n - 1, int(n * q))]
    return (f"n {n:6d}  p50 {at(0.5):7.0f}  p90 {at(0.9):7.0f}  p99 {at(0.99):7.0f}  max {values[-1]:8.0f}  "
            f"total {sum(values) / 1000:8.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="NIO-ELT", help="thread-name part of the threads whose preemptions "
                        "are attributed (default NIO-ELT, a node's own thread)")
    parser.add_argument("--long", type=float, default=300, help="a preemption longer than this (µs) is attributed "
                        "(default 300)")
    parser.add_argument("--script", help="read this saved `perf script` output instead of running a command")
    parser.add_argument("command", nargs="*", help="the command to run under perf (after --)")
    args = parser.parse_args()
    if args.long < 0:
        parser.error("--long must be at least 0")
    if bool(args.script) == bool(args.command):
        parser.error("give either --script FILE or -- COMMAND, not both and not neither")
    if args.script:
        try:
            with open(args.script) as f:
                text = f.read()
        except OSError as error:
            sys.exit(f"{args.script}: {error.strerror}")
    else:
        text = record(args.command)
    preempted, wake_to_run, blocked, culprits = analyse(text, args.threads, args.long)
    shown = sorted(set(preempted) | set(wake_to_run) | set(blocked))
    for name in shown:
        if not (name.startswith(("NIO-", "mesh-")) or "qos" in name or args.threads in name):
            continue
        print(name)
        print(f"  preempted  {summary(preempted[name])}")
        print(f"  wake->run  {summary(wake_to_run[name])}")
        print(f"  blocked    {summary(blocked[name])}")
    total = sum(1 for name in preempted if args.threads in name for v in preempted[name] if v > args.long)
    print(f"\npreemptions of {args.threads}* threads over {args.long:.0f} µs: {total}; "
          "threads that ran on that CPU meanwhile (each counted once per preemption):")
    for name, count in culprits.most_common(12):
        print(f"  {count:6d}  {name}")


if __name__ == "__main__":
    main()
