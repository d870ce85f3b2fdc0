#!/usr/bin/env python3
"""Scores `thawtrace scan --format json` against a recording's ground truth.

    python3 tests/score.py RECORDING_DIR [THAWTRACE_BINARY] [--json]
    python3 tests/score.py RECORDING_DIR [THAWTRACE_BINARY] --near-misses [--json]

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

With --near-misses it scores the `keepalive_near_miss` lines instead,
against `harness_near_misses.json` (h2truth.near_miss_truth: pings in
flight at a freeze that survived it, from the proxy and the emulator, never
from the logs). A found near miss matches a truth entry of the same log
stream and ping request ID whose ping time (the proxy's `ping_sent_at_ms`)
is nearest its `ping_at_ms` (else `ping_at`), within --match-window-ms
(default 250); each truth entry matches at most once. One matching an
`ambiguous` entry (an ack that reached the socket within a ms or two of the
freeze) counts neither way. Per environment: precision, recall and the
largest |margin_ms difference| over the matches, which must be within
--margin-tolerance-ms (default 5) besides precision and recall as above.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
from collections import Counter

KINDS = ("keepalive_freeze_timeout", "keepalive_timeout", "snapstart_stale_connection")

# Settings under which the library prints nothing that shows a keepalive
# ping or its timeout: grpc-js without its `keepalive` tracer logs only the
# connection going READY -> IDLE, or nothing but the failed call; grpc-java
# at INFO (JUL's default, or Log4j 2's `log4j2-info`) nothing at all.
BLIND = {"transport", "none", "log4j2-info"}


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


NEAR = "keepalive_near_miss"
# Libraries whose logs never print their keepalive ack timeout (grpc-java's
# keepAliveTimeout): their near misses carry no margin_ms to check.
NO_PRINTED_ACK_TIMEOUT = {"grpc-java"}
# Libraries whose logs never show a keepalive ping at any setting (grpc-go):
# their near misses are scored for precision only, as BLIND settings are.
NO_PRINTED_PING = {"grpc-go"}


def ms_of(f):
    """A found near miss's ping time in epoch ms: `ping_at_ms`, else `ping_at` (RFC 3339)."""
    if f.get("ping_at_ms") is not None:
        return int(f["ping_at_ms"])
    at = f.get("ping_at")
    if not at:
        return None
    t = datetime.datetime.fromisoformat(at.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return round(t.timestamp() * 1000)


def match_near(truth, found, window_ms):
    """Pairs (truth entry, found) of one log stream: same ping request ID,
    nearest ping time within window_ms, closest pairs first, each side once.
    Returns (pairs, unmatched truth, unmatched found)."""
    cands = []
    for i, t in enumerate(truth):
        for j, f in enumerate(found):
            at = ms_of(f)
            if f.get("ping_request_id") != t.get("ping_request_id") or at is None:
                continue
            gap = abs(at - t["ping_sent_at_ms"])
            if gap <= window_ms:
                cands.append((gap, i, j))
    used_t, used_f, pairs = set(), set(), []
    for gap, i, j in sorted(cands):
        if i in used_t or j in used_f:
            continue
        used_t.add(i)
        used_f.add(j)
        pairs.append((i, truth[i], found[j]))
    pairs = [(t, f) for _, t, f in sorted(pairs, key=lambda x: x[0])]
    return (pairs, [t for i, t in enumerate(truth) if i not in used_t],
            [f for j, f in enumerate(found) if j not in used_f])


def near_miss_rows(rec, found, window_ms=250, margin_tolerance_ms=5):
    """Rows per environment scoring the found `keepalive_near_miss` lines
    against harness_near_misses.json (see the module's docstring)."""
    path = os.path.join(rec, "harness_near_misses.json")
    if not os.path.exists(path):
        sys.exit("%s: no harness_near_misses.json (python3 tests/harness/near_misses.py "
                 "%s/harness_observations.json %s, or record.py --retruth)" % (rec, rec, path))
    doc = json.load(open(path))
    envs = json.load(open(os.path.join(rec, "environments.json")))
    found = [f for f in found if f.get("kind") == NEAR]
    out = []
    for env in envs:
        stream = env["log_stream"]
        truth = [t for t in doc["near_misses"] if t["log_stream"] == stream]
        ambiguous = [t for t in doc.get("ambiguous", []) if t["log_stream"] == stream]
        got = [f for f in found if f.get("log_stream") == stream]
        pairs, missed, spurious = match_near(truth, got, window_ms)
        # A finding on an ambiguous ping is neither right nor wrong.
        _, _, spurious = match_near(ambiguous, spurious, window_ms)
        counted = len(pairs) + len(spurious)
        diffs = [f.get("margin_ms") - t["margin_ms"] if isinstance(f.get("margin_ms"), (int, float)) else None for t, f in pairs]
        known = [abs(d) for d in diffs if d is not None]
        setting = env.get("setting") or "default"
        out.append({
            "environment": env["name"],
            "library": env["library"],
            "setting": setting,
            "kind": NEAR,
            "truth": len(truth),
            "found": len(got),
            "matched": len(pairs),
            "ambiguous": len(ambiguous),
            "precision": len(pairs) / counted if counted else 1.0,
            "recall": len(pairs) / len(truth) if truth else 1.0,
            "blind": setting in BLIND or env["library"] in NO_PRINTED_PING,
            # Over the matches: found margin - truth margin (None: the line has no margin_ms).
            "margin_diffs_ms": diffs,
            "max_margin_diff_ms": max(known) if known else None,
            "margins_ok": (len(known) == len(diffs) or env["library"] in NO_PRINTED_ACK_TIMEOUT)
            and all(d <= margin_tolerance_ms for d in known),
            "missed": [(t["ping_request_id"], t["ping_sent_at_ms"], t["margin_ms"]) for t in missed],
            "spurious": [(f.get("ping_request_id"), ms_of(f), f.get("margin_ms")) for f in spurious],
        })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recording")
    ap.add_argument("binary", nargs="?", default="target/release/thawtrace")
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    ap.add_argument("--near-misses", action="store_true", help="score keepalive_near_miss against harness_near_misses.json")
    ap.add_argument("--match-window-ms", type=int, default=250, help="--near-misses: how far a found ping time may be from the proxy's")
    ap.add_argument("--margin-tolerance-ms", type=int, default=5, help="--near-misses: the largest |margin difference| accepted")
    args = ap.parse_args()
    if args.near_misses:
        return main_near(args)
    rec = args.recording
    binary = args.binary
    found = scan(rec, binary)
    table = rows(rec, binary, found)
    hard = hard_failures(json.load(open(os.path.join(rec, "environments.json"))), found)
    if args.json:
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


def main_near(args):
    table = near_miss_rows(args.recording, scan(args.recording, args.binary), args.match_window_ms, args.margin_tolerance_ms)
    if args.json:
        for row in table:
            print(json.dumps(row))
    else:
        print("| environment | setting | truth | found | matched | precision | recall | max \\|margin diff\\| ms |")
        print("|---|---|---|---|---|---|---|---|")
        for r in table:
            recall = "%.2f" % r["recall"] + (" (blind)" if r["blind"] else "")
            diff = "-" if r["max_margin_diff_ms"] is None else str(r["max_margin_diff_ms"])
            print("| %s | %s | %d | %d | %d | %.2f | %s | %s |" % (r["environment"], r["setting"], r["truth"], r["found"], r["matched"], r["precision"], recall, diff))
        for r in table:
            for k in r["missed"]:
                print("missed:   ", r["environment"], k, file=sys.stderr)
            for k in r["spurious"]:
                print("spurious: ", r["environment"], k, file=sys.stderr)
    sys.exit(0 if all(ok(r) and r["margins_ok"] for r in table) else 1)


if __name__ == "__main__":
    main()
