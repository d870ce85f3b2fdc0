#!/usr/bin/env python3
"""Scores `thawtrace scan --format json` against a recording's ground truth.

    python3 tests/score.py RECORDING_DIR [THAWTRACE_BINARY] [--json]

The truth is the harness's (`harness_truth.json`: what the delaying proxy
saw on the wire, pings, acks and closes, placed in invocations by the
emulator's own freeze and owner timeline), or, for older recordings without
it, `truth.json`. A finding matches a truth entry when kind, stream and
both request IDs agree (the wire knows no log event IDs).

How a finding is keyed depends on its kind and the environment's `mode`
(environments.json; absent means classic):
  keepalive_freeze_timeout, keepalive_timeout (classic):
      (kind, log_stream, ping_request_id, timeout_request_id)
  keepalive_timeout on a managed-instances stream:
      (kind, log_stream, sorted failed_request_ids): several invocations
      run at once, so the invocations whose calls the teardown failed are
      what identifies it
  snapstart_stale_connection: (kind, log_stream, request_id)
A keepalive_freeze_timeout on a managed-instances stream (never frozen) is a
hard failure, whatever else the scores say.

Prints precision and recall per setting (one environment of the recording:
a library under one choice of trace flags) and kind, as a Markdown table,
or with --json one object per row. Exits 1 unless both are 1.0 for every
kind of every setting the logs can reveal; a setting whose logs print
nothing about keepalive (BLIND below) must still have precision 1.0 (no
finding that did not happen), and its recall is reported, not required.
"""

import json
import os
import subprocess
import sys
from collections import Counter

KINDS = ("keepalive_freeze_timeout", "keepalive_timeout", "snapstart_stale_connection")

# Settings under which the library prints nothing that shows a keepalive
# ping or its timeout: grpc-js without its `keepalive` tracer logs only the
# connection going READY -> IDLE, or nothing but the failed call.
BLIND = {"transport", "none"}


def key(f, mode="classic"):
    kind = f["kind"]
    if kind == "snapstart_stale_connection":
        return (kind, f["log_stream"], f.get("request_id"))
    if kind == "keepalive_timeout" and mode == "managed-instances":
        return (kind, f["log_stream"], tuple(sorted(f.get("failed_request_ids") or [])))
    return (kind, f["log_stream"], f.get("ping_request_id"), f.get("timeout_request_id"))


def modes_of(envs):
    """{log stream: the mode of its environment}; a SnapStart environment's
    INIT (snapshot) stream counts as that environment's."""
    out = {}
    for env in envs:
        mode = env.get("mode") or "classic"
        out[env["log_stream"]] = mode
        if env.get("init_log_stream"):
            out[env["init_log_stream"]] = mode
    return out


def hard_failures(envs, found):
    """Findings that can never be right: a freeze timeout on a Managed
    Instances stream (never frozen)."""
    modes = modes_of(envs)
    return [f for f in found if f["kind"] == "keepalive_freeze_timeout" and modes.get(f.get("log_stream")) == "managed-instances"]


def scan(rec, binary):
    out = subprocess.run([binary, "scan", "--format", "json", os.path.join(rec, "events.jsonl")], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("thawtrace failed (%d): %s" % (out.returncode, out.stderr))
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def truth_of(rec):
    path = os.path.join(rec, "harness_truth.json")
    if not os.path.exists(path):
        path = os.path.join(rec, "truth.json")
    return json.load(open(path))["findings"]


def rows(rec, binary, found=None):
    envs = json.load(open(os.path.join(rec, "environments.json")))
    modes = modes_of(envs)
    found = scan(rec, binary) if found is None else found
    want = Counter(key(t, modes.get(t["log_stream"], "classic")) for t in truth_of(rec) if t["kind"] in KINDS)
    got = Counter(key(f, modes.get(f.get("log_stream"), "classic")) for f in found if f["kind"] in KINDS)
    out = []
    for env in envs:
        setting = env.get("setting") or "default"
        streams = {env["log_stream"], env.get("init_log_stream")}
        for kind in KINDS:
            w = Counter({k: n for k, n in want.items() if k[0] == kind and k[1] in streams})
            g = Counter({k: n for k, n in got.items() if k[0] == kind and k[1] in streams})
            tp = sum((w & g).values())
            out.append({
                "environment": env["name"],
                "mode": env.get("mode") or "classic",
                "library": env["library"],
                "setting": setting,
                "kind": kind,
                "truth": sum(w.values()),
                "found": sum(g.values()),
                "precision": tp / sum(g.values()) if g else 1.0,
                "recall": tp / sum(w.values()) if w else 1.0,
                "blind": setting in BLIND,
                "missed": sorted(w - g),
                "spurious": sorted(g - w),
            })
    return out


def ok(row):
    return row["precision"] == 1.0 and (row["blind"] or row["recall"] == 1.0)


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    rec = args[0]
    binary = args[1] if len(args) > 1 else "target/release/thawtrace"
    found = scan(rec, binary)
    table = rows(rec, binary, found)
    hard = hard_failures(json.load(open(os.path.join(rec, "environments.json"))), found)
    if "--json" in sys.argv:
        for row in table:
            print(json.dumps(row))
    else:
        print("| environment | setting | kind | truth | found | precision | recall |")
        print("|---|---|---|---|---|---|---|")
        for r in table:
            recall = "%.2f" % r["recall"] + (" (blind)" if r["blind"] else "")
            print("| %s | %s | %s | %d | %d | %.2f | %s |" % (r["environment"], r["setting"], r["kind"], r["truth"], r["found"], r["precision"], recall))
        for r in table:
            for k in r["missed"]:
                print("missed:   ", k, file=sys.stderr)
            for k in r["spurious"]:
                print("spurious: ", k, file=sys.stderr)
    for f in hard:
        print("HARD FAILURE: keepalive_freeze_timeout on a managed-instances stream (never frozen): %s %s"
              % (f.get("log_stream"), f.get("evidence")), file=sys.stderr)
    sys.exit(0 if all(ok(r) for r in table) and not hard else 1)


if __name__ == "__main__":
    main()
