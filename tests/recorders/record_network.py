#!/usr/bin/env python3
"""Record the neighbouring Lambda network failures from real clients.

    python3 tests/recorders/record_network.py --out tests/fixtures/recorded-network --seed 1
    python3 tests/recorders/record_network.py --out /tmp/net-matrix --seed 1 --matrix
    python3 tests/recorders/record_network.py --out tests/fixtures/recorded-nat-near --seed 7 --only nat-near

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

With --matrix, the same families also in the shapes users' settings give
them (each environment labelled with its `setting` in environments.json):

- nat-matrix: a NAT that drops instead of resetting (grpc-js with a 2 s
  deadline, several invocations in a row on the same dead connection;
  grpc-js without a deadline, ended by Lambda's timeout of 4 s or 9 s;
  botocore with a 2 s read timeout, one attempt or retried); idle past the
  NAT's timeout inside one invocation, no freeze; botocore's retries hiding
  the reset (standard, legacy, one attempt; at INFO, at DEBUG through the
  runtime's handler, and with boto3.set_stream_logger); botocore's
  tcp_keepalive with the kernel's 7200 s keepalive idle (still reset) and
  with a 2 s one (the proxy sees the probes: survives); negatives: calls
  more often than the timeout, freezes shorter than it.
- connect-slow (`--only connect-slow`, the fixture
  tests/fixtures/recorded-connect-slow): grpc-js environments whose first
  connect meets a listener that drops SYNs until it opens (the kernel's
  retransmission gets through 1-3 s later; the call succeeds), traced
  with `subchannel,transport`; negatives: healthy environments connecting
  straight to the server, and every connection's reuse in a second
  invocation. Truth: each connect's SYN-SENT span, watched in /proc.
- connect-slow-java (`--only connect-slow-java`, the fixture
  tests/fixtures/recorded-connect-slow-java): the same with grpc-java
  environments (record_java.py's function) at JUL FINEST for
  io.grpc.ChannelLogger (`WaitUntilActive started` / `completed`).
- nat-near (`--matrix --nat-near`, or alone: `--only nat-near`, the
  fixture tests/fixtures/recorded-nat-near; opt-in in the matrix until
  thawtrace takes `--nat-near-miss`): NAT idle near misses, botocore at
  DEBUG against SlowS3 through the proxy: a pooled connection idle for
  77-88 % of the NAT's timeout (plus the runtime's overhead), then reused
  successfully, after freezes (text and JSON log format) and inside one
  invocation; negatives: idle below 50 % of it, idle past it (a
  nat_idle_reset, for contrast), and a new boto3 client (so a new
  connection) in each invocation after a near-miss-long freeze. Truth
  `nat_idle_near_miss` entries {"log_group", "log_stream", "request_id",
  "idle_ms", "nat_idle_timeout_ms", "margin_ms", "near_fraction",
  "setting", ...}: each flow whose idle gap (the proxy's last byte either
  way, then the client's next bytes) is within [0.75 x timeout, timeout)
  and that the server answered after it, owned by the invocation running
  when the bytes came; truth.json also gives the fraction
  (`nat_near_miss_fraction`), the timeout and the command line, and
  scan-args.json `--nat-near-miss 75%`.
- nat-java (`--only nat-java`, the fixture tests/fixtures/recorded-nat-java):
  grpc-java (record_java.py's function, Debian's grpc-java 1.41 with Netty)
  through the NAT, reset after a long freeze, keepalive off and on, at
  java.util.logging FINE for io.grpc.netty (text, JSON) and at INFO;
  negative: short freezes. Truth as the nat-matrix's.
- stall-java (`--only stall-java`, the fixture
  tests/fixtures/recorded-stall-java): the stall matrix's waves with
  grpc-java environments (Lambda's 3 s timeout ends their calls) at JUL
  FINEST for io.grpc.ChannelLogger (grpc-java's channel trace: each
  connect's `WaitUntilActive started` / `completed`), FINE and INFO.
- stall-matrix (after the stall family, with tcp_syn_retries raised to 3
  so the kernel gives up after 15 s): bursts whose connects stall with no
  connect timeout (botocore's defaults, 60 s; grpc-js without a deadline,
  with and without GRPC_TRACE=transport,subchannel), Lambda's 3 s timeout
  the only error; negatives: a lone stalled environment, a healthy burst,
  bursts that time out on a slow server (botocore, grpc-js) or on a server
  that accepted the connection and never spoke.

Go functions (opt-in, `--only nat-go` / `--only stall-go`, the fixtures
tests/fixtures/recorded-nat-go and recorded-stall-go; the Go function of
record_go.py with grpc-go 1.64, which tests/setup.sh unpacks):

- nat-go: keepalive off at the default logging and at verbosity 2, freezes
  past the NAT's timeout (the next call meets the RST); keepalive on (its
  ping at the thaw meets it, the call goes out on a new connection); short
  freezes (negative). Truth as the nat family's.
- stall-go: two functions' bursts of three environments against the
  SYN-dropping listener (verbosity 2 and default logging), a refused
  burst, a lone stalled environment, a healthy burst. Truth as the stall
  family's.

Truth for the matrix comes from the harness alone (the proxy's log, the
saturated listener's SYN-SENT sockets and their processes, the emulator's
owner and freeze timeline), with the setting, the NAT event, where the
idle was (after_freeze or in_invocation) and the invocation's outcome
(response, error, timeout) as detail. tests/recorders/network_report.py
scores a scan against it per setting.

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
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
sys.path.insert(0, os.path.join(ROOT, "tests", "recorders"))  # record_java (nat-java)

import lambda_sim  # noqa: E402
import network  # noqa: E402

NODE_DIR = os.path.join(ROOT, "tests", "recorders", "node")
GO_DIR = os.path.join(ROOT, "tests", "recorders", "go")
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

    def environment(self, name, function, runtime, fmt="text", start="platform", env=None, timeout_s=None, setting=None, library=None):
        """Start one execution environment of `function` with its own log stream
        (`setting` and `library` label it in environments.json)."""
        with self.lock:
            self.seq += 1
            day = time.strftime("%Y/%m/%d", time.gmtime())
            stream = lambda_sim.LogStream("/aws/lambda/" + function, "%s/[$LATEST]%032x" % (day, self.rng.getrandbits(128)), self.seq * 10**6)
            self.streams.append(stream)
            meta = {"name": name, "runtime": runtime, "log_group": stream.group, "log_stream": stream.name, "format": fmt, "start": start}
            if setting:
                meta.update(setting=setting, library=library, timeout_s=timeout_s)
            self.meta.append(meta)
        if runtime == "node":
            command, cwd, handler = NODE, NODE_DIR, "./net_function.js"
            extra = dict(NODE_TRACE)
        elif runtime == "java":
            # record_java.py's function (its own runtime client): the JUL
            # setting is a logging.properties the JVM starts with.
            import record_java
            with self.lock:
                if not hasattr(self, "java"):
                    self.java = record_java.build(tempfile.mkdtemp(dir=self.work))
            command = record_java.logging_options(self.java, (env or {}).get("THAWTRACE_JUL", "none")) + ["Function"]
            cwd, handler, extra = record_java.JAVA_DIR, "", {}
        elif runtime == "go":
            # The Go function of record_go.py (nat_go_family builds it).
            command, cwd, handler = [self.go_exe], GO_DIR, None
            extra = {}
        else:
            command, cwd, handler = [sys.executable, "runtime.py"], PY_DIR, "net_function"
            extra = {}
        extra.update(AWS_ENV)
        extra["THAWTRACE_HANDLER"] = handler
        extra.setdefault("THAWTRACE_S3_ENDPOINT", "http://127.0.0.1:9")
        extra.update(env or {})
        extra.pop("THAWTRACE_JUL", None)
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

    def annotate(self, env, **harness):
        """What the harness saw of one environment, in environments.json."""
        with self.lock:
            for meta in self.meta:
                if meta["log_stream"] == env.stream.name:
                    meta.setdefault("harness", {}).update(harness)

    def truth_entry(self, entry):
        """A truth entry of its own shape (one stream, one request ID)."""
        with self.lock:
            self.truth.append(entry)

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


def build_go(rec, grpc="1.64"):
    """The Go function of record_go.py, built once per recording."""
    import record_go

    with rec.lock:
        if not getattr(rec, "go_exe", None):
            rec.go_exe = record_go.build(rec.work, grpc)
    return rec.go_exe


def stall_go_family(rec):
    """stall-go: bursts of the Go function (grpc-go 1.64, info-v2 and the
    default logging) connecting to a listener whose full accept queue drops
    their SYNs: the kernel gives up after ~3 s (tcp_syn_retries lowered in
    the namespace) and grpc-go fails the call (no wait-for-ready) with the
    dial's `connect: connection timed out`. Controls: a refused burst, one
    lone stalled environment, a healthy burst. Truth: the environments of a
    stalled burst whose call failed (their own lines), as stall_family's."""
    import record_go

    build_go(rec)
    sat = network.SaturatedListener()
    refused = network.SaturatedListener()
    refused_port = refused.port
    refused.close()  # nothing listens there any more: ECONNREFUSED
    healthy = lambda_sim.EchoServer(tempfile.mkdtemp(dir=rec.work))

    def burst(function, setting, n, port, expect):
        envs = [rec.environment("%s-%d" % (function, i), function, "go", env=dict(record_go.SETTINGS[setting], THAWTRACE_TARGET="127.0.0.1:%d" % port),
                                setting="%s@%s" % (function, setting), library="grpc-go") for i in range(n)]
        ids = [rec.rid() for _ in envs]
        try:
            run_all([(rec.invoke, (e, r, {"calls": 1})) for e, r in zip(envs, ids)])
        finally:
            for e in envs:
                e.close()
        failing = [(e, r) for e, r in zip(envs, ids) if failed(e, r)]
        if expect:
            if len(failing) < 3:
                raise RuntimeError("stall-go %s: only %d of %d environments failed" % (function, len(failing), n))
            rec.expect("connect_stall", [e for e, _ in failing], [r for _, r in failing])
        rec.log("stall-go burst %s: %d of %d failed" % (function, len(failing), n))

    # Two Go functions of one VPC stall together, at two log settings.
    run_all([
        (burst, ("checkout-go", "info-v2", 3, sat.port, True)),
        (burst, ("checkout-go-default", "default", 3, sat.port, True)),
    ])
    time.sleep(STALL_WINDOW_S + 2)
    burst("catalog-go", "info-v2", 3, refused_port, False)  # refused at once: not a stall
    time.sleep(STALL_WINDOW_S + 2)
    burst("search-go", "info-v2", 1, sat.port, False)  # one environment is not a burst
    burst("profile-go", "info-v2", 3, healthy.port, False)  # a healthy burst
    sat.close()
    healthy.stop()


