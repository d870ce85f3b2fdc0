#!/usr/bin/env python3
"""Record real gRPC keepalive logs from really frozen Lambda-like environments.

    python3 tests/recorders/record.py --out tests/fixtures/recorded --seed 1

Runs several execution environments at once (each a real function process:
Node.js with @grpc/grpc-js, Python with grpcio, Rust with tonic and
thawtrace-instrument), each with its own gRPC echo server (grpcio, or tonic
for Rust) behind a delaying proxy, and writes:

    events.jsonl   every log event, all streams interleaved by time, as
                   {id, timestamp, message, logStream, logGroup}
    truth.json     the findings the recorder expects, from its own knowledge
                   of which invocation was running when each line was written
                   and the libraries' log lines
    harness_truth.json  the keepalive timeouts the harness itself saw, from
                   the HTTP/2 frames its proxy carried and its own timeline
                   of owners, freezes and thaws, whatever the libraries log
                   (h2truth.harness_truth)
    harness_observations.json  those frames and timelines, per environment
    harness_near_misses.json  the keepalive near misses in them (pings in
                   flight at a freeze that survived it, with their margins;
                   h2truth.near_miss_truth)
    environments.json  what each environment was (library, trace setting
                   and the variables it ran with, format, ordering)

    python3 tests/recorders/record.py --out /tmp/matrix --seed 1 --matrix

records instead the Python (grpcio) and Node.js (grpc-js) text functions once
per trace setting users choose (SETTINGS), each an environment named
<base>@<setting> with a log group of its own, and a keepalive-off function
per library; the scenarios are timed by what the proxy sees on the wire, so
they are the same whatever a setting prints.

Needs: `bash tests/setup.sh` (npm and pip packages) and the instrument's
examples built (`cargo build -p thawtrace-instrument --examples`).
"""

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

import h2truth  # noqa: E402
import lambda_sim  # noqa: E402

NODE_DIR = os.path.join(ROOT, "tests", "recorders", "node")
PY_DIR = os.path.join(ROOT, "tests", "recorders", "python")
NODE_TRACE = {"GRPC_TRACE": "keepalive,transport,subchannel,dns_resolver,resolving_load_balancer", "GRPC_VERBOSITY": "DEBUG"}
CCORE_TRACE = {"GRPC_TRACE": "http_keepalive,http2_ping,http", "GRPC_VERBOSITY": "debug"}

# The trace settings users choose, per library: the environment variables a
# function runs with (None: unset). `--matrix` records each; the first is the
# library's default in an ordinary recording.
SETTINGS = {
    "grpc-js": {
        "default": dict(NODE_TRACE),
        "keepalive": {"GRPC_TRACE": "keepalive", "GRPC_VERBOSITY": "DEBUG"},
        "transport": {"GRPC_TRACE": "transport,subchannel", "GRPC_VERBOSITY": "DEBUG"},
        # Nothing set: grpc-js logs errors only.
        "none": {"GRPC_TRACE": None, "GRPC_VERBOSITY": None},
    },
    "grpcio": {
        "http": dict(CCORE_TRACE),
        "no-http": {"GRPC_TRACE": "http_keepalive,http2_ping,subchannel,connectivity_state", "GRPC_VERBOSITY": "debug"},
        "all": {"GRPC_TRACE": "all", "GRPC_VERBOSITY": "debug"},
    },
}
# Log group (function name) suffixes, so that each setting is its own log group.
SETTING_SUFFIX = {"default": "", "http": "", "no-http": "-nohttp"}


