#!/usr/bin/env python3
"""Runs moto's create_export_task on a recording's first log group and
leaves the bucket on disk as `aws s3 sync` would.

    moto_export.py EVENTS OUT

Starts moto in server mode on 127.0.0.1 (a free port, TZ=UTC: moto writes
local time with a `Z`), puts the group's events (moved to the last hour:
CloudWatch Logs refuses old events; only their spacing matters), exports
them to a bucket, downloads every object under OUT by its key, and prints
how many events it put.
"""

import json
import os
import socket
import subprocess
import sys
import time

import boto3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    events_path, out = sys.argv[1], sys.argv[2]
    with open(events_path, encoding="utf-8") as f:
        events = [json.loads(l) for l in f if l.strip()]
    group = events[0]["logGroup"]
    mine = [e for e in events if e["logGroup"] == group]
    port = free_port()
    env = dict(os.environ, TZ="UTC")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
        logs = boto3.client("logs", **kw)
        s3 = boto3.client("s3", **kw)
        offset = int(time.time() * 1000) - 3_600_000 - min(e["timestamp"] for e in mine)
        logs.create_log_group(logGroupName=group)
        streams = {}
        for e in mine:
            streams.setdefault(e["logStream"], []).append(e)
        for stream, evs in streams.items():
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            evs.sort(key=lambda e: (e["timestamp"], len(e["id"]), e["id"]))
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
                {"timestamp": e["timestamp"] + offset, "message": e["message"]} for e in evs])
        s3.create_bucket(Bucket="exports")
        lo = min(e["timestamp"] for e in mine) + offset
        hi = max(e["timestamp"] for e in mine) + offset
        task = logs.create_export_task(logGroupName=group, fromTime=lo, to=hi + 1,
                                       destination="exports", destinationPrefix="orders")
        status = logs.describe_export_tasks(taskId=task["taskId"])["exportTasks"][0]["status"]
        if status["code"] != "COMPLETED":
            sys.exit(f"export task {status}")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="exports"):
            for obj in page.get("Contents", []):
                path = os.path.join(out, *obj["Key"].split("/"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                s3.download_file("exports", obj["Key"], path)
        print(len(mine))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
