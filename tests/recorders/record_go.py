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

`--grpc 1.33` (the default) builds the function with Debian bookworm's
golang-go and golang-google-grpc-dev (Go 1.19, grpc-go 1.33.3, offline in
GOPATH mode against /usr/share/gocode); `--grpc 1.64` with Debian trixie's
Go 1.24 and grpc-go 1.64.0, which tests/setup.sh unpacks into
tests/.deps/go-trixie (its environments are named `go164-…`, its functions
`orders-go164…`, so both versions' recordings can be read side by side).
The 1.64 environments run with the emulator's `frozen_network`: what the
server sends during a freeze reaches the function after the thaw, as it
does a paused microVM (SIGSTOP alone leaves the kernel reading the socket,
and the ack of a ping in flight waits there, read first at the thaw).
Needs: `bash tests/setup.sh`, or `--go-bin` a built function.
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
# Where each grpc-go version's source and Go toolchain live: (GOPATH, GOROOT
# or None for the `go` on PATH).
TRIXIE = os.path.join(ROOT, "tests", ".deps", "go-trixie")
GRPC = {
    "1.33": ("/usr/share/gocode", None),
    "1.64": (os.path.join(TRIXIE, "usr/share/gocode"), os.path.join(TRIXIE, "usr/lib/go-1.24")),
}

# grpc-go's log settings (grpclog's loggerv2: severity info/warning/error,
# verbosity gates its V(2) lines). None: unset, grpc-go's default (errors only).
SETTINGS = {
    "info-v99": {"GRPC_GO_LOG_SEVERITY_LEVEL": "info", "GRPC_GO_LOG_VERBOSITY_LEVEL": "99"},
    "info-v2": {"GRPC_GO_LOG_SEVERITY_LEVEL": "info", "GRPC_GO_LOG_VERBOSITY_LEVEL": "2"},
    "info": {"GRPC_GO_LOG_SEVERITY_LEVEL": "info", "GRPC_GO_LOG_VERBOSITY_LEVEL": None},
    "default": {"GRPC_GO_LOG_SEVERITY_LEVEL": None, "GRPC_GO_LOG_VERBOSITY_LEVEL": None},
}


def build(out_dir, grpc):
    """Builds the Go function offline against Debian's grpc-go; returns its path."""
    gopath, goroot = GRPC[grpc]
    exe = os.path.join(out_dir, "go-function")
    env = dict(os.environ, GO111MODULE="off", GOPATH=gopath, GOPROXY="off", GOFLAGS="", CGO_ENABLED="0", GOTOOLCHAIN="local")
    go = "go"
    if goroot:
        env["GOROOT"] = goroot
        go = os.path.join(goroot, "bin", "go")
        if not os.path.exists(go):
            sys.exit("record_go.py: no Go 1.24 at %s: run `bash tests/setup.sh`" % goroot)
    env.setdefault("GOCACHE", os.path.join(tempfile.gettempdir(), "thawtrace-go-cache-" + grpc))
    subprocess.run([go, "build", "-o", exe, "."], cwd=GO_DIR, env=env, check=True)
    return exe


def grpc_go_version(grpc):
    """grpc-go's version as the installed source says it (version.go)."""
    try:
        text = open(os.path.join(GRPC[grpc][0], "src/google.golang.org/grpc/version.go")).read()
        return text.split('const Version = "', 1)[1].split('"', 1)[0]
    except (OSError, IndexError):
        return None


def environments(rng, exe, which, grpc="1.33"):
    envs = []
    go = "go" if grpc == "1.33" else "go" + grpc.replace(".", "")
    for setting, env in SETTINGS.items():
        envs.append(dict(name="%s-text@%s" % (go, setting), setting=setting, function="orders-" + go + ("" if setting == "info-v99" else "-" + setting),
                         env=dict(env)))
    envs.append(dict(name="%s-keepalive-off@info-v99" % go, setting="info-v99", function="orders-%s-nokeepalive" % go,
                     env=dict(SETTINGS["info-v99"], THAWTRACE_KEEPALIVE="0"), keepalive=False))
    for e in envs:
        e.update(library="grpc-go", command=[exe], cwd=GO_DIR, format="text", start="platform",
                 # Keepalive pings carry eight zero bytes; the BDP pings
                 # (02 04 10 10 09 0e 07 07) have no ack timeout.
                 timed_ping_payloads=["0000000000000000"])
        # 1.64: the function's network freezes with it (lambda_sim's
        # frozen_network), as a paused microVM's does: the ack of a ping in
        # flight enters its socket after the thaw, not during the freeze.
        e["frozen_network"] = grpc != "1.33"
    if which:
        envs = [e for e in envs if any(w in e["name"] for w in which)]
    return record.finish(rng, envs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", action="append", help="record only environments whose name contains this")
    ap.add_argument("--proxy-delay-ms", type=int, default=40)
    ap.add_argument("--grpc", choices=sorted(GRPC), default="1.33", help="grpc-go version to build against (default 1.33)")
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
    exe = args.go_bin or build(work, args.grpc)
    envs = environments(rng, exe, args.only, args.grpc)
    if not envs:
        sys.exit("no environment to record")
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    lock = threading.Lock()

    def log(msg):
        with lock:
            print(msg, file=sys.stderr, flush=True)

    streams = record.run_environments(envs, work, rng, args.proxy_delay_ms, log, limit_s=300)

    version = grpc_go_version(args.grpc)
    all_events, meta, observations = [], [], []
    for spec, stream, proxy, timeline in streams:
        all_events += stream.events
        meta.append({"name": spec["name"], "library": "grpc-go", "library_version": version, "setting": spec["setting"],
                     "env": spec["env"], "keepalive": spec["keepalive"], "frozen_network": spec["frozen_network"],
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
