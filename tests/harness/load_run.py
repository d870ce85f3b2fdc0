#!/usr/bin/env python3
"""A load run of the collector (issue 16, part 5): the recording of
neighbouring failures replayed at a sustained rate through the Runtime API
emulator into several collector processes at once, sharing their
cross-stream state in DynamoDB (moto in server mode, on loopback).

    load_run.py --binary target/release/thawtrace [--collectors 4]
                [--seconds 60] [--rate 40] [--per-batch 20] [--state moto|none]

Each pass over the recording is a copy of it with new event IDs, request
IDs, idempotency keys and log streams, moved on in event time past the
previous copy's windows, so every pass holds the recording's six
cross-stream incidents anew. The batches (one stream's events, at most
--per-batch of them, as a subscription delivers them) are sent in event
time order, --rate batches a second (0: as fast as the collectors answer),
each to the next idle collector, as Lambda picks an idle instance, pass
after pass until --seconds have passed. After the last pass, a batch of another function two stall windows later closes
every window.

Prints one JSON object: batches and events delivered, wall time, events
and batches per second, handler latency (event delivered to response
received) p50/p90/p99/max, each collector's init time (process start to its
first poll of /next) and peak RSS, the CPU time the collectors and moto
used, and the cross-stream incidents reported against those the passes
hold. moto is a Python emulator: with it on the
same cores, the run measures the collector and moto together. With
`--state none` there is no table: each collector keeps the cross-stream
state of the batches it got (the default without THAWTRACE_STATE_TABLE),
and the run measures the collectors alone, their incidents then split
between instances.
"""

import argparse
import base64
import gzip
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lambda_sim  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "recorded-network")
TABLE = "thawtrace-state"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ORDER = re.compile(r"\bo-(\d+)\b")
WINDOW_MS = 10_000  # the recording's stall window (scan-args.json)
PER_PASS = 6  # cross-stream incidents of one pass (3 stalls, 3 duplicates)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


def create_table(port):
    import boto3

    db = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:%d" % port,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    db.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    )


def recording():
    with open(os.path.join(FIXTURE, "events.jsonl")) as f:
        return [json.loads(line) for line in f]


def copy(events, n, shift_ms):
    """Pass n of the recording: new IDs, keys and streams, `shift_ms` later."""
    ids = {}

    def new_uuid(m):
        old = m.group(0)
        if old not in ids:
            ids[old] = str(uuid.uuid5(uuid.NAMESPACE_OID, "%s/%d" % (old, n)))
        return ids[old]

    out = []
    for i, e in enumerate(events):
        ts = e["timestamp"] + shift_ms
        message = ORDER.sub(lambda m: "o-%s-%d" % (m.group(1), n), UUID.sub(new_uuid, e["message"]))
        out.append(
            {
                "id": "%020d%06d%030d" % (ts, n % 1_000_000, i),
                "timestamp": ts,
                "message": message,
                "logGroup": e["logGroup"],
                "logStream": "%s-%d" % (e["logStream"], n),
            }
        )
    return out


def batches(events, per_batch):
    """Subscription batches of each stream, in event time order."""
    streams = {}
    for e in sorted(events, key=lambda e: e["timestamp"]):
        streams.setdefault((e["logGroup"], e["logStream"]), []).append(e)
    out = []
    for (group, stream), evs in streams.items():
        for k in range(0, len(evs), per_batch):
            chunk = evs[k : k + per_batch]
            out.append((chunk[0]["timestamp"], group, stream, chunk))
    out.sort(key=lambda b: b[0])
    return out


def awslogs(group, stream, chunk):
    msg = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["thawtrace"],
        "logEvents": [{"id": e["id"], "timestamp": e["timestamp"], "message": e["message"]} for e in chunk],
    }
    data = base64.b64encode(gzip.compress(json.dumps(msg).encode())).decode()
    return {"awslogs": {"data": data}}


