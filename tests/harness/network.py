"""The network in front of recorded functions, for the neighbouring failures.

- `IdleNatProxy`: a TCP proxy that behaves like a NAT gateway's idle
  timeout. A connection with no bytes either way for `idle_s` loses its
  mapping: the proxy forgets it without telling either side, drops whatever
  the server sends on it later, and answers the client's next bytes with an
  RST (SO_LINGER 0), as AWS documents for NAT gateways (`mode="reset"`), or
  silently drops them, never answering and never resetting, as NATs and
  firewalls that just lose the flow do (`mode="drop"`). With
  `watch_segments`, it also sees the client's bare TCP segments (keepalive
  probes, pure ACKs) on the loopback interface, as a NAT does, and they keep
  the mapping alive. It also keeps every chunk of payload it forwarded
  (`chunks()`), so `idle_gaps()` gives each flow's idle gaps: the last
  byte either way before, the bytes that ended the gap, and whether the
  server answered after them (a NAT idle near miss, when the gap came close
  to `idle_s` and the flow survived it).
- `SlowS3`: a small S3-compatible HTTP/1.1 endpoint for botocore; a bucket
  named `slow-<ms>` answers ListObjectsV2 after that many milliseconds.
- `SaturatedListener`: a listener whose accept queue is full, so the kernel
  drops further SYNs and connection attempts time out: what a client sees
  when a NAT gateway cannot allocate a port or an ENI is out of connections.
  Binds loopback only; the recorder runs in its own network namespace, where
  `net.ipv4.tcp_syn_retries` is lowered so a dropped SYN fails in ~3 s.
- `LateAcceptListener`: the same until it opens, then a relay upstream:
  connects slowed by lost SYNs that still succeed (`connect_slow`).
  With `watch`, it knows which connects stalled: every socket of the
  recorder's child processes seen in SYN-SENT towards it, with its process.
- `SilentServer`: accepts connections and reads them, never writes: a
  server that took the connection and never answers (no HTTP/2 SETTINGS
  either).

Every class keeps a timestamped log of what it did; recorders build their
ground truth from it.
"""

import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fault_proxy import pipe
from lambda_sim import LoopbackProxy


def now_ms():
    return int(time.time() * 1000)


