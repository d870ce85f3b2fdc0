#!/usr/bin/env python3
"""Record real gRPC logs from Lambda's other execution modes.

    python3 tests/recorders/record_modes.py --out tests/fixtures/recorded-modes --seed 17

(with THAWTRACE_PYTHON or this script run by tests/.deps/venv/bin/python,
after `bash tests/setup.sh`). Environments, all at once, each with its own
echo server (grpcio) behind its own delaying HTTP/2 proxy:

- Lambda Managed Instances (mode "managed-instances"): several invocations at
  once in one environment, never frozen, JSON logs, the MI platform records
  (platform.initStart with initializationType "lambda-managed-instances",
  platform.start and platform.report per invocation, no runtimeDone, no
  END). Node.js: real @grpc/grpc-js under runtime.js's multi-concurrency mode
  (a lookalike of aws-lambda-ric 4.x, which needs Node >= 22); Python: real
  grpcio under AWS's own awslambdaric (PyPI), which forks
  AWS_LAMBDA_MAX_CONCURRENCY worker processes writing to one stream.
  Scenarios: concurrent bursts (nothing fails), idle gaps longer than the
  keepalive interval (nothing is frozen), a genuine keepalive timeout with
  several invocations' calls on the shared connection and another
  invocation's report between the ping and the teardown, an event-loop stall
  (one invocation spins the CPU while a ping is in flight), and a stall with
  no ping in flight.
- SnapStart (mode "snapstart"): Python under awslambdaric with
  AWS_LAMBDA_INITIALIZATION_TYPE=snap-start; INIT (one call at module load
  opens a connection, or not), /runtime/restore/next, the snapshot (SIGSTOP),
  the restore: the proxy drops every flow that predates it ("reset": a TCP
  reset at the client's next bytes; "blackhole": nothing ever comes back),
  RESTORE_START / platform.restoreStart, SIGCONT, after-restore hooks,
  RESTORE_REPORT / platform.restoreReport, then invocations, frozen between
  them. The INIT lines go to the snapshot's own log stream.
- SnapStart, Java (--java): grpc-java 1.41 (Netty, Debian's packages) in
  java/SnapFunction.java, whose main plays the Java runtime client with
  CRaC's hooks (a lookalike of org.crac: java/org/crac), the same drops and
  negatives, java.util.logging at FINE for io.grpc.netty ("fine") or the
  JDK's default ("info"), text and JSON.
- One classic environment (Node.js text, frozen between invocations) as a
  control, recorded by lambda_sim.run_environment as record.py does.

Writes, in --out: events.jsonl ({id, timestamp, message, logStream,
logGroup}, all streams by time), environments.json, truth.json (findings
from the harness's own knowledge: the proxy's frames, the emulator's
timeline, the functions' responses; never from the log lines),
owners.jsonl ({id, owner, in_flight}), observations.json (what the truth was
derived from).

Truth kinds:
  keepalive_timeout (managed-instances): {kind, log_group, log_stream,
      failed_request_ids, connection_opened_by, at_ms, connection, ...}
  snapstart_stale_connection: {kind, log_group, log_stream, request_id,
      restore_at_ms, ...}
  keepalive_freeze_timeout / keepalive_timeout (classic): as in
      harness_truth.json of record.py
"""

import argparse
import json
import os
import random
import shlex
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

import h2truth  # noqa: E402
import lambda_sim  # noqa: E402

NODE_DIR = os.path.join(ROOT, "tests", "recorders", "node")
PY_DIR = os.path.join(ROOT, "tests", "recorders", "python")
HARNESS = os.path.join(ROOT, "tests", "harness")
NODE_TRACE = {"GRPC_TRACE": "keepalive,transport,subchannel,dns_resolver,resolving_load_balancer", "GRPC_VERBOSITY": "DEBUG"}
NODE_KT = {"GRPC_TRACE": "keepalive,transport", "GRPC_VERBOSITY": "DEBUG"}
CCORE_TRACE = {"GRPC_TRACE": "http_keepalive,http2_ping,subchannel,connectivity_state", "GRPC_VERBOSITY": "debug"}
ACK_TIMEOUT_MS = 1000