def nat_go_family(rec, idle_s, grpc="1.64"):
    """nat-go: the Go function of record_go.py (grpc-go 1.64, `--grpc` of
    record_go.py) through the IdleNatProxy: with keepalive off, a freeze
    past the NAT's idle timeout makes the next call meet the RST (positive;
    at the default logging and with the transport's lines); freezes
    shorter than it are the negative; with keepalive on, the ping grpc-go
    sends at the thaw meets the RST first and the call goes out on a new
    connection (truth only where a call failed). Truth from the proxy's
    log: each invocation whose bytes met the reset and that reported a
    failed call."""
    import record_go

    rng = random.Random(rec.rng.getrandbits(64))
    short = lambda: rng.uniform(0.3, 0.5) * idle_s  # noqa: E731
    long_ = lambda: idle_s + rng.uniform(1.5, 3.0)  # noqa: E731
    build_go(rec, grpc)
    server = lambda_sim.EchoServer(tempfile.mkdtemp(dir=rec.work))
    scenarios = [
        # (setting, function, env, gaps after each invocation, expect)
        ("nat-grpc-go-keepalive-off@info-v2", "ledger-go-nokeepalive", dict(record_go.SETTINGS["info-v2"], THAWTRACE_KEEPALIVE="0"),
         [short(), long_(), short(), long_(), 0.3, 0.1], "hit"),
        ("nat-grpc-go-keepalive-off@default", "ledger-go-nokeepalive-default", dict(record_go.SETTINGS["default"], THAWTRACE_KEEPALIVE="0"),
         [short(), long_(), short(), long_(), 0.3, 0.1], "hit"),
        ("nat-grpc-go-keepalive@info-v2", "ledger-go", dict(record_go.SETTINGS["info-v2"]),
         [short(), long_(), short(), long_(), 0.3, 0.1], "any"),
        ("nat-negative-short-freeze-grpc-go@info-v2", "ledger-go-short-freeze", dict(record_go.SETTINGS["info-v2"], THAWTRACE_KEEPALIVE="0"),
         [short(), short(), short(), short(), 0.1], "none"),
    ]
    runs = []

    def run(setting, function, env_vars, gaps, expect):
        proxy = network.IdleNatProxy(server.port, idle_s)
        env = rec.environment(setting, function, "go", env=dict(env_vars, THAWTRACE_TARGET="127.0.0.1:%d" % proxy.port),
                              setting=setting, library="grpc-go")
        rids = [rec.rid() for _ in gaps]
        try:
            for rid, gap in zip(rids, gaps):
                rec.invoke(env, rid, {"calls": 1}, gap)
        finally:
            env.close()
            proxy.close()
        runs.append((setting, expect, env, proxy, rids))

    try:
        run_all([(run, sc) for sc in scenarios])
    finally:
        server.stop()
    problems = []
    for setting, expect, env, proxy, rids in sorted(runs, key=lambda r: r[0]):
        hit = set()
        for ms, _, what in proxy.events():
            if what in ("reset", "expired_pending"):
                rid = owner_at(env, ms)
                if rid and failed(env, rid):
                    hit.add(rid)
        for rid in sorted(hit):
            rec.expect("nat_idle_reset", [env], [rid], setting=setting, library="grpc-go")
        rec.annotate(env, nat_idle_s=idle_s, proxy_events=dict(sorted(Counter(w for _, _, w in proxy.events()).items())),
                     invocations=[{"request_id": r, "nat_hit": r in hit} for r in rids])
        rec.log("nat-go %-44s %d NAT idle resets; proxy: %s" % (setting, len(hit), dict(Counter(w for _, _, w in proxy.events()))))
        if expect == "hit" and not hit:
            problems.append("%s: no call met the NAT's reset" % setting)
        if expect == "none" and hit:
            problems.append("%s: a negative met the NAT" % setting)
    if problems:
        raise RuntimeError("nat-go did not record what it meant to:\n" + "\n".join(problems))


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