class IdleNatProxy(LoopbackProxy):
    """See the module documentation. `events()` is the proxy's log, (ms,
    connection number, what), what one of:

    - "open": a client connected (a new mapping);
    - "expired": the mapping was forgotten, idle for `idle_s`, nothing
      pending; "expired_pending": forgotten while the client, which spoke
      last, was waiting for a reply;
    - "reset": the client's bytes met the forgotten mapping and were
      answered with an RST (mode "reset");
    - "dropped_request": the client's bytes met it and were silently
      dropped (mode "drop"); "dropped_reply": the server's were;
    - "keepalive_probe": (watch_segments) a TCP keepalive probe from the
      client kept the mapping alive; "probe_after_expiry": one came too late.
    """

    def __init__(self, upstream_port, idle_s, mode="reset", watch_segments=False):
        if mode not in ("reset", "drop"):
            raise ValueError("mode is reset or drop, not %r" % mode)
        self.idle_s = idle_s
        self.mode = mode
        self.lock = threading.Lock()
        self.conns = []
        self.by_port = {}  # client port -> connection (watch_segments)
        self.idle_since = {}  # connection number -> ms of its last bytes (or segment), once expired
        self.log = []  # (ms, connection number, what): see the class documentation
        self.chunk_log = []  # (ms, connection number, from_client, bytes): payload forwarded on a live mapping
        self.n = 0
        self.sniffer = None
        if watch_segments:
            # Every frame on loopback, as a NAT sees every packet of a flow.
            self.sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            self.sniffer.bind(("lo", 0))
            self.sniffer.settimeout(0.2)
        super().__init__(upstream_port, backlog=64)
        threading.Thread(target=self._reap, daemon=True).start()
        if self.sniffer is not None:
            threading.Thread(target=self._sniff, daemon=True).start()

    def _note(self, conn, what):
        with self.lock:
            self.log.append((now_ms(), conn["n"], what))

    def pair(self, client, upstream):
        self.n += 1
        conn = {"n": self.n, "client": client, "upstream": upstream, "last": time.monotonic(), "last_ms": now_ms(), "expired": False, "done": False, "last_from_client": False,
                "client_port": client.getpeername()[1], "client_next_seq": None}
        with self.lock:
            self.conns.append(conn)
            self.by_port[conn["client_port"]] = conn
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
                    with self.lock:
                        self.idle_since[c["n"]] = c["last_ms"]
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
                if from_client and self.mode == "drop":
                    # No mapping any more, and this NAT says nothing: the
                    # bytes go nowhere, the client waits for a reply.
                    self._note(conn, "dropped_request")
                    continue
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
            conn["last_ms"] = now_ms()
            conn["last_from_client"] = from_client
            with self.lock:
                self.chunk_log.append((conn["last_ms"], conn["n"], from_client, len(data)))
            try:
                dst.sendall(data)
            except OSError:
                conn["done"] = True
                return

    def _sniff(self):
        """Client segments to this proxy's port, bare ones included: any of
        them keeps the mapping alive (a NAT counts packets, not payload); a
        keepalive probe (no payload, sequence number one below the next
        one) is logged."""
        while not self.closed:
            try:
                frame, addr = self.sniffer.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            # Loopback shows each frame twice: as sent and as received.
            if addr[2] == socket.PACKET_OUTGOING or len(frame) < 54 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            ihl = (ip[0] & 15) * 4
            if ip[9] != 6:
                continue
            total = struct.unpack("!H", ip[2:4])[0]
            tcp = ip[ihl:]
            sport, dport, seq = struct.unpack("!HHI", tcp[:8])
            if dport != self.port:
                continue
            with self.lock:
                conn = self.by_port.get(sport)
            if conn is None or conn["done"]:
                continue
            flags = tcp[13]
            payload = total - ihl - (tcp[12] >> 4) * 4
            nxt = conn["client_next_seq"]
            probe = nxt is not None and payload == 0 and not flags & 0x07 and seq == (nxt - 1) & 0xFFFFFFFF
            end = (seq + payload + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
            if nxt is None or (end - nxt) & 0xFFFFFFFF < 0x80000000:
                conn["client_next_seq"] = end
            if conn["expired"]:
                if probe:
                    self._note(conn, "probe_after_expiry")
                continue
            conn["last"] = time.monotonic()
            conn["last_ms"] = now_ms()
            if probe:
                self._note(conn, "keepalive_probe")

    def events(self):
        with self.lock:
            return list(self.log)

    def chunks(self):
        """(ms, connection number, from_client, bytes) of each chunk of payload
        forwarded on a live mapping, in order."""
        with self.lock:
            return list(self.chunk_log)

    def idle_gaps(self, min_ms=0):
        """Each flow's idle gaps of at least `min_ms` that its mapping
        survived: {"connection", "ms" (when the bytes that ended the gap
        arrived), "idle_ms" (since the flow's last byte either way),
        "from_client" (who spoke after it), "answered" (the client spoke and
        the server sent bytes back after it on the same flow)}. Payload only:
        bare segments (watch_segments) keep a mapping alive but are not here."""
        by_conn = {}
        for ms, n, from_client, _ in self.chunks():
            by_conn.setdefault(n, []).append((ms, from_client))
        gaps = []
        for n, cs in sorted(by_conn.items()):
            for i in range(1, len(cs)):
                idle = cs[i][0] - cs[i - 1][0]
                if idle < min_ms:
                    continue
                answered = cs[i][1] and any(not fc for _, fc in cs[i + 1:])
                gaps.append({"connection": n, "ms": cs[i][0], "idle_ms": idle, "from_client": cs[i][1], "answered": answered})
        return sorted(gaps, key=lambda g: g["ms"])

    def last_bytes_ms(self, n):
        """When expired connection `n` last carried bytes (or, watching
        segments, any segment): its idle began then."""
        with self.lock:
            return self.idle_since.get(n)

    def close(self):
        super().close()
        if self.sniffer is not None:
            self.sniffer.close()
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
        self.lock = threading.Lock()
        self.requests = []  # (ms, client port, bucket): each request as it arrived

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                bucket = self.path.lstrip("/").split("?", 1)[0].split("/", 1)[0]
                with server.lock:
                    server.requests.append((now_ms(), self.client_address[1], bucket))
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
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class SaturatedListener:
    """A listener that never accepts, its queue filled: new SYNs are dropped.

    With `watch`, `stalled()` lists the connects that stalled on it: each
    socket seen in SYN-SENT towards its port (polled from /proc/net/tcp{,6}
    every 50 ms), with the process that owns it (a child of this one) and
    the times that bound its span from inside and outside (`_watch`)."""

    def __init__(self, watch=False):
        self.lock = threading.Lock()
        # socket inode -> {"pid", "local_port", "first_ms", "last_ms",
        # "before_ms", "after_ms", "seen"} (`_watch` says what the times bound)
        self.connects = {}
        self.closed = False
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
        # The fillers' own connects are not the clients'.
        self.own_ports = set()
        for s in self.fillers:
            try:
                self.own_ports.add(s.getsockname()[1])
            except OSError:
                pass
        if watch:
            threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        # Each poll is bracketed by the clock read before its first file
        # and after its last: a socket it shows in SYN-SENT was so at some
        # instant in [before, after]. A connect's span then lies within
        # (`before_ms`, `after_ms`): the start of the last poll that did not
        # show it and the end of the first that no longer did; and it
        # covers [`first_ms`, `last_ms`]: the end of the first poll that
        # showed it and the start of the last. Under load a poll takes
        # milliseconds; stamping a sighting with the poll's start alone once
        # made a connect look longer than it was (9 ms, in CI).
        port = ":%04X" % self.port
        before_prev = None
        while not self.closed:
            before = now_ms()
            seen = []
            for path in ("/proc/net/tcp", "/proc/net/tcp6"):
                try:
                    with open(path) as f:
                        rows = f.read().splitlines()[1:]
                except OSError:
                    continue
                for row in rows:
                    f = row.split()
                    # local, remote, state (02 = SYN-SENT), ..., inode
                    if len(f) < 10 or f[3] != "02" or not f[2].endswith(port):
                        continue
                    local_port = int(f[1].rsplit(":", 1)[1], 16)
                    if local_port not in self.own_ports:
                        seen.append((f[9], local_port))
            after = now_ms()
            for inode, local_port in seen:
                c = self.connects.get(inode)
                if c is None:
                    c = {"pid": socket_owner(inode), "local_port": local_port, "first_ms": after,
                         "last_ms": before, "before_ms": before_prev, "after_ms": None, "seen": 0}
                    with self.lock:
                        self.connects[inode] = c
                elif c["pid"] is None:
                    # Not found in any child's fds at first sight (a
                    # socket being handed its fd): look again.
                    c["pid"] = socket_owner(inode)
                c["last_ms"] = before
                # /proc/net/tcp is read in several reads, not a snapshot: a
                # poll can miss a socket still in SYN-SENT. Seen again, it
                # had not left.
                c["after_ms"] = None
                c["seen"] += 1
            shown = {inode for inode, _ in seen}
            with self.lock:
                for inode, c in self.connects.items():
                    if c["after_ms"] is None and inode not in shown:
                        c["after_ms"] = after
            before_prev = before
            time.sleep(0.05)

    def stalled(self):
        with self.lock:
            return [dict(c) for c in self.connects.values()]

    def close(self):
        self.closed = True
        for s in self.fillers + [self.sock]:
            s.close()


class LateAcceptListener(SaturatedListener):
    """A listener whose queue is full until `open()`, then a plain relay to
    `upstream_port`: connects made before it opens lose their SYNs and go
    through at the kernel's next SYN retransmission (1 s, then 3 s, 7 s
    after the first), slow but successful, as under NAT port allocation
    errors or an ENI near its connection limit.

    `stalled()` (the watcher's SYN-SENT spans, with the owning process)
    is the truth of how long each slow connect took."""

    def __init__(self, upstream_port):
        super().__init__(watch=True)
        self.upstream_port = upstream_port
        self.opened_ms = None

    def open(self):
        """Starts accepting: the fillers' queued connections are taken and
        dropped, then every connection is relayed upstream."""
        self.opened_ms = now_ms()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            if addr[1] in self.own_ports:
                conn.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                conn.close()
                continue
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=pipe, args=(a, b, 0), daemon=True).start()