def script(rng, keepalive=True):
    """A seeded sequence of invocations and the freezes after them."""
    steps = [{"role": "work", "event": {"calls": 2}, "gap_ms": rng.randint(200, 600)}]
    blocks = [
        # A ping in flight at the freeze, a freeze longer than the ack timeout.
        [{"role": "race", "event": {"calls": 1}, "gap_ms": rng.randint(1500, 4000)},
         {"role": "work", "event": {"calls": 2}, "gap_ms": rng.randint(200, 800)}],
        # A ping in flight, but a freeze shorter than the remaining timeout.
        [{"role": "race", "event": {"calls": 1}, "gap_ms": rng.randint(150, 400)},
         {"role": "work", "event": {"calls": 1}, "gap_ms": rng.randint(200, 600)}],
        # The server stops answering inside an invocation: a genuine timeout.
        [{"role": "genuine", "event": {"calls": 1}, "gap_ms": rng.randint(300, 800)},
         {"role": "work", "event": {"calls": 1}, "gap_ms": rng.randint(200, 600)}],
        # A freeze longer than the keepalive interval: the ping is sent at the
        # thaw; a short invocation is frozen again with it in flight.
        [{"role": "work", "event": {"calls": 1}, "gap_ms": rng.randint(5600, 7000)},
         {"role": "work", "event": {"calls": 0}, "gap_ms": rng.randint(1500, 3000)},
         {"role": "work", "event": {"calls": 1}, "gap_ms": rng.randint(200, 600)}],
        [{"role": "race", "event": {"calls": 2}, "gap_ms": rng.randint(1500, 3000)},
         {"role": "work", "event": {"calls": 1}, "gap_ms": rng.randint(200, 600)}],
    ]
    if not keepalive:
        blocks = [[{"role": "work", "event": {"calls": 1}, "gap_ms": rng.choice([300, 1500, 6000])}] for _ in range(5)]
    rng.shuffle(blocks)
    middle = [step for block in blocks for step in block]
    steps += middle
    steps.append({"role": "work", "event": {"calls": 2}, "gap_ms": 100})
    return steps


def environments(rng, which, rust_bin):
    node = ["node", "runtime.js"]
    py = [sys.executable, "runtime.py"]
    rust = [os.path.join(rust_bin, "lambda_grpc")]
    tonic_server = [os.path.join(rust_bin, "echo_server")]
    envs = [
        dict(name="node-text", library="grpc-js", function="orders-node", command=node, cwd=NODE_DIR, format="text", start="platform", env=dict(NODE_TRACE)),
        dict(name="node-json-late-start", library="grpc-js", function="orders-node-json", command=node, cwd=NODE_DIR, format="json", start="function", env=dict(NODE_TRACE)),
        dict(name="node24-async-ids", library="grpc-js", function="orders-node24", command=node, cwd=NODE_DIR, format="text", start="platform", env=dict(NODE_TRACE, THAWTRACE_REQUEST_ID_MODE="async")),
        dict(name="node-keepalive-off", library="grpc-js", function="orders-node-nokeepalive", command=node, cwd=NODE_DIR, format="text", start="platform", env=dict(NODE_TRACE, THAWTRACE_KEEPALIVE="0"), keepalive=False),
        dict(name="node-grpc-js-1.8", library="grpc-js", function="orders-node-old", command=node, cwd=NODE_DIR, format="text", start="function", env=dict(NODE_TRACE, THAWTRACE_GRPC_JS="grpc-js-1-8")),
        dict(name="python-text", library="grpcio", function="orders-python", command=py, cwd=PY_DIR, format="text", start="platform", env=dict(CCORE_TRACE)),
        dict(name="python-json-late-start", library="grpcio", function="orders-python-json", command=py, cwd=PY_DIR, format="json", start="function", env=dict(CCORE_TRACE)),
        dict(name="rust-tonic-text", library="tonic", function="orders-rust", command=rust, cwd=ROOT, format="text", start="platform", server=tonic_server, hold="response", env={}),
        dict(name="rust-tonic-json-late-start", library="tonic", function="orders-rust-json", command=rust, cwd=ROOT, format="json", start="function", server=tonic_server, hold="response", env={}),
        dict(name="rust-tonic-keepalive-off", library="tonic", function="orders-rust-nokeepalive", command=rust, cwd=ROOT, format="text", start="platform", server=tonic_server, hold="response", env={"GRPC_KEEPALIVE": "off"}, keepalive=False),
    ]
    if which:
        envs = [e for e in envs if any(w in e["name"] for w in which)]
    return finish(rng, envs)


def finish(rng, envs):
    for e in envs:
        keepalive = e.pop("keepalive", True)
        e["keepalive"] = keepalive
        e["script"] = script(rng, keepalive)
        # The ack timeout the function's pings run with (function.py,
        # function.js, lambda_grpc.rs: 1 s); without keepalive no ping has one.
        e.setdefault("ack_timeout_ms", 1000 if keepalive else None)
    return envs


