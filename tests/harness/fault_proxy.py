#!/usr/bin/env python3
"""Proxies that make a dependency of the collector unwell, on loopback.

An HTTP proxy in front of a CloudWatch Logs endpoint (moto) that answers
the first N FilterLogEvents requests with a ThrottlingException, as the real
service does under load, and counts the FilterLogEvents calls it forwards:

    fault_proxy.py UPSTREAM_PORT THROTTLE_N STATE_FILE

Binds 127.0.0.1:0 and writes {"port": P, "throttled": T, "forwarded": F} to
STATE_FILE, updated on every FilterLogEvents request.

A TCP proxy in front of any endpoint (moto, an OTLP receiver over gRPC or
HTTP) that does to each connection what MODE_FILE says when it comes:

    fault_proxy.py --tcp UPSTREAM_PORT MODE_FILE STATE_FILE

    pass      forwards both ways
    refuse    connections are refused (ECONNREFUSED): the port is bound and
              never listened on; read once, at start (a route to nowhere)
    stall     accepts, reads, never answers (a connect or peer that hangs)
    reset     accepts, reads the first bytes, resets the connection (RST)
    delay MS  forwards, the first answer on each connection MS ms late

MODE_FILE is read for every new connection, so a test can heal the
dependency (or make it sick) between invocations. STATE_FILE holds
{"port": P, "connections": {MODE: N}}, updated on every connection.
"""

import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    global UPSTREAM, THROTTLE, STATE
    UPSTREAM = int(sys.argv[1])
    THROTTLE = int(sys.argv[2])
    STATE = sys.argv[3]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    write_state(server.server_address[1])
    server.serve_forever()


# ---------------------------------------------------------------- TCP faults

# Nothing is held longer than this (a stalled connection, a delayed answer).
HOLD_S = 120


def read_mode(path):
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        words = []
    if not words:
        return "pass", 0
    if words[0] == "delay":
        return "delay", int(words[1]) if len(words) > 1 else 1000
    return words[0], 0


def tcp_state(path, port, connections):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": port, "connections": connections}, f)
    os.replace(tmp, path)


def pipe(src, dst, delay_s):
    """Copies src to dst until either end closes; the first chunk of each
    answer waits delay_s."""
    src.settimeout(HOLD_S)
    waited = False
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if delay_s and not waited:
                time.sleep(delay_s)
                waited = True
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve_tcp(client, upstream, mode, delay_ms):
    if mode == "stall":
        client.settimeout(HOLD_S)
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass
        client.close()
        return
    if mode == "reset":
        client.settimeout(2)
        try:
            client.recv(65536)
        except OSError:
            pass
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        return
    try:
        up = socket.create_connection(("127.0.0.1", upstream), timeout=10)
    except OSError:
        client.close()
        return
    up.settimeout(None)
    delay_s = delay_ms / 1000.0 if mode == "delay" else 0
    threading.Thread(target=pipe, args=(client, up, 0), daemon=True).start()
    pipe(up, client, delay_s)


def main_tcp(upstream, mode_file, state):
    mode, _ = read_mode(mode_file)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    connections = {}
    if mode == "refuse":
        # Bound, never listened on: every connect is refused, and no other
        # program can take the port meanwhile.
        tcp_state(state, port, connections)
        while True:
            time.sleep(3600)
    sock.listen(64)
    tcp_state(state, port, connections)
    while True:
        client, _ = sock.accept()
        mode, delay_ms = read_mode(mode_file)
        with lock:
            connections[mode] = connections.get(mode, 0) + 1
            tcp_state(state, port, connections)
        threading.Thread(target=serve_tcp, args=(client, upstream, mode, delay_ms), daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--tcp":
        main_tcp(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        main()