def tonic_environments(rust_bin):
    """Rust (tonic, lambda_runtime, thawtrace-instrument): the instrument's
    example lambda_grpc in both modes, if it is built with their support
    (instr17: lambda_runtime's run_concurrent and SnapStart hooks)."""
    rust = [os.path.join(rust_bin, "lambda_grpc")]
    envs = [dict(name="rust-tonic-mi", mode="managed-instances", library="tonic", setting="default",
                 function="orders-rust-mi", runtime="rust", command=rust, cwd=ROOT, format="json",
                 env={}, concurrency=4, workers=4),
            # one tokio worker thread: a spinning invocation stalls every
            # timer, hyper's keepalive included
            dict(name="rust-tonic-mi@1thread", mode="managed-instances", library="tonic", setting="default",
                 function="orders-rust-mi-1thread", runtime="rust", command=rust, cwd=ROOT, format="json",
                 env={"TOKIO_WORKER_THREADS": "1"}, concurrency=4, workers=4)]
    for suffix, fmt, drop, at_init, recreate, use, snapshot_s in [
        ("text-reset-stale", "text", "reset", True, None, "use", 1.5),
        ("json-blackhole-stale", "json", "blackhole", True, None, "use", 1.5),
        ("text-reset-recreate", "text", "reset", True, "1", "use", 1.5),
        ("json-reset-lazy", "json", "reset", False, None, "use", 1.5),
    ]:
        env = {}
        if at_init:
            env["GRPC_CONNECT_AT_INIT"] = "1"
        if recreate:
            env["THAWTRACE_RECREATE_ON_RESTORE"] = recreate
        envs.append(dict(name="rust-tonic-snapstart-" + suffix, mode="snapstart", library="tonic", setting="default",
                         function="orders-rust-snap-" + suffix, runtime="rust", command=rust, cwd=ROOT, format=fmt,
                         env=env, drop=drop, use=use, snapshot_s=snapshot_s))
    return envs


def environments(py):
    node_mi = ["node", "runtime.js"]
    ric = [py, "-m", "awslambdaric", "modes_function.handler"]
    mi_node_env = {"THAWTRACE_HANDLER": "./modes_function.js"}
    envs = [
        dict(name="node-mi@keepalive,transport", mode="managed-instances", library="grpc-js", setting="keepalive,transport",
             function="orders-node-mi", runtime="node", command=node_mi, cwd=NODE_DIR, format="json",
             env=dict(NODE_KT, **mi_node_env), concurrency=8, workers=1),
        dict(name="node-mi@default", mode="managed-instances", library="grpc-js", setting="default",
             function="orders-node-mi-default", runtime="node", command=node_mi, cwd=NODE_DIR, format="json",
             env=dict(NODE_TRACE, **mi_node_env), concurrency=8, workers=1),
        # grpc-js logs nothing of its own: only the failed calls show
        dict(name="node-mi@none", mode="managed-instances", library="grpc-js", setting="none",
             function="orders-node-mi-none", runtime="node", command=node_mi, cwd=NODE_DIR, format="json",
             env=dict({"GRPC_TRACE": None, "GRPC_VERBOSITY": None}, **mi_node_env), concurrency=8, workers=1),
        dict(name="python-mi@no-http", mode="managed-instances", library="grpcio", setting="no-http",
             function="orders-python-mi", runtime="python", command=ric, cwd=PY_DIR, format="json",
             env=dict(CCORE_TRACE), concurrency=3, workers=3),
    ]
    snap = [
        # (name suffix, format, drop, connect at INIT, re-create on restore,
        #  what the invocations do, keepalive, how long the snapshot lives (s))
        ("text-reset-stale", "text", "reset", True, None, "use", True, 1.5),
        ("json-reset-stale", "json", "reset", True, None, "use", True, 1.5),
        ("text-blackhole-stale", "text", "blackhole", True, None, "use", True, 1.5),
        ("json-blackhole-stale", "json", "blackhole", True, None, "use", True, 1.5),
        ("json-reset-stale-nokeepalive", "json", "reset", True, None, "use", False, 6.5),
        # the snapshot outlives the keepalive interval: the keepalive ping
        # goes out at the restore, before the first invocation's call
        ("text-reset-stale-pingfirst", "text", "reset", True, None, "use", True, 6.5),
        ("text-blackhole-stale-pingfirst", "text", "blackhole", True, None, "use", True, 6.5),
        # negatives
        ("text-reset-recreate", "text", "reset", True, "local", "use", True, 1.5),
        ("json-blackhole-recreate", "json", "blackhole", True, "local", "use", True, 1.5),
        # re-created with the same target and options: grpcio's global
        # subchannel pool may give the new channel the stale connection
        # (whatever happens is what the truth says)
        ("json-blackhole-recreate-pooled", "json", "blackhole", True, "1", "use", True, 1.5),
        ("json-reset-lazy", "json", "reset", False, None, "use", True, 1.5),
        ("text-blackhole-unused", "text", "blackhole", True, None, "unused", True, 1.5),
    ]
    for suffix, fmt, drop, at_init, recreate, use, keepalive, snapshot_s in snap:
        env = dict(CCORE_TRACE)
        if not keepalive:
            env["THAWTRACE_KEEPALIVE"] = "0"
        if at_init:
            env["GRPC_CONNECT_AT_INIT"] = "1"
        if recreate:
            env["THAWTRACE_RECREATE_ON_RESTORE"] = recreate
        envs.append(dict(name="python-snapstart-" + suffix, mode="snapstart", library="grpcio", setting="no-http",
                         function="orders-python-snap-" + suffix, runtime="python", command=ric, cwd=PY_DIR, format=fmt,
                         env=env, drop=drop, use=use, snapshot_s=snapshot_s))
    envs.append(dict(name="node-classic-text", mode="classic", library="grpc-js", setting="default",
                     function="orders-node-classic", command=["node", "runtime.js"], cwd=NODE_DIR, format="text",
                     start="platform", env=dict(NODE_TRACE)))
    return envs