def matrix_environments(rng, which):
    """--matrix: the Python (grpcio) and Node.js (grpc-js) text functions once
    per trace setting, and a keepalive-off function per library, each named
    <base>@<setting> with its own log group."""
    node = ["node", "runtime.js"]
    py = [sys.executable, "runtime.py"]
    bases = [
        dict(base="python-text", library="grpcio", function="orders-python", command=py, cwd=PY_DIR),
        dict(base="node-text", library="grpc-js", function="orders-node", command=node, cwd=NODE_DIR),
    ]
    envs = []
    for b in bases:
        settings = SETTINGS[b["library"]]
        for setting, trace in settings.items():
            envs.append(dict(
                name="%s@%s" % (b["base"], setting), library=b["library"], setting=setting,
                function=b["function"] + SETTING_SUFFIX.get(setting, "-" + setting),
                command=b["command"], cwd=b["cwd"], format="text", start="platform", env=dict(trace),
            ))
        # The negative: keepalive off, under the library's default setting.
        default = next(iter(settings))
        envs.append(dict(
            name="%s-keepalive-off@%s" % (b["base"].split("-")[0], default), library=b["library"], setting=default,
            function=b["function"] + "-nokeepalive", command=b["command"], cwd=b["cwd"], format="text", start="platform",
            env=dict(settings[default], THAWTRACE_KEEPALIVE="0"), keepalive=False,
        ))
    if which:
        envs = [e for e in envs if any(w in e["name"] for w in which)]
    return finish(rng, envs)


def setting_of(library, env):
    """The name of the trace setting `env` sets for `library` (SETTINGS),
    else GRPC_TRACE=<its value>; tonic has only its default."""
    known = SETTINGS.get(library)
    if not known:
        return "default"
    for name, trace in known.items():
        if all(env.get(k) == v for k, v in trace.items()):
            return name
    return "GRPC_TRACE=%s" % env.get("GRPC_TRACE")


def run_environments(envs, work, rng, proxy_delay_ms, log, limit_s=600):
    """Runs every environment of `envs` at once, each behind its own echo
    server (`spec["server"]`, or grpcio's) and delaying proxy, frozen
    between invocations; returns (spec, stream, proxy, timeline) per
    environment. Exits naming each environment that failed or ran past
    `limit_s` (record_go.py and record_java.py run theirs through it too)."""
    streams, threads, errors = [], [], []
    for i, spec in enumerate(envs):
        sdir = os.path.join(work, spec["name"])
        os.makedirs(sdir)
        server = lambda_sim.EchoServer(sdir, spec.get("server"))
        proxy = lambda_sim.H2DelayProxy(server.port, proxy_delay_ms)
        day = time.strftime("%Y/%m/%d", time.gmtime())
        stream = lambda_sim.LogStream("/aws/lambda/" + spec["function"], "%s/[$LATEST]%032x" % (day, rng.getrandbits(128)), i * 10**6)
        timeline = []
        streams.append((spec, stream, proxy, timeline))
        env_rng = random.Random(rng.getrandbits(64))

        def run(spec=spec, stream=stream, server=server, proxy=proxy, sdir=sdir, env_rng=env_rng, timeline=timeline):
            try:
                log("%s: %d invocations" % (spec["name"], len(spec["script"])))
                lambda_sim.run_environment(spec, stream, proxy, server, sdir, env_rng,
                                           lambda msg: log("  %s %s" % (spec["name"], msg.strip())), timeline)
            except Exception as exc:  # reported below, fails the recording
                errors.append("%s: %r" % (spec["name"], exc))
            finally:
                proxy.close()
                server.stop()

        t = threading.Thread(target=run, name=spec["name"], daemon=True)
        t.start()
        threads.append(t)
    deadline = time.monotonic() + limit_s
    for t in threads:
        t.join(timeout=max(0, deadline - time.monotonic()))
        if t.is_alive():
            errors.append("%s: still running after %d s" % (t.name, limit_s))
    if errors:
        sys.exit("recording failed:\n" + "\n".join(errors))
    return streams


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--retruth", action="store_true",
                    help="recompute truth.json, and from harness_observations.json harness_truth.json and "
                         "harness_near_misses.json, of the recording in --out (after a change to the truth rules)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", action="append", help="record only environments whose name contains this")
    ap.add_argument("--matrix", action="store_true",
                    help="record the Python (grpcio) and Node.js (grpc-js) functions once per trace setting users choose "
                         "(environments <base>@<setting>, log groups per setting) and a keepalive-off function per library")
    ap.add_argument("--proxy-delay-ms", type=int, default=40)
    ap.add_argument("--grpc-trace", action="append", default=[], metavar="LIBRARY=TRACERS",
                    help="the GRPC_TRACE a library's functions run with (grpc-js=keepalive, grpcio=http_keepalive,http2_ping; empty for none)")
    ap.add_argument("--rust-bin", default=os.path.join(ROOT, "target", "debug", "examples"),
                    help="where the instrument's examples lambda_grpc and echo_server are built")
    args = ap.parse_args()
    if args.retruth:
        return retruth(args.out)
    rng = random.Random(args.seed)
    if args.matrix:
        if args.grpc_trace:
            sys.exit("--matrix records every trace setting; --grpc-trace does not go with it")
        envs = matrix_environments(rng, args.only)
    else:
        envs = environments(rng, args.only, args.rust_bin)
    if not envs:
        sys.exit("no environment to record")
    for setting in args.grpc_trace:
        library, _, tracers = setting.partition("=")
        for e in envs:
            if e["library"] == library:
                e["env"]["GRPC_TRACE"] = tracers
    for e in envs:
        e.setdefault("setting", setting_of(e["library"], e["env"]))
    for e in envs:
        for exe in [e["command"][0]] + e.get("server", [])[:1]:
            if e["library"] == "tonic" and not os.path.exists(exe):
                sys.exit("%s is not built: cargo build -p thawtrace-instrument --examples (or pass --rust-bin)" % exe)
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="thawtrace-rec-")
    libs = {"grpc-js": lambda_sim.GrpcJs, "grpcio": lambda_sim.CCore, "tonic": lambda_sim.Instrument}
    lock = threading.Lock()

    def log(msg):
        with lock:
            print(msg, file=sys.stderr, flush=True)

    for spec in envs:
        spec["library"] = libs[spec["library"]]
    streams = run_environments(envs, work, rng, args.proxy_delay_ms, log)

    all_events, truth, meta, observations = [], [], [], []
    for spec, stream, proxy, timeline in streams:
        truth += lambda_sim.truth_for(stream.events, spec["library"])
        all_events += stream.events
        meta.append({"name": spec["name"], "library": spec["library"].name, "setting": spec["setting"],
                     # The variables the function ran with beyond the Lambda ones (null: unset).
                     "env": spec["env"], "keepalive": spec["keepalive"],
                     "log_group": stream.group, "log_stream": stream.name, "format": spec["format"], "start": spec["start"],
                     "invocations": len(spec["script"]), "lines": len(stream.events)})
        observations.append(observation(spec, stream, proxy, timeline))
    write_recording(args.out, args.seed, args.proxy_delay_ms, all_events, meta, observations)
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump({"seed": args.seed, "findings": truth}, f, indent=1)
    harness = write_harness_truth(args.out, args.seed, observations)
    log("recorded %d events in %.1f s, expected findings: %s; harness truth: %s" % (len(all_events), time.monotonic() - started, kind_counts(truth), kind_counts(harness)))
    report_environments(meta, truth, harness, log)
    report_near_misses(args.out, log)


