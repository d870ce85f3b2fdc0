#!/usr/bin/env python3
"""Writes a recording (events.jsonl: id, timestamp, message, logStream,
logGroup per line) the way AWS leaves log archives in S3, for scan tests.

    s3_layouts.py EVENTS OUT [--seed N]

OUT/export/: a CloudWatch Logs export (create-export-task) per log group,
in AWS's documented layout: <prefix>/<task id>/<log stream>/000000.gz,
each object a gzip of lines "<RFC 3339 timestamp> <message>". The prefix
is the group's name without its leading "/", the task ID a UUID derived
from it, a stream name's "/" are folders. AWS does not sort the chunks of
log data inside an object by time: each object's lines are cut into
chunks (never inside one millisecond) written in a shuffled order, and a
stream of more than CHUNKS_PER_OBJECT chunks spans several objects
(000000.gz, 000001.gz, ...). The permission check object AWS writes
(<prefix>/aws-logs-write-test) is there too.

OUT/firehose-<style>/: a subscription delivered by Firehose to S3, the
same recording as subscription messages (DATA_MESSAGE, one per stream and
batch of events; one CONTROL_MESSAGE first), records of all streams
interleaved by time and cut into objects of RECORDS_PER_OBJECT records:
  records-gzip       each record gzipped by CloudWatch Logs, concatenated
                     (Firehose without decompression)
  records-gzip-newline  the same, a newline after each record
                     (AppendDelimiterToRecord without decompression)
  plain-newline      decompressed records, newline-delimited
  plain-concat       decompressed records, no delimiter
  gzip-newline       plain-newline, the object gzipped by Firehose
  gzip-records-gzip  records-gzip, the object gzipped by Firehose
"""

import argparse
import datetime
import gzip
import json
import os
import random
import uuid

EVENTS_PER_CHUNK = 7
CHUNKS_PER_OBJECT = 6
EVENTS_PER_RECORD = 25
RECORDS_PER_OBJECT = 9


def rfc3339(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def stream_order(e):
    # The batch's order: time, then the event ID as a number.
    return (e["timestamp"], len(e["id"]), e["id"])


def by_stream(events):
    streams = {}
    for e in events:
        streams.setdefault((e["logGroup"], e["logStream"]), []).append(e)
    for evs in streams.values():
        evs.sort(key=stream_order)
    return streams


def chunks_of(evs):
    """Runs of about EVENTS_PER_CHUNK events, cut only where the time
    changes: an export's IDs order one millisecond by its place."""
    out, cur = [], []
    for e in evs:
        if len(cur) >= EVENTS_PER_CHUNK and e["timestamp"] != cur[-1]["timestamp"]:
            out.append(cur)
            cur = []
        cur.append(e)
    if cur:
        out.append(cur)
    return out


def line(e):
    message = e["message"]
    return f"{rfc3339(e['timestamp'])} {message}" + ("" if message.endswith("\n") else "\n")


def write_export(streams, out, rng):
    root = os.path.join(out, "export")
    for (group, stream), evs in sorted(streams.items()):
        prefix = group.strip("/")
        os.makedirs(os.path.join(root, prefix), exist_ok=True)
        with open(os.path.join(root, prefix, "aws-logs-write-test"), "wb") as f:
            f.write(b"Permission Check Successful")
        task = str(uuid.uuid5(uuid.NAMESPACE_URL, "thawtrace-export:" + group))
        chunks = chunks_of(evs)
        for n in range(0, len(chunks), CHUNKS_PER_OBJECT):
            mine = chunks[n:n + CHUNKS_PER_OBJECT]
            rng.shuffle(mine)
            text = "".join(line(e) for chunk in mine for e in chunk)
            folder = os.path.join(root, prefix, task, *stream.split("/"))
            os.makedirs(folder, exist_ok=True)
            name = f"{n // CHUNKS_PER_OBJECT:06d}.gz"
            with open(os.path.join(folder, name), "wb") as f:
                f.write(gzip.compress(text.encode("utf-8"), mtime=0))


def records(streams):
    """Subscription messages, each stream cut into batches, all streams'
    batches interleaved by their first event's time."""
    recs = [{
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 0,
                       "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}],
    }]
    batches = []
    for (group, stream), evs in sorted(streams.items()):
        for i in range(0, len(evs), EVENTS_PER_RECORD):
            batch = evs[i:i + EVENTS_PER_RECORD]
            batches.append((batch[0]["timestamp"], group, stream, {
                "messageType": "DATA_MESSAGE",
                "owner": "123456789012",
                "logGroup": group,
                "logStream": stream,
                "subscriptionFilters": ["thawtrace"],
                "logEvents": [{"id": e["id"], "timestamp": e["timestamp"], "message": e["message"]}
                              for e in batch],
            }))
    batches.sort(key=lambda b: b[:3])
    return recs + [b[3] for b in batches]


def write_firehose(streams, out):
    recs = [json.dumps(r, separators=(",", ":")).encode("utf-8") for r in records(streams)]
    objects = [recs[i:i + RECORDS_PER_OBJECT] for i in range(0, len(recs), RECORDS_PER_OBJECT)]
    styles = {
        "records-gzip": lambda rs: b"".join(gzip.compress(r, mtime=0) for r in rs),
        "records-gzip-newline": lambda rs: b"".join(gzip.compress(r, mtime=0) + b"\n" for r in rs),
        "plain-newline": lambda rs: b"".join(r + b"\n" for r in rs),
        "plain-concat": lambda rs: b"".join(rs),
        "gzip-newline": lambda rs: gzip.compress(b"".join(r + b"\n" for r in rs), mtime=0),
        "gzip-records-gzip": lambda rs: gzip.compress(
            b"".join(gzip.compress(r, mtime=0) for r in rs), mtime=0),
    }
    for style, encode in styles.items():
        folder = os.path.join(out, f"firehose-{style}", "2026", "11", "28", "11")
        os.makedirs(folder, exist_ok=True)
        for n, rs in enumerate(objects):
            name = f"thawtrace-delivery-1-2026-11-28-11-00-00-{n:04d}"
            with open(os.path.join(folder, name), "wb") as f:
                f.write(encode(rs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("events")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args()
    with open(args.events, encoding="utf-8") as f:
        events = [json.loads(l) for l in f if l.strip()]
    streams = by_stream(events)
    write_export(streams, args.out, random.Random(args.seed))
    write_firehose(streams, args.out)


if __name__ == "__main__":
    main()
