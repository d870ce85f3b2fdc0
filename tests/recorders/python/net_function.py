"""The recorded Python function for the neighbouring failures: a boto3 S3
client made once per execution environment (its connection pool outlives
invocations, as in Lambda), pointed at THAWTRACE_S3_ENDPOINT, and a grpcio
channel to THAWTRACE_GRPC_TARGET when that is set.

Event: {"bucket": "slow-<ms>" | name, "grpc_calls": N, "deadline_s": s,
        "fail": "message"?, ...anything}
  The event is logged first; `fail` makes the invocation raise.

botocore's own exceptions reach the log through the runtime's error line
(`[ERROR] ReadTimeoutError: Read timeout on endpoint URL: "..."`). Timeouts
and retries are set in the client's Config like a function that waits long
for S3 would: read_timeout 12 s, connect_timeout 2 s, one attempt.
"""

import json
import logging
import os

import boto3
import grpc
from botocore.config import Config

log = logging.getLogger()
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["THAWTRACE_S3_ENDPOINT"],
    region_name="us-east-1",
    config=Config(read_timeout=12, connect_timeout=2, retries={"total_max_attempts": 1}),
)


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
        s3.list_objects_v2(Bucket=event["bucket"])
        log.info("listed %s", event["bucket"])
    if event.get("fail"):
        raise RuntimeError(event["fail"])
    return {"ok": True}