def report_near_misses(out, log):
    """Per environment: its near misses (harness_near_misses.json) and their margins."""
    doc = json.load(open(os.path.join(out, "harness_near_misses.json")))
    log("harness near misses: %d (%d ambiguous)" % (len(doc["near_misses"]), len(doc["ambiguous"])))
    for e in doc["environments"]:
        log("  %s: %d, margins %s ms" % (e["name"], e["near_misses"], e["margins_ms"]))


def report_environments(meta, truth, harness, log):
    """Per environment: its lines, both truths' counts and where they differ
    (truth.json, from the library's lines, cannot see what a setting does
    not print; on the default settings the two agree)."""
    for env in meta:
        mine = lambda fs: [f for f in fs if f["log_stream"] == env["log_stream"]]
        log("  %s (%s): %s lines, truth.json %s, harness_truth.json %s" % (
            env["name"], env.get("setting", "default"), env.get("lines", "?"), kind_counts(mine(truth)), kind_counts(mine(harness))))
        for line in truth_differences(mine(truth), mine(harness)):
            log("    " + line)


def kind_counts(findings):
    kinds = {}
    for t in findings:
        kinds[t["kind"]] = kinds.get(t["kind"], 0) + 1
    return kinds


def truth_differences(truth, harness):
    """Findings on which truth.json and harness_truth.json disagree, on
    (kind, log stream, ping and timeout request IDs)."""
    key = lambda f: (f["kind"], f["log_stream"], f["ping_request_id"], f["timeout_request_id"])
    a, b = sorted(map(key, truth)), sorted(map(key, harness))
    out = []
    for k in a:
        if k not in b:
            out.append("only in truth.json: %s %s ping %s timeout %s" % k)
    for k in b:
        if k not in a:
            out.append("only in harness_truth.json: %s %s ping %s timeout %s" % k)
    return out


