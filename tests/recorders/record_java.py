#!/usr/bin/env python3
"""Record a Java function (grpc-java with Netty) frozen with SIGSTOP.

    python3 tests/recorders/record_java.py --out tests/fixtures/recorded-java --seed 1

Runs the Java function (java/Function.java: a Runtime API client and a
grpc-java 1.41 Netty channel with keepalive, from Debian's libgrpc-java and
libnetty-java) in several execution environments at once, each under the
Runtime API emulator, behind the delaying proxy, frozen between invocations,
with the scripts and truths of record.py (its `script`, harness truth and
reports), once per setting (SETTINGS): java.util.logging at FINE for
io.grpc.netty (Netty's HTTP/2 frame logger) in the text and JSON log
formats, JUL's default (INFO: nothing about keepalive), Log4j 2 with the
layout AWS documents (`log4j2`: java/log4j2.xml, io.grpc.netty at DEBUG),
Log4j 2 with io.grpc.netty at INFO (`log4j2-info`: the function's own
lines only), Log4j 2 in the JSON log format (`log4j2-json`:
java/log4j2-json.xml, the fields of the Lambda appender's JSON records),
and keepalive off. `--only log4j2` records the three Log4j 2 settings
alone (tests/fixtures/recorded-java-log4j2, seed 5).

Writes what record.py writes (events.jsonl, owners.jsonl, truth.json,
harness_truth.json, harness_observations.json, harness_near_misses.json,
environments.json). The harness truth (the proxy's frames and the
emulator's timeline) is what tests score against; truth.json is read from
the library's own lines (GrpcJava below) and cannot see what a setting does
not print.

Needs javac and java (17) and `bash tests/setup.sh` (Debian's libgrpc-java
and libnetty-java, liblog4j2-java's jars, the Python venv for the echo
server).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
sys.path.insert(0, HERE)

import lambda_sim  # noqa: E402
import record  # noqa: E402

JAVA_DIR = os.path.join(HERE, "java")
SHARE = "/usr/share/java"
# Debian's jars the function needs (grpc-java 1.41.3, Netty 4.1.48, PerfMark 0.21).
JARS = ["grpc-api", "grpc-core", "grpc-netty", "grpc-stub", "grpc-context", "guava", "netty-buffer", "netty-codec",
        "netty-codec-http", "netty-codec-http2", "netty-common", "netty-handler", "netty-resolver", "netty-transport", "perfmark-api"]

# java.util.logging settings: the logging.properties the JVM starts with
# (None: the JDK's own, INFO to the console).
SETTINGS = {
    "fine": os.path.join(JAVA_DIR, "logging-fine.properties"),
    # "fine" and grpc-java's channel trace (connects): record_network.py's stall-java
    "finest": os.path.join(JAVA_DIR, "logging-finest.properties"),
    "none": None,
}


class GrpcJava:
    """grpc-java (Netty) lines for truth.json: Netty's HTTP/2 frame logger at
    FINE, keyed by the channel (`[id: 0x…, L:… - R:…]`); a ping's payload
    (`bytes=`) is what its ack repeats. A keepalive timeout closes the
    channel with a GO_AWAY (`OUTBOUND GO_AWAY: … errorCode=0 …`, written
    when the ping timer fired): it counts when a ping on that channel is
    unanswered."""

    name = "grpc-java"

    @staticmethod
    def is_ping(msg):
        # Keepalive pings carry 1111; BDP pings (1234) have no ack timeout.
        return "] OUTBOUND PING: ack=false bytes=1111" in msg

    @staticmethod
    def ping_id(msg):
        return msg.rsplit("bytes=", 1)[1].split()[0].strip('"\\')

    @staticmethod
    def acked(msg):
        if "] INBOUND PING: ack=true" in msg:
            return msg.rsplit("bytes=", 1)[1].split()[0].strip('"\\')
        return None

    @staticmethod
    def is_timeout(msg):
        return "] OUTBOUND GO_AWAY: " in msg

    @staticmethod
    def connection(msg):
        return msg.split("[id: ", 1)[1].split(",", 1)[0]


def build(work):
    """Compiles the function into work/classes; returns its java command."""
    cp = ":".join(os.path.join(SHARE, j + ".jar") for j in JARS)
    missing = [p for p in cp.split(":") if not os.path.exists(p)]
    if missing:
        sys.exit("missing %s: bash tests/setup.sh (Debian's libgrpc-java and libnetty-java)" % ", ".join(missing))
    classes = os.path.join(work, "classes")
    os.makedirs(classes, exist_ok=True)
    # Function.java, and for record_modes.py's SnapStart environments
    # SnapFunction.java and its CRaC lookalike (org/crac).
    sources = sorted(os.path.join(d, f) for d, _, fs in os.walk(JAVA_DIR) for f in fs if f.endswith(".java"))
    subprocess.run(["javac", "-nowarn", "-d", classes, "-cp", cp] + sources, check=True)
    # The managed runtime's JVM options, roughly: tiered compilation stops at
    # C1 (JAVA_TOOL_OPTIONS in Lambda's java17 bootstrap), a small heap.
    return ["java", "-XX:+TieredCompilation", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xmx128m", "-cp", classes + ":" + cp]


# The `log4j2` setting: Log4j 2.19 (Debian's jars, tests/setup.sh unpacks
# them) takes java.util.logging's records (log4j-jul's LogManager) and
# Netty's (its API on the class path), with the layout AWS documents for
# Lambda (java/log4j2.xml): io.grpc.netty at DEBUG.
LOG4J2_XML = os.path.join(JAVA_DIR, "log4j2.xml")
LOG4J2_DIR = os.path.join(HERE, "..", ".deps", "log4j2", "usr", "share", "java")
LOG4J2_JARS = ["log4j-api", "log4j-core", "log4j-jul"]
# The Log4j 2 settings: their configuration and io.grpc.netty's level
# (the configurations read it). At INFO nothing about keepalive is printed,
# only the function's own lines (its failed calls among them).
# `log4j2-json`: Lambda's JSON log format, where the Log4j appender writes
# JSON records (java/log4j2-json.xml says how they are made here).
LOG4J2_JSON_XML = os.path.join(JAVA_DIR, "log4j2-json.xml")
# In the JSON setting the function logs a failed call with its exception
# (logger.error("echo call 0 failed", e)): the status only in the
# record's errorMessage. The text settings log it in the message.
LOG_EXCEPTION = {"log4j2-json": {"THAWTRACE_LOG_EXCEPTION": "1"}}
LOG4J2_SETTINGS = {
    "log4j2": (LOG4J2_XML, "debug"),
    "log4j2-info": (LOG4J2_XML, "info"),
    "log4j2-json": (LOG4J2_JSON_XML, "debug"),
}


def logging_options(java, setting):
    """The JVM command of `java` (build's) for a logging setting."""
    if setting in LOG4J2_SETTINGS:
        jars = [os.path.join(LOG4J2_DIR, j + ".jar") for j in LOG4J2_JARS]
        missing = [j for j in jars if not os.path.exists(j)]
        if missing:
            sys.exit("missing %s: bash tests/setup.sh (Debian's liblog4j2-java)" % ", ".join(missing))
        at = java.index("-cp") + 1
        java = java[:at] + [java[at] + ":" + ":".join(jars)] + java[at + 1:]
        return java + ["-Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager",
                       "-Dlog4j2.configurationFile=" + LOG4J2_SETTINGS[setting][0],
                       "-Dthawtrace.grpc.level=" + LOG4J2_SETTINGS[setting][1]]
    props = SETTINGS[setting]
    return java + (["-Djava.util.logging.config.file=" + props] if props else [])


def logging_config(setting):
    """The logging configuration file of a setting, relative to the repo
    (None: the JDK's own)."""
    path = LOG4J2_SETTINGS[setting][0] if setting in LOG4J2_SETTINGS else SETTINGS[setting]
    return path and os.path.relpath(path, ROOT)


# grpc-java's keepalive ping payload (NettyClientHandler's ping, 1111), as
# the proxy records it: eight bytes, big-endian, in hex.
JAVA_KEEPALIVE_PAYLOAD = (1111).to_bytes(8, "big").hex()


def environments(rng, java, which):
    envs = []
    for name, fmt, setting, keepalive in [
        ("java-text", "text", "fine", True),
        ("java-json", "json", "fine", True),
        ("java-text", "text", "none", True),
        ("java-text", "text", "log4j2", True),
        ("java-text", "text", "log4j2-info", True),
        ("java-json", "json", "log4j2-json", True),
        ("java-keepalive-off", "text", "fine", False),
    ]:
        command = logging_options(java, setting) + ["Function"]
        suffix = {"java-json": "-json", "java-keepalive-off": "-nokeepalive"}.get(name, "")
        envs.append(dict(
            name="%s@%s" % (name, setting), library="grpc-java", setting=setting,
            function="orders-java" + suffix + ("" if setting == "fine" else "-" + setting),
            command=command, cwd=JAVA_DIR, format=fmt, start="platform",
            env=dict({} if keepalive else {"THAWTRACE_KEEPALIVE": "0"}, **LOG_EXCEPTION.get(setting, {})),
            keepalive=keepalive,
            # KeepAliveManager's pings carry 1111; the BDP pings (1234) have
            # no ack timeout (h2truth.timed_pings).
            timed_ping_payloads=[JAVA_KEEPALIVE_PAYLOAD],
        ))
    if which:
        envs = [e for e in envs if any(w in e["name"] for w in which)]
    return record.finish(rng, envs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", action="append", help="record only environments whose name contains this")
    ap.add_argument("--proxy-delay-ms", type=int, default=40)
    ap.add_argument("--rust-bin", help="ignored (the fresh-recording tests pass it to every recorder)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="thawtrace-java-")
    java = build(work)
    envs = environments(rng, java, args.only)
    if not envs:
        sys.exit("no environment to record")
    started = time.monotonic()
    lock = threading.Lock()

    def log(msg):
        with lock:
            print(msg, file=sys.stderr, flush=True)

    for spec in envs:
        spec["library"] = GrpcJava
    streams = record.run_environments(envs, work, rng, args.proxy_delay_ms, log)

    all_events, truth, meta, observations = [], [], [], []
    for spec, stream, proxy, timeline in streams:
        truth += lambda_sim.truth_for(stream.events, GrpcJava)
        all_events += stream.events
        meta.append({"name": spec["name"], "library": GrpcJava.name, "setting": spec["setting"],
                     "env": spec["env"], "keepalive": spec["keepalive"], "jul": logging_config(spec["setting"]),
                     "log_group": stream.group, "log_stream": stream.name, "format": spec["format"], "start": spec["start"],
                     "invocations": len(spec["script"]), "lines": len(stream.events)})
        observations.append(record.observation(spec, stream, proxy, timeline))
    record.write_recording(args.out, args.seed, args.proxy_delay_ms, all_events, meta, observations)
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump({"seed": args.seed, "findings": truth}, f, indent=1)
    harness = record.write_harness_truth(args.out, args.seed, observations)
    log("recorded %d events in %.1f s, expected findings: %s; harness truth: %s" % (
        len(all_events), time.monotonic() - started, record.kind_counts(truth), record.kind_counts(harness)))
    record.report_environments(meta, truth, harness, log)
    record.report_near_misses(args.out, log)


if __name__ == "__main__":
    main()