def java_environments(java):
    """Java restored from a SnapStart snapshot (--java): SnapFunction under
    its own runtime client, at JUL FINE for io.grpc.netty and at the JDK's
    default (INFO)."""
    import record_java
    envs = []
    for suffix, fmt, drop, at_init, recreate, use, snapshot_s, setting in [
        ("text-reset-stale", "text", "reset", True, None, "use", 1.5, "fine"),
        ("json-blackhole-stale", "json", "blackhole", True, None, "use", 1.5, "fine"),
        ("text-blackhole-stale", "text", "blackhole", True, None, "use", 1.5, "info"),
        ("json-reset-stale", "json", "reset", True, None, "use", 1.5, "info"),
        # the snapshot outlives the keepalive interval: the keepalive ping
        # goes out at the restore, before the first invocation's call
        ("text-blackhole-stale-pingfirst", "text", "blackhole", True, None, "use", 6.5, "fine"),
        # negatives
        ("text-reset-recreate", "text", "reset", True, "1", "use", 1.5, "fine"),
        ("json-blackhole-recreate", "json", "blackhole", True, "1", "use", 1.5, "info"),
        ("json-reset-lazy", "json", "reset", False, None, "use", 1.5, "fine"),
        ("text-blackhole-unused", "text", "blackhole", True, None, "unused", 1.5, "fine"),
    ]:
        env = {}
        if at_init:
            env["GRPC_CONNECT_AT_INIT"] = "1"
        if recreate:
            env["THAWTRACE_RECREATE_ON_RESTORE"] = recreate
        # info: the JDK's own
        command = record_java.logging_options(java, "none" if setting == "info" else setting) + ["SnapFunction"]
        envs.append(dict(name="java-snapstart-%s@%s" % (suffix, setting), mode="snapstart", library="grpc-java", setting=setting,
                         function="orders-java-snap-%s-%s" % (suffix, setting), runtime="java", command=command,
                         cwd=record_java.JAVA_DIR, format=fmt, env=env, drop=drop, use=use, snapshot_s=snapshot_s,
                         runtime_client="SnapFunction.java (the Java runtime client's SnapStart steps, CRaC lookalike)"))
    return envs


def new_rid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def order_token(rng):
    return "%08x" % rng.getrandbits(32)


# ---------------------------------------------------------------- Managed Instances


