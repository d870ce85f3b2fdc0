#!/usr/bin/env python3
"""What `thawtrace scan` finds in a network recording, per setting, against
the harness's truth (record_network.py; --matrix for the settings).

    python3 tests/recorders/network_report.py RECORDING [BINARY] [--lines DIR] [--json]

A finding matches a truth entry on (kind, log_group, sorted log_streams,
sorted request_ids). Prints, per setting (environments.json; environments
without one are the default families', by function), the truth entries, true
positives, misses and spurious findings. With --lines DIR, writes for each
miss the lines the missed invocations' streams printed, from the START of
the invocation before to the END of the last one (the emulator's owner of
each line in brackets), to DIR/<setting>.txt.

`nat_idle_near_miss` (a connection idle for most of the NAT's timeout, then
reused successfully) is scored apart, in recordings whose truth.json gives
`nat_near_miss_fraction` (record_network.py's nat-near group): a finding
matches a truth entry on (log_stream, request_id) with its `margin_ms`
within NEAR_MARGIN_TOLERANCE_MS of the proxy's (several in one invocation
pair up by nearest margin). Per setting: truth, found, true positives,
precision and recall. In other recordings near-miss findings are listed as
unscored (their truth has no near misses to hold them to).

Exits 1 unless every setting the logs can reveal has no miss and no
spurious finding (near misses included); a BLIND setting (its logs print
nothing that tells the failure from another) must still have no spurious
finding.
"""

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict


# Settings whose logs cannot tell the failure from something else:
# - botocore at INFO with retries on: the retried request succeeds and
#   nothing is logged (its DEBUG lines show it);
# - connects that stall with no connect timeout, where the last line
#   before Lambda's timeout is the same as for a slow server that accepted
#   the connection (botocore at DEBUG: urllib3 logs `Starting new HTTP
#   connection` before connecting) or there is none (INFO; grpc-js with no
#   trace: only `Task timed out`).
BLIND = {
    "botocore-info-standard",
    "botocore-info-legacy",
    "nat-drop-botocore-standard-info",
    "stall-botocore-defaults-debug",
    "stall-botocore-defaults-info",
    "stall-grpc-js-no-deadline-notrace",
    # grpc-java at the JDK's default INFO: `UNAVAILABLE: io exception` only
    # (any I/O error of the transport), no frame line.
    "nat-grpc-java-info",
    # grpc-java connects that stall, without the channel trace (FINEST for
    # io.grpc.ChannelLogger): nothing but `Task timed out`.
    "stall-grpc-java-fine",
    "stall-grpc-java-info",
}


NEAR = "nat_idle_near_miss"
NEAR_MARGIN_TOLERANCE_MS = 50


def streams_of(f):
    return sorted(f["log_streams"]) if "log_streams" in f else [f["log_stream"]]


def request_ids_of(f):
    return sorted(f["request_ids"]) if "request_ids" in f else [f["request_id"]]


def key(f):
    return (f["kind"], f["log_group"], tuple(streams_of(f)), tuple(request_ids_of(f)))


def score_near(truth, found):
    """Near misses of one setting: (matched [(truth, finding)], missed truth,
    spurious findings). A finding matches a truth entry of its stream and
    request ID whose margin is within the tolerance, nearest first."""
    matched, missed = [], []
    left = list(found)
    for t in sorted(truth, key=lambda t: t["margin_ms"]):
        cands = [f for f in left if streams_of(f)[0] == t["log_stream"] and request_ids_of(f)[0] == t["request_id"]
                 and f.get("margin_ms") is not None and abs(f["margin_ms"] - t["margin_ms"]) <= NEAR_MARGIN_TOLERANCE_MS]
        if not cands:
            missed.append(t)
            continue
        f = min(cands, key=lambda f: abs(f["margin_ms"] - t["margin_ms"]))
        left.remove(f)
        matched.append((t, f))
    return matched, missed, left


