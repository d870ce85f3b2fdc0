#!/usr/bin/env python3
"""An HTTP proxy in front of a CloudWatch Logs endpoint (moto) that answers
the first N FilterLogEvents requests with a ThrottlingException, as the real
service does under load, and counts the FilterLogEvents calls it forwards.

    fault_proxy.py UPSTREAM_PORT THROTTLE_N STATE_FILE

Binds 127.0.0.1:0 and writes {"port": P, "throttled": T, "forwarded": F} to
STATE_FILE, updated on every FilterLogEvents request.
"""

import http.client
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = int(sys.argv[1])
THROTTLE = int(sys.argv[2])
STATE = sys.argv[3]
lock = threading.Lock()
counts = {"throttled": 0, "forwarded": 0}


def write_state(port):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(counts, port=port), f)
    os.replace(tmp, STATE)


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        if target.endswith(".FilterLogEvents"):
            with lock:
                throttle = counts["throttled"] < THROTTLE
                counts["throttled" if throttle else "forwarded"] += 1
                write_state(self.server.server_address[1])
            if throttle:
                payload = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-ErrorType", "ThrottlingException")
                self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        conn.request("POST", self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    write_state(server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
