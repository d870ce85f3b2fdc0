"""The recorded Python function for the neighbouring failures: a boto3 S3
client made once per execution environment (its connection pool outlives
invocations, as in Lambda), pointed at THAWTRACE_S3_ENDPOINT.

Event: {"bucket": "slow-<ms>" | name, "fail": "message"?, ...anything}
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
from botocore.config import Config

log = logging.getLogger()
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["THAWTRACE_S3_ENDPOINT"],
    region_name="us-east-1",
    config=Config(read_timeout=12, connect_timeout=2, retries={"total_max_attempts": 1}),
)


def handler(event, request_id):
    log.info("event %s", json.dumps(event))
    if event.get("bucket"):
        s3.list_objects_v2(Bucket=event["bucket"])
        log.info("listed %s", event["bucket"])
    if event.get("fail"):
        raise RuntimeError(event["fail"])
    return {"ok": True}
