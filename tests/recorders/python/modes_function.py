"""The recorded Python function of the execution-mode recordings
(tests/recorders/record_modes.py), run by AWS's own runtime interface client
(awslambdaric from PyPI): a real grpcio client with HTTP/2 keepalive
5000/1000 ms, its channel created once per process at module load.

Environment:
  THAWTRACE_KEEPALIVE=0           no keepalive options (grpcio's defaults:
                                  no client keepalive pings)
  GRPC_CONNECT_AT_INIT=1          make one call at module load (INIT), so a
                                  connection exists before a SnapStart
                                  snapshot; otherwise the channel connects on
                                  the first invocation's call
  THAWTRACE_RECREATE_ON_RESTORE=1 re-create the channel in an after-restore
                                  hook (snapshot_restore_py's
                                  @register_after_restore, run by awslambdaric
                                  once /runtime/restore/next answers), with the
                                  same target and options, and close the old
                                  one: grpcio's global subchannel pool may hand
                                  the new channel the old connection
  THAWTRACE_RECREATE_ON_RESTORE=local  the same, the new channel with
                                  grpc.use_local_subchannel_pool=1: a
                                  connection of its own

Event: {order, calls: N, slow_ms?, deadline_ms?, spin_ms?}; the response
reports each call's outcome and wall-clock start and end, the spin, the
process id and the messages the handler logged (see modes_function.js).
"""

import logging
import os
import time

import grpc

log = logging.getLogger()
OPTIONS = [
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.ping_timeout_ms", 1000),
] if os.environ.get("THAWTRACE_KEEPALIVE") != "0" else []
TARGET = os.environ["THAWTRACE_TARGET"]
channel = None
echo = None


def make_channel(extra=()):
    global channel, echo
    channel = grpc.insecure_channel(TARGET, options=OPTIONS + list(extra))
    echo = channel.unary_unary("/thawtrace.Echo/Echo")


def call(i, payload, deadline_s, logged, order):
    start = int(time.time() * 1000)
    try:
        echo(payload, timeout=deadline_s)
        ok, code, details = True, "OK", ""
    except grpc.RpcError as err:
        ok, code, details = False, err.code().name, err.details() or ""
    end = int(time.time() * 1000)
    if ok:
        say(logged, logging.INFO, "echo call %d ok (order %s)" % (i, order))
    else:
        say(logged, logging.ERROR, "echo call %d failed: %s %s (order %s)" % (i, code, details, order))
    return {"i": i, "ok": ok, "code": code, "details": details, "start_ms": start, "end_ms": end}


def say(logged, level, message):
    if logged is not None:
        logged.append(message)
    log.log(level, message)


make_channel()
INIT_CALL = None
if os.environ.get("GRPC_CONNECT_AT_INIT") == "1":
    INIT_CALL = call(0, b"init", 5, None, "init")

RECREATE = os.environ.get("THAWTRACE_RECREATE_ON_RESTORE")
if RECREATE in ("1", "local"):
    from snapshot_restore_py import register_after_restore

    @register_after_restore
    def recreate_channel():
        old = channel
        make_channel([("grpc.use_local_subchannel_pool", 1)] if RECREATE == "local" else [])
        old.close()
        log.info("after restore: gRPC channel re-created")


def handler(event, context):
    order = event.get("order", "?")
    logged = []
    say(logged, logging.INFO, "handling order batch of %d calls (order %s)" % (event.get("calls", 0), order))
    payload = ("sleep:%d" % event["slow_ms"]).encode() if event.get("slow_ms") else b"echo"
    deadline_s = event.get("deadline_ms", 8000) / 1000.0
    calls, spin = [], None
    if event.get("spin_ms"):
        # A stall of this process's Python thread with a call in flight; the
        # C-core's own threads keep running.
        fut = echo.future(payload, timeout=deadline_s)
        start = int(time.time() * 1000)
        t0 = time.monotonic()
        while time.monotonic() - t0 < event["spin_ms"] / 1000.0:
            pass
        spin = [start, int(time.time() * 1000)]
        try:
            fut.result()
            calls.append({"i": 0, "ok": True, "code": "OK", "details": "", "start_ms": start, "end_ms": int(time.time() * 1000)})
            say(logged, logging.INFO, "echo call 0 ok (order %s)" % order)
        except grpc.RpcError as err:
            calls.append({"i": 0, "ok": False, "code": err.code().name, "details": err.details() or "", "start_ms": start, "end_ms": int(time.time() * 1000)})
            say(logged, logging.ERROR, "echo call 0 failed: %s %s (order %s)" % (err.code().name, err.details(), order))
    else:
        for i in range(event.get("calls", 0)):
            calls.append(call(i, payload, deadline_s, logged, order))
    return {"ok": True, "pid": os.getpid(), "calls": calls, "spin": spin, "logged": logged, "init_call": INIT_CALL}
