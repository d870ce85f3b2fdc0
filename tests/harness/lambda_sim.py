"""Lambda execution environments on loopback, for recording real logs.

Each environment is a real function process (Node.js with @grpc/grpc-js, or
Python with grpcio) driven through a local Lambda Runtime API:

- the runtime client polls `GET /2018-06-01/runtime/invocation/next`, calls
  the handler, posts `/response`; this emulator prints the platform lines
  (`START`/`END`/`REPORT`, or the JSON `platform.*` records) as Lambda does;
- between invocations the process is really frozen: SIGSTOP once it polls for
  the next invocation, SIGCONT when the next one is delivered;
- its stdout and stderr (one pipe, so their order is kept) become the log
  stream, one CloudWatch event per line, timestamped on arrival.

Ground truth comes from what the emulator knows, never from thawtrace: each
line is owned by the invocation that was running when it was written (lines
written after `END A` and before the freeze belong to A, lines written at the
thaw to the invocation being delivered). A delaying TCP proxy sits between
client and server so a ping can be in flight when the freeze comes; it reads
the HTTP/2 frames it carries, and the scenarios are timed by what it sees
(a client ping, a client's close), never by the library's log lines, so they
run the same under any trace setting.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)


# ---------------------------------------------------------------- proxy


class LoopbackProxy:
    """A TCP listener on 127.0.0.1 that connects each client to the upstream
    port and hands both sockets to `pair(client, upstream)`."""

    def __init__(self, upstream_port, backlog=16):
        self.upstream_port = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.pair(client, upstream)

    def pair(self, client, upstream):
        raise NotImplementedError

    def close(self):
        self.closed = True
        self.sock.close()


class DelayProxy(LoopbackProxy):
    """TCP proxy 127.0.0.1:<port> -> upstream, delaying every chunk each way."""

    def __init__(self, upstream_port, delay_ms):
        self.delay = delay_ms / 1000.0
        # freeze_network(): the function's whole microVM is paused, not only
        # its process (Lambda freezes the VM): what the server sends it stays
        # out of its socket until thaw_network(), then crosses the delay.
        self._net = threading.Condition()
        self._net_frozen = False
        self._net_thawed_at = 0.0
        super().__init__(upstream_port)

    def freeze_network(self):
        with self._net:
            self._net_frozen = True

    def thaw_network(self):
        with self._net:
            self._net_frozen = False
            self._net_thawed_at = time.monotonic()
            self._net.notify_all()

    def _hold_while_frozen(self):
        """Called when a chunk for the function's socket is due: returns at
        once if its network runs; else the chunk reached the paused VM and
        enters it after the thaw, crossing the delay again as the resumed
        VM's network path (and waits again if the VM froze meanwhile)."""
        held = False
        while True:
            with self._net:
                if self._net_frozen:
                    held = True
                    self._net.wait(0.05)
                    continue
                wait = self._net_thawed_at + self.delay - time.monotonic()
            if not held or wait <= 0:
                return
            time.sleep(min(wait, 0.05))

    def pair(self, client, upstream):
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst, on_recv=None, on_sent=None, on_end=None, gate=None, to_function=False):
        """Copy src to dst, each chunk `delay` late. Hooks, if given:
        on_recv(data) as a chunk is read, on_sent(data) once it is written,
        on_end("eof" | "reset") when src ends; gate(data) decides each
        chunk's fate: True forwards it, False swallows it, None stops the
        pump. to_function: dst is the function's socket, held while its
        network is frozen (freeze_network)."""
        # A reader thread stamps chunks; a writer thread sends each one when its
        # delay is up, so order is kept and throughput is not cut by the delay.
        import queue

        q = queue.Queue()

        def writer():
            while True:
                due, data = q.get()
                if data is None:
                    if to_function:
                        self._hold_while_frozen()
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if to_function:
                    self._hold_while_frozen()
                try:
                    dst.sendall(data)
                except OSError:
                    break
                if on_sent:
                    on_sent(data)
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=writer, daemon=True).start()
        while True:
            how = "eof"
            try:
                data = src.recv(65536)
            except OSError:
                data, how = b"", "reset"
            if data and gate is not None:
                verdict = gate(data)
                if verdict is None:
                    q.put((0, None))
                    return
                if not verdict:
                    continue
            if data and on_recv:
                on_recv(data)
            if not data and on_end:
                on_end(how)
            q.put((time.monotonic() + self.delay, data or None))
            if not data:
                return


class H2DelayProxy(DelayProxy):
    """A DelayProxy that watches the HTTP/2 frames it carries (plaintext h2c):
    `connections` holds one h2truth.H2Connection per proxied connection, with
    wall-clock times (now_ms) of client pings as the proxy received them,
    their acks as it handed them to the client's socket, GOAWAYs and
    closes.

    The recorder drives its scenarios from these observations, whatever the
    function logs: `mark()` then `wait_client_ping(mark, timeout)` or
    `wait_client_close(mark, timeout)`."""

    def __init__(self, upstream_port, delay_ms):
        self.connections = []
        self._n = 0
        # Notified whenever a client's bytes or close have been parsed.
        self.changed = threading.Condition()
        super().__init__(upstream_port, delay_ms)

    def pair(self, client, upstream):
        import h2truth

        conn = self.opened(h2truth.H2Connection(self._n + 1, now_ms()))
        threading.Thread(
            target=self._pump, args=(client, upstream),
            kwargs=dict(on_recv=lambda d: self.client_bytes(conn, now_ms(), d), on_end=lambda how: self.client_closed(conn, now_ms(), how)),
            daemon=True,
        ).start()
        threading.Thread(
            target=self._pump, args=(upstream, client),
            kwargs=dict(on_sent=lambda d: conn.server_bytes_delivered(now_ms(), d), on_end=lambda how: conn.server_closed(now_ms(), how), to_function=True),
            daemon=True,
        ).start()

    # What the client side of a connection does, recorded and announced to
    # the waits below.
    def opened(self, conn):
        with self.changed:
            self._n = max(self._n, conn.n)
            self.connections.append(conn)
            self.changed.notify_all()
        return conn

    def client_bytes(self, conn, t, data):
        conn.client_bytes(t, data)
        with self.changed:
            self.changed.notify_all()

    def client_closed(self, conn, t, how):
        conn.client_closed(t, how)
        with self.changed:
            self.changed.notify_all()

    def mark(self):
        """What the proxy has seen so far, for the waits below: per
        connection, how many client pings and HEADERS (requests), and
        whether the client had closed it."""
        with self.changed:
            return {c.n: (len(c.pings), c.counts["up"].get("HEADERS", 0), c.client_close_at() is not None)
                    for c in self.connections}

    def _wait(self, found, timeout):
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for c in list(self.connections):
                    hit = found(c)
                    if hit is not None:
                        return hit
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)

    def wait_client_ping(self, since, timeout, unanswered=False):
        """Wait for a client PING (not an ack) the proxy received after
        `since` (a mark()), on any connection, old or new (with
        `unanswered`, one whose ack the proxy has not yet delivered: a ping
        in flight now); returns (connection number, ping) or None after
        `timeout` seconds."""
        def found(c):
            seen = since.get(c.n, (0, 0, False))[0]
            for p in c.pings[seen:]:
                if not unanswered or p["ack_delivered"] is None:
                    return (c.n, dict(p))
            return None
        return self._wait(found, timeout)

    def wait_client_close(self, since, timeout):
        """Wait until the client closes (GOAWAY, EOF or reset) a connection
        on which it sent a request (HEADERS) after `since` (a mark()): the
        connection the calls made since went out on, not one the client
        gave up at a thaw before them. Returns (connection number, close
        time) or None after `timeout` seconds."""
        def found(c):
            _, headers, closed = since.get(c.n, (0, 0, False))
            t = c.client_close_at()
            if t is None or closed or c.counts["up"].get("HEADERS", 0) <= headers:
                return None
            return (c.n, t)
        return self._wait(found, timeout)