# ---------------------------------------------------------------- the matrix (--matrix)
#
# The same families in the shapes users' settings give them, each
# environment labelled with its `setting` in environments.json. Truth comes
# from the harness alone: the NAT proxy's log (which connection's mapping
# expired, whose bytes it then reset or dropped), the saturated listener's
# (which process's connects sat in SYN-SENT), placed in invocations by the
# emulator's owner timeline; never from the function's lines.

SLOW_GRPC_SERVER = os.path.join(ROOT, "tests", "harness", "slow_grpc_server.py")
# Lambda's timeout for the stalled bursts: well before the kernel gives up
# on the SYNs (15 s with tcp_syn_retries 3, as 127 s is in AWS) and before
# botocore's 60 s connect timeout, so Lambda's line is the only error.
STALL_FUNCTION_TIMEOUT_S = 3
STALL_SYN_RETRIES = 3
# A NAT hit: the proxy reset, or dropped, a client's bytes on an expired
# mapping. (Not "expired_pending": grpc-js's own last bytes, a WINDOW_UPDATE
# after a reply, make most of its idle connections expire "pending"; no
# matrix scenario has a call outlive the mapping.)
NAT_HITS = ("reset", "dropped_request")


def boto(config, level=None, stream_logger=False, keepidle=None):
    """The environment of a botocore function with this Config (kwargs)."""
    env = {"THAWTRACE_BOTO_CONFIG": json.dumps(config)}
    if level:
        env["THAWTRACE_LOG_LEVEL"] = level
    if stream_logger:
        env["THAWTRACE_STREAM_LOGGER"] = "1"
    if keepidle:
        env["THAWTRACE_TCP_KEEPIDLE"] = str(keepidle)
    return env


def outcome(env, rid):
    """How the emulator saw invocation `rid` end: response, error or timeout."""
    return env.api.responses.get(rid, ("timeout",))[0]


def nat_matrix_scenarios(rng, idle_s):
    short = lambda: round(rng.uniform(0.3, 0.5) * idle_s, 2)  # noqa: E731
    long_ = lambda: round(idle_s + rng.uniform(1.5, 3.0), 2)  # noqa: E731
    pause = idle_s + 2.5  # idle inside one invocation, past the NAT's timeout
    brisk = idle_s * 0.5  # calls more often than the NAT's timeout

    def G(**kw):  # a grpc-js event
        return dict({"calls": 1}, **kw)

    def B(**kw):  # a botocore event
        return dict({"bucket": "reports"}, **kw)

    d2 = {"deadline_ms": 2000}
    nd = {"no_deadline": True}
    max1 = {"retries": {"mode": "standard", "total_max_attempts": 1}}
    standard = {"retries": {"mode": "standard"}}
    legacy = {"retries": {"mode": "legacy"}}
    # botocore's 60 s read timeout against the NAT's 350 s, scaled.
    drop_max1 = {"read_timeout": 2, "retries": {"mode": "standard", "total_max_attempts": 1}}
    drop_standard = {"read_timeout": 2, "retries": {"mode": "standard"}}

    def sc(setting, library, function, steps, expect, mode="reset", env=None, timeout_s=None, sniff=False, probes=False, fmt="text"):
        return dict(setting=setting, library=library, function=function, steps=steps, expect=expect, mode=mode,
                    env=env or {}, timeout_s=timeout_s, sniff=sniff, probes=probes, fmt=fmt)

    after_freeze = lambda e: [(e, short()), (e, long_()), (e, 0.3), (e, 0.1)]  # noqa: E731  the third meets the NAT
    return [
        # 1. A NAT that drops instead of resetting.
        sc("nat-drop-grpc-js-deadline", "grpc-js", "ledger-node-drop", mode="drop", expect="hit",
           steps=[(G(**d2), short()), (G(**d2), long_()), (G(**d2), short()), (G(**d2), short()), (G(**d2), 0.1)]),
        sc("nat-drop-grpc-js-no-deadline", "grpc-js", "ledger-node-drop-nodeadline", mode="drop", expect="hit", timeout_s=4,
           steps=[(G(**nd), short()), (G(**nd), long_()), (G(**nd), short()), (G(**nd), 0.1)]),
        sc("nat-drop-grpc-js-no-deadline-timeout-9s", "grpc-js", "ledger-node-drop-nodeadline-9s", mode="drop", expect="hit", timeout_s=9,
           steps=[(G(**nd), short()), (G(**nd), long_()), (G(**nd), short()), (G(**nd), 0.1)]),
        sc("nat-drop-botocore-max1", "botocore", "reports-python-drop", mode="drop", expect="hit",
           env=boto(drop_max1), steps=after_freeze(B())),
        sc("nat-drop-botocore-standard-info", "botocore", "reports-python-drop-retry", mode="drop", expect="hit",
           env=boto(drop_standard), steps=after_freeze(B())),
        sc("nat-drop-botocore-standard-debug", "botocore", "reports-python-drop-retry-debug", mode="drop", expect="hit",
           env=boto(drop_standard, "DEBUG"), steps=after_freeze(B())),
        # 2. Idle inside one long invocation, no freeze in between.
        sc("idle-in-invocation-grpc-js", "grpc-js", "ledger-node-idle", expect="hit", timeout_s=20,
           steps=[(G(calls=2, pause_ms=int(pause * 1000)), 0.3), (G(), 0.1)]),
        sc("idle-in-invocation-grpc-js-drop", "grpc-js", "ledger-node-idle-drop", mode="drop", expect="hit", timeout_s=20,
           steps=[(G(calls=2, pause_ms=int(pause * 1000), **d2), 0.3), (G(**d2), 0.1)]),
        sc("idle-in-invocation-botocore-max1", "botocore", "reports-python-idle", expect="hit", timeout_s=20,
           env=boto(max1), steps=[(B(s3_calls=2, pause_s=pause), 0.3), (B(), 0.1)]),
        sc("idle-in-invocation-botocore-debug-standard", "botocore", "reports-python-idle-debug", expect="hit", timeout_s=20,
           env=boto(standard, "DEBUG"), steps=[(B(s3_calls=2, pause_s=pause), 0.3), (B(), 0.1)]),
        # 3. botocore's retries, at INFO and at DEBUG.
        sc("botocore-info-standard", "botocore", "reports-python-info-standard", expect="hit", env=boto(standard), steps=after_freeze(B())),
        sc("botocore-info-legacy", "botocore", "reports-python-info-legacy", expect="hit", env=boto(legacy), steps=after_freeze(B())),
        sc("botocore-info-max1", "botocore", "reports-python-info-max1", expect="hit", env=boto(max1), steps=after_freeze(B())),
        sc("botocore-debug-standard", "botocore", "reports-python-debug-standard", expect="hit", env=boto(standard, "DEBUG"), steps=after_freeze(B())),
        sc("botocore-debug-legacy", "botocore", "reports-python-debug-legacy", expect="hit", env=boto(legacy, "DEBUG"), steps=after_freeze(B())),
        sc("botocore-debug-max1", "botocore", "reports-python-debug-max1", expect="hit", env=boto(max1, "DEBUG"), steps=after_freeze(B())),
        # The Python runtime's JSON log format (AWS_LAMBDA_LOG_FORMAT=JSON):
        # the same DEBUG lines, as JSON records.
        sc("botocore-debug-standard-json", "botocore", "reports-python-debug-standard-json", expect="hit",
           env=boto(standard, "DEBUG"), steps=after_freeze(B()), fmt="json"),
        sc("boto3-stream-logger-standard", "botocore", "reports-python-stream-logger", expect="hit",
           env=boto(standard, stream_logger=True), steps=after_freeze(B())),
        # The legacy handler logs the exception it retries with exc_info: the
        # recorded runtime's handler prints the message only, boto3's stream
        # handler the traceback too.
        sc("boto3-stream-logger-legacy", "botocore", "reports-python-stream-logger-legacy", expect="hit",
           env=boto(legacy, stream_logger=True), steps=after_freeze(B())),
        # 4. TCP keepalive: the kernel's default idle (7200 s), and one below the NAT's.
        sc("tcp-keepalive-default", "botocore", "reports-python-keepalive", expect="hit", timeout_s=20, sniff=True,
           env=boto(dict(max1, tcp_keepalive=True)),
           steps=[(B(), short()), (B(), long_()), (B(), 0.3), (B(s3_calls=2, pause_s=pause), 0.1)]),
        sc("tcp-keepalive-short", "botocore", "reports-python-keepalive-2s", expect="none", timeout_s=20, sniff=True, probes=True,
           env=boto(dict(max1, tcp_keepalive=True), keepidle=2),
           steps=[(B(), short()), (B(s3_calls=2, pause_s=pause), 0.3), (B(), 0.1)]),
        # 5. Negatives: calls more often than the timeout; freezes shorter than it.
        sc("nat-negative-frequent-grpc-js", "grpc-js", "ledger-node-frequent", expect="none", timeout_s=20,
           steps=[(G(calls=3, pause_ms=int(brisk * 1000)), short()), (G(calls=3, pause_ms=int(brisk * 1000)), short()), (G(), 0.1)]),
        sc("nat-negative-frequent-botocore", "botocore", "reports-python-frequent", expect="none", timeout_s=20, env=boto(max1),
           steps=[(B(s3_calls=3, pause_s=brisk), short()), (B(s3_calls=3, pause_s=brisk), short()), (B(), 0.1)]),
        sc("nat-negative-frequent-botocore-debug-json", "botocore", "reports-python-frequent-json", expect="none", timeout_s=20,
           env=boto(standard, "DEBUG"), fmt="json",
           steps=[(B(s3_calls=3, pause_s=brisk), short()), (B(s3_calls=3, pause_s=brisk), short()), (B(), 0.1)]),
        sc("nat-negative-short-freeze-grpc-js-drop", "grpc-js", "ledger-node-short-freeze", mode="drop", expect="none",
           steps=[(G(**d2), short()), (G(**d2), short()), (G(**d2), short()), (G(**d2), 0.1)]),
        sc("nat-negative-short-freeze-botocore-drop", "botocore", "reports-python-short-freeze", mode="drop", expect="none",
           env=boto(drop_max1), steps=[(B(), short()), (B(), short()), (B(), short()), (B(), 0.1)]),
    ]


