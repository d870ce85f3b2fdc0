"""The recorded Python function for the neighbouring failures: a boto3 S3
client made once per execution environment (its connection pool outlives
invocations, as in Lambda), pointed at THAWTRACE_S3_ENDPOINT, and a grpcio
channel to THAWTRACE_GRPC_TARGET when that is set.

Event: {"bucket": "slow-<ms>" | name, "s3_calls": N, "pause_s": s,
        "grpc_calls": N, "deadline_s": s, "fail": "message"?, ...anything}
  The event is logged first; `s3_calls` lists the bucket that many times
  (1 by default), `pause_s` apart (or `pauses_s[i]` before call i+1), on
  the same pooled connection; `fail`
  makes the invocation raise; `new_client` makes this invocation's S3
  calls on a boto3 client of its own (a new connection pool, so a new
  connection), as a function that builds its client in the handler does.

botocore's own exceptions reach the log through the runtime's error line
(`[ERROR] ReadTimeoutError: Read timeout on endpoint URL: "..."`). Timeouts
and retries are set in the client's Config like a function that waits long
for S3 would: read_timeout 12 s, connect_timeout 2 s, one attempt.

Settings a recorder can choose instead (environment variables):

- THAWTRACE_BOTO_CONFIG: the Config's keyword arguments as JSON, replacing
  the ones above (`{}`: botocore's defaults, a 60 s connect and read
  timeout, the standard retry mode, 3 attempts; `{"retries": {"mode":
  "legacy"}}`: 5 attempts;
  `{"tcp_keepalive": true}`, which sets SO_KEEPALIVE and nothing else);
- THAWTRACE_TCP_KEEPIDLE: seconds of idle before the kernel's first
  keepalive probe on this client's sockets (TCP_KEEPIDLE, then a probe a
  second for 3): what `net.ipv4.tcp_keepalive_time` sets for every socket,
  here per socket, as botocore has no setting for it;
- THAWTRACE_LOG_LEVEL: the root logger's level (`DEBUG`: botocore's and
  urllib3's debug lines through the Lambda runtime's handler);
- THAWTRACE_STREAM_LOGGER=1: `boto3.set_stream_logger('', logging.DEBUG)`,
  as the boto3 documentation suggests: every logger at DEBUG, each line
  also written to stderr in boto3's own format.
"""

import json
import logging
import os
import socket
import time

import boto3
import grpc
from botocore.config import Config

log = logging.getLogger()
if os.environ.get("THAWTRACE_STREAM_LOGGER"):
    boto3.set_stream_logger("", logging.DEBUG)
elif os.environ.get("THAWTRACE_LOG_LEVEL"):
    log.setLevel(os.environ["THAWTRACE_LOG_LEVEL"])

if os.environ.get("THAWTRACE_BOTO_CONFIG"):
    config = Config(**json.loads(os.environ["THAWTRACE_BOTO_CONFIG"]))
else:
    config = Config(read_timeout=12, connect_timeout=2, retries={"total_max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=os.environ["THAWTRACE_S3_ENDPOINT"], region_name="us-east-1", config=config)
if os.environ.get("THAWTRACE_TCP_KEEPIDLE"):
    # The session's socket options list is the one its connection pools
    # pass to every new connection.
    s3._endpoint.http_session._socket_options.extend([
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, int(os.environ["THAWTRACE_TCP_KEEPIDLE"])),
        (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1),
        (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
    ])


# A grpcio (C-core) channel too, when the environment names a target.
echo = None
if os.environ.get("THAWTRACE_GRPC_TARGET"):
    echo = grpc.insecure_channel(os.environ["THAWTRACE_GRPC_TARGET"]).unary_unary("/thawtrace.Echo/Echo")


def handler(event, request_id):
    log.info("event %s", json.dumps(event))
    for i in range(event.get("grpc_calls", 0)):
        try:
            echo(b"call %d" % i, timeout=event.get("deadline_s", 8))
            log.info("echo call %d ok", i)
        except grpc.RpcError as err:
            log.error("echo call %d failed: %s %s", i, err.code(), err.details())
    if event.get("bucket"):
        client = s3
        if event.get("new_client"):
            client = boto3.client("s3", endpoint_url=os.environ["THAWTRACE_S3_ENDPOINT"], region_name="us-east-1", config=config)
        for i in range(event.get("s3_calls", 1)):
            if i:
                pauses = event.get("pauses_s")
                time.sleep(pauses[i - 1] if pauses else event.get("pause_s", 0))
            client.list_objects_v2(Bucket=event["bucket"])
            log.info("listed %s", event["bucket"])
    if event.get("fail"):
        raise RuntimeError(event["fail"])
    return {"ok": True}