def run_mi(spec, stream, proxy, server, rng, log, timeline):
    env = lambda_sim.ManagedInstanceEnvironment(spec, stream, proxy, None, timeline)
    notes = []
    spec["_env"] = env
    env.init()
    try:
        def inv(event):
            rid = new_rid(rng)
            env.invoke(rid, dict(event, order=order_token(rng)))
            return rid

        def wait_done(rids, timeout=30):
            deadline = time.monotonic() + timeout
            for rid in rids:
                t = env.pending.get(rid)
                if t is not None:
                    t.join(max(0, deadline - time.monotonic()))

        python = spec["library"] == "grpcio"
        # (5) a concurrent burst, nothing fails
        burst = [inv({"calls": 2, "slow_ms": 150}) for _ in range(3)]
        wait_done(burst)
        # (3) an idle gap longer than the keepalive interval: pings go and
        # are answered; nothing is frozen
        gap = rng.uniform(6.0, 7.0)
        notes.append(("gap", lambda_sim.now_ms(), gap))
        time.sleep(gap)
        burst = [inv({"calls": 1}) for _ in range(3)]
        wait_done(burst)
        time.sleep(rng.uniform(0.3, 0.8))

        # (1) + (4) a genuine keepalive timeout: the server stops while
        # several invocations have calls on the shared connection(s); another
        # invocation starts and reports between the ping and the teardown
        mark = proxy.mark()
        server.pause()
        notes.append(("server-paused", lambda_sim.now_ms(), None))
        stuck = [inv({"calls": 1, "deadline_ms": 15000}) for _ in range(3)]
        hit = proxy.wait_client_ping(mark, 8, unanswered=True)
        log("genuine: ping %s" % ("seen (connection %d)" % hit[0] if hit else "NOT seen"))
        short = inv({"calls": 0})
        wait_done([short], 5)
        want = spec.get("workers", 1) if python else 1
        closed = wait_closes(proxy, mark, want, 14)
        log("genuine: %d client close(s) seen" % len(closed))
        time.sleep(0.3)
        server.resume()
        notes.append(("server-resumed", lambda_sim.now_ms(), None))
        wait_done(stuck)
        time.sleep(rng.uniform(0.5, 1.0))

        # (2) an event-loop stall with a ping in flight: slow calls of other
        # invocations in flight, one invocation spins the CPU right after a
        # client PING left
        if spec["library"] == "tonic":
            # The example spins as soon as it is invoked (no hold, no slow
            # calls): deliver it right after a client PING, two more with it.
            # tonic reconnects lazily: a call first, so that a connection
            # (and its keepalive) exists.
            wait_done([inv({"calls": 1})], 10)
            mark = proxy.mark()
            hit = proxy.wait_client_ping(mark, 7, unanswered=True)
            group = [inv({"calls": 1, "spin_ms": 2500})] + [inv({"calls": 1}) for _ in range(2)]
            log("stall: ping %s, spinner delivered" % ("seen (connection %d)" % hit[0] if hit else "NOT seen"))
            wait_done(group, 20)
            time.sleep(rng.uniform(0.5, 1.0))
        elif not python:
            slow = [inv({"calls": 1, "slow_ms": 9000, "deadline_ms": 12000}) for _ in range(2)]
            time.sleep(0.3)
            mark = proxy.mark()
            spinner = inv({"calls": 1, "spin_ms": 2500})
            env.api.wait_holding(spinner, 10)
            hit = proxy.wait_client_ping(mark, 7, unanswered=True)
            env.api.release(spinner)
            log("stall: ping %s, spinner released" % ("seen (connection %d)" % hit[0] if hit else "NOT seen"))
            wait_done([spinner] + slow, 20)
            time.sleep(rng.uniform(0.5, 1.0))
            # a stall with no ping in flight: released right after an ack
            mark = proxy.mark()
            spinner = inv({"calls": 1, "spin_ms": 2500})
            env.api.wait_holding(spinner, 10)
            hit = proxy.wait_client_ping(mark, 7)
            if hit:
                wait_ack(proxy, hit[0], hit[1]["sent"], 3)
            env.api.release(spinner)
            log("stall after an ack: released")
            wait_done([spinner], 20)
        else:
            # Python: a 6 s spin of one worker's thread, a call in flight;
            # C-core's own threads answer pings meanwhile
            spinner = inv({"calls": 1, "spin_ms": 6000})
            others = [inv({"calls": 2}) for _ in range(2)]
            wait_done([spinner] + others, 20)
        time.sleep(rng.uniform(0.3, 0.6))
        # (5) again: the environment works on
        burst = [inv({"calls": 2}) for _ in range(4)]
        wait_done(burst)
        env.wait_all()
    finally:
        spec["_notes"] = notes
        env.close()