def frozen_between(env, start_ms, end_ms):
    """Was the environment frozen at some point in [start_ms, end_ms)?"""
    return any(start_ms <= ms < end_ms for ms, what, _ in env.timeline if what == "freeze")


def nat_reset_truth(rec, s, env, proxy):
    """The matrix's nat_idle_reset truth for one environment, from its
    proxy's log: each invocation whose bytes the NAT reset or dropped.
    Returns {request ID: [(ms, connection, what), ...]}."""
    hits = {}
    for ms, n, what in proxy.events():
        if what in NAT_HITS:
            rid = owner_at(env, ms)
            if rid:
                hits.setdefault(rid, []).append((ms, n, what))
    met = Counter()  # connection number -> invocations that met it dead so far
    for rid, hs in sorted(hits.items(), key=lambda kv: kv[1][0][0]):
        ms, n, what = hs[0]
        last_bytes = proxy.last_bytes_ms(n)
        rec.expect("nat_idle_reset", [env], [rid], setting=s["setting"], library=s["library"], nat_mode=s["mode"],
                   nat_events=sorted({w for _, _, w in hs}), connection=n, idle_ms=ms - last_bytes,
                   # 0: the first use after the idle; more: the same dead connection again.
                   earlier_hits_on_connection=met[n],
                   # Was the process frozen in the idle, or was it all inside one invocation?
                   where="after_freeze" if frozen_between(env, last_bytes, ms) else "in_invocation",
                   outcome=outcome(env, rid))
        met[n] += 1
    return hits


def nat_java_scenarios(rng, idle_s):
    """grpc-java (record_java.py's Function: grpc-java 1.41 with Netty,
    calls with an 8 s deadline) through the NAT (`--only nat-java`): reset
    after a freeze longer than the NAT's timeout, keepalive off (the
    connection sits idle) and on (5 s: the keepalive PING or the call meets
    the reset at the thaw), at java.util.logging FINE for io.grpc.netty and
    at the JDK's default INFO, text and JSON; negatives: freezes shorter than
    the timeout."""
    short = lambda: round(rng.uniform(0.3, 0.5) * idle_s, 2)  # noqa: E731
    long_ = lambda: round(idle_s + rng.uniform(1.5, 3.0), 2)  # noqa: E731
    J = {"calls": 1}

    def sc(setting, function, steps, expect, jul, keepalive=False, fmt="text"):
        env = {"THAWTRACE_JUL": jul}
        if not keepalive:
            env["THAWTRACE_KEEPALIVE"] = "0"
        return dict(setting=setting, library="grpc-java", function=function, steps=steps, expect=expect, mode="reset",
                    env=env, timeout_s=None, sniff=False, probes=False, fmt=fmt, runtime="java")

    after_freeze = lambda: [(J, short()), (J, long_()), (J, 0.3), (J, 0.1)]  # noqa: E731  the third meets the NAT
    return [
        sc("nat-grpc-java-fine", "ledger-java-fine", after_freeze(), "hit", "fine"),
        sc("nat-grpc-java-fine-json", "ledger-java-fine-json", after_freeze(), "hit", "fine", fmt="json"),
        sc("nat-grpc-java-fine-keepalive", "ledger-java-fine-keepalive", after_freeze(), "hit", "fine", keepalive=True),
        sc("nat-grpc-java-info", "ledger-java-info", after_freeze(), "hit", "none"),
        sc("nat-negative-short-freeze-grpc-java-fine", "ledger-java-short-freeze", [(J, short()), (J, short()), (J, short()), (J, 0.1)],
           "none", "fine"),
    ]


