"""A Lambda-like Python runtime client, as the AWS Python runtime behaves.

Polls the Runtime API emulator (tests/harness/lambda_sim.py), calls the
handler, posts the response. `logging` lines get the Python runtime's prefix
(`[LEVEL]\t<ISO ts>\t<requestId>\t<message>`, or with
AWS_LAMBDA_LOG_FORMAT=JSON the `{"timestamp","level","message","logger",
"requestId"}` record). grpcio's C-core writes its traces straight to the
process's stderr, so those lines carry no request ID, as in Lambda.
"""

import importlib
import json
import logging
import os
import sys
import time
import traceback
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
JSON_FORMAT = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
current_request_id = None


class LambdaFormatter(logging.Formatter):
    def formatTime(self, record, datefmt=None):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + ".%03dZ" % record.msecs

    def format(self, record):
        ts = self.formatTime(record)
        msg = record.getMessage()
        if JSON_FORMAT:
            rec = {"timestamp": ts, "level": record.levelname, "message": msg, "logger": record.name}
            if current_request_id:
                rec["requestId"] = current_request_id
            return json.dumps(rec)
        return "[%s]\t%s\t%s\t%s" % (record.levelname, ts, current_request_id, msg.replace("\n", "\r"))


def log_error(result, trace):
    """The runtime's error line: `[ERROR] <type>: <message>` and the traceback,
    one log event (awslambdaric's log_error; lines joined with '\r' in text)."""
    if JSON_FORMAT:
        rec = {"timestamp": LambdaFormatter().formatTime(logging.makeLogRecord({})), "level": "ERROR",
               "message": result, "errorType": result["errorType"], "errorMessage": result["errorMessage"],
               "stackTrace": trace[1:]}
        if current_request_id:
            rec["requestId"] = current_request_id
        line = json.dumps(rec)
    else:
        lines = ["[ERROR] %s: %s" % (result["errorType"], result["errorMessage"])] + "".join(trace).splitlines()
        line = "\r".join(lines)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LambdaFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    function = importlib.import_module(os.environ.get("THAWTRACE_HANDLER", "function"))

    global current_request_id
    base = "http://%s/2018-06-01/runtime/invocation" % API
    while True:
        with urllib.request.urlopen(base + "/next", timeout=3600) as resp:
            rid = resp.headers.get("Lambda-Runtime-Aws-Request-Id")
            body = resp.read()
        if not rid:
            break
        current_request_id = rid
        try:
            result, kind = function.handler(json.loads(body or b"{}"), rid), "response"
        except Exception as exc:  # reported to the Runtime API and logged like Lambda does
            result, kind = {"errorType": type(exc).__name__, "errorMessage": str(exc)}, "error"
            log_error(result, traceback.format_exception(exc))
        req = urllib.request.Request("%s/%s/%s" % (base, rid, kind), data=json.dumps(result).encode(), method="POST")
        urllib.request.urlopen(req, timeout=30).read()


if __name__ == "__main__":
    main()
