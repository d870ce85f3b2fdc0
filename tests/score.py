#!/usr/bin/env python3
"""Scores `thawtrace scan --format json` against a recording's ground truth.

    python3 tests/score.py RECORDING_DIR [THAWTRACE_BINARY]

A finding matches a truth entry when kind, stream, both event IDs and both
request IDs agree. Prints precision and recall per kind; exits 1 unless both
are 1.0 for every kind.
"""

import json
import os
import subprocess
import sys


def key(f):
    return (f["kind"], f["log_stream"], f["ping_event_id"], f["timeout_event_id"], f["ping_request_id"], f["timeout_request_id"])


def main():
    rec = sys.argv[1]
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/thawtrace"
    truth = json.load(open(os.path.join(rec, "truth.json")))["findings"]
    out = subprocess.run([binary, "scan", "--format", "json", os.path.join(rec, "events.jsonl")], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("thawtrace failed (%d): %s" % (out.returncode, out.stderr))
    found = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    want = {key(t) for t in truth}
    got = {key(f) for f in found}
    ok = True
    for kind in ("keepalive_freeze_timeout", "keepalive_timeout"):
        w = {k for k in want if k[0] == kind}
        g = {k for k in got if k[0] == kind}
        tp = len(w & g)
        precision = tp / len(g) if g else 1.0
        recall = tp / len(w) if w else 1.0
        print("%-26s truth %3d  found %3d  precision %.3f  recall %.3f" % (kind, len(w), len(g), precision, recall))
        if precision < 1.0 or recall < 1.0:
            ok = False
            for k in sorted(w - g):
                print("  missed:   ", k)
            for k in sorted(g - w):
                print("  spurious: ", k)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