def main():
    args = sys.argv[1:]
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    lines_dir = None
    if "--lines" in args:
        i = args.index("--lines")
        lines_dir = args[i + 1]
        del args[i:i + 2]
    rec = args[0]
    binary = args[1] if len(args) > 1 else "target/debug/thawtrace"
    scan_args = json.load(open(os.path.join(rec, "scan-args.json")))
    out = subprocess.run([binary, "scan", "--format", "json", os.path.join(rec, "events.jsonl")] + scan_args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("thawtrace failed (%d): %s" % (out.returncode, out.stderr))
    found = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    truth_doc = json.load(open(os.path.join(rec, "truth.json")))
    truth = truth_doc["findings"]
    near_scored = "nat_near_miss_fraction" in truth_doc
    near_truth = [t for t in truth if t["kind"] == NEAR]
    truth = [t for t in truth if t["kind"] != NEAR]
    near_found = [f for f in found if f["kind"] == NEAR]
    found = [f for f in found if f["kind"] != NEAR]
    envs = json.load(open(os.path.join(rec, "environments.json")))
    # Environments of the default families: by function (log group).
    setting_of = {e["log_stream"]: e.get("setting") or "default:" + e["log_group"].rsplit("/", 1)[1] for e in envs}

    def setting(f):
        return f.get("setting") or setting_of.get(streams_of(f)[0], "?")

    want = defaultdict(Counter)
    got = defaultdict(Counter)
    for t in truth:
        want[setting(t)][key(t)] += 1
    for f in found:
        got[setting_of.get(streams_of(f)[0], "?")][key(f)] += 1
    truth_by_key = {key(t): t for t in truth}
    rows = []
    for s in sorted(set(setting_of.values()) | set(want) | set(got)):
        w, g = want[s], got[s]
        tp = w & g
        nt = [t for t in near_truth if setting(t) == s]
        nf = [f for f in near_found if setting_of.get(streams_of(f)[0], "?") == s]
        near = None
        if near_scored:
            matched, nmissed, nspurious = score_near(nt, nf)
            near = {
                "truth": len(nt), "found": len(nf), "true_positives": len(matched),
                "precision": len(matched) / len(nf) if nf else None,
                "recall": len(matched) / len(nt) if nt else None,
                "margin_diffs_ms": [f["margin_ms"] - t["margin_ms"] for t, f in matched],
                "missed": [{x: t.get(x) for x in ("kind", "log_group", "log_stream", "request_id", "idle_ms", "margin_ms", "where")} for t in nmissed],
                "spurious": [{x: f.get(x) for x in ("log_stream", "log_streams", "request_id", "request_ids", "idle_ms", "margin_ms") if x in f} for f in nspurious],
            }
        elif nf:
            near = {"unscored": len(nf)}
        rows.append({
            "nat_idle_near_miss": near,
            "setting": s,
            "blind": s in BLIND,
            "truth": sum(w.values()),
            "found": sum(g.values()),
            "true_positives": sum(tp.values()),
            "missed": [dict(zip(("kind", "log_group", "log_streams", "request_ids"), k), **{x: truth_by_key[k].get(x) for x in ("outcome", "where", "nat_events", "idle_ms", "outcomes") if x in truth_by_key[k]}) for k in sorted(w - g)],
            "spurious": [dict(zip(("kind", "log_group", "log_streams", "request_ids"), k)) for k in sorted(g - w)],
            "found_detail": [{"kind": f["kind"], "request_ids": request_ids_of(f), "cause": f.get("cause"), "idle_ms": f.get("idle_ms")}
                             for f in found if setting_of.get(streams_of(f)[0]) == s],
        })
    if as_json:
        for r in rows:
            print(json.dumps(r))
    else:
        print("| setting | truth | found | TP | missed | spurious |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            missed = "%d%s" % (len(r["missed"]), " (blind)" if r["blind"] and r["missed"] else "")
            print("| %s | %d | %d | %d | %s | %d |" % (r["setting"], r["truth"], r["found"], r["true_positives"], missed, len(r["spurious"])))
        near_rows = [r for r in rows if r["nat_idle_near_miss"]]
        if near_rows:
            pct = lambda x: "-" if x is None else "%.0f%%" % (100 * x)  # noqa: E731
            print()
            print("nat_idle_near_miss (margin within %d ms of the proxy's):" % NEAR_MARGIN_TOLERANCE_MS)
            print("| setting | truth | found | TP | precision | recall | margin diffs (ms) |")
            print("|---|---|---|---|---|---|---|")
            for r in near_rows:
                n = r["nat_idle_near_miss"]
                if "unscored" in n:
                    print("| %s | (no near-miss truth) | %d | - | - | - | - |" % (r["setting"], n["unscored"]))
                    continue
                print("| %s | %d | %d | %d | %s | %s | %s |" % (r["setting"], n["truth"], n["found"], n["true_positives"], pct(n["precision"]),
                                                        pct(n["recall"]), " ".join("%+d" % d for d in n["margin_diffs_ms"]) or "-"))
    if lines_dir:
        os.makedirs(lines_dir, exist_ok=True)
        events = [json.loads(line) for line in open(os.path.join(rec, "events.jsonl"))]
        owners = {}
        for line in open(os.path.join(rec, "owners.jsonl")):
            o = json.loads(line)
            owners[o["id"]] = o["owner"]
        for r in rows:
            n = r["nat_idle_near_miss"] or {}
            missed_all = r["missed"] + [dict(m, log_streams=[m["log_stream"]], request_ids=[m["request_id"]]) for m in n.get("missed", [])]
            if not missed_all:
                continue
            first = {}
            for e in events:
                for rid in [owners.get(e["id"])]:
                    first.setdefault(rid, e["timestamp"])
            with open(os.path.join(lines_dir, r["setting"] + ".txt"), "w") as f:
                for m in sorted(missed_all, key=lambda m: min(first.get(x, 0) for x in m["request_ids"])):
                    f.write("=== missed %s %s %s\n" % (m["kind"], m["log_group"], " ".join(m["request_ids"])))
                    for stream in m["log_streams"]:
                        evs = [e for e in events if e["logStream"] == stream]
                        idx = [i for i, e in enumerate(evs) if owners.get(e["id"]) in m["request_ids"]]
                        if not idx:
                            continue
                        # From the previous invocation's START, to the last owned line.
                        lo = idx[0]
                        while lo > 0 and not evs[lo].get("message", "").startswith("START RequestId:"):
                            lo -= 1
                        if lo > 0:
                            lo -= 1
                            while lo > 0 and not evs[lo]["message"].startswith("START RequestId:"):
                                lo -= 1
                        hi = idx[-1]
                        f.write("--- %s\n" % stream)
                        base = evs[idx[0]]["timestamp"]
                        for e in evs[lo:hi + 1]:
                            f.write("%+7d [%s] %s\n" % (e["timestamp"] - base, (owners.get(e["id"]) or "-")[:8], e["message"]))
    def near_ok(r):
        n = r["nat_idle_near_miss"]
        return not n or "unscored" in n or (not n["spurious"] and (r["blind"] or not n["missed"]))

    return 0 if all(not r["spurious"] and (r["blind"] or not r["missed"]) and near_ok(r) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
