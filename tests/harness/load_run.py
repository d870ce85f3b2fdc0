#!/usr/bin/env python3
"""A load run of the Lambda collector: a recording replayed at a sustained
rate into several collectors at once, as an account-wide subscription
feeds them (issue 16).

    load_run.py [--collectors 4] [--rate 20000] [--seconds 60]
                [--fixture tests/fixtures/recorded-settings]
                [--state moto|none] [--binary target/release/thawtrace]

- The recording's streams are copied as many times as the run needs, each
  copy under its own stream names and shifted later in event time, so the
  replay reads as a live feed: new environments, time moving on.
- Each stream's events are cut into subscription messages (at most
  `--batch-events` events, gzip and base64 as CloudWatch Logs sends them),
  released in event-time order at `--rate` events per second, and handed to
  whichever collector is free, as Lambda's pollers hand batches to
  concurrent instances: a stream's batches land on any of them.
- Each collector is the release binary under its own Runtime API emulator
  (tests/harness/lambda_sim.py), started the way Lambda starts it. With
  `--state moto` they share a DynamoDB table (THAWTRACE_STATE_TABLE) in
  moto's server on 127.0.0.1, and their lookback reads CloudWatch Logs
  there too (it holds no events: the lookback's calls are made, and find
  nothing).

Prints one JSON object: offered and achieved events per second, handler
latency (delivery to response) at p50/p99/max, each collector's init time
(process start to its first poll for work) and peak RSS (VmHWM), and the
findings and incidents the collectors printed. Everything runs on loopback;
every wait is bounded.
"""

import argparse
import base64
import gzip
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import lambda_sim  # noqa: E402

