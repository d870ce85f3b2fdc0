"""A Lambda-like Python runtime client, as the AWS Python runtime behaves.

Polls the Runtime API emulator (tests/harness/lambda_sim.py), calls the
handler, posts the response. `logging` lines get the Python runtime's prefix
(`[LEVEL]\t<ISO ts>\t<requestId>\t<message>`, or with
AWS_LAMBDA_LOG_FORMAT=JSON the `{"timestamp","level","message","logger",
"requestId"}` record). grpcio's C-core writes its traces straight to the
process's stderr, so those lines carry no request ID, as in Lambda.
"""

import json
import logging
import os
import sys
import time
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


def main():
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LambdaFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    import function

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
        except Exception as exc:  # reported to the Runtime API like Lambda does
            logging.exception("Invoke Error")
            result, kind = {"errorType": type(exc).__name__, "errorMessage": str(exc)}, "error"
        req = urllib.request.Request("%s/%s/%s" % (base, rid, kind), data=json.dumps(result).encode(), method="POST")
        urllib.request.urlopen(req, timeout=30).read()


if __name__ == "__main__":
    main()
