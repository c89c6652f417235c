#!/usr/bin/env python3
"""Which pages each commit of a journal's WAL rewrote, by B-tree: what "pages per message" is made of.

Usage: Tools/wal-frames.py JOURNAL [--last N]

Copies JOURNAL and JOURNAL-wal (of a running node, or one killed with SIGKILL; a node that shut down cleanly
checkpointed and removed its WAL) to a temporary directory and reads the copies only. It walks the WAL's frames
from its header to the first frame whose salts do not match (the end of the log), groups them into commits (a
frame with a database size ends one), and names each page with SQLite's `dbstat` table (the B-tree it belongs to
and whether it is a leaf, an interior page or an overflow page; page 1 shows as sqlite_schema). It prints the
frames per commit, how often each B-tree's pages were written, and the last N commits (default 12) page by page.
"""
import argparse
import collections
import os
import shutil
import signal
import sqlite3
import struct
import sys
import tempfile


def read_commits(wal_path):
    """The WAL's valid frames, grouped by commit, as lists of page numbers; and its page size."""
    with open(wal_path, "rb") as f:
        data = f.read()
    if len(data) < 32:
        sys.exit(f"{wal_path}: no WAL header (empty or missing WAL: was the node shut down cleanly?)")
    magic, _version, page_size, _checkpoint, salt1, salt2, _c1, _c2 = struct.unpack(">IIIIIIII", data[:32])
    if magic not in (0x377F0682, 0x377F0683):
        sys.exit(f"{wal_path}: not a SQLite WAL (magic {magic:#x})")
    commits, current, offset = [], [], 32
    while offset + 24 + page_size <= len(data):
        page, size_after_commit, frame_salt1, frame_salt2 = struct.unpack(">IIII", data[offset:offset + 16])
        if (frame_salt1, frame_salt2) != (salt1, salt2):
            break
        current.append(page)
        if size_after_commit:
            commits.append(current)
            current = []
        offset += 24 + page_size
    return commits, page_size


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # piped into head: stop quietly
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journal")
    parser.add_argument("--last", type=int, default=12, help="commits to list page by page (default 12)")
    arguments = parser.parse_args()
    for path in (arguments.journal, arguments.journal + "-wal"):
        if not os.path.isfile(path):
            sys.exit(f"{path}: no such file")
    with tempfile.TemporaryDirectory(prefix="mesh-wal-frames-") as scratch:
        copy = os.path.join(scratch, "journal.sqlite")
        shutil.copyfile(arguments.journal, copy)
        shutil.copyfile(arguments.journal + "-wal", copy + "-wal")
        commits, page_size = read_commits(copy + "-wal")
        if not commits:
            sys.exit("the WAL holds no committed frame")
        try:
            connection = sqlite3.connect(copy)
            names = {page: f"{name}:{kind}" for page, name, kind in
                     connection.execute("SELECT pageno, name, pagetype FROM dbstat")}
            connection.close()
        except sqlite3.Error as error:
            sys.exit(f"cannot read the copy's pages through dbstat ({error}): this SQLite may lack SQLITE_ENABLE_DBSTAT_VTAB")
    frames = [len(commit) for commit in commits]
    print(f"{len(commits)} commits in the WAL, {sum(frames)} frames of {page_size} bytes; frames per commit: "
          f"mean {sum(frames) / len(frames):.2f}, median {sorted(frames)[len(frames) // 2]}, max {max(frames)}")
    histogram = collections.Counter(frames)
    print("commits by frames: " + ", ".join(f"{n} frames × {count}" for n, count in sorted(histogram.items())))
    by_tree = collections.Counter(names.get(page, f"page {page} (freed since)") for commit in commits for page in commit)
    print("frames by B-tree and page kind (share of all commits that wrote one):")
    for name, count in by_tree.most_common():
        print(f"  {count:7d}  {count / len(commits):6.2f} per commit  {name}")
    print(f"the last {min(arguments.last, len(commits))} commits:")
    for commit in commits[-arguments.last:]:
        print(f"  {len(commit)}: " + ", ".join(names.get(page, f"page {page}") for page in commit))


if __name__ == "__main__":
    main()