def nat_matrix(rec, idle_s, scenarios_of=None):
    rng = random.Random(rec.rng.getrandbits(64))
    scenarios = (scenarios_of or nat_matrix_scenarios)(rng, idle_s)
    for s in scenarios:  # request IDs drawn here, in order, not in the threads
        s["rids"] = [rec.rid() for _ in s["steps"]]
    grpc_server = lambda_sim.EchoServer(tempfile.mkdtemp(dir=rec.work))
    s3 = network.SlowS3()
    runs = []

    def run(s):
        node = s["library"] in ("grpc-js", "grpc-java")
        proxy = network.IdleNatProxy(grpc_server.port if node else s3.port, idle_s, mode=s["mode"], watch_segments=s["sniff"])
        env = dict(s["env"])
        if node:
            env["THAWTRACE_TARGET"] = "127.0.0.1:%d" % proxy.port
        else:
            env["THAWTRACE_S3_ENDPOINT"] = "http://127.0.0.1:%d" % proxy.port
        runtime = s.get("runtime", "node" if node else "python")
        e = rec.environment(s["setting"], s["function"], runtime, fmt=s["fmt"], env=env,
                            timeout_s=s["timeout_s"], setting=s["setting"], library=s["library"])
        try:
            for (event, gap), rid in zip(s["steps"], s["rids"]):
                rec.invoke(e, rid, event, gap)
        finally:
            e.close()
            proxy.close()
        runs.append((s, e, proxy))

    try:
        run_all([(run, (s,)) for s in scenarios])
    finally:
        grpc_server.stop()
        s3.close()
    problems = []
    for s, env, proxy in sorted(runs, key=lambda r: r[0]["setting"]):
        log = proxy.events()
        hits = nat_reset_truth(rec, s, env, proxy)
        probes = sum(1 for _, _, w in log if w == "keepalive_probe")
        rec.annotate(env, nat_mode=s["mode"], nat_idle_s=idle_s, proxy_events=dict(sorted(Counter(w for _, _, w in log).items())),
                     invocations=[{"request_id": r, "outcome": outcome(env, r), "nat_hit": r in hits} for r in s["rids"]])
        rec.log("matrix %-42s %s; proxy: %s%s" % (
            s["setting"], " ".join("%s:%s%s" % (r[:8], outcome(env, r), "*" if r in hits else "") for r in s["rids"]),
            ", ".join("%s x%d" % (w, sum(1 for _, _, x in log if x == w)) for w in sorted({x for _, _, x in log})),
            "" if not s["sniff"] else " (keepalive probes seen: %d)" % probes))
        if s["expect"] == "hit" and not hits:
            problems.append("%s: the NAT never reset or dropped a call (proxy log %s)" % (s["setting"], log))
        if s["expect"] == "none" and hits:
            problems.append("%s: a negative met the NAT (%s)" % (s["setting"], hits))
        if s["probes"] and not probes:
            problems.append("%s: no keepalive probe reached the proxy" % s["setting"])
    if problems:
        raise RuntimeError("the NAT matrix did not record what it meant to:\n" + "\n".join(problems))


# ---------------------------------------------------------------- NAT idle near misses (nat-near)
#
# A connection idle for most of the NAT's timeout, then reused, and the NAT
# still had its mapping: the request succeeded. Truth from the proxy alone:
# each flow's idle gap (its last byte either way, then the client's next
# bytes) within [NEAR_FRACTION x timeout, timeout), answered by the server
# on the same flow, owned by the invocation running when the bytes came
# (the emulator's owner timeline). botocore at DEBUG (urllib3's `Starting
# new HTTP connection` and `"GET ..." 200` lines show every use of a
# connection); the function's client is pooled across invocations.

NEAR_FRACTION = 0.75


def is_near_miss(gap, timeout_ms, fraction=NEAR_FRACTION):
    """The truth rule, on one of IdleNatProxy.idle_gaps(): the client's
    bytes after an idle of [fraction x timeout, timeout), answered by the
    server on the same flow (its mapping was still there)."""
    return gap["from_client"] and gap["answered"] and fraction * timeout_ms <= gap["idle_ms"] < timeout_ms


def nat_near_scenarios(rng, idle_s):
    # The proxy's idle is the sleep plus the time from the previous
    # response to the next request's bytes (the runtime, the thaw,
    # botocore's preparation): a few tens of ms, more on a loaded machine.
    near = lambda: round(rng.uniform(0.77, 0.88) * idle_s, 2)  # noqa: E731
    short = lambda: round(rng.uniform(0.2, 0.42) * idle_s, 2)  # noqa: E731
    long_ = lambda: round(idle_s + rng.uniform(1.5, 3.0), 2)  # noqa: E731

    def B(**kw):
        return dict({"bucket": "reports"}, **kw)

    standard = {"retries": {"mode": "standard"}}
    max1 = {"retries": {"mode": "standard", "total_max_attempts": 1}}

    def sc(setting, function, steps, expect, env, fmt="text", timeout_s=None):
        return dict(setting=setting, library="botocore", function=function, steps=steps, expect=expect, mode="reset",
                    env=env, fmt=fmt, timeout_s=timeout_s)

    return [
        # Positives: a pooled connection idle for 77-88 % of the timeout
        # (plus the overhead), then reused, after a freeze ...
        sc("nat-near-after-freeze-botocore-debug", "reports-python-near", expect="near", env=boto(standard, "DEBUG"),
           steps=[(B(), near()), (B(), near()), (B(), near()), (B(), near()), (B(), 0.1)]),
        sc("nat-near-after-freeze-botocore-debug-json", "reports-python-near-json", expect="near", env=boto(standard, "DEBUG"), fmt="json",
           steps=[(B(), near()), (B(), near()), (B(), near()), (B(), 0.1)]),
        # ... and inside one invocation, no freeze.
        sc("nat-near-in-invocation-botocore-debug", "reports-python-near-idle", expect="near", env=boto(standard, "DEBUG"), timeout_s=20,
           steps=[(B(s3_calls=3, pauses_s=[near(), near()]), 0.3), (B(s3_calls=3, pauses_s=[near(), near()]), 0.3), (B(), 0.1)]),
        # Negatives: idle well below the timeout (nothing close) ...
        sc("nat-near-negative-short-botocore-debug", "reports-python-near-short", expect="none", env=boto(standard, "DEBUG"), timeout_s=20,
           steps=[(B(), short()), (B(), short()), (B(s3_calls=2, pause_s=short()), short()), (B(), 0.1)]),
        # ... past it (the NAT resets: nat_idle_reset, not a near miss) ...
        sc("nat-near-negative-reset-botocore-debug", "reports-python-near-reset", expect="reset", env=boto(max1, "DEBUG"),
           steps=[(B(), short()), (B(), long_()), (B(), 0.3), (B(), 0.1)]),
        # ... and a new client in each invocation, so a new connection:
        # the function idles as long, but no connection does.
        sc("nat-near-negative-new-connection-botocore-debug", "reports-python-near-new-client", expect="none", env=boto(standard, "DEBUG"),
           steps=[(B(new_client=True), near()), (B(new_client=True), near()), (B(new_client=True), near()), (B(new_client=True), 0.1)]),
    ]


