"""The recorded Python function: a grpcio client with HTTP/2 keepalive,
created once per execution environment, calling the echo server through the
delaying proxy. Event: {"calls": N, "hold": "none" | "release"} (see the
Node.js twin, function.js)."""

import logging
import os
import urllib.request

import grpc

log = logging.getLogger()
KEEPALIVE = os.environ.get("THAWTRACE_KEEPALIVE") != "0"
OPTIONS = [
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.ping_timeout_ms", 1000),
] if KEEPALIVE else []
channel = grpc.insecure_channel(os.environ["THAWTRACE_TARGET"], options=OPTIONS)
echo = channel.unary_unary("/thawtrace.Echo/Echo")


def handler(event, request_id):
    log.info("handling order batch %s", event)
    for i in range(event.get("calls", 0)):
        try:
            echo(b"call %d" % i, timeout=8)
            log.info("echo call %d ok", i)
        except grpc.RpcError as err:
            log.error("echo call %d failed: %s %s", i, err.code(), err.details())
    if event.get("hold") == "release":
        url = "http://%s/thawtrace/hold/%s" % (os.environ["AWS_LAMBDA_RUNTIME_API"], request_id)
        urllib.request.urlopen(url, timeout=60).read()
    return {"ok": True}
