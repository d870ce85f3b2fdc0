#!/usr/bin/env python3
"""Runs a Lambda function binary under the local Runtime API emulator and
delivers events to it, as Lambda would (no freezing: for handler tests).

    invoke.py --event EVENT.json [--event ...] -- COMMAND [ARG...]

Prints one JSON object: {"responses": [{"kind", "body", "elapsed_ms"}],
"output": [lines], "peak_rss_kb": the function's peak RSS once every event
was answered}. `elapsed_ms` runs from the event's delivery (its
Lambda-Runtime-Deadline-Ms is --deadline-ms after it) to the answer.
The function's environment gets AWS_LAMBDA_RUNTIME_API and the usual
AWS_LAMBDA_* variables; other variables pass through.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lambda_sim  # noqa: E402


def peak_rss(pid):
    """The function process's peak resident set (VmHWM), in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--event", action="append", default=[])
    # How long to wait for the function to poll or answer before giving
    # up: a bound on a hang, not a speed check. The tests run the debug
    # build, which reads the largest event (lambda_handler.rs, 6 MB: 160,000
    # events and a 64 MiB inflate budget) in about 35 s on an idle core and
    # took over 60 s once in CI with the other tests of its binary running
    # beside it.
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--deadline-ms", type=int, default=30000)
    ap.add_argument("command", nargs="+")
    args = ap.parse_args()
    api = lambda_sim.RuntimeApi()
    api.deadline_ms = args.deadline_ms
    env = dict(os.environ)
    env.update(
        AWS_LAMBDA_RUNTIME_API=api.address,
        AWS_LAMBDA_FUNCTION_NAME="thawtrace-collector",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/thawtrace-collector",
        AWS_LAMBDA_LOG_STREAM_NAME="2026/11/28/[$LATEST]0000",
    )
    proc = subprocess.Popen(args.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    output = []

    def read():
        for raw in proc.stdout:
            output.append(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    responses = []
    peak_rss_kb = None
    try:
        for path in args.event:
            with open(path) as f:
                event = json.load(f)
            rid = str(uuid.uuid4())
            api.wait_polling(timeout=args.timeout)
            delivered = time.monotonic()
            api.deliver(rid, event)
            kind, body, _ = api.wait_response(rid, timeout=args.timeout)
            elapsed_ms = (time.monotonic() - delivered) * 1000
            try:
                body = json.loads(body)
            except ValueError:
                body = body.decode("utf-8", "replace")
            responses.append({"kind": kind, "body": body, "elapsed_ms": elapsed_ms})
        api.wait_polling(timeout=args.timeout)
        peak_rss_kb = peak_rss(proc.pid)
    finally:
        api.close()
        proc.kill()
        proc.wait()
        reader.join(timeout=5)
    print(json.dumps({"responses": responses, "output": output, "peak_rss_kb": peak_rss_kb}))


if __name__ == "__main__":
    main()
