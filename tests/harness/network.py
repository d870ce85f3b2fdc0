"""The network in front of recorded functions, for the neighbouring failures.

- `IdleNatProxy`: a TCP proxy that behaves like a NAT gateway's idle
  timeout. A connection with no bytes either way for `idle_s` loses its
  mapping: the proxy forgets it without telling either side, drops whatever
  the server sends on it later, and answers the client's next bytes with an
  RST (SO_LINGER 0), as AWS documents for NAT gateways.
- `SlowS3`: a small S3-compatible HTTP/1.1 endpoint for botocore; a bucket
  named `slow-<ms>` answers ListObjectsV2 after that many milliseconds.
- `SaturatedListener`: a listener whose accept queue is full, so the kernel
  drops further SYNs and connection attempts time out: what a client sees
  when a NAT gateway cannot allocate a port or an ENI is out of connections.
  Binds loopback only; the recorder runs in its own network namespace, where
  `net.ipv4.tcp_syn_retries` is lowered so a dropped SYN fails in ~3 s.

Every class keeps a timestamped log of what it did; recorders build their
ground truth from it.
"""

import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lambda_sim import LoopbackProxy


def now_ms():
    return int(time.time() * 1000)


class IdleNatProxy(LoopbackProxy):
    def __init__(self, upstream_port, idle_s):
        self.idle_s = idle_s
        self.lock = threading.Lock()
        self.conns = []
        self.log = []  # (ms, connection number, "open"|"expired"|"expired_pending"|"reset"|"dropped_reply")
        self.n = 0
        super().__init__(upstream_port, backlog=64)
        threading.Thread(target=self._reap, daemon=True).start()

    def _note(self, conn, what):
        with self.lock:
            self.log.append((now_ms(), conn["n"], what))

    def pair(self, client, upstream):
        self.n += 1
        conn = {"n": self.n, "client": client, "upstream": upstream, "last": time.monotonic(), "expired": False, "done": False, "last_from_client": False}
        with self.lock:
            self.conns.append(conn)
        self._note(conn, "open")
        threading.Thread(target=self._pump, args=(conn, client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(conn, upstream, client, False), daemon=True).start()

    def _reap(self):
        while not self.closed:
            time.sleep(0.05)
            with self.lock:
                conns = [c for c in self.conns if not c["expired"] and not c["done"]]
            for c in conns:
                if time.monotonic() - c["last"] >= self.idle_s:
                    c["expired"] = True
                    # The client spoke last: it is waiting for a reply that
                    # can no longer reach it.
                    self._note(c, "expired_pending" if c["last_from_client"] else "expired")

    def _pump(self, conn, src, dst, from_client):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                conn["done"] = True
                for s in (dst, src):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if conn["expired"]:
                if from_client:
                    # No mapping any more: the NAT answers with an RST.
                    self._note(conn, "reset")
                    conn["done"] = True
                    src.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    src.close()
                    try:
                        dst.close()
                    except OSError:
                        pass
                    return
                self._note(conn, "dropped_reply")
                continue
            conn["last"] = time.monotonic()
            conn["last_from_client"] = from_client
            try:
                dst.sendall(data)
            except OSError:
                conn["done"] = True
                return

    def events(self):
        with self.lock:
            return list(self.log)

    def close(self):
        super().close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            for s in (c["client"], c["upstream"]):
                try:
                    s.close()
                except OSError:
                    pass


class SlowS3:
    """ListObjectsV2 for any bucket; `slow-<ms>` buckets answer after <ms>."""

    def __init__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                bucket = self.path.lstrip("/").split("?", 1)[0].split("/", 1)[0]
                if bucket.startswith("slow-"):
                    time.sleep(min(int(bucket[5:]), 60000) / 1000.0)
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    "<Name>%s</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
                    "<IsTruncated>false</IsTruncated></ListBucketResult>" % bucket
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        del server
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class SaturatedListener:
    """A listener that never accepts, its queue filled: new SYNs are dropped."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        # One connection fills a backlog of 0; a second makes sure.
        self.fillers = []
        for _ in range(2):
            s = socket.socket()
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", self.port))
            except OSError:
                pass
            self.fillers.append(s)

    def close(self):
        for s in self.fillers + [self.sock]:
            s.close()


def enter_private_network():
    """Called inside `unshare -rn`: bring loopback up and make a dropped SYN
    fail after ~3 s (1 s + 2 s) instead of ~127 s. Only this namespace changes."""
    import subprocess

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/tcp_syn_retries", "w") as f:
        f.write("1")
