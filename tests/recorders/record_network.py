#!/usr/bin/env python3
"""Record the neighbouring Lambda network failures from real clients.

    python3 tests/recorders/record_network.py --out tests/fixtures/recorded-network --seed 1

Three families, each from real function processes (Node.js with
@grpc/grpc-js, Python with boto3/botocore) under the Runtime API emulator of
tests/harness/lambda_sim.py, frozen with SIGSTOP between invocations:

- nat_idle_reset: each environment reaches its server through an
  `IdleNatProxy` (tests/harness/network.py) whose idle timeout stands in for
  the NAT gateway's 350 s (`--nat-idle-s`, 6 s by default). Freezes longer
  than that make the next call meet an RST; a long S3 call outlives the
  mapping and never gets its reply. Freezes and calls shorter than it are the
  controls.
- connect_stall: a burst of environments of three functions (grpc-js,
  botocore, grpcio) connect to a
  listener whose accept queue is full (the kernel drops their SYNs, as a NAT
  gateway out of ports or an ENI out of connections does). Controls: a burst
  that is refused (ECONNREFUSED, not a stall), one lone environment that
  stalls, a healthy burst.
- duplicate_invocation: an async invocation that fails is retried twice
  under the same request ID (in another environment too); an SQS message is
  delivered to two invocations; an EventBridge event is delivered twice
  (found with `--idempotency-key detail.orderId`).

The whole recording runs in a private network namespace (the script
re-executes itself under `unshare -rn`): loopback only, and a dropped SYN
fails after ~3 s because `tcp_syn_retries` is lowered there.

Writes events.jsonl, owners.jsonl, truth.json, environments.json and
scan-args.json (the scaled thresholds to scan this recording with).
Ground truth comes from the proxy's and the emulator's own logs.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

import lambda_sim  # noqa: E402
import network  # noqa: E402

NODE_DIR = os.path.join(ROOT, "tests", "recorders", "node")
PY_DIR = os.path.join(ROOT, "tests", "recorders", "python")
NODE = ["node", "runtime.js"]
NODE_TRACE = {"GRPC_TRACE": "transport,subchannel,dns_resolver", "GRPC_VERBOSITY": "DEBUG"}
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
STALL_WINDOW_S = 10
STALL_MIN_ENVS = 3


class Recording:
    def __init__(self, rng, log):
        self.rng = rng
        self.log = log
        self.streams = []
        self.truth = []
        self.meta = []
        self.lock = threading.Lock()
        self.work = tempfile.mkdtemp(prefix="thawtrace-net-")
        self.seq = 0

    def rid(self):
        with self.lock:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def environment(self, name, function, runtime, fmt="text", start="platform", env=None, timeout_s=None):
        """Start one execution environment of `function` with its own log stream."""
        with self.lock:
            self.seq += 1
            day = time.strftime("%Y/%m/%d", time.gmtime())
            stream = lambda_sim.LogStream("/aws/lambda/" + function, "%s/[$LATEST]%032x" % (day, self.rng.getrandbits(128)), self.seq * 10**6)
            self.streams.append(stream)
            self.meta.append({"name": name, "runtime": runtime, "log_group": stream.group, "log_stream": stream.name, "format": fmt, "start": start})
        if runtime == "node":
            command, cwd, handler = NODE, NODE_DIR, "./net_function.js"
            extra = dict(NODE_TRACE)
        else:
            command, cwd, handler = [sys.executable, "runtime.py"], PY_DIR, "net_function"
            extra = {}
        extra.update(AWS_ENV)
        extra["THAWTRACE_HANDLER"] = handler
        extra.setdefault("THAWTRACE_S3_ENDPOINT", "http://127.0.0.1:9")
        extra.update(env or {})
        spec = dict(function=function, command=command, cwd=cwd, format=fmt, start=start, env=extra, timeout_s=timeout_s)
        target = extra.pop("THAWTRACE_TARGET", "127.0.0.1:9")
        e = lambda_sim.Environment(spec, stream, target, self.work)
        e.owners = []  # (ms, request ID) from when each invocation owns new lines
        return e

    def invoke(self, env, rid, event, gap_s=0.0):
        """One invocation, then the freeze and a frozen gap; returns "response" or "error"."""
        env.owners.append((lambda_sim.now_ms(), rid))
        env.invoke(rid, event)
        kind = env.api.responses.get(rid, ("timeout",))[0]
        env.freeze()
        time.sleep(gap_s)
        return kind

    def expect(self, kind, stream_envs, request_ids, **detail):
        streams = sorted({e.stream.name for e in stream_envs})
        with self.lock:
            self.truth.append(dict(kind=kind, log_group=stream_envs[0].stream.group, log_streams=streams, request_ids=sorted(set(request_ids)), **detail))


def run_all(targets):
    """Runs (function, args) pairs in threads; raises if any of them failed,
    so a recording never silently misses part of its scenario."""
    failures = []

    def guarded(f, a):
        try:
            f(*a)
        except Exception:  # re-raised below, with the others
            import traceback

            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=guarded, args=(f, a)) for f, a in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if failures:
        raise RuntimeError("\n".join(failures))


def owner_at(env, ms):
    owner = None
    for t, rid in env.owners:
        if t <= ms:
            owner = rid
    return owner


def failed(env, rid):
    """Did invocation `rid` report a failed call or raise (the function's own lines)?"""
    return any(
        ev["_owner"] == rid and (" failed: " in ev["message"] or "[ERROR]" in ev["message"] or '"level": "ERROR"' in ev["message"]
                                 or " Task timed out after " in ev["message"])
        for ev in env.stream.events
    )


# ---------------------------------------------------------------- families


def nat_family(rec, idle_s):
    rng = random.Random(rec.rng.getrandbits(64))
    short = lambda: rng.uniform(0.3, 0.6) * idle_s  # noqa: E731
    long_ = lambda: idle_s + rng.uniform(1.5, 3.0)  # noqa: E731
    grpc_server = lambda_sim.EchoServer(os.path.join(rec.work))
    s3 = network.SlowS3()
    runs = []

    def grpc_env(name, fmt, start):
        proxy = network.IdleNatProxy(grpc_server.port, idle_s)
        env = rec.environment(name, "ledger-node" if fmt == "text" else "ledger-node-json", "node", fmt, start, {"THAWTRACE_TARGET": "127.0.0.1:%d" % proxy.port})
        try:
            calls = [rec.rid() for _ in range(6)]
            rec.invoke(env, calls[0], {"calls": 1}, short())  # opens the connection
            rec.invoke(env, calls[1], {"calls": 1}, long_())  # reused after a short freeze; then a long one
            rec.invoke(env, calls[2], {"calls": 1}, short())  # meets the RST
            rec.invoke(env, calls[3], {"calls": 2}, long_())  # new connection
            rec.invoke(env, calls[4], {"calls": 1}, 0.2)
            rec.invoke(env, calls[5], {"calls": 1}, 0.1)
        finally:
            env.close()
            proxy.close()
        runs.append((env, proxy))

    def boto_env(name, fmt, start):
        proxy = network.IdleNatProxy(s3.port, idle_s)
        env = rec.environment(name, "reports-python" if fmt == "text" else "reports-python-json", "python", fmt, start, {"THAWTRACE_S3_ENDPOINT": "http://127.0.0.1:%d" % proxy.port})
        slow = "slow-%d" % int(idle_s * 1000 + 2000)  # the reply comes after the mapping is gone
        below = "slow-%d" % int(idle_s * 400)  # a long call that the NAT lets through
        try:
            ids = [rec.rid() for _ in range(6)]
            rec.invoke(env, ids[0], {"bucket": "reports"}, short())
            rec.invoke(env, ids[1], {"bucket": "reports"}, long_())
            rec.invoke(env, ids[2], {"bucket": "reports"}, 0.3)  # RST on reuse
            rec.invoke(env, ids[3], {"bucket": below}, 0.3)
            rec.invoke(env, ids[4], {"bucket": slow}, 0.3)  # never answered
            rec.invoke(env, ids[5], {"bucket": "reports"}, 0.1)
        finally:
            env.close()
            proxy.close()
        runs.append((env, proxy))

    def boto_timeout_env(name):
        # A call longer than the function's timeout: Lambda ends it, not botocore.
        proxy = network.IdleNatProxy(s3.port, idle_s)
        env = rec.environment(name, "exports-python", "python", "text", "platform",
                              {"THAWTRACE_S3_ENDPOINT": "http://127.0.0.1:%d" % proxy.port}, timeout_s=idle_s + 3)
        try:
            ids = [rec.rid() for _ in range(4)]
            rec.invoke(env, ids[0], {"bucket": "exports"}, short())
            rec.invoke(env, ids[1], {"bucket": "slow-%d" % int(idle_s * 400)}, 0.3)  # long, but let through
            rec.invoke(env, ids[2], {"bucket": "slow-%d" % int(idle_s * 1000 + 2000)}, 0.3)  # never answered
            rec.invoke(env, ids[3], {"bucket": "exports"}, 0.1)
        finally:
            env.close()
            proxy.close()
        runs.append((env, proxy))

    try:
        run_all([
            (boto_timeout_env, ("nat-boto3-function-timeout",)),
            (grpc_env, ("nat-grpc-js-text", "text", "platform")),
            (grpc_env, ("nat-grpc-js-json-late-start", "json", "function")),
            (boto_env, ("nat-boto3-text", "text", "platform")),
            (boto_env, ("nat-boto3-json-late-start", "json", "function")),
        ])
    finally:
        grpc_server.stop()
        s3.close()
    for env, proxy in runs:
        # Truth: an invocation whose call met the proxy's RST, or whose call
        # was waiting when its mapping expired, and that reported the failure.
        hit = set()
        for ms, _, what in proxy.events():
            if what in ("reset", "expired_pending"):
                rid = owner_at(env, ms)
                if rid and failed(env, rid):
                    hit.add(rid)
        for rid in sorted(hit):
            rec.expect("nat_idle_reset", [env], [rid])
        rec.log("%s: %d NAT idle resets (%s)" % (env.stream.name[-8:], len(hit), ", ".join(sorted({w for _, _, w in proxy.events()}))))


def stall_family(rec):
    sat = network.SaturatedListener()
    refused = network.SaturatedListener()
    refused_port = refused.port
    refused.close()  # nothing listens there any more: ECONNREFUSED
    healthy = lambda_sim.EchoServer(tempfile.mkdtemp(dir=rec.work))

    def burst(function, runtime, n, port, expect):
        envs = []
        for i in range(n):
            if runtime == "node":
                env = {"THAWTRACE_TARGET": "localhost:%d" % port}
            elif runtime == "grpcio":
                env = {"THAWTRACE_GRPC_TARGET": "localhost:%d" % port}
            else:
                env = {"THAWTRACE_S3_ENDPOINT": "http://localhost:%d" % port}
            kind = "python" if runtime == "grpcio" else runtime
            envs.append(rec.environment("%s-%d" % (function, i), function, kind, env=env))
        ids = [rec.rid() for _ in envs]
        event = {
            "node": {"calls": 1, "deadline_ms": 6000},
            "grpcio": {"grpc_calls": 1, "deadline_s": 8},
            "python": {"bucket": "checkout"},
        }[runtime]
        try:
            run_all([(rec.invoke, (e, r, event)) for e, r in zip(envs, ids)])
        finally:
            for e in envs:
                e.close()
        failing = [(e, r) for e, r in zip(envs, ids) if failed(e, r)]
        if expect:
            rec.expect("connect_stall", [e for e, _ in failing], [r for _, r in failing])
        rec.log("burst %s: %d of %d failed" % (function, len(failing), n))

    # Three functions of one VPC stall together: grpc-js, botocore, grpcio.
    run_all([
        (burst, ("checkout-node", "node", 5, sat.port, True)),
        (burst, ("checkout-python", "python", 3, sat.port, True)),
        (burst, ("checkout-grpcio", "grpcio", 3, sat.port, True)),
    ])
    time.sleep(STALL_WINDOW_S + 2)
    burst("catalog-node", "node", 4, refused_port, False)  # refused at once: not a stall
    time.sleep(STALL_WINDOW_S + 2)
    burst("search-node", "node", 1, sat.port, False)  # one environment is not a burst
    burst("profile-node", "node", 4, healthy.port, False)  # a healthy burst
    sat.close()
    healthy.stop()


def duplicate_family(rec):
    rng = random.Random(rec.rng.getrandbits(64))
    # (a, c) An async invocation that fails, retried twice with the same request ID.
    a1 = rec.environment("orders-async-0", "orders-async", "node")
    a2 = rec.environment("orders-async-1", "orders-async", "node", fmt="text")
    # (b) An SQS batch item delivered again after its visibility timeout.
    s1 = rec.environment("orders-sqs-0", "orders-sqs", "python", fmt="json", start="function")
    s2 = rec.environment("orders-sqs-1", "orders-sqs", "python", fmt="json", start="function")
    # (b) An EventBridge event delivered twice (keyed by detail.orderId).
    e1 = rec.environment("orders-events-0", "orders-events", "node", fmt="json")

    def sqs(*mids):
        return {"Records": [{"messageId": m, "receiptHandle": "AQEB" + m[:8], "body": json.dumps({"order": m[-4:]}), "eventSource": "aws:sqs",
                             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders"} for m in mids]}

    def order(oid):
        return {"version": "0", "id": rec.rid(), "detail-type": "OrderPlaced", "source": "shop.orders", "detail": {"orderId": oid, "total": rng.randint(5, 500)}}

    def async_run():
        ok = [rec.rid() for _ in range(3)]
        bad = rec.rid()
        rec.invoke(a1, ok[0], {"calls": 0, "order": "o-1001"}, 0.3)
        assert rec.invoke(a1, bad, {"calls": 0, "order": "o-1002", "fail": "payment service declined the charge"}, 0.2) == "error"
        rec.invoke(a2, ok[1], {"calls": 0, "order": "o-1003"}, 0.3)
        time.sleep(1.0)  # Lambda waits a minute before the first retry
        rec.invoke(a2, bad, {"calls": 0, "order": "o-1002", "fail": "payment service declined the charge"}, 0.3)
        time.sleep(1.5)  # and two before the second
        rec.invoke(a1, bad, {"calls": 0, "order": "o-1002", "fail": "payment service declined the charge"}, 0.3)
        rec.invoke(a1, ok[2], {"calls": 0, "order": "o-1004"}, 0.1)
        rec.expect("duplicate_invocation", [a1, a2], [bad])

    def sqs_run():
        m = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(5)]
        r = [rec.rid() for _ in range(4)]
        rec.invoke(s1, r[0], sqs(m[0], m[1]), 0.3)
        rec.invoke(s2, r[1], sqs(m[2]), 0.5)
        rec.invoke(s2, r[2], sqs(m[1], m[3]), 0.3)  # m[1] again: its first handling did not delete it
        rec.invoke(s1, r[3], sqs(m[4]), 0.1)
        rec.expect("duplicate_invocation", [s1, s2], [r[0], r[2]])

    def events_run():
        r = [rec.rid() for _ in range(4)]
        rec.invoke(e1, r[0], order("o-2001"), 0.3)
        rec.invoke(e1, r[1], order("o-2002"), 0.3)
        rec.invoke(e1, r[2], order("o-2001"), 0.3)  # at-least-once delivery
        rec.invoke(e1, r[3], order("o-2003"), 0.1)
        rec.expect("duplicate_invocation", [e1], [r[0], r[2]])

    try:
        run_all([(async_run, ()), (sqs_run, ()), (events_run, ())])
    finally:
        for e in (a1, a2, s1, s2, e1):
            e.close()


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nat-idle-s", type=float, default=6.0, help="the proxy's idle timeout, standing in for 350 s")
    ap.add_argument("--only", action="append", choices=["nat", "stall", "duplicate"], help="record only this family")
    ap.add_argument("--in-namespace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.in_namespace:
        if not shutil.which("unshare"):
            sys.exit("record_network.py needs `unshare` (util-linux) to run in a private network namespace")
        inner = [sys.executable, os.path.abspath(__file__), "--in-namespace"] + sys.argv[1:]
        # As an unprivileged user (a user namespace maps us to root in it),
        # or as root where user namespaces are off.
        for flags in (["-rn"], ["-n"]):
            probe = subprocess.run(["unshare"] + flags + ["true"], capture_output=True)
            if probe.returncode == 0:
                sys.exit(subprocess.call(["unshare"] + flags + inner))
        sys.exit("record_network.py cannot make a network namespace (unshare -rn and unshare -n failed: %s)" % probe.stderr.decode().strip())
    network.enter_private_network()
    lock = threading.Lock()

    def log(msg):
        with lock:
            print(msg, file=sys.stderr, flush=True)

    rec = Recording(random.Random(args.seed), log)
    families = args.only or ["nat", "stall", "duplicate"]
    errors = []

    def run(name, f, *a):
        try:
            f(rec, *a)
        except Exception as exc:  # fails the recording below
            import traceback

            errors.append("%s: %s" % (name, traceback.format_exc()))

    threads = []
    if "nat" in families:
        threads.append(threading.Thread(target=run, args=("nat", nat_family, args.nat_idle_s)))
    if "stall" in families:
        threads.append(threading.Thread(target=run, args=("stall", stall_family)))
    if "duplicate" in families:
        threads.append(threading.Thread(target=run, args=("duplicate", duplicate_family)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    if errors:
        sys.exit("recording failed:\n" + "\n".join(errors))

    os.makedirs(args.out, exist_ok=True)
    events = sorted((ev for s in rec.streams for ev in s.events), key=lambda e: (e["timestamp"], e["id"]))
    with open(os.path.join(args.out, "events.jsonl"), "w") as f:
        for ev in events:
            f.write(json.dumps({k: v for k, v in ev.items() if not k.startswith("_")}) + "\n")
    with open(os.path.join(args.out, "owners.jsonl"), "w") as f:
        for ev in events:
            f.write(json.dumps({"id": ev["id"], "owner": ev["_owner"]}) + "\n")
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump({"seed": args.seed, "findings": rec.truth}, f, indent=1)
    with open(os.path.join(args.out, "environments.json"), "w") as f:
        json.dump(rec.meta, f, indent=1)
    scan_args = [
        "--nat-idle-timeout", "%gs" % args.nat_idle_s,
        "--connect-stall-window", "%ds" % STALL_WINDOW_S,
        "--connect-stall-min-envs", str(STALL_MIN_ENVS),
        "--idempotency-key", "messageId",
        "--idempotency-key", "detail.orderId",
    ]
    with open(os.path.join(args.out, "scan-args.json"), "w") as f:
        json.dump(scan_args, f)
    kinds = {}
    for t in rec.truth:
        kinds[t["kind"]] = kinds.get(t["kind"], 0) + 1
    log("recorded %d events, expected findings: %s" % (len(events), kinds))


if __name__ == "__main__":
    main()
