#!/usr/bin/env python3
"""Writes an awslogs subscription event of about SIZE_MB compressed, made of
the recorded events of a fixture stream repeated with fresh IDs and times,
for measuring the collector's memory on a full batch:

    python3 tests/bench_payload.py tests/fixtures/recorded 1 > /tmp/batch.json
    /usr/bin/time -v target/release/thawtrace scan /tmp/batch.json
"""

import base64
import gzip
import json
import sys


def main():
    fixture, size_mb = sys.argv[1], float(sys.argv[2])
    events = [json.loads(l) for l in open(fixture + "/events.jsonl")]
    stream = events[0]["logStream"]
    mine = [e for e in events if e["logStream"] == stream]
    span = mine[-1]["timestamp"] - mine[0]["timestamp"] + 1000
    rids = sorted({m.split("RequestId: ", 1)[1].split()[0] for m in (e["message"] for e in mine) if "START RequestId: " in m})
    out, n, rnd = [], 0, 0
    while True:
        for e in mine:
            n += 1
            # Each round is new invocations: request IDs get the round number.
            message = e["message"]
            for rid in rids:
                message = message.replace(rid, "%08x%s" % (rnd, rid[8:]))
            out.append({"id": "%056d" % n, "timestamp": e["timestamp"] + rnd * span, "message": message})
        rnd += 1
        msg = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": mine[0]["logGroup"],
               "logStream": stream, "subscriptionFilters": ["thawtrace"], "logEvents": out}
        data = gzip.compress(json.dumps(msg).encode(), 6)
        if len(data) >= size_mb * 1024 * 1024:
            break
    print(json.dumps({"awslogs": {"data": base64.b64encode(data).decode()}}))
    print("%d events, %.2f MB compressed, %.1f MB decompressed" % (len(out), len(data) / 2**20, len(json.dumps(msg)) / 2**20), file=sys.stderr)


if __name__ == "__main__":
    main()