def socket_owner(inode):
    """The pid of this process's child that holds socket `inode`, or None."""
    me = str(os.getpid())
    target = "socket:[%s]" % inode
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            if ppid != me:
                continue
            for fd in os.listdir("/proc/%s/fd" % pid):
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == target:
                    return int(pid)
        except OSError:
            continue
    return None


class SilentServer:
    """Accepts every connection and reads it, never writes a byte: a server
    that took the connection and then says nothing. `events()`: (ms, client
    port, "accepted" | "bytes" | "closed")."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log = []
        self.conns = []
        self.closed = False
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _note(self, port, what):
        with self.lock:
            self.log.append((now_ms(), port, what))

    def _accept(self):
        while not self.closed:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self._note(addr[1], "accepted")
            threading.Thread(target=self._read, args=(conn, addr[1]), daemon=True).start()

    def _read(self, conn, port):
        first = True
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._note(port, "closed")
                return
            if first:
                self._note(port, "bytes")
                first = False

    def events(self):
        with self.lock:
            return list(self.log)

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def set_syn_retries(n):
    """`net.ipv4.tcp_syn_retries` of this (private) namespace: a dropped SYN
    fails after 2^(n+1) - 1 seconds (1: 3 s, 3: 15 s; 6, the default, 127 s)."""
    with open("/proc/sys/net/ipv4/tcp_syn_retries", "w") as f:
        f.write(str(n))


def enter_private_network():
    """Called inside `unshare -rn`: bring loopback up and make a dropped SYN
    fail after ~3 s (1 s + 2 s) instead of ~127 s. Only this namespace changes."""
    import subprocess

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/tcp_syn_retries", "w") as f:
        f.write("1")