# ---------------------------------------------------------------- server


class EchoServer:
    """A real gRPC echo server: grpcio (echo_server.py) or any command that
    takes a port file, such as the tonic example server."""

    def __init__(self, workdir, command=None):
        port_file = os.path.join(workdir, "echo.port")
        command = command or [sys.executable, os.path.join(HERE, "echo_server.py")]
        self.proc = subprocess.Popen(
            command + [port_file],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            if os.path.exists(port_file):
                self.port = int(open(port_file).read())
                return
            time.sleep(0.05)
        raise RuntimeError("echo server did not start")

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        self.resume()
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------- log stream


class LogStream:
    """One execution environment's log stream, as CloudWatch Logs stores it."""

    def __init__(self, group, name, seq_base):
        self.group = group
        self.name = name
        self.events = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.owner = None  # request ID owning lines written now
        self.seq = seq_base

    def add(self, message, platform=False):
        with self.cond:
            ts = now_ms()
            self.seq += 1
            # CloudWatch event IDs are 56-digit decimal strings.
            eid = "%020d%018d%018d" % (ts, self.seq, zlib.crc32(self.name.encode()))
            self.events.append(
                {
                    "id": eid,
                    "timestamp": ts,
                    "message": message,
                    "logStream": self.name,
                    "logGroup": self.group,
                    "_owner": self.owner,
                    "_platform": platform,
                }
            )
            self.cond.notify_all()
            return eid

    def wait_for(self, predicate, since, timeout):
        """Wait until an event at index >= since satisfies predicate."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events[since:]:
                    if predicate(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def mark(self):
        with self.lock:
            return len(self.events)


# ---------------------------------------------------------------- runtime API


class _ApiHandler(BaseHTTPRequestHandler):
    """What both Runtime API emulators' handlers share: HTTP/1.1, quiet,
    one reply per connection."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class RuntimeApi:
    def __init__(self):
        self.lock = threading.Condition()
        self.pending = None  # (request_id, event) to deliver
        self.polling = False  # the runtime is waiting in /next
        self.responses = {}  # request_id -> ("response"|"error", body, time)
        self.holds = {}  # request_id -> threading.Event
        self.hold_responses = set()  # request IDs whose /response reply waits for release
        self.holding = set()  # request IDs whose function is done and waits for release
        self.shutdown = False
        self.deadline_ms = 30000  # each invocation's time, Lambda-Runtime-Deadline-Ms
        api = self

        class Handler(_ApiHandler):

            def do_GET(self):
                if self.path == "/2018-06-01/runtime/invocation/next":
                    with api.lock:
                        api.polling = True
                        api.lock.notify_all()
                        while api.pending is None and not api.shutdown:
                            api.lock.wait(1.0)
                        api.polling = False
                        item, api.pending = api.pending, None
                    if item is None:
                        return self._reply(200, b"{}")
                    rid, event = item
                    deadline = now_ms() + api.deadline_ms
                    try:
                        return self._reply(
                            200,
                            json.dumps(event).encode(),
                            [
                                ("Lambda-Runtime-Aws-Request-Id", rid),
                                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:recorded"),
                                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
                                ("Content-Type", "application/json"),
                            ],
                        )
                    except (BrokenPipeError, ConnectionResetError):
                        # This poll's client is gone: the event goes to the
                        # next poll rather than nowhere (an invocation that
                        # was never delivered cannot answer).
                        with api.lock:
                            if api.pending is None:
                                api.pending = item
                                api.lock.notify_all()
                        return None
                if self.path.startswith("/thawtrace/hold/"):
                    rid = self.path.rsplit("/", 1)[1]
                    with api.lock:
                        ev = api.holds.setdefault(rid, threading.Event())
                        api.holding.add(rid)
                        api.lock.notify_all()
                    ev.wait(30)
                    return self._reply(200, b"{}")
                self._reply(404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path.split("/")
                if len(parts) == 6 and parts[3] == "invocation" and parts[5] in ("response", "error"):
                    rid = parts[4]
                    with api.lock:
                        api.responses[rid] = (parts[5], body, now_ms())
                        api.lock.notify_all()
                        hold = api.holds.setdefault(rid, threading.Event()) if rid in api.hold_responses else None
                        if hold is not None:
                            api.holding.add(rid)
                    if hold is not None:
                        # The function answered (END is written); its runtime
                        # waits for this reply before polling /next, so the
                        # freeze comes when the recorder releases it.
                        hold.wait(30)
                    return self._reply(202, b"{}")
                self._reply(202, b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_polling(self, timeout=30):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not self.polling:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("runtime did not poll for the next invocation")
                self.lock.wait(left)

    def deliver(self, rid, event):
        with self.lock:
            self.responses.pop(rid, None)  # a retried invocation answers again
            self.pending = (rid, event)
            self.lock.notify_all()

    def wait_response(self, rid, timeout=40):
        deadline = time.monotonic() + timeout
        with self.lock:
            while rid not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("invocation %s did not answer" % rid)
                self.lock.wait(left)
            return self.responses[rid]

    def wait_holding(self, rid, timeout):
        """Wait until the function of invocation rid is done with its work
        and waits to be released (True), or `timeout` seconds (False)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while rid not in self.holding:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
            return True

    def release(self, rid):
        with self.lock:
            self.holds.setdefault(rid, threading.Event()).set()

    def close(self):
        with self.lock:
            self.shutdown = True
            self.lock.notify_all()
        self.server.shutdown()


# ---------------------------------------------------------------- environment


class Environment:
    """One execution environment: a function process, its log stream, its freezes."""

    def __init__(self, spec, stream, target, workdir, timeline=None):
        self.spec = spec
        self.stream = stream
        # The emulator's own events, for the harness truth (h2truth.Timeline):
        # (now_ms, "start" | "owner" | "freeze" | "thaw" | "kill" | "close", detail).
        self.timeline = timeline if timeline is not None else []
        self.api = RuntimeApi()
        self.fmt = spec.get("format", "text")
        self.start_order = spec.get("start", "platform")
        env = dict(os.environ)
        for k, v in spec.get("env", {}).items():
            # None: the variable is unset (e.g. no GRPC_TRACE at all).
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        env["AWS_LAMBDA_RUNTIME_API"] = self.api.address
        env["THAWTRACE_TARGET"] = target
        env["GRPC_TARGET"] = "http://" + target
        env["AWS_LAMBDA_FUNCTION_NAME"] = spec["function"]
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = "128"
        env["AWS_LAMBDA_FUNCTION_VERSION"] = "$LATEST"
        env["AWS_LAMBDA_LOG_GROUP_NAME"] = stream.group
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = stream.name
        if self.fmt == "json":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env
        # The function's timeout (Lambda's Timeout setting), if the spec sets one.
        self.timeout_s = spec.get("timeout_s")
        # The proxy whose deliveries freeze with the function (spec
        # "frozen_network"; run_environment sets it), or None.
        self.network = None
        self._start_process()

    def _start_process(self):
        self.proc = subprocess.Popen(
            self.spec["command"],
            cwd=self.spec["cwd"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.timeline.append((now_ms(), "start", self.proc.pid))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.frozen = False

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line:
                self.stream.add(line)

    # Platform lines, as Lambda writes them.
    def platform_start(self, rid):
        if self.fmt == "json":
            self.stream.add(json.dumps({"time": iso(now_ms()), "type": "platform.start", "record": {"requestId": rid, "version": "$LATEST"}}), True)
        else:
            self.stream.add("START RequestId: %s Version: $LATEST" % rid, True)

    def platform_end(self, rid, started_ms, status):
        duration = now_ms() - started_ms + 0.37
        billed = int(duration) + 1
        mem = 64 + random.randint(0, 30)
        if self.fmt == "json":
            self.stream.add(json.dumps({"time": iso(now_ms()), "type": "platform.runtimeDone", "record": {"requestId": rid, "status": status, "metrics": {"durationMs": duration, "producedBytes": 16}}}), True)
            self.stream.add(json.dumps({"time": iso(now_ms()), "type": "platform.report", "record": {"requestId": rid, "metrics": {"durationMs": duration, "billedDurationMs": billed, "memorySizeMB": 128, "maxMemoryUsedMB": mem}, "status": status}}), True)
        else:
            self.stream.add("END RequestId: %s" % rid, True)
            self.stream.add("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: 128 MB\tMax Memory Used: %d MB\t" % (rid, duration, billed, mem), True)

    def freeze(self):
        # Lambda freezes once the runtime asks for the next invocation.
        self.api.wait_polling()
        time.sleep(0.002)
        if self.network:
            self.network.freeze_network()
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.timeline.append((now_ms(), "freeze", None))
        self.frozen = True

    def thaw(self):
        self.timeline.append((now_ms(), "thaw", None))
        os.kill(self.proc.pid, signal.SIGCONT)
        if self.network:
            self.network.thaw_network()
        self.frozen = False

    def set_owner(self, rid):
        self.stream.owner = rid
        self.timeline.append((now_ms(), "owner", rid))

    def invoke(self, rid, event, on_running=None):
        """Deliver one invocation; returns after the response, before the freeze."""
        self.api.wait_polling()
        if self.start_order == "platform":
            # START when the invocation is delivered, then the thaw: timers that
            # expired while frozen print after START.
            self.set_owner(rid)
            self.platform_start(rid)
            if self.frozen:
                self.thaw()
        else:
            # The function side writes START after the thaw: thaw lines come first.
            self.set_owner(rid)
            if self.frozen:
                self.thaw()
                time.sleep(0.05)
            self.platform_start(rid)
        started = now_ms()
        self.api.deliver(rid, event)
        if on_running:
            on_running(rid)
        try:
            kind, _, _ = self.api.wait_response(rid, timeout=self.timeout_s or 40)
        except RuntimeError:
            if not self.timeout_s:
                raise
            self.timed_out(rid, started)
            return
        self.platform_end(rid, started, "success" if kind == "response" else "error")

    def timed_out(self, rid, started):
        """Lambda's timeout: its line, END and REPORT with the timeout status,
        then a new runtime process in the same environment (the next
        invocation starts it again, with a fresh init)."""
        if self.fmt == "json":
            self.stream.add(json.dumps({"time": iso(now_ms()), "type": "platform.runtimeDone", "record": {"requestId": rid, "status": "timeout", "metrics": {"durationMs": now_ms() - started, "producedBytes": 0}}}), True)
            self.stream.add(json.dumps({"time": iso(now_ms()), "type": "platform.report", "record": {"requestId": rid, "metrics": {"durationMs": now_ms() - started, "billedDurationMs": now_ms() - started, "memorySizeMB": 128, "maxMemoryUsedMB": 80}, "status": "timeout"}}), True)
        else:
            self.stream.add("%s %s Task timed out after %.2f seconds" % (iso(now_ms()), rid, (now_ms() - started) / 1000.0), True)
            self.stream.add("END RequestId: %s" % rid, True)
            self.stream.add("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: 128 MB\tMax Memory Used: 80 MB\tStatus: timeout" % (rid, now_ms() - started, now_ms() - started), True)
        self.timeline.append((now_ms(), "kill", self.proc.pid))
        self.proc.kill()
        self.proc.wait()
        self.reader.join(timeout=5)
        self._start_process()

    def close(self):
        # From here on the process is shut down by the harness: its closes
        # are no keepalive timeouts.
        self.timeline.append((now_ms(), "close", self.proc.pid))
        if self.frozen:
            self.thaw()
        self.api.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.timeline.append((now_ms(), "kill", self.proc.pid))
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)


# ---------------------------------------------------------------- scenarios


def run_environment(spec, stream, proxy, server, workdir, rng, log, timeline=None):
    """Run one environment's script of invocations with real freezes between
    them, the function's gRPC client connecting through `proxy` (an
    H2DelayProxy, whose observations time the race and genuine scenarios);
    `timeline`, if given, receives the emulator's events (Environment.timeline)."""
    target = "127.0.0.1:%d" % proxy.port
    env = Environment(spec, stream, target, workdir, timeline)
    if spec.get("frozen_network"):
        env.network = proxy
    try:
        for step in spec["script"]:
            rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            role = step["role"]
            # Taken before the thaw: what the proxy sees from here on is this
            # invocation's (a ping sent at the thaw included, as its line is
            # owned by this invocation).
            mark = proxy.mark()

            def on_running(rid, role=role, mark=mark):
                # Driven by what the proxy sees on the wire, not by the
                # library's log lines, which some trace settings never print.
                if role == "race":
                    # End the invocation right after a ping went out, so the
                    # freeze catches it in flight: once the function is done
                    # with its calls, the first ping of this invocation that
                    # is still unanswered (not the one C-core sends with the
                    # first call after a thaw, long answered by then).
                    env.api.wait_holding(rid, 30)
                    hit = proxy.wait_client_ping(mark, 8, unanswered=True)
                    log("  %s race: ping %s" % (rid[:8], "seen (connection %d)" % hit[0] if hit else "NOT seen"))
                    env.api.release(rid)
                elif role == "genuine":
                    # The server stops answering inside the invocation: a real
                    # network timeout, in one invocation, which ends when the
                    # client gives up the connection its call went out on.
                    server.pause()
                    hit = proxy.wait_client_close(mark, 12)
                    log("  %s genuine: client close %s" % (rid[:8], "seen (connection %d)" % hit[0] if hit else "NOT seen"))
                    time.sleep(0.3)
                    server.resume()
                    env.api.release(rid)

            event = dict(step.get("event", {}))
            if role in ("race", "genuine"):
                if spec.get("hold") == "response":
                    env.api.hold_responses.add(rid)
                else:
                    event["hold"] = "release"
            env.invoke(rid, event, on_running)
            env.freeze()
            time.sleep(step["gap_ms"] / 1000.0)
    finally:
        env.close()


class GrpcJs:
    name = "grpc-js"

    @staticmethod
    def is_ping(msg):
        return "| keepalive |" in msg and "Sending ping" in msg

    @staticmethod
    def is_timeout(msg):
        return "| keepalive |" in msg and "Ping timeout passed without response" in msg

    @staticmethod
    def connection(msg):
        # "... | keepalive | (4) 127.0.0.1:40123 Sending ping ..." -> "(4) 127.0.0.1:40123"
        rest = msg.split("| keepalive | ", 1)[1]
        return " ".join(rest.split(" ", 2)[:2])

    @staticmethod
    def acked(msg):
        return None


class Instrument:
    """thawtrace-instrument events of a Rust (tonic) function."""

    name = "tonic"

    @staticmethod
    def _event(msg, name):
        return ('event="%s"' % name) in msg or ('"event":"%s"' % name) in msg

    @classmethod
    def is_ping(cls, msg):
        return cls._event(msg, "ping_sent")

    @classmethod
    def is_timeout(cls, msg):
        return cls._event(msg, "keepalive_timeout")

    @staticmethod
    def connection(msg):
        for sep in ("conn=", '"conn":'):
            if sep in msg:
                return msg.split(sep, 1)[1].split(" ", 1)[0].split(",", 1)[0]
        return "?"

    @staticmethod
    def acked(msg):
        return None


class CCore:
    """grpcio (C-core) traces, keyed by peer; pings carry an id that acks repeat."""

    name = "grpcio"

    @staticmethod
    def is_ping(msg):
        return "]: Ping " in msg and " sent [" in msg

    @staticmethod
    def is_timeout(msg):
        return "Ping timeout. Closing transport." in msg or "Keepalive watchdog fired. Closing transport." in msg or "Keepalive timeout. Closing transport." in msg

    @staticmethod
    def connection(msg):
        if " sent [" in msg:
            return msg.split(" sent [", 1)[1].split("]", 1)[0]
        return msg.split("] ", 1)[1].strip().split(": ", 1)[0]

    @staticmethod
    def ping_id(msg):
        return msg.split("]: Ping ", 1)[1].split(" ", 1)[0]

    @staticmethod
    def acked(msg):
        if "received ping ack " in msg:
            return msg.rsplit(" ", 1)[1].strip()
        return None

    @staticmethod
    def timer(msg):
        """`Set ping timeout timer of 1000ms for ping id X` -> (X, 1000)."""
        if "Set ping timeout timer of " not in msg:
            return None
        rest = msg.split("Set ping timeout timer of ", 1)[1]
        ms, _, pid = rest.partition("ms for ping id ")
        return pid.strip(), int(ms)


def ccore_truth(events):
    """C-core: a ping's timer fires unless its ack is read before the timer
    expires; the timeout line is the latest such ping's on that peer (C-core
    can read the late ack just before firing the timer at a thaw)."""
    pings = {}  # id -> {"ev", "peer", "expiry", "ack"}
    findings = []
    for ev in events:
        msg = ev["message"]
        ts = ev["timestamp"]
        if CCore.is_ping(msg):
            pings[CCore.ping_id(msg)] = {"ev": ev, "peer": CCore.connection(msg), "expiry": None, "ack": None}
        elif CCore.timer(msg):
            pid, ms = CCore.timer(msg)
            if pid in pings:
                pings[pid]["expiry"] = pings[pid]["ev"]["timestamp"] + ms
        elif CCore.acked(msg) is not None:
            p = pings.get(CCore.acked(msg))
            if p is not None and p["ack"] is None:
                p["ack"] = ts
        elif CCore.is_timeout(msg):
            peer = CCore.connection(msg)
            fired = [
                p for p in pings.values()
                if p["peer"] == peer and p["expiry"] is not None and p["expiry"] <= ts + 5
                and (p["ack"] is None or p["ack"] >= p["expiry"]) and not p.get("used")
            ]
            if not fired:
                continue
            p = max(fired, key=lambda p: (p["ev"]["timestamp"], p["ev"]["id"]))
            for q in fired:
                q["used"] = True
            ping = p["ev"]
            kind = "keepalive_freeze_timeout" if ping["_owner"] != ev["_owner"] else "keepalive_timeout"
            findings.append({
                "kind": kind, "log_group": ev["logGroup"], "log_stream": ev["logStream"],
                "ping_request_id": ping["_owner"], "timeout_request_id": ev["_owner"],
                "ping_event_id": ping["id"], "timeout_event_id": ev["id"],
            })
    return findings


def truth_for(events, lib):
    """Expected findings: each ping timeout paired with the ping it gave up on
    (the oldest unanswered ping on its connection), owners as the emulator
    saw them."""
    if lib is CCore:
        return ccore_truth(events)
    findings = []
    outstanding = {}  # connection -> [(ping id or None, event)]
    for ev in events:
        msg = ev["message"]
        if lib.is_ping(msg):
            pid = lib.ping_id(msg) if hasattr(lib, "ping_id") else None
            pending = outstanding.setdefault(lib.connection(msg), [])
            if pid is None:
                pending.clear()  # grpc-js keeps one ping in flight per connection
            pending.append((pid, ev))
        elif lib.acked(msg) is not None:
            pid = lib.acked(msg)
            for pending in outstanding.values():
                pending[:] = [p for p in pending if p[0] != pid]
        elif lib.is_timeout(msg):
            pending = outstanding.pop(lib.connection(msg), [])
            if not pending:
                continue
            ping = pending[0][1]
            kind = "keepalive_freeze_timeout" if ping["_owner"] != ev["_owner"] else "keepalive_timeout"
            findings.append(
                {
                    "kind": kind,
                    "log_group": ev["logGroup"],
                    "log_stream": ev["logStream"],
                    "ping_request_id": ping["_owner"],
                    "timeout_request_id": ev["_owner"],
                    "ping_event_id": ping["id"],
                    "timeout_event_id": ev["id"],
                }
            )
    return findings


# ================================================================ other execution modes
#
# Lambda Managed Instances (several invocations at once in one environment,
# never frozen) and SnapStart (a snapshot taken after INIT, restored later
# into a new environment whose network has no state for the connections the
# snapshot holds). The functions and gRPC libraries are real; the platform
# records, the concurrency and the restore are played here. Record shapes:
# the runtime interface emulator's internal/lambda-managed-instances
# (interop/events_api.go, telemetry/events.go, invoke/metrics.go) and AWS's
# SnapStart monitoring and Telemetry API schema pages.

import collections
import struct


def go_json(obj):
    """JSON as Go's encoding/json writes it (no spaces)."""
    return json.dumps(obj, separators=(",", ":"))


def pids_of_tree(root):
    """The process ids of `root` and its descendants (from /proc)."""
    children = collections.defaultdict(list)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def socket_owner(local_port, remote_port, pids):
    """Which of `pids` holds the TCP socket 127.0.0.1:local_port ->
    127.0.0.1:remote_port (from /proc/net/tcp and /proc/<pid>/fd)."""
    inode = None
    want = ("%04X" % local_port, "%04X" % remote_port)
    # grpcio's sockets are IPv6 ones with v4-mapped addresses: tcp6.
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[1].rsplit(":", 1)[1] == want[0] and parts[2].rsplit(":", 1)[1] == want[1]:
                        inode = parts[9]
                        break
        except OSError:
            continue
        if inode is not None:
            break
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


class ModesProxy(H2DelayProxy):
    """An H2DelayProxy that also knows, per connection, which process of the
    environment holds the client socket (`pid`, looked up in /proc when the
    connection is accepted), and can play a SnapStart restore: `restore(how)`
    marks every connection that exists now as stale. From then on the network
    has no state for them: with "reset", the client's next bytes on one are
    answered with a TCP reset (close with SO_LINGER 0) and the server side is
    closed; with "blackhole", its bytes are swallowed and nothing comes back.
    What the client sent on a stale connection after the restore (HEADERS,
    PINGs, GOAWAY) is still parsed and kept, with times."""

    def __init__(self, upstream_port, delay_ms):
        self.restore_at = None
        self.drop = None
        self.root_pid = None
        self.flows = {}  # connection number -> dict(stale, headers_after, first_use_after, dropped_at, pid, client_port)
        super().__init__(upstream_port, delay_ms)

    def pair(self, client, upstream):
        import h2truth

        conn = self.opened(h2truth.H2Connection(self._n + 1, now_ms()))
        flow = {"stale": False, "headers_after": [], "first_use_after": None, "dropped_at": None, "pid": None,
                "client": client, "upstream": upstream}
        try:
            flow["client_port"] = client.getpeername()[1]
        except OSError:
            flow["client_port"] = None
        self.flows[conn.n] = flow
        if self.root_pid and flow["client_port"]:
            def lookup():
                # A few tries: the connect may still be on its way.
                for _ in range(20):
                    try:
                        flow["pid"] = socket_owner(flow["client_port"], self.port, pids_of_tree(self.root_pid))
                    except Exception as exc:  # kept for the observations
                        flow["pid_error"] = repr(exc)
                    if flow["pid"] is not None:
                        return
                    time.sleep(0.02)
            threading.Thread(target=lookup, daemon=True).start()

        def up_gate(data):
            t = now_ms()
            if not flow["stale"]:
                self.client_bytes(conn, t, data)
                return True
            before = conn.counts["up"].get("HEADERS", 0)
            self.client_bytes(conn, t, data)
            if conn.counts["up"].get("HEADERS", 0) > before:
                flow["headers_after"].append(t)
            if flow["first_use_after"] is None:
                flow["first_use_after"] = t
            if self.drop == "reset" and flow["dropped_at"] is None:
                flow["dropped_at"] = t
                try:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.close()
                except OSError:
                    pass
                try:
                    upstream.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return None  # stop reading this side
            return False

        def down_gate(data):
            if flow["stale"]:
                return False
            return True

        threading.Thread(target=self._pump, args=(client, upstream),
                         kwargs=dict(gate=up_gate, on_end=lambda how: self.client_closed(conn, now_ms(), how)),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client),
                         kwargs=dict(gate=down_gate, on_end=lambda how: conn.server_closed(now_ms(), how),
                                     on_sent=lambda d: conn.server_bytes_delivered(now_ms(), d)),
                         daemon=True).start()

    def restore(self, how):
        """The SnapStart restore: every connection open now is stale."""
        self.drop = how
        self.restore_at = now_ms()
        for flow in self.flows.values():
            flow["stale"] = True
        return self.restore_at

    def connections_json(self):
        out = []
        for c in self.connections:
            j = c.to_json()
            flow = self.flows.get(c.n, {})
            j.update({"pid": flow.get("pid"), "pid_error": flow.get("pid_error"), "client_port": flow.get("client_port"),
                      "stale": flow.get("stale", False), "headers_after_restore": list(flow.get("headers_after", [])),
                      "first_use_after_restore": flow.get("first_use_after"), "reset_at": flow.get("dropped_at")})
            out.append(j)
        return out


class ModesRuntimeApi:
    """The Runtime API for the other modes: invocations wait in a queue and
    any number of runtime workers may poll /next at once (Managed Instances:
    several processes, or one loop that does not wait for its handler);
    `/runtime/restore/next` answers once the recorder restores (SnapStart);
    `/thawtrace/hold/<id>` waits for the recorder's release."""

    def __init__(self):
        self.lock = threading.Condition()
        self.queue = collections.deque()
        self.pollers = 0
        self.polls = 0  # /next requests so far
        self.responses = {}
        self.holds = {}
        self.holding = set()
        self.restore_polled = None  # time the runtime called /restore/next
        self.restored = False
        self.errors = []  # (path, body) of init / restore errors
        self.delivered = {}  # request id -> (time it was queued, event)
        self.shutdown = False
        self.function_arn = "arn:aws:lambda:us-east-1:123456789012:function:recorded"
        api = self

        class Handler(_ApiHandler):

            def do_GET(self):
                if self.path == "/2018-06-01/runtime/invocation/next":
                    with api.lock:
                        api.pollers += 1
                        api.polls += 1
                        api.lock.notify_all()
                        while not api.queue and not api.shutdown:
                            api.lock.wait(1.0)
                        api.pollers -= 1
                        item = api.queue.popleft() if api.queue and not api.shutdown else None
                        api.lock.notify_all()
                    if item is None:
                        return self._reply(200, b"{}")
                    rid, event = item
                    return self._reply(200, json.dumps(event).encode(), [
                        ("Lambda-Runtime-Aws-Request-Id", rid),
                        ("Lambda-Runtime-Deadline-Ms", str(now_ms() + 30000)),
                        ("Lambda-Runtime-Invoked-Function-Arn", api.function_arn),
                        ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
                        ("Content-Type", "application/json"),
                    ])
                if self.path == "/2018-06-01/runtime/restore/next":
                    with api.lock:
                        api.restore_polled = now_ms()
                        api.lock.notify_all()
                        deadline = time.monotonic() + 60
                        while not api.restored and not api.shutdown and time.monotonic() < deadline:
                            api.lock.wait(1.0)
                    return self._reply(200, b"")
                if self.path.startswith("/thawtrace/hold/"):
                    rid = self.path.rsplit("/", 1)[1]
                    with api.lock:
                        ev = api.holds.setdefault(rid, threading.Event())
                        api.holding.add(rid)
                        api.lock.notify_all()
                    ev.wait(30)
                    return self._reply(200, b"{}")
                self._reply(404)

            def _body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return body
                        body += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_POST(self):
                body = self._body()
                parts = self.path.split("/")
                if len(parts) == 6 and parts[3] == "invocation" and parts[5] in ("response", "error"):
                    with api.lock:
                        api.responses[parts[4]] = (parts[5], body, now_ms())
                        api.lock.notify_all()
                    return self._reply(202, b"{}")
                with api.lock:
                    api.errors.append((self.path, body.decode("utf-8", "replace")))
                self._reply(202, b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A runtime killed (or shut down) while its /next waits: nothing to report.
        self.server.handle_error = lambda request, client_address: None
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _wait(self, cond, timeout):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
            return True

    def wait_pollers(self, n, timeout=30):
        return self._wait(lambda: self.pollers >= n, timeout)

    def wait_restore_polled(self, timeout=30):
        return self._wait(lambda: self.restore_polled is not None, timeout)

    def wait_polls(self, n, timeout=30):
        return self._wait(lambda: self.polls >= n, timeout)

    def deliver(self, rid, event):
        with self.lock:
            self.delivered[rid] = (now_ms(), event)
            self.queue.append((rid, event))
            self.lock.notify_all()

    def wait_response(self, rid, timeout=40):
        if not self._wait(lambda: rid in self.responses, timeout):
            raise RuntimeError("invocation %s did not answer" % rid)
        return self.responses[rid]

    def wait_holding(self, rid, timeout):
        return self._wait(lambda: rid in self.holding, timeout)

    def release(self, rid):
        with self.lock:
            self.holds.setdefault(rid, threading.Event()).set()

    def release_restore(self):
        with self.lock:
            self.restored = True
            self.lock.notify_all()

    def close(self):
        with self.lock:
            self.shutdown = True
            for ev in self.holds.values():
                ev.set()
            self.lock.notify_all()
        self.server.shutdown()


class ModesLogStream(LogStream):
    """A log stream that keeps, for each line, the set of invocations in
    flight when it was written (`_in_flight`), besides the classic `_owner`;
    `target` can redirect the process's lines to another stream (the
    SnapStart snapshot's INIT stream) until the restore."""

    def __init__(self, group, name, seq_base):
        super().__init__(group, name, seq_base)
        self.in_flight = set()
        self.closed = False

    def add(self, message, platform=False):
        with self.cond:
            flight = sorted(self.in_flight)
        eid = super().add(message, platform)
        with self.cond:
            for ev in reversed(self.events):
                if ev["id"] == eid:
                    ev["_in_flight"] = flight
                    break
        return eid


RUNTIMES = {
    # (runtime version, its ARN's hash), as INIT_START / platform.initStart print them.
    "node": ("nodejs:22.v58", "0d9f5cb7c6cd96e6ec16c1ec6b4b2e3f4e07a0fc4bcd1fc3cd8a1a0d7e4f6c1a"),
    "python": ("python:3.12.v36", "7b620fc2e66107a1046b140b9d320295811af3ad5d4c6a011fad1fa65127e9e6"),
    "java": ("java:17.v42", "5c4e8e3b0f0a1d6a9c2b7e4f3a8d1c6b9e2f5a0d7c4b1e8f3a6d9c2b5e8f1a4d"),
    # provided.al2023: a custom runtime (the Rust function's bootstrap)
    "rust": ("provided:al2023.v109", "3a3b6c4ad2d44a0b5f1d5dd2e4c84b8b1e6f5b0a7f8c2e6d9d0b1c2a3e4f5061"),
}


class ModesEnvironment:
    """One execution environment of another mode: a function process (or
    several, for awslambdaric's multi-concurrency workers, all children of
    one runtime process), its log stream, the platform records."""

    def __init__(self, spec, stream, proxy, workdir, timeline, init_stream=None):
        self.spec = spec
        self.stream = stream
        self.out = init_stream or stream  # where the process's lines go now
        self.proxy = proxy
        self.timeline = timeline
        self.api = ModesRuntimeApi()
        self.fmt = spec.get("format", "json")
        self.function = spec["function"]
        self.version = "1"
        self.api.function_arn = "arn:aws:lambda:us-east-1:123456789012:function:%s:%s" % (self.function, self.version)
        self.runtime = RUNTIMES[spec.get("runtime", "node")]
        env = dict(os.environ)
        for k, v in spec.get("env", {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        env["AWS_LAMBDA_RUNTIME_API"] = self.api.address
        env["THAWTRACE_TARGET"] = "127.0.0.1:%d" % proxy.port
        env["GRPC_TARGET"] = "http://127.0.0.1:%d" % proxy.port
        env["AWS_LAMBDA_FUNCTION_NAME"] = self.function
        env["AWS_LAMBDA_FUNCTION_VERSION"] = self.version
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = "2048" if spec["mode"] == "managed-instances" else "128"
        env["PYTHONUNBUFFERED"] = "1"
        if spec["mode"] == "managed-instances":
            env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "lambda-managed-instances"
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(spec.get("concurrency", 4))
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"  # mandatory on Managed Instances
        elif spec["mode"] == "snapstart":
            env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
        if spec["mode"] != "snapstart":
            # SnapStart functions do not get these (snapstart-monitoring).
            env["AWS_LAMBDA_LOG_GROUP_NAME"] = stream.group
            env["AWS_LAMBDA_LOG_STREAM_NAME"] = stream.name
        if self.fmt == "json":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        self.env = env
        self.closing = None

    def emit(self, record_type, record, stream=None):
        (stream or self.stream).add(go_json({"time": iso(now_ms()), "type": record_type, "record": record}), True)

    def start_process(self):
        self.started_ms = now_ms()
        self.proc = subprocess.Popen(self.spec["command"], cwd=self.spec["cwd"], env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.proxy.root_pid = self.proc.pid
        self.timeline.append((now_ms(), "start", self.proc.pid))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line and self.closing is None:
                self.out.add(line)

    def stop_signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except OSError:
            pass

    def close(self):
        # From here on the harness shuts the processes down: their closes are
        # no keepalive timeouts, their last words not part of the stream.
        self.closing = now_ms()
        self.timeline.append((self.closing, "close", self.proc.pid))
        self.stop_signal(signal.SIGCONT)
        self.stop_signal(signal.SIGKILL)
        self.api.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.reader.join(timeout=5)

    def responses(self):
        """{request id: the function's decoded response}, with `_kind`
        (response | error), `_at` (when it came), `_delivered` (when the
        invocation was queued) and `_event`. A function that does not list
        its calls (the tonic example answers {"ok": N}) gets `calls`
        made up from what the harness knows: one failed call per failure,
        spanning the invocation (`window`: true), and, when its event asked
        for a spin, `spin` from the delivery for spin_ms (`spin_window`)."""
        out = {}
        for rid, (kind, body, t) in self.api.responses.items():
            try:
                r = json.loads(body or b"null")
                r = dict(r) if isinstance(r, dict) else {"_body": r}
            except ValueError:
                r = {}
            delivered, event = self.api.delivered.get(rid, (None, {}))
            r.update(_kind=kind, _at=t, _delivered=delivered, _event=event)
            if "calls" not in r and isinstance(r.get("ok"), int) and delivered is not None:
                asked = event.get("calls", 1)
                r["calls"] = [{"i": i, "ok": i < r["ok"], "code": "OK" if i < r["ok"] else "?", "details": "",
                               "start_ms": delivered, "end_ms": t, "window": True} for i in range(asked)]
                r.setdefault("pid", self.proc.pid)
                if event.get("spin_ms"):
                    # It spins as soon as it has the event: from its delivery
                    # for spin_ms (and a little more).
                    r["spin"] = [delivered, delivered + int(event["spin_ms"]) + 30]
                    r["spin_window"] = True
            out[rid] = r
        return out


class ManagedInstanceEnvironment(ModesEnvironment):
    """Lambda Managed Instances: invocations overlap in one environment, which
    is never frozen; JSON platform records platform.initStart and
    platform.initReport once, platform.start and platform.report per
    invocation (no platform.runtimeDone, no END)."""

    def init(self):
        version, arn_hash = self.runtime
        self.emit("platform.initStart", {
            "initializationType": "lambda-managed-instances",
            "runtimeVersion": version,
            "runtimeVersionArn": "arn:aws:lambda:us-east-1::runtime:" + arn_hash,
            "functionName": self.function,
            "functionVersion": self.version,
            "instanceId": self.stream.name,
            "instanceMaxMemory": 2147483648,
            "phase": "init",
        })
        self.start_process()
        workers = self.spec.get("workers", 1)
        if not self.api.wait_pollers(workers, 30):
            raise RuntimeError("the runtime did not poll for invocations")
        self.emit("platform.initReport", {
            "initializationType": "lambda-managed-instances",
            "metrics": {"durationMs": float(now_ms() - self.started_ms)},
            "phase": "init",
            "status": "success",
        })
        self.pending = {}

    def invoke(self, rid, event):
        """Deliver an invocation without waiting for it (it overlaps the
        others); its platform.report is written when its response comes."""
        with self.stream.cond:
            self.stream.in_flight.add(rid)
        self.timeline.append((now_ms(), "invoke", rid))
        self.emit("platform.start", {"requestId": rid, "version": self.version, "functionArn": self.api.function_arn})
        started = time.time()
        self.api.deliver(rid, event)

        def finish():
            try:
                kind, _, _ = self.api.wait_response(rid, timeout=40)
            except RuntimeError:
                kind = "timeout"
            if self.closing is not None:
                return
            end = time.time()
            duration = (end - started) * 1000.0
            self.emit("platform.report", {
                "requestId": rid,
                "status": "success" if kind == "response" else ("timeout" if kind == "timeout" else "error"),
                "metrics": {"durationMs": float("%.3f" % duration)},
                "spans": [
                    {"name": "responseLatency", "start": iso(int(started * 1000)), "durationMs": round(duration - 0.2, 3)},
                    {"name": "responseDuration", "start": iso(int(end * 1000)), "durationMs": 0.112},
                ],
            })
            with self.stream.cond:
                self.stream.in_flight.discard(rid)
            self.timeline.append((now_ms(), "done", rid))

        t = threading.Thread(target=finish, daemon=True)
        t.start()
        self.pending[rid] = t
        return t

    def wait_all(self, timeout=40):
        deadline = time.monotonic() + timeout
        for t in list(self.pending.values()):
            t.join(max(0, deadline - time.monotonic()))


class SnapStartEnvironment(ModesEnvironment):
    """SnapStart: INIT runs (the function may open its gRPC connection), the
    runtime calls /runtime/restore/next, the snapshot is taken (the process
    stays SIGSTOPped while it lives on), then the restore: the proxy drops
    every flow that existed (`restore(how)`), the restore lines are written,
    SIGCONT, /restore/next answers, after-restore hooks run, and invocations
    follow one at a time, frozen between them as in classic Lambda. The INIT
    lines go to the snapshot's own stream (`init_stream`), as in Lambda,
    where the restored environment's stream begins with RESTORE_START."""

    def init(self):
        version, arn_hash = self.runtime
        self.arn = "arn:aws:lambda:us-east-1::runtime:" + arn_hash
        if self.fmt == "json":
            self.emit("platform.initStart", {
                "initializationType": "snap-start", "phase": "init",
                "runtimeVersion": version, "runtimeVersionArn": self.arn,
                "functionName": self.function, "functionVersion": self.version,
            }, self.out)
        else:
            self.out.add("INIT_START Runtime Version: %s\tRuntime Version ARN: %s" % (version, self.arn), True)
        self.start_process()
        if not self.api.wait_restore_polled(30):
            raise RuntimeError("the runtime did not call /runtime/restore/next")
        init_ms = now_ms() - self.started_ms + 0.41
        if self.fmt == "json":
            self.emit("platform.initRuntimeDone", {"initializationType": "snap-start", "phase": "init", "status": "success"}, self.out)
            self.emit("platform.initReport", {"initializationType": "snap-start", "phase": "init", "status": "success",
                                              "metrics": {"durationMs": init_ms}}, self.out)
        else:
            self.out.add("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: success" % init_ms, True)
        # The snapshot: the process is stopped now and runs again only as a
        # restored environment. Lambda takes it once INIT is over; a ping
        # the INIT's call left in flight (C-core's BDP ping) is answered
        # first, as it would be within a real network's round trip.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with self.proxy.changed:
                if all(p["ack_delivered"] is not None for c in self.proxy.connections for p in c.pings):
                    break
            time.sleep(0.01)
        time.sleep(0.05)
        self.stop_signal(signal.SIGSTOP)
        self.timeline.append((now_ms(), "freeze", "snapshot"))
        self.frozen = True

    def restore(self, drop):
        """The restore, `drop` being "reset" or "blackhole"; returns its time."""
        restore_at = self.proxy.restore(drop)
        self.timeline.append((restore_at, "restore", drop))
        self.out = self.stream
        version, _ = self.runtime
        if self.fmt == "json":
            self.emit("platform.restoreStart", {
                "runtimeVersion": version, "runtimeVersionArn": self.arn,
                "functionName": self.function, "functionVersion": self.version,
                "instanceId": self.stream.name, "instanceMaxMemory": 134217728,
            })
        else:
            self.stream.add("RESTORE_START Runtime Version: %s\tRuntime Version ARN: %s" % (version, self.arn), True)
        t0 = time.time()
        self.stop_signal(signal.SIGCONT)
        self.timeline.append((now_ms(), "thaw", "restore"))
        self.frozen = False
        polls = self.api.polls
        self.api.release_restore()
        # The restore ends when the runtime, its after-restore hooks done,
        # asks for its first invocation.
        self.api.wait_polls(polls + 1, 30)
        self.restore_ms = (time.time() - t0) * 1000.0 + 45.0  # + the snapshot's load, outside the process
        if self.fmt == "json":
            self.emit("platform.restoreRuntimeDone", {"status": "success"})
            self.emit("platform.restoreReport", {"status": "success", "metrics": {"durationMs": round(self.restore_ms, 3)}})
        else:
            self.stream.add("RESTORE_REPORT Restore Duration: %.2f ms" % self.restore_ms, True)
        self.first_report = True
        return restore_at

    def invoke(self, rid, event):
        if self.frozen:
            self.stop_signal(signal.SIGCONT)
            self.timeline.append((now_ms(), "thaw", None))
            self.frozen = False
        self.stream.owner = rid
        self.timeline.append((now_ms(), "owner", rid))
        if self.fmt == "json":
            self.emit("platform.start", {"requestId": rid, "version": self.version})
        else:
            self.stream.add("START RequestId: %s Version: %s" % (rid, self.version), True)
        started = time.time()
        self.api.deliver(rid, event)
        kind, _, _ = self.api.wait_response(rid, timeout=40)
        duration = (time.time() - started) * 1000.0
        status = "success" if kind == "response" else "error"
        billed = int(duration) + 1
        mem = 70 + random.randint(0, 20)
        if self.fmt == "json":
            self.emit("platform.runtimeDone", {"requestId": rid, "status": status, "metrics": {"durationMs": round(duration, 3), "producedBytes": 64}})
            metrics = {"durationMs": round(duration, 3), "billedDurationMs": billed, "memorySizeMB": 128, "maxMemoryUsedMB": mem}
            if self.first_report:
                metrics["restoreDurationMs"] = round(self.restore_ms, 3)
                metrics["billedRestoreDurationMs"] = int(self.restore_ms - 45.0) + 1
            self.emit("platform.report", {"requestId": rid, "metrics": metrics, "status": status})
        else:
            self.stream.add("END RequestId: %s" % rid, True)
            line = "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: 128 MB\tMax Memory Used: %d MB\t" % (rid, duration, billed, mem)
            if self.first_report:
                line += "Restore Duration: %.2f ms\tBilled Restore Duration: %d ms\t" % (self.restore_ms, int(self.restore_ms - 45.0) + 1)
            self.stream.add(line, True)
        self.first_report = False

    def freeze(self):
        self.api.wait_pollers(1, 30)
        time.sleep(0.002)
        self.stop_signal(signal.SIGSTOP)
        self.timeline.append((now_ms(), "freeze", None))
        self.frozen = True