def observation(spec, stream, proxy, timeline):
    """What the harness saw of one environment run by run_environments
    (harness_observations.json): the emulator's timeline and the proxy's
    connections, the truth's only sources."""
    return {
        "name": spec["name"], "log_group": stream.group, "log_stream": stream.name,
        "ack_timeout_ms": spec["ack_timeout_ms"],
        # The payloads of the pings the ack timeout watches (None: all).
        "timed_ping_payloads": spec.get("timed_ping_payloads"),
        "timeline": [{"t": t, "what": what, "detail": detail} for t, what, detail in timeline],
        "connections": [c.to_json() for c in proxy.connections],
    }


def write_recording(out, seed, proxy_delay_ms, events, meta, observations):
    """A recording's files but its truth: events.jsonl (sorted, as
    CloudWatch Logs serves them), owners.jsonl (the invocation each line
    belongs to, by the emulator), environments.json and
    harness_observations.json."""
    events.sort(key=lambda e: (e["timestamp"], e["id"]))
    with open(os.path.join(out, "events.jsonl"), "w") as f:
        for ev in events:
            f.write(json.dumps({k: v for k, v in ev.items() if not k.startswith("_")}) + "\n")
    with open(os.path.join(out, "owners.jsonl"), "w") as f:
        for ev in events:
            f.write(json.dumps({"id": ev["id"], "owner": ev["_owner"]}) + "\n")
    with open(os.path.join(out, "environments.json"), "w") as f:
        json.dump(meta, f, indent=1)
    with open(os.path.join(out, "harness_observations.json"), "w") as f:
        json.dump({"seed": seed, "proxy_delay_ms": proxy_delay_ms, "environments": observations}, f, indent=1)


def write_harness_truth(out, seed, observations):
    """harness_truth.json from the proxy's frames and the emulator's timelines."""
    findings, near = [], []
    for o in observations:
        tl = h2truth.Timeline([(e["t"], e["what"], e["detail"]) for e in o["timeline"]])
        f, n = h2truth.harness_truth(o["connections"], tl, o["ack_timeout_ms"], o["log_group"], o["log_stream"],
                                     timed_payloads=o.get("timed_ping_payloads"))
        findings += f
        near += n
    with open(os.path.join(out, "harness_truth.json"), "w") as fh:
        json.dump({"seed": seed, "source": "proxy", "findings": findings, "near_misses": near}, fh, indent=1)
    write_near_misses(out, {"seed": seed, "environments": observations})
    return findings


def write_near_misses(out, observations):
    """harness_near_misses.json: the keepalive near misses the proxy and the
    emulator's timeline show (h2truth.near_miss_truth), never the logs."""
    doc = h2truth.near_miss_file(observations, "proxy+timeline: harness_observations.json")
    with open(os.path.join(out, "harness_near_misses.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
    return doc


def retruth(out):
    owners = {}
    with open(os.path.join(out, "owners.jsonl")) as f:
        for line in f:
            o = json.loads(line)
            owners[o["id"]] = o["owner"]
    events = [json.loads(line) for line in open(os.path.join(out, "events.jsonl"))]
    for e in events:
        e["_owner"] = owners[e["id"]]
    libs = {"grpc-js": lambda_sim.GrpcJs, "grpcio": lambda_sim.CCore, "tonic": lambda_sim.Instrument}
    truth = []
    for env in json.load(open(os.path.join(out, "environments.json"))):
        mine = [e for e in events if e["logStream"] == env["log_stream"]]
        truth += lambda_sim.truth_for(mine, libs[env["library"]])
    old = json.load(open(os.path.join(out, "truth.json")))
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump({"seed": old.get("seed"), "findings": truth}, f, indent=1)
    print("truth: %d findings (was %d)" % (len(truth), len(old["findings"])), file=sys.stderr)
    obs_path = os.path.join(out, "harness_observations.json")
    if os.path.exists(obs_path):
        obs = json.load(open(obs_path))
        harness = write_harness_truth(out, obs.get("seed"), obs["environments"])
        print("harness truth: %s" % kind_counts(harness), file=sys.stderr)
        report_environments(json.load(open(os.path.join(out, "environments.json"))), truth, harness,
                            lambda msg: print(msg, file=sys.stderr))
        report_near_misses(out, lambda msg: print(msg, file=sys.stderr))


if __name__ == "__main__":
    main()