TABLE = "thawtrace-state"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def peak_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def streams_of(fixture):
    """The recording's events by (group, stream), in time order."""
    streams = {}
    with open(os.path.join(fixture, "events.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            key = (e.get("logGroup", "/aws/lambda/recorded"), e["logStream"])
            streams.setdefault(key, []).append(e)
    for events in streams.values():
        events.sort(key=lambda e: e["timestamp"])
    return streams


UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def payloads(streams, copies, batch_events):
    """Subscription messages for `copies` copies of the streams, each copy
    shifted past the one before in event time, its request IDs (and every
    other UUID) its own; (first event time, event count, awslogs event) in
    event-time order."""
    first = min(e["timestamp"] for evs in streams.values() for e in evs)
    last = max(e["timestamp"] for evs in streams.values() for e in evs)
    span = last - first + 3_600_000
    out = []
    for k in range(copies):
        shift = k * span
        for (group, stream), events in streams.items():
            name = f"{stream}-{k:04d}"
            for i in range(0, len(events), batch_events):
                chunk = events[i : i + batch_events]
                message = {
                    "messageType": "DATA_MESSAGE",
                    "owner": "123456789012",
                    "logGroup": group,
                    "logStream": name,
                    "subscriptionFilters": ["thawtrace"],
                    "logEvents": [
                        {
                            "id": f"{k:04d}{e['id']}",
                            "timestamp": e["timestamp"] + shift,
                            "message": UUID.sub(lambda m: f"{k:04x}" + m.group(0)[4:], e["message"]),
                        }
                        for e in chunk
                    ],
                }
                data = gzip.compress(json.dumps(message, separators=(",", ":")).encode(), 6)
                event = {"awslogs": {"data": base64.b64encode(data).decode()}}
                out.append((chunk[0]["timestamp"] + shift, len(chunk), event))
    out.sort(key=lambda p: p[0])
    return out


class Moto:
    """moto's server on 127.0.0.1, with the state table."""

    def __init__(self, python):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        import boto3  # installed with moto (tests/setup.sh)

        ddb = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.proc.kill()
        self.proc.wait()


class Collector:
    """The release binary under its own Runtime API emulator."""

    def __init__(self, n, binary, env):
        self.api = lambda_sim.RuntimeApi()
        self.output = []
        env = dict(env)
        env.update(
            AWS_LAMBDA_RUNTIME_API=self.api.address,
            AWS_LAMBDA_FUNCTION_NAME="thawtrace-collector",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/thawtrace-collector",
            AWS_LAMBDA_LOG_STREAM_NAME=f"2026/12/06/[$LATEST]{n:04d}",
        )
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.api.wait_polling(timeout=30)
        self.init_ms = (time.monotonic() - started) * 1000

    def _read(self):
        for raw in self.proc.stdout:
            self.output.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def invoke(self, event, timeout):
        """Delivers one event; (seconds to its response, kind)."""
        rid = str(uuid.uuid4())
        self.api.wait_polling(timeout=timeout)
        t = time.monotonic()
        self.api.deliver(rid, event)
        kind, _, _ = self.api.wait_response(rid, timeout=timeout)
        return time.monotonic() - t, kind

    def close(self):
        rss = peak_rss_kb(self.proc.pid)
        self.api.close()
        self.proc.kill()
        self.proc.wait()
        self.reader.join(timeout=5)
        return rss


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--collectors", type=int, default=4)
    ap.add_argument("--rate", type=float, default=20000, help="events per second offered")
    ap.add_argument("--seconds", type=float, default=60, help="length of the replay at that rate")
    ap.add_argument("--batch-events", type=int, default=1000)
    ap.add_argument("--fixture", default=os.path.join(ROOT, "tests/fixtures/recorded-settings"))
    ap.add_argument("--state", choices=["moto", "none"], default="moto")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/thawtrace"))
    ap.add_argument("--timeout", type=float, default=60, help="longest wait for one response")
    args = ap.parse_args()

    streams = streams_of(args.fixture)
    per_copy = sum(len(v) for v in streams.values())
    copies = max(1, int(args.rate * args.seconds / per_copy + 0.999))
    work = payloads(streams, copies, args.batch_events)
    total = sum(n for _, n, _ in work)

    env = dict(os.environ)
    env.update(AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    moto = None
    if args.state == "moto":
        moto = Moto(sys.executable)
        env.update(AWS_ENDPOINT_URL=moto.endpoint, THAWTRACE_STATE_TABLE=TABLE)
    else:
        env.update(THAWTRACE_LOOKBACK="off")

    collectors = []
    latencies, failures = [], []
    try:
        collectors = [Collector(n, args.binary, env) for n in range(args.collectors)]
        todo = queue.Queue()
        for item in work:
            todo.put(item)
        lock = threading.Lock()
        start = time.monotonic()
        released = [0]  # events released so far

        def worker(c):
            while True:
                try:
                    _, n, event = todo.get_nowait()
                except queue.Empty:
                    return
                # Paced: a batch is released once the offered rate has
                # reached its events.
                with lock:
                    due = start + released[0] / args.rate
                    released[0] += n
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                seconds, kind = c.invoke(event, args.timeout)
                with lock:
                    latencies.append(seconds)
                    if kind != "response":
                        failures.append(kind)

        threads = [threading.Thread(target=worker, args=(c,)) for c in collectors]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds * 20 + 600)
        elapsed = time.monotonic() - start
    finally:
        rss = [c.close() for c in collectors]
        if moto:
            moto.close()

    lines = [json.loads(l) for c in collectors for l in c.output if l.startswith("{")]
    kinds = {}
    for line in lines:
        kind = line.get("kind")
        if kind and "thawtrace" not in line:
            kinds[kind] = kinds.get(kind, 0) + 1
    print(
        json.dumps(
            {
                "collectors": args.collectors,
                "state": args.state,
                "events": total,
                "batches": len(work),
                "offered_events_per_s": args.rate,
                "achieved_events_per_s": round(total / elapsed),
                "elapsed_s": round(elapsed, 2),
                "latency_ms": {
                    "p50": round(percentile(latencies, 50) * 1000, 1),
                    "p99": round(percentile(latencies, 99) * 1000, 1),
                    "max": round(max(latencies) * 1000, 1),
                },
                "failed_invocations": len(failures),
                "init_ms": [round(c.init_ms) for c in collectors],
                "peak_rss_mb": [r and round(r / 1024, 1) for r in rss],
                "printed_kinds": kinds,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
