#!/usr/bin/env python3
"""Record a Go function (grpc-go) frozen between invocations.

    python3 tests/recorders/record_go.py --out tests/fixtures/recorded-go --seed 1

The Go function (tests/recorders/go/main.go: a provided.al2023-style
runtime loop and a grpc-go client with keepalive.ClientParameters{Time: 5s,
Timeout: 1s, PermitWithoutStream: true}) runs under the Runtime API
emulator of tests/harness/lambda_sim.py, frozen with SIGSTOP between
invocations, calling the grpcio echo server through the delaying proxy, once
per grpc-go log setting users choose (SETTINGS), each an environment
<name>@<setting> with a log group of its own, and once with keepalive off.
The scenarios are record.py's (a ping in flight at a freeze longer and
shorter than the ack timeout, a server that stops answering inside an
invocation, freezes longer than the keepalive interval), timed by what the
proxy sees on the wire, so they run the same whatever a setting prints.

grpc-go prints nothing when it sends a keepalive ping or reads its ack, nor
when the ack timeout closes the transport; so the ground truth is the
harness's alone (harness_truth.json: h2truth.harness_truth over the proxy's
frames and the emulator's owner and freeze timeline), and truth.json is the
same findings. Writes events.jsonl, owners.jsonl, truth.json,
harness_truth.json, harness_observations.json, harness_near_misses.json and
environments.json, in record.py's shapes.

Needs: `bash tests/setup.sh` (Debian's golang-go and golang-google-grpc-dev:
Go 1.19, grpc-go 1.33.3; the function is built offline in GOPATH mode
against /usr/share/gocode), or `--go-bin` a built function.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import record  # noqa: E402
from record import ROOT, lambda_sim  # noqa: E402

GO_DIR = os.path.join(HERE, "go")
GOPATH = "/usr/share/gocode"

# grpc-go's log settings (grpclog's loggerv2: severity info/warning/error,
# verbosity gates its V(2) lines). None: unset, grpc-go's default (errors only).
SETTINGS = {
    "info-v99": {"GRPC_GO_LOG_SEVERITY_LEVEL": "info", "GRPC_GO_LOG_VERBOSITY_LEVEL": "99"},
    "info-v2": {"GRPC_GO_LOG_SEVERITY_LEVEL": "info", "GRPC_GO_LOG_VERBOSITY_LEVEL": "2"},
    "info": {"GRPC_GO_LOG_SEVERITY_LEVEL": "info", "GRPC_GO_LOG_VERBOSITY_LEVEL": None},
    "default": {"GRPC_GO_LOG_SEVERITY_LEVEL": None, "GRPC_GO_LOG_VERBOSITY_LEVEL": None},
}


def build(out_dir):
    """Builds the Go function offline against Debian's grpc-go; returns its path."""
    exe = os.path.join(out_dir, "go-function")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOPROXY="off", GOFLAGS="", CGO_ENABLED="0")
    env.setdefault("GOCACHE", os.path.join(tempfile.gettempdir(), "thawtrace-go-cache"))
    subprocess.run(["go", "build", "-o", exe, "."], cwd=GO_DIR, env=env, check=True)
    return exe


def grpc_go_version():
    """grpc-go's version as the installed source says it (version.go)."""
    try:
        text = open(os.path.join(GOPATH, "src/google.golang.org/grpc/version.go")).read()
        return text.split('const Version = "', 1)[1].split('"', 1)[0]
    except (OSError, IndexError):
        return None


def environments(rng, exe, which):
    envs = []
    for setting, env in SETTINGS.items():
        envs.append(dict(name="go-text@%s" % setting, setting=setting, function="orders-go" + ("" if setting == "info-v99" else "-" + setting),
                         env=dict(env)))
    envs.append(dict(name="go-keepalive-off@info-v99", setting="info-v99", function="orders-go-nokeepalive",
                     env=dict(SETTINGS["info-v99"], THAWTRACE_KEEPALIVE="0"), keepalive=False))
    for e in envs:
        e.update(library="grpc-go", command=[exe], cwd=GO_DIR, format="text", start="platform")
    if which:
        envs = [e for e in envs if any(w in e["name"] for w in which)]
    return record.finish(rng, envs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", action="append", help="record only environments whose name contains this")
    ap.add_argument("--proxy-delay-ms", type=int, default=40)
    ap.add_argument("--go-bin", help="the built Go function (default: build tests/recorders/go)")
    ap.add_argument("--rust-bin", help="ignored (the fresh-recording tests pass it to every recorder)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    # The function's build (11 MB) and the servers' port files: removed at the end.
    work = tempfile.mkdtemp(prefix="thawtrace-go-")
    try:
        record_all(args, rng, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def record_all(args, rng, work):
    exe = args.go_bin or build(work)
    envs = environments(rng, exe, args.only)
    if not envs:
        sys.exit("no environment to record")
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    lock = threading.Lock()

    def log(msg):
        with lock:
            print(msg, file=sys.stderr, flush=True)

    streams = record.run_environments(envs, work, rng, args.proxy_delay_ms, log, limit_s=300)

    version = grpc_go_version()
    all_events, meta, observations = [], [], []
    for spec, stream, proxy, timeline in streams:
        all_events += stream.events
        meta.append({"name": spec["name"], "library": "grpc-go", "library_version": version, "setting": spec["setting"],
                     "env": spec["env"], "keepalive": spec["keepalive"],
                     "log_group": stream.group, "log_stream": stream.name, "format": spec["format"], "start": spec["start"],
                     "invocations": len(spec["script"]), "lines": len(stream.events)})
        observations.append(record.observation(spec, stream, proxy, timeline))
    record.write_recording(args.out, args.seed, args.proxy_delay_ms, all_events, meta, observations)
    harness = record.write_harness_truth(args.out, args.seed, observations)
    # grpc-go prints no ping and no timeout line: the harness's truth is the only one.
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump({"seed": args.seed, "source": "harness_truth.json", "findings": harness}, f, indent=1)
    log("recorded %d events in %.1f s (grpc-go %s); harness truth: %s" % (len(all_events), time.monotonic() - started, version, record.kind_counts(harness)))
    record.report_environments(meta, harness, harness, log)
    record.report_near_misses(args.out, log)


if __name__ == "__main__":
    main()