def nat_near(rec, idle_s):
    rng = random.Random(rec.rng.getrandbits(64))
    scenarios = nat_near_scenarios(rng, idle_s)
    for s in scenarios:  # request IDs drawn here, in order, not in the threads
        s["rids"] = [rec.rid() for _ in s["steps"]]
    s3 = network.SlowS3()
    runs = []

    def run(s):
        proxy = network.IdleNatProxy(s3.port, idle_s, mode=s["mode"])
        env = dict(s["env"], THAWTRACE_S3_ENDPOINT="http://127.0.0.1:%d" % proxy.port)
        e = rec.environment(s["setting"], s["function"], "python", fmt=s["fmt"], env=env, timeout_s=s["timeout_s"],
                            setting=s["setting"], library=s["library"])
        try:
            for (event, gap), rid in zip(s["steps"], s["rids"]):
                rec.invoke(e, rid, event, gap)
        finally:
            e.close()
            proxy.close()
        runs.append((s, e, proxy))

    try:
        run_all([(run, (s,)) for s in scenarios])
    finally:
        s3.close()
    timeout_ms = int(round(idle_s * 1000))
    problems = []
    for s, env, proxy in sorted(runs, key=lambda r: r[0]["setting"]):
        hits = nat_reset_truth(rec, s, env, proxy)
        gaps = []
        near = []
        for g in proxy.idle_gaps(min_ms=int(timeout_ms * 0.25)):
            if not g["from_client"]:
                continue  # the server spoke after a pause: a slow reply, not an idle flow
            rid = owner_at(env, g["ms"])
            where = "after_freeze" if frozen_between(env, g["ms"] - g["idle_ms"], g["ms"]) else "in_invocation"
            is_near = is_near_miss(g, timeout_ms) and rid is not None
            gaps.append({"request_id": rid, "connection": g["connection"], "idle_ms": g["idle_ms"], "where": where,
                         "answered": g["answered"], "near_miss": is_near})
            if is_near:
                near.append(rid)
                rec.truth_entry(dict(kind="nat_idle_near_miss", log_group=env.stream.group, log_stream=env.stream.name, request_id=rid,
                                     idle_ms=g["idle_ms"], nat_idle_timeout_ms=timeout_ms, margin_ms=timeout_ms - g["idle_ms"],
                                     near_fraction=NEAR_FRACTION, setting=s["setting"], library=s["library"], connection=g["connection"],
                                     where=where, outcome=outcome(env, rid)))
        log = proxy.events()
        rec.annotate(env, nat_mode=s["mode"], nat_idle_s=idle_s, nat_idle_timeout_ms=timeout_ms, near_fraction=NEAR_FRACTION,
                     proxy_events=dict(sorted(Counter(w for _, _, w in log).items())),
                     connections=sum(1 for _, _, w in log if w == "open"), idle_gaps=gaps,
                     invocations=[{"request_id": r, "outcome": outcome(env, r), "nat_hit": r in hits, "near_misses": near.count(r)} for r in s["rids"]])
        rec.log("near %-48s %d near misses (idle %s ms), %d resets, %d connections; gaps >= 25%%: %s" % (
            s["setting"], len(near), [g["idle_ms"] for g in gaps if g["near_miss"]], len(hits),
            sum(1 for _, _, w in log if w == "open"), [g["idle_ms"] for g in gaps]))
        if s["expect"] == "near" and (len(near) < 2 or hits):
            problems.append("%s: %d near misses, %d resets (gaps %s)" % (s["setting"], len(near), len(hits), gaps))
        if s["expect"] == "none" and (near or hits):
            problems.append("%s: a negative came near the NAT (%s, %s)" % (s["setting"], near, hits))
        if s["expect"] == "reset" and (not hits or near):
            problems.append("%s: no reset, or a near miss (%s, %s)" % (s["setting"], hits, near))
        if any(outcome(env, r) != "response" for r in near):
            problems.append("%s: a near miss whose invocation failed" % s["setting"])
    if problems:
        raise RuntimeError("the NAT near-miss group did not record what it meant to:\n" + "\n".join(problems))