def cpu_s(pid):
    """CPU time (user + system) a process has used, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def peak_rss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Collector:
    def __init__(self, binary, env):
        self.api = lambda_sim.RuntimeApi()
        env = dict(env, AWS_LAMBDA_RUNTIME_API=self.api.address)
        started = time.monotonic()
        self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        self.api.wait_polling(timeout=60)
        self.init_ms = (time.monotonic() - started) * 1000

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace"))

    def invoke(self, event):
        rid = str(uuid.uuid4())
        self.api.wait_polling(timeout=60)
        sent = time.monotonic()
        self.api.deliver(rid, event)
        kind, body, _ = self.api.wait_response(rid, timeout=60)
        return kind, (time.monotonic() - sent) * 1000

    def stop(self):
        self.api.wait_polling(timeout=60)
        rss = peak_rss(self.proc.pid)
        self.cpu_s = cpu_s(self.proc.pid)
        self.api.close()
        self.proc.kill()
        self.proc.wait()
        return rss


def identities(lines):
    """The cross-stream incidents the collectors' lines report, once each."""
    found = set()
    for line in lines:
        try:
            f = json.loads(line)
        except ValueError:
            continue
        if f.get("kind") == "connect_stall":
            found.add(("stall", f["log_group"], f["evidence"][0]))
        elif f.get("kind") == "duplicate_invocation":
            found.add(("dup", f["log_group"], f.get("reason"), f.get("key") or f["request_ids"][0]))
    return found


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--collectors", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=float, default=40, help="batches per second; 0: as fast as answered")
    ap.add_argument("--per-batch", type=int, default=20)
    ap.add_argument("--state", choices=["moto", "none"], default="moto", help="shared state in moto's DynamoDB, or none")
    args = ap.parse_args()

    port = free_port()
    moto = None
    if args.state == "moto":
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    collectors = []
    try:
        if moto:
            wait_port(port)
            create_table(port)
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION="us-east-1",
            AWS_ENDPOINT_URL="http://127.0.0.1:%d" % port,
            AWS_LAMBDA_FUNCTION_NAME="thawtrace-collector",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/thawtrace-collector",
            AWS_LAMBDA_LOG_STREAM_NAME="2026/11/28/[$LATEST]0000",
            THAWTRACE_STATE_TABLE=TABLE,
            # The lookback (CloudWatch Logs) is measured elsewhere.
            THAWTRACE_LOOKBACK="off",
            THAWTRACE_NAT_IDLE_TIMEOUT="6s",
            THAWTRACE_CONNECT_STALL_WINDOW="%dms" % WINDOW_MS,
            THAWTRACE_CONNECT_STALL_MIN_ENVS="3",
            THAWTRACE_IDEMPOTENCY_KEYS="messageId,detail.orderId",
        )
        for k in [k for k in env if k.startswith("OTEL_")]:
            del env[k]
        if not moto:
            del env["THAWTRACE_STATE_TABLE"], env["AWS_ENDPOINT_URL"]
        collectors = [Collector(args.binary, env) for _ in range(args.collectors)]

        base = recording()
        span = max(e["timestamp"] for e in base) - min(e["timestamp"] for e in base)
        step = span + 3 * WINDOW_MS
        work = queue.Queue()
        idle = queue.Queue()
        for c in collectors:
            idle.put(c)
        latencies, errors, delivered = [], [], {"batches": 0, "events": 0}
        lock = threading.Lock()

        def run(c, event, n_events):
            kind, ms = c.invoke(event)
            with lock:
                latencies.append(ms)
                delivered["batches"] += 1
                delivered["events"] += n_events
                if kind != "response":
                    errors.append(kind)
            idle.put(c)

        passes = 0
        newest = 0
        started = time.monotonic()
        sent = 0
        threads = []
        while time.monotonic() - started < args.seconds:
            for _, group, stream, chunk in batches(copy(base, passes, passes * step), args.per_batch):
                if args.rate > 0:
                    due = started + sent / args.rate
                    time.sleep(max(0.0, due - time.monotonic()))
                c = idle.get()
                newest = max(newest, chunk[-1]["timestamp"])
                t = threading.Thread(target=run, args=(c, awslogs(group, stream, chunk), len(chunk)))
                t.start()
                threads.append(t)
                sent += 1
            passes += 1
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        # Every pass was sent whole: close its windows.
        closing = newest + 2 * WINDOW_MS + 1
        c = idle.get()
        c.invoke(
            awslogs(
                "/aws/lambda/thawtrace-clock",
                "clock",
                [{"id": "%020d%036d" % (closing, 0), "timestamp": closing, "message": "START RequestId: 00000000-0000-4000-8000-00000000c10c Version: $LATEST"}],
            )
        )
        idle.put(c)
        moto_cpu = cpu_s(moto.pid) if moto else None
        rss = [c.stop() for c in collectors]
        lines = [line for c in collectors for line in c.lines]
        print(
            json.dumps(
                {
                    "collectors": args.collectors,
                    "rate_target": args.rate,
                    "per_batch": args.per_batch,
                    "passes": passes,
                    "batches": delivered["batches"],
                    "events": delivered["events"],
                    "seconds": round(wall, 2),
                    "events_per_s": round(delivered["events"] / wall, 1),
                    "batches_per_s": round(delivered["batches"] / wall, 1),
                    "latency_ms": {
                        "p50": round(percentile(latencies, 50), 1),
                        "p90": round(percentile(latencies, 90), 1),
                        "p99": round(percentile(latencies, 99), 1),
                        "max": round(max(latencies), 1),
                    },
                    "init_ms": [round(c.init_ms, 1) for c in collectors],
                    "peak_rss_kb": rss,
                    "cpu_s": {"collectors": round(sum(c.cpu_s for c in collectors), 2), "moto": moto_cpu and round(moto_cpu, 2)},
                    "errors": len(errors),
                    "incidents_reported": len(identities(lines)),
                    "incidents_in_passes": passes * PER_PASS,
                },
                indent=1,
            )
        )
    finally:
        for c in collectors:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
        if moto:
            moto.kill()
            moto.wait()


if __name__ == "__main__":
    main()