def wait_closes(proxy, mark, n, timeout):
    """Wait until n connections that carried requests after `mark` have been
    closed by the client (or timeout); returns [(connection, close time)]."""
    deadline = time.monotonic() + timeout
    with proxy.changed:
        while True:
            out = []
            for c in proxy.connections:
                _, headers, closed = mark.get(c.n, (0, 0, False))
                t = c.client_close_at()
                if t is not None and not closed and c.counts["up"].get("HEADERS", 0) > headers:
                    out.append((c.n, t))
            left = deadline - time.monotonic()
            if len(out) >= n or left <= 0:
                return out
            proxy.changed.wait(left)


def wait_ack(proxy, conn_n, sent, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in proxy.connections:
            if c.n == conn_n:
                with c.lock:
                    for p in c.pings:
                        if p["sent"] == sent and p["ack_delivered"] is not None:
                            return True
        time.sleep(0.005)
    return False


# ---------------------------------------------------------------- SnapStart


def run_snapstart(spec, stream, init_stream, proxy, rng, log, timeline):
    env = lambda_sim.SnapStartEnvironment(spec, stream, proxy, None, timeline, init_stream=init_stream)
    spec["_env"] = env
    env.init()
    try:
        time.sleep(spec["snapshot_s"] + rng.uniform(-0.2, 0.2))  # the snapshot lives on
        spec["_restore_at"] = env.restore(spec["drop"])
        deadline_ms = 2000 if spec["drop"] == "blackhole" else 5000
        if spec["use"] == "use":
            steps = [{"calls": 1, "deadline_ms": deadline_ms}, {"calls": 1, "deadline_ms": deadline_ms}, {"calls": 2}]
        else:
            steps = [{"calls": 0}, {"calls": 0}, {"calls": 0}]
        for i, event in enumerate(steps):
            rid = new_rid(rng)
            env.invoke(rid, dict(event, order=order_token(rng)))
            env.freeze()
            time.sleep(rng.uniform(0.2, 0.4))
    finally:
        env.close()


# ---------------------------------------------------------------- classic control


def classic_script(rng):
    return [
        {"role": "work", "event": {"calls": 2}, "gap_ms": rng.randint(200, 500)},
        {"role": "race", "event": {"calls": 1}, "gap_ms": rng.randint(1500, 2500)},
        {"role": "work", "event": {"calls": 1}, "gap_ms": rng.randint(200, 500)},
        {"role": "genuine", "event": {"calls": 1}, "gap_ms": rng.randint(300, 600)},
        {"role": "work", "event": {"calls": 1}, "gap_ms": 100},
    ]


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--only", action="append", help="record only environments whose name contains this")
    ap.add_argument("--proxy-delay-ms", type=int, default=40)
    ap.add_argument("--python", default=os.environ.get("THAWTRACE_PYTHON", sys.executable),
                    help="the Python with grpcio and awslambdaric (tests/.deps/venv/bin/python)")
    ap.add_argument("--rust-bin", default=os.path.join(ROOT, "target", "debug", "examples"),
                    help="where the instrument's example lambda_grpc is built (cargo build -p thawtrace-instrument --examples); "
                         "without it the tonic environments are left out")
    ap.add_argument("--java", action="store_true",
                    help="add the Java SnapStart environments (javac and java 17, Debian's libgrpc-java: bash tests/setup.sh)")
    ap.add_argument("--retruth", action="store_true",
                    help="recompute truth.json of the recording in --out from its observations.json (after a change to the truth rules)")
    args = ap.parse_args()
    if args.retruth:
        return retruth(args.out)
    rng = random.Random(args.seed)
    envs = environments(args.python)
    exe = os.path.join(args.rust_bin, "lambda_grpc")
    tonic_ok = os.path.exists(exe) and b"snap-start" in open(exe, "rb").read()
    if tonic_ok:
        envs += tonic_environments(args.rust_bin)
    else:
        print("record_modes: no tonic environments (%s is not built with Managed Instances and SnapStart support)" % exe, file=sys.stderr)
    work = tempfile.mkdtemp(prefix="thawtrace-modes-")
    if args.java:
        sys.path.insert(0, os.path.join(ROOT, "tests", "recorders"))
        import record_java
        envs += java_environments(record_java.build(work))
    if args.only:
        envs = [e for e in envs if any(w in e["name"] for w in args.only)]
    if not envs:
        sys.exit("no environment to record")
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    lock = threading.Lock()
    errors, runs = [], []

    def log(msg):
        with lock:
            print(msg, file=sys.stderr, flush=True)

    day = time.strftime("%Y/%m/%d", time.gmtime())
    for i, spec in enumerate(envs):
        sdir = os.path.join(work, spec["name"].replace("@", "_").replace(",", "_"))
        os.makedirs(sdir)
        server_cmd = [args.python, os.path.join(HARNESS, "modes_echo_server.py")]
        server = lambda_sim.EchoServer(sdir, server_cmd)
        version = "$LATEST" if spec["mode"] == "classic" else "1"
        group = "/aws/lambda/" + spec["function"]
        stream = lambda_sim.ModesLogStream(group, "%s/[%s]%032x" % (day, version, rng.getrandbits(128)), (2 * i) * 10**6)
        init_stream = None
        if spec["mode"] == "snapstart":
            init_stream = lambda_sim.ModesLogStream(group, "%s/[%s]%032x" % (day, version, rng.getrandbits(128)), (2 * i + 1) * 10**6)
        if spec["mode"] == "classic":
            proxy = lambda_sim.H2DelayProxy(server.port, args.proxy_delay_ms)
        else:
            proxy = lambda_sim.ModesProxy(server.port, args.proxy_delay_ms)
        timeline = []
        env_rng = random.Random(rng.getrandbits(64))
        run = dict(spec=spec, stream=stream, init_stream=init_stream, proxy=proxy, server=server, timeline=timeline)
        runs.append(run)

        def go(spec=spec, stream=stream, init_stream=init_stream, proxy=proxy, server=server, env_rng=env_rng, timeline=timeline):
            say = lambda msg: log("  %s %s" % (spec["name"], msg))
            try:
                say("recording (%s)" % spec["mode"])
                if spec["mode"] == "managed-instances":
                    run_mi(spec, stream, proxy, server, env_rng, say, timeline)
                elif spec["mode"] == "snapstart":
                    run_snapstart(spec, stream, init_stream, proxy, env_rng, say, timeline)
                else:
                    cspec = dict(spec, script=classic_script(env_rng), library=lambda_sim.GrpcJs)
                    lambda_sim.run_environment(cspec, stream, proxy, server, sdir, env_rng, say, timeline)
                say("done")
            except Exception as exc:  # reported below, fails the recording
                import traceback
                errors.append("%s: %r\n%s" % (spec["name"], exc, traceback.format_exc()))
            finally:
                proxy.close()
                server.stop()

        t = threading.Thread(target=go, name=spec["name"], daemon=True)
        run["thread"] = t
        t.start()
    deadline = time.monotonic() + 300
    for run in runs:
        run["thread"].join(timeout=max(0, deadline - time.monotonic()))
        if run["thread"].is_alive():
            errors.append("%s: still running after 300 s" % run["spec"]["name"])
    if errors:
        sys.exit("recording failed:\n" + "\n".join(errors))

    all_events, truth, meta, observations = [], [], [], []
    for run in runs:
        spec, stream, proxy = run["spec"], run["stream"], run["proxy"]
        streams = [stream] + ([run["init_stream"]] if run["init_stream"] else [])
        for s in streams:
            all_events += s.events
        env = spec.get("_env")
        entry = {"name": spec["name"], "mode": spec["mode"], "library": spec["library"], "setting": spec["setting"],
                 "format": spec["format"], "log_group": stream.group, "log_stream": stream.name,
                 "env": spec["env"], "lines": len(stream.events)}
        obs = {"name": spec["name"], "log_group": stream.group, "log_stream": stream.name,
               "timeline": [{"t": t, "what": w, "detail": d} for t, w, d in run["timeline"]]}
        if spec["mode"] == "classic":
            entry.update(start=spec.get("start", "platform"), keepalive=True)
            obs["connections"] = [c.to_json() for c in proxy.connections]
        else:
            obs["connections"] = proxy.connections_json()
            obs["responses"] = env.responses()
            obs["closing"] = env.closing
            if spec["mode"] == "managed-instances":
                entry.update(concurrency=spec["concurrency"], runtime_client="runtime.js (aws-lambda-ric 4.x lookalike)" if spec["library"] == "grpc-js" else "awslambdaric 4.2.2")
                obs["notes"] = spec.get("_notes", [])
            else:
                entry.update(drop=spec["drop"], init_log_stream=run["init_stream"].name,
                             runtime_client=spec.get("runtime_client", "awslambdaric 4.2.2"),
                             connect_at_init=spec["env"].get("GRPC_CONNECT_AT_INIT") == "1",
                             recreate_on_restore=spec["env"].get("THAWTRACE_RECREATE_ON_RESTORE"),
                             uses_connection_after_restore=spec["use"] == "use",
                             keepalive=spec["env"].get("THAWTRACE_KEEPALIVE") != "0", snapshot_s=spec["snapshot_s"])
                obs.update(restore_at=spec.get("_restore_at"), drop=spec["drop"], init_log_stream=run["init_stream"].name)
                entry["restore_at_ms"] = spec.get("_restore_at")
        found = truth_of_observation(obs, spec["mode"], ACK_TIMEOUT_MS)
        truth += found
        meta.append(entry)
        observations.append(obs)
        log("  %s: %d lines, truth %s" % (spec["name"], len(stream.events), kind_counts(found)))

    # Handler lines are owned by the invocation that wrote them: the
    # function's response lists its messages, each naming its event's order.
    owner_of = {}
    for obs in observations:
        for rid, r in (obs.get("responses") or {}).items():
            for m in r.get("logged", []):
                owner_of[(obs["log_stream"], m)] = rid
    all_events.sort(key=lambda e: (e["timestamp"], e["id"]))
    with open(os.path.join(args.out, "events.jsonl"), "w") as f:
        for ev in all_events:
            f.write(json.dumps({k: v for k, v in ev.items() if not k.startswith("_")}) + "\n")
    with open(os.path.join(args.out, "owners.jsonl"), "w") as f:
        for ev in all_events:
            owner = ev["_owner"]
            msg = ev["message"]
            if msg.startswith("{"):
                try:
                    msg = json.loads(msg).get("message", msg)
                except ValueError:
                    pass
            elif "\t" in msg:
                msg = msg.rsplit("\t", 1)[1]
            owner = owner_of.get((ev["logStream"], msg), owner)
            f.write(json.dumps({"id": ev["id"], "owner": owner, "in_flight": ev.get("_in_flight")}) + "\n")
    command = "tests/.deps/venv/bin/python tests/recorders/record_modes.py --out %s --seed %d" % (shlex.quote(os.path.relpath(args.out, ROOT)), args.seed)
    if tonic_ok:
        command += " --rust-bin %s" % shlex.quote(args.rust_bin)
    if args.java:
        command += " --java"
    for only in args.only or []:
        command += " --only %s" % shlex.quote(only)
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump({"seed": args.seed, "command": command, "source": "harness (proxy frames, emulator timeline, function responses)",
                   "findings": truth}, f, indent=1)
    with open(os.path.join(args.out, "environments.json"), "w") as f:
        json.dump(meta, f, indent=1)
    with open(os.path.join(args.out, "observations.json"), "w") as f:
        json.dump({"seed": args.seed, "proxy_delay_ms": args.proxy_delay_ms, "ack_timeout_ms": ACK_TIMEOUT_MS,
                   "environments": observations}, f, indent=1)
    log("recorded %d events in %.1f s; truth: %s" % (len(all_events), time.monotonic() - started, kind_counts(truth)))


def truth_of_observation(obs, mode, ack_timeout_ms):
    group, stream = obs["log_group"], obs["log_stream"]
    if mode == "managed-instances":
        return h2truth.managed_instances_truth(obs, ack_timeout_ms, group, stream)
    if mode == "snapstart":
        return h2truth.snapstart_truth(obs, group, stream)
    tl = h2truth.Timeline([(e["t"], e["what"], e["detail"]) for e in obs["timeline"]])
    return h2truth.harness_truth(obs["connections"], tl, ack_timeout_ms, group, stream)[0]


def retruth(out):
    envs = {e["name"]: e for e in json.load(open(os.path.join(out, "environments.json")))}
    obs = json.load(open(os.path.join(out, "observations.json")))
    truth = []
    for o in obs["environments"]:
        truth += truth_of_observation(o, envs[o["name"]]["mode"], obs["ack_timeout_ms"])
    path = os.path.join(out, "truth.json")
    old = json.load(open(path))
    old["findings"] = truth
    with open(path, "w") as f:
        json.dump(old, f, indent=1)
    print("truth: %s" % kind_counts(truth), file=sys.stderr)


def kind_counts(findings):
    kinds = {}
    for t in findings:
        kinds[t["kind"]] = kinds.get(t["kind"], 0) + 1
    return kinds


if __name__ == "__main__":
    main()