def stall_matrix(rec, java=False):
    """Connect stalls with no connect timeout: Lambda's timeout is the only
    error line. Bursts, then a lone environment, then bursts that time out
    on something other than a connect (a slow server, a server that accepted
    and never spoke) and a healthy one, each a window apart. `java`
    (`--only stall-java`): the same waves of grpc-java environments
    (record_java.py's function, its calls' 8 s deadline beyond Lambda's
    3 s timeout) at JUL FINEST for io.grpc.ChannelLogger (connects traced),
    at FINE (frames only) and at INFO."""
    sat = network.SaturatedListener(watch=True)
    echo = lambda_sim.EchoServer(tempfile.mkdtemp(dir=rec.work))
    slow_dir = tempfile.mkdtemp(dir=rec.work)
    slow_grpc = lambda_sim.EchoServer(slow_dir, command=[sys.executable, SLOW_GRPC_SERVER, "20"])
    silent = network.SilentServer()
    s3 = network.SlowS3()
    trace = {"GRPC_TRACE": "transport,subchannel"}
    notrace = {"GRPC_TRACE": None, "GRPC_VERBOSITY": None}
    defaults = boto({})
    grpc_event = {"calls": 1, "no_deadline": True}
    bursts = []

    def burst(function, setting, library, n, port, event, extra, stalls):
        envs = []
        for i in range(n):
            env = dict(extra)
            if library in ("grpc-js", "grpc-java"):
                env["THAWTRACE_TARGET"] = "localhost:%d" % port
            else:
                env["THAWTRACE_S3_ENDPOINT"] = "http://localhost:%d" % port
            runtime = {"grpc-js": "node", "grpc-java": "java"}.get(library, "python")
            envs.append(rec.environment("%s-%d" % (function, i), function, runtime, env=env,
                                        timeout_s=STALL_FUNCTION_TIMEOUT_S, setting=setting, library=library))
        rids = [rec.rid() for _ in envs]
        try:
            run_all([(rec.invoke, (e, r, event)) for e, r in zip(envs, rids)])
        finally:
            for e in envs:
                e.close()
        bursts.append(dict(function=function, setting=setting, library=library, envs=envs, rids=rids, port=port, stalls=stalls))

    def wave(*specs):
        run_all([(burst, spec) for spec in specs])

    network.set_syn_retries(STALL_SYN_RETRIES)
    try:
        if java:
            finest, fine, info = {"THAWTRACE_JUL": "finest"}, {"THAWTRACE_JUL": "fine"}, {"THAWTRACE_JUL": "none"}
            j = {"calls": 1}
            wave(("checkout-grpc-java-finest", "stall-grpc-java-finest", "grpc-java", 3, sat.port, j, finest, True),
                 ("checkout-grpc-java-fine", "stall-grpc-java-fine", "grpc-java", 3, sat.port, j, fine, True),
                 ("checkout-grpc-java-info", "stall-grpc-java-info", "grpc-java", 3, sat.port, j, info, True))
            time.sleep(STALL_WINDOW_S + 2)
            wave(("search-grpc-java-finest", "stall-lone-grpc-java-finest", "grpc-java", 1, sat.port, j, finest, True))
            time.sleep(STALL_WINDOW_S + 2)
            wave(("profile-grpc-java-finest", "stall-negative-healthy-grpc-java-finest", "grpc-java", 3, echo.port, j, finest, False),
                 ("ledger-grpc-java-slow", "stall-negative-slow-server-grpc-java-finest", "grpc-java", 3, slow_grpc.port, j, finest, False),
                 ("ledger-grpc-java-silent", "stall-negative-accepted-no-h2-grpc-java-finest", "grpc-java", 3, silent.port, j, finest, False))
        else:
            wave(("checkout-botocore-debug", "stall-botocore-defaults-debug", "botocore", 3, sat.port, {"bucket": "checkout"}, dict(defaults, THAWTRACE_LOG_LEVEL="DEBUG"), True),
                 ("checkout-botocore-info", "stall-botocore-defaults-info", "botocore", 3, sat.port, {"bucket": "checkout"}, defaults, True),
                 ("checkout-grpc-js-trace", "stall-grpc-js-no-deadline-trace", "grpc-js", 4, sat.port, grpc_event, trace, True),
                 ("checkout-grpc-js-notrace", "stall-grpc-js-no-deadline-notrace", "grpc-js", 3, sat.port, grpc_event, notrace, True))
            time.sleep(STALL_WINDOW_S + 2)
            wave(("search-botocore-debug", "stall-lone-botocore-debug", "botocore", 1, sat.port, {"bucket": "search"}, dict(defaults, THAWTRACE_LOG_LEVEL="DEBUG"), True),
                 ("search-grpc-js-trace", "stall-lone-grpc-js-trace", "grpc-js", 1, sat.port, grpc_event, trace, True))
            time.sleep(STALL_WINDOW_S + 2)
            wave(("profile-botocore-debug", "stall-negative-healthy-botocore-debug", "botocore", 3, s3.port, {"bucket": "profile"}, dict(defaults, THAWTRACE_LOG_LEVEL="DEBUG"), False),
                 ("profile-grpc-js-trace", "stall-negative-healthy-grpc-js-trace", "grpc-js", 3, echo.port, grpc_event, trace, False),
                 ("reports-botocore-debug-slow", "stall-negative-slow-server-botocore-debug", "botocore", 3, s3.port, {"bucket": "slow-20000"}, dict(defaults, THAWTRACE_LOG_LEVEL="DEBUG"), False),
                 ("ledger-grpc-js-slow", "stall-negative-slow-server-grpc-js-trace", "grpc-js", 3, slow_grpc.port, grpc_event, trace, False),
                 ("ledger-grpc-js-silent", "stall-negative-accepted-no-h2-grpc-js-trace", "grpc-js", 3, silent.port, grpc_event, trace, False))
    finally:
        network.set_syn_retries(1)
        sat.close()
        echo.stop()
        slow_grpc.stop()
        silent.close()
        s3.close()

    # Truth: the listener's stalled connects, by the process that owned
    # them, placed in invocations by the emulator.
    stalled = sat.stalled()
    owners = {}
    for b in bursts:
        for e in b["envs"]:
            for _, what, pid in e.timeline:
                if what == "start":
                    owners[pid] = (b, e)
    unplaced = [c for c in stalled if c["pid"] not in owners]
    problems = ["stalled connects of no environment: %s" % unplaced] if unplaced else []
    slow_calls = open(os.path.join(slow_dir, "echo.port.calls")).read().splitlines() if os.path.exists(os.path.join(slow_dir, "echo.port.calls")) else []
    accepted = [x for x in silent.events() if x[2] == "accepted"]
    for b in bursts:
        hits = sorted(((c["first_ms"], e, owner_at(e, c["first_ms"]), c) for c in stalled for bb, e in [owners.get(c["pid"], (None, None))] if bb is b),
                      key=lambda h: h[0])
        window = [h for h in hits if hits and h[0] <= hits[0][0] + STALL_WINDOW_S * 1000]
        envs = {id(h[1]): h[1] for h in window}
        rids = sorted({h[2] for h in window if h[2]})
        outcomes = [outcome(e, r) for e, r in zip(b["envs"], b["rids"])]
        for e, r in zip(b["envs"], b["rids"]):
            rec.annotate(e, destination="localhost:%d" % b["port"], function_timeout_s=STALL_FUNCTION_TIMEOUT_S,
                         stalled_connects=sum(1 for h in hits if h[1] is e),
                         invocations=[{"request_id": r, "outcome": outcome(e, r)}])
        if len(envs) >= STALL_MIN_ENVS:
            rec.expect("connect_stall", list(envs.values()), rids, setting=b["setting"], library=b["library"],
                       destination="localhost:%d" % b["port"], stalled_connects=len(window),
                       stalled_ms=max(c["last_ms"] - c["first_ms"] for _, _, _, c in window),
                       outcomes={r: outcome(e, r) for e, r in zip(b["envs"], b["rids"]) if r in rids})
        rec.log("matrix %-42s %d of %d environments stalled (%d connects in SYN-SENT); outcomes %s" % (
            b["setting"], len(envs), len(b["envs"]), len(hits), ",".join(outcomes)))
        if b["stalls"] and len(envs) != len(b["envs"]):
            problems.append("%s: %d of %d environments stalled" % (b["setting"], len(envs), len(b["envs"])))
        if not b["stalls"] and hits:
            problems.append("%s: stalled connects in a negative" % b["setting"])
        if b["stalls"] and set(outcomes) != {"timeout"}:
            problems.append("%s: not every stalled invocation ended at Lambda's timeout: %s" % (b["setting"], outcomes))
    rec.log("matrix stall negatives: slow gRPC server took %d calls, silent server accepted %d connections, SlowS3 %d slow requests" % (
        len(slow_calls), len(accepted), sum(1 for r in s3.requests if r[2].startswith("slow-"))))
    if len(slow_calls) < 3 or len(accepted) < 3:
        problems.append("the slow and silent servers did not take every burst's calls")
    if problems:
        raise RuntimeError("the stall matrix did not record what it meant to:\n" + "\n".join(problems))


# ---------------------------------------------------------------- main


# ------------------------------------------------------- connect_slow (--only connect-slow)

# The scanner's threshold for a slow connect (`--connect-slow`): one lost
# SYN, Linux's initial retransmission timeout.
CONNECT_SLOW_MS = 1000


# What each library's connect-slow environments run: (runtime, function
# name, the setting that traces connects, its environment, the event).
CONNECT_SLOW_LIBRARIES = {
    # grpc-js's `subchannel` and `transport` tracers.
    "grpc-js": ("node", "orders-connect", "grpc-js-trace", {"GRPC_TRACE": "transport,subchannel"},
                {"calls": 1, "deadline_ms": 12000}),
    # grpc-java's channel trace (io.grpc.ChannelLogger at FINEST); the
    # function's calls have an 8 s deadline.
    "grpc-java": ("java", "orders-connect-java", "grpc-java-finest", {"THAWTRACE_JUL": "finest"}, {"calls": 1}),
}


def connect_slow_family(rec, library="grpc-js"):
    """Connects that lose SYNs and still succeed: `library`'s environments
    (connects traced: CONNECT_SLOW_LIBRARIES) whose first connect meets a
    listener that drops SYNs until it opens, a second after the last of
    them began, and goes through at the next retransmission; beside them,
    healthy environments connecting straight to the server (negatives)."""
    runtime, function, traced, trace, event = CONNECT_SLOW_LIBRARIES[library]
    setting = "connect-slow-" + traced
    echo = lambda_sim.EchoServer(tempfile.mkdtemp(dir=rec.work))
    late = network.LateAcceptListener(echo.port)
    slow, healthy = [], []
    for i in range(3):
        env = dict(trace, THAWTRACE_TARGET="127.0.0.1:%d" % late.port)
        slow.append(rec.environment("orders-slow-%d" % i, function, runtime, env=env, timeout_s=15,
                                    setting=setting, library=library))
    for i in range(2):
        env = dict(trace, THAWTRACE_TARGET="127.0.0.1:%d" % echo.port)
        healthy.append(rec.environment("orders-healthy-%d" % i, function, runtime, env=env, timeout_s=15,
                                       setting="connect-slow-negative-healthy-" + traced, library=library))
    envs = slow + healthy
    rids = [rec.rid() for _ in envs]

    def opener():
        # Opens once every slow environment's connect is in SYN-SENT and
        # has lost its first SYN (a second), before the second is lost.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len({c["pid"] for c in late.stalled()}) < len(slow):
            time.sleep(0.05)
        newest = max((c["first_ms"] for c in late.stalled()), default=network.now_ms())
        time.sleep(max(0.0, (newest + 1300 - network.now_ms()) / 1000))
        late.open()

    network.set_syn_retries(STALL_SYN_RETRIES)
    try:
        run_all([(rec.invoke, (e, r, event)) for e, r in zip(envs, rids)] + [(opener, ())])
        # A second invocation each: the connection is reused, no connect.
        run_all([(rec.invoke, (e, rec.rid(), event)) for e in envs])
    finally:
        network.set_syn_retries(1)
        for e in envs:
            e.close()
        late.close()
        echo.stop()
    owners = {pid: e for e in envs for _, what, pid in e.timeline if what == "start"}
    problems = []
    seen = set()
    for c in sorted(late.stalled(), key=lambda c: c["first_ms"]):
        env = owners.get(c["pid"])
        if env is None or env not in slow:
            problems.append("a slow connect of no slow environment: %s" % c)
            continue
        rid = owner_at(env, c["first_ms"])
        # At least from the end of the first poll that showed it in
        # SYN-SENT to the start of the last; at most from the start of the
        # poll before to the end of the first that no longer did.
        took = c["last_ms"] - c["first_ms"]
        if c["after_ms"] is None or c["before_ms"] is None:
            problems.append("a slow connect's span is not bracketed by polls: %s" % c)
            continue
        at_most = c["after_ms"] - c["before_ms"]
        if at_most < took:
            problems.append("a slow connect's bounds are inverted: %s" % c)
            continue
        seen.add(id(env))
        rec.expect("connect_slow", [env], [rid], destination="127.0.0.1:%d" % late.port,
                   syn_sent_ms=[took, at_most], setting=setting, library=library)
        rec.log("connect-slow %s: SYN-SENT %d ms (opened at +%d ms)" % (env.stream.name[-8:], took, late.opened_ms - c["first_ms"]))
        if took < CONNECT_SLOW_MS:
            problems.append("a connect through the late listener took only %d ms" % took)
    if len(seen) != len(slow):
        problems.append("%d of %d slow environments connected through the late listener" % (len(seen), len(slow)))
    for e, r in zip(envs, rids):
        if outcome(e, r) != "response":
            problems.append("%s: invocation %s did not succeed: %s" % (e.stream.name, r, outcome(e, r)))
    if problems:
        raise RuntimeError("the connect-slow family did not record what it meant to:\n" + "\n".join(problems))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nat-idle-s", type=float, default=6.0, help="the proxy's idle timeout, standing in for 350 s")
    ap.add_argument("--only", action="append", choices=["nat", "stall", "duplicate", "nat-matrix", "nat-near", "stall-matrix", "connect-slow", "nat-java", "stall-java", "connect-slow-java", "nat-go", "stall-go"], help="record only this family")
    ap.add_argument("--matrix", action="store_true",
                    help="also record the settings matrix (nat-matrix, stall-matrix; nat-near with --nat-near): NAT drops, idle inside an invocation, "
                         "botocore retries and log levels, TCP keepalive, (NAT idle near misses,) connect stalls with no connect timeout, and their negatives")
    ap.add_argument("--nat-near", action="store_true",
                    help="with --matrix, also the nat-near group (NAT idle near misses; truth nat_idle_near_miss, scan-args --nat-near-miss 75%%). "
                         "Opt-in until thawtrace takes --nat-near-miss: the fresh matrix recording of collector/tests/neighbours.rs "
                         "wants exactly its three kinds in the truth")
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

    started = time.monotonic()
    rec = Recording(random.Random(args.seed), log)
    families = args.only or ["nat", "stall", "duplicate"]
    if args.matrix and not args.only:
        families += ["nat-matrix", "stall-matrix"] + (["nat-near"] if args.nat_near else [])
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
    if "nat-matrix" in families:
        threads.append(threading.Thread(target=run, args=("nat-matrix", nat_matrix, args.nat_idle_s)))
    if "nat-near" in families:
        threads.append(threading.Thread(target=run, args=("nat-near", nat_near, args.nat_idle_s)))
    if "nat-java" in families:
        threads.append(threading.Thread(target=run, args=("nat-java", nat_matrix, args.nat_idle_s, nat_java_scenarios)))
    if "stall-go" in families:
        threads.append(threading.Thread(target=run, args=("stall-go", stall_go_family)))
    if "nat-go" in families:
        threads.append(threading.Thread(target=run, args=("nat-go", nat_go_family, args.nat_idle_s)))
    if "stall" in families:
        threads.append(threading.Thread(target=run, args=("stall", stall_family)))
    if "stall-matrix" in families:
        # After the stall family, never beside it: it raises tcp_syn_retries.
        previous = threads[-1] if "stall" in families else None

        def after_stalls(rec):
            if previous is not None:
                previous.join(timeout=600)
            stall_matrix(rec)

        threads.append(threading.Thread(target=run, args=("stall-matrix", after_stalls)))
    if "stall-java" in families:
        # Alone (--only stall-java): it raises tcp_syn_retries.
        threads.append(threading.Thread(target=run, args=("stall-java", stall_matrix, True)))
    if "duplicate" in families:
        threads.append(threading.Thread(target=run, args=("duplicate", duplicate_family)))
    if "connect-slow" in families:
        # Alone (--only connect-slow): it raises tcp_syn_retries.
        threads.append(threading.Thread(target=run, args=("connect-slow", connect_slow_family)))
    if "connect-slow-java" in families:
        # Alone (--only connect-slow-java): it raises tcp_syn_retries.
        threads.append(threading.Thread(target=run, args=("connect-slow-java", connect_slow_family, "grpc-java")))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    if any(t.is_alive() for t in threads):
        errors.append("a family was still running after 600 s")
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
        doc = {"seed": args.seed}
        if "nat-near" in families:
            # What the scanner's threshold is checked against.
            doc.update(command=["tests/recorders/record_network.py"] + [a for a in sys.argv[1:] if a != "--in-namespace"],
                       nat_idle_timeout_ms=int(round(args.nat_idle_s * 1000)), nat_near_miss_fraction=NEAR_FRACTION)
        doc["findings"] = rec.truth
        json.dump(doc, f, indent=1)
    with open(os.path.join(args.out, "environments.json"), "w") as f:
        json.dump(rec.meta, f, indent=1)
    scan_args = [
        "--nat-idle-timeout", "%gs" % args.nat_idle_s,
        "--connect-stall-window", "%ds" % STALL_WINDOW_S,
        "--connect-stall-min-envs", str(STALL_MIN_ENVS),
        "--idempotency-key", "messageId",
        "--idempotency-key", "detail.orderId",
    ]
    if "nat-near" in families:
        scan_args += ["--nat-near-miss", "%g%%" % (NEAR_FRACTION * 100)]
    if "connect-slow" in families or "connect-slow-java" in families:
        scan_args += ["--connect-slow", "%dms" % CONNECT_SLOW_MS]
    with open(os.path.join(args.out, "scan-args.json"), "w") as f:
        json.dump(scan_args, f)
    kinds = {}
    for t in rec.truth:
        kinds[t["kind"]] = kinds.get(t["kind"], 0) + 1
    log("recorded %d events, expected findings: %s; wall time %.0f s" % (len(events), kinds, time.monotonic() - started))


if __name__ == "__main__":
    main()
