"""Ground truth for keepalive timeouts from what the harness itself saw.

Two sources, neither of them the libraries' logs:

- the HTTP/2 frames the delaying proxy carried on each connection
  (`H2FrameParser`, `H2Connection`): when a client PING reached the proxy,
  when its ACK was handed to the client's socket, when the client sent
  GOAWAY or closed;
- the emulator's timeline of each environment (`lambda_sim.Environment`):
  owner switches, freezes (SIGSTOP), thaws (SIGCONT), kills and restarts.

`harness_truth` joins them with the ack timeout the function is configured
with; `near_miss_truth` finds in them the keepalive near misses (pings in
flight at a freeze that survived it, with their margins). Everything here is pure (no sockets, no clocks) so that
`test_h2_truth.py` can check it on synthetic bytes.
"""

import struct
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
ACK = 0x1

# Payload bytes kept of a frame: all of PING (8) and GOAWAY's last stream id
# and error code (8) plus a little debug data; the rest of any frame is
# skipped without being buffered.
KEEP = {PING: 8, GOAWAY: 8 + 64, RST_STREAM: 4}


def frame_name(ftype):
    return FRAME_NAMES[ftype] if ftype < len(FRAME_NAMES) else "0x%x" % ftype


class H2FrameParser:
    """Incremental HTTP/2 frame parser for one direction of one connection.

    `feed(data)` returns the frames completed by `data` as
    (type, flags, stream_id, length, payload) tuples, where payload holds at
    most KEEP[type] bytes (empty for other types). Memory is bounded: at most
    a frame header and a kept payload are buffered, whatever the frame sizes
    and however the bytes are split. If the bytes are not HTTP/2 (a wrong
    client preface), the parser gives up: `broken` is set and feed returns [].
    """

    def __init__(self, client_side):
        self.need_preface = client_side
        self.buf = b""
        self.skip = 0  # payload bytes of the current frame still to discard
        self.pending = None  # (type, flags, stream, length, kept payload) of the current frame
        self.broken = None
        self.bytes = 0

    def feed(self, data):
        frames = []
        if self.broken:
            return frames
        self.bytes += len(data)
        buf = self.buf + data
        self.buf = b""
        pos = 0
        while True:
            if self.need_preface:
                n = min(len(PREFACE), len(buf))
                if buf[:n] != PREFACE[:n]:
                    self.broken = "no HTTP/2 client preface"
                    return frames
                if n < len(PREFACE):
                    self.buf = buf
                    return frames
                buf = buf[len(PREFACE):]
                self.need_preface = False
            if self.pending is not None:
                ftype, flags, stream, length, kept = self.pending
                want = min(KEEP.get(ftype, 0), length)
                take = min(want - len(kept), len(buf) - pos)
                if take > 0:
                    kept += buf[pos:pos + take]
                    pos += take
                if len(kept) < want:
                    self.pending = (ftype, flags, stream, length, kept)
                    return frames
                self.skip = length - want
                self.pending = None
                frames.append((ftype, flags, stream, length, kept))
            if self.skip:
                drop = min(self.skip, len(buf) - pos)
                self.skip -= drop
                pos += drop
                if self.skip:
                    return frames
            if len(buf) - pos < 9:
                self.buf = buf[pos:]
                return frames
            length = int.from_bytes(buf[pos:pos + 3], "big")
            ftype, flags = buf[pos + 3], buf[pos + 4]
            stream = struct.unpack(">I", buf[pos + 5:pos + 9])[0] & 0x7FFFFFFF
            pos += 9
            self.pending = (ftype, flags, stream, length, b"")


def frame(ftype, flags=0, stream=0, payload=b""):
    """The bytes of one HTTP/2 frame (for tests)."""
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + struct.pack(">I", stream & 0x7FFFFFFF) + payload


class H2Connection:
    """What the proxy saw on one proxied connection, in wall-clock ms.

    The proxy calls `client_bytes(t, data)` when it receives bytes from the
    client, `client_closed(t, how)` at the client's EOF or reset,
    `server_bytes_delivered(t, data)` once it has written server bytes to the
    client's socket, `server_closed(t, how)` at the server's EOF."""

    MAX_PINGS = 100000

    def __init__(self, n, opened_at):
        self.n = n
        self.opened_at = opened_at
        self.lock = threading.Lock()
        self.up = H2FrameParser(client_side=True)
        self.down = H2FrameParser(client_side=False)
        self.pings = []  # {"sent", "payload", "ack_delivered"}: client pings, in order
        self.server_pings = []  # {"sent", "payload", "ack_received"}: server pings, in order
        self.client_goaway = None  # (t, last_stream, error_code)
        self.client_eof = None  # (t, "eof" | "reset")
        self.server_goaway = None  # (t delivered, last_stream, error_code)
        self.server_eof = None  # (t, "eof" | "reset")
        self.goaways = []  # every GOAWAY either way: ("client" | "server", t, last_stream, error_code, debug), at most 8
        self.counts = {"up": {}, "down": {}}
        self.unmatched_acks = 0

    def _count(self, way, ftype, flags):
        name = frame_name(ftype) + ("+ACK" if ftype in (PING, SETTINGS) and flags & ACK else "")
        c = self.counts[way]
        c[name] = c.get(name, 0) + 1

    def client_bytes(self, t, data):
        with self.lock:
            for ftype, flags, _stream, _length, payload in self.up.feed(data):
                self._count("up", ftype, flags)
                if ftype == PING and not flags & ACK:
                    if len(self.pings) < self.MAX_PINGS:
                        self.pings.append({"sent": t, "payload": payload.hex(), "ack_delivered": None})
                elif ftype == PING:
                    for p in self.server_pings:
                        if p["payload"] == payload.hex() and p["ack_received"] is None:
                            p["ack_received"] = t
                            break
                elif ftype == GOAWAY:
                    g = _goaway(t, payload)
                    if self.client_goaway is None:
                        self.client_goaway = g
                    if len(self.goaways) < 8:
                        self.goaways.append(("client",) + g)

    def client_closed(self, t, how):
        with self.lock:
            if self.client_eof is None:
                self.client_eof = (t, how)

    def server_bytes_delivered(self, t, data):
        with self.lock:
            for ftype, flags, _stream, _length, payload in self.down.feed(data):
                self._count("down", ftype, flags)
                if ftype == PING and flags & ACK:
                    # Acks answer pings in order; a repeated payload (hyper's
                    # keepalive uses a fixed one) matches the oldest unanswered.
                    for p in self.pings:
                        if p["payload"] == payload.hex() and p["ack_delivered"] is None:
                            p["ack_delivered"] = t
                            break
                    else:
                        self.unmatched_acks += 1
                elif ftype == PING:
                    if len(self.server_pings) < self.MAX_PINGS:
                        self.server_pings.append({"sent": t, "payload": payload.hex(), "ack_received": None})
                elif ftype == GOAWAY:
                    g = _goaway(t, payload)
                    if self.server_goaway is None:
                        self.server_goaway = g
                    if len(self.goaways) < 8:
                        self.goaways.append(("server",) + g)

    def server_closed(self, t, how):
        with self.lock:
            if self.server_eof is None:
                self.server_eof = (t, how)

    def client_close_at(self):
        """When the client closed the connection (its GOAWAY, else its EOF or reset)."""
        times = [x[0] for x in (self.client_goaway, self.client_eof) if x is not None]
        return min(times) if times else None

    def to_json(self):
        with self.lock:
            return {
                "connection": str(self.n),
                "opened_at": self.opened_at,
                "pings": [dict(p) for p in self.pings],
                "server_pings": [dict(p) for p in self.server_pings],
                "client_goaway": _goaway_json(self.client_goaway),
                "client_eof": {"t": self.client_eof[0], "how": self.client_eof[1]} if self.client_eof else None,
                "server_goaway": _goaway_json(self.server_goaway),
                "server_eof": {"t": self.server_eof[0], "how": self.server_eof[1]} if self.server_eof else None,
                "goaways": [dict(_goaway_json(g[1:]), side=g[0]) for g in self.goaways],
                "frames": {k: dict(v) for k, v in self.counts.items()},
                "unmatched_acks": self.unmatched_acks,
                "broken": self.up.broken or self.down.broken,
            }


def _goaway(t, payload):
    last = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF if len(payload) >= 4 else None
    code = struct.unpack(">I", payload[4:8])[0] if len(payload) >= 8 else None
    return (t, last, code, payload[8:].decode("utf-8", "replace"))


def _goaway_json(g):
    if g is None:
        return None
    return {"t": g[0], "last_stream": g[1], "error_code": g[2], "debug": g[3]}


# ---------------------------------------------------------------- truth


class Timeline:
    """An environment's emulator events: [(t, what, detail)] in order, with
    what in "start", "owner" (detail: request ID), "freeze", "thaw", "kill",
    "close"."""

    def __init__(self, events):
        self.events = sorted(events, key=lambda e: e[0])

    def owner_at(self, t):
        """The request ID of the last owner switch at or before t."""
        owner = None
        for et, what, detail in self.events:
            if et > t:
                break
            if what == "owner":
                owner = detail
        return owner

    def freezes(self):
        """[(freeze_t, thaw_t or None)], in order."""
        out, start = [], None
        for et, what, _ in self.events:
            if what == "freeze" and start is None:
                start = et
            elif what in ("thaw", "kill") and start is not None:
                out.append((start, et))
                start = None
        if start is not None:
            out.append((start, None))
        return out

    def frozen_until(self, t):
        """If the process was frozen at t, the time it was thawed (None if
        never); else False."""
        for f, th in self.freezes():
            if f <= t and (th is None or t < th):
                return th
        return False

    def alive_at(self, t):
        """False once the harness has killed the process (until it restarts)
        or has begun to shut it down (`close`)."""
        alive = True
        for et, what, _ in self.events:
            if et > t:
                break
            if what in ("kill", "close"):
                alive = False
            elif what == "start":
                alive = True
        return alive


def effective_ack(timeline, delivered):
    """When an ack delivered to the client socket at `delivered` reaches the
    process: then, or at the thaw ending the freeze it arrived in (None if
    the process never thawed)."""
    if delivered is None:
        return None
    th = timeline.frozen_until(delivered)
    if th is False:
        return delivered
    return th


def timed_pings(c, timed_payloads=None):
    """The pings of connection `c` that run under the ack timeout: all of
    them, unless the environment names the payloads of its keepalive pings
    (`timed_ping_payloads`, hex). grpc-java and grpc-go also send BDP
    (flow-control) pings, which no timer watches: grpc-java's keepalive
    pings carry 1111, its BDP pings 1234; grpc-go's keepalive pings carry
    eight zero bytes, its BDP pings 02 04 10 10 09 0e 07 07."""
    if not timed_payloads:
        return list(c["pings"])
    return [p for p in c["pings"] if p["payload"] in timed_payloads]


def harness_truth(conns, timeline, ack_timeout_ms, log_group, log_stream, slack_ms=5, timed_payloads=None):
    """Keepalive timeouts of one environment, from the proxy's connections
    (H2Connection.to_json() dicts) and its emulator timeline (Timeline).
    Only the pings `timed_pings` keeps count.

    A client-initiated close at tc while the process is alive is a keepalive
    timeout when a ping p on that connection has p.sent + ack_timeout <=
    tc + slack and its ack never reached the process, or reached it after
    p.sent + ack_timeout; the latest such ping is the one that timed out.
    Returns (findings, near_misses), the latter by `near_misses`."""
    findings, near = [], []
    if not ack_timeout_ms:
        return findings, near
    for c in conns:
        tc = _client_close_at(c)
        if tc is None or not timeline.alive_at(tc):
            continue
        late = []
        for i, p in enumerate(timed_pings(c, timed_payloads)):
            expiry = p["sent"] + ack_timeout_ms
            if expiry > tc + slack_ms:
                continue
            eff = effective_ack(timeline, p["ack_delivered"])
            if eff is None or eff > expiry:
                late.append((p["sent"], i, p))
        if not late:
            continue
        _, i, p = max(late, key=lambda x: (x[0], x[1]))
        ping_owner = timeline.owner_at(p["sent"])
        close_owner = timeline.owner_at(tc)
        findings.append({
            "kind": "keepalive_freeze_timeout" if ping_owner != close_owner else "keepalive_timeout",
            "log_group": log_group,
            "log_stream": log_stream,
            "ping_request_id": ping_owner,
            "timeout_request_id": close_owner,
            "ping_at": p["sent"],
            "closed_at": tc,
            "connection": c["connection"],
            "close": "goaway" if c.get("client_goaway") and c["client_goaway"]["t"] == tc else (c.get("client_eof") or {}).get("how"),
            # What the client said it closed for, if it said (C-core: 11
            # ENHANCE_YOUR_CALM "ping_timeout"; grpc-js: 0 NO_ERROR, no text).
            "goaway_error_code": (c.get("client_goaway") or {}).get("error_code"),
            "goaway_debug": (c.get("client_goaway") or {}).get("debug"),
            "ack_reached_at": effective_ack(timeline, p["ack_delivered"]),
            "frozen_at_expiry": timeline.frozen_until(p["sent"] + ack_timeout_ms) is not False,
        })
    # Pings in flight at a freeze that survived it: near_misses (their own
    # rule; a ping counted in `late` above whose ack won the race at a thaw,
    # the connection closing much later for another ping, is one of them).
    near = near_misses(conns, timeline, ack_timeout_ms, log_group, log_stream,
                       timed_payloads=timed_payloads)["near_misses"]
    return findings, near


def _client_close_at(c):
    times = [x["t"] for x in (c.get("client_goaway"), c.get("client_eof")) if x]
    return min(times) if times else None


# ---------------------------------------------------------------- near misses

# An ack handed to the client's socket less than this before a freeze's
# timestamp may or may not have been read before the SIGSTOP (both stamps are
# whole ms, the stop comes just before its stamp, the client's event loop
# needs a moment to wake): such a ping is `ambiguous`, in neither list.
READ_GRACE_MS = 2
# A client close within this of the moment the ack could first be read is the
# client giving up the connection at the thaw (a keepalive timeout fires there
# within a few ms), not an ack that won: far below any other close (the next
# keepalive timeout needs a new ping and a whole ack timeout after the thaw).
CLOSE_WINDOW_MS = 100


def freeze_spans(timeline):
    """[(freeze_t, end_t or None, "thaw" | "kill" | None)], in order: how each
    freeze ended (None: never)."""
    out, start = [], None
    for et, what, _ in timeline.events:
        if what == "freeze" and start is None:
            start = et
        elif what in ("thaw", "kill") and start is not None:
            out.append((start, et, what))
            start = None
    if start is not None:
        out.append((start, None, None))
    return out


def near_misses(conns, timeline, ack_timeout_ms, log_group, log_stream,
                read_grace_ms=READ_GRACE_MS, close_window_ms=CLOSE_WINDOW_MS, timed_payloads=None):
    """Keepalive near misses of one environment: client pings that were in
    flight when the process was frozen and whose ack the process read without
    giving up the connection (see near_miss_truth for the rule). Only the
    pings `timed_pings` keeps count: a BDP ping has no ack timeout to miss.

    Returns {"near_misses": [...], "ambiguous": [...], "excluded": [...]}:
    the near misses; pings the data cannot place (their ack reached the
    socket within read_grace_ms before the freeze); and the other pings in
    flight at a freeze, with the reason each is not a near miss."""
    out = {"near_misses": [], "ambiguous": [], "excluded": []}
    if not ack_timeout_ms:
        return out
    spans = freeze_spans(timeline)
    for c in conns:
        close_t = _client_close_at(c)
        for p in timed_pings(c, timed_payloads):
            s, d = p["sent"], p.get("ack_delivered")
            base = {"connection": c["connection"], "ping_request_id": timeline.owner_at(s), "ping_sent_at_ms": s, "ack_delivered_at_ms": d}
            hit = None
            for f, end, how in spans:
                if end is not None and end <= s:
                    continue  # over before the ping (a ping stamped at a thaw was sent after it)
                if close_t is not None and close_t <= f:
                    break  # the client gave the connection up before this freeze
                if f < s:
                    # Stamped inside the freeze: the proxy read bytes the
                    # process wrote just before its stop.
                    hit = (f, end, how)
                    break
                if d is not None and d < f - read_grace_ms:
                    break  # acked (and read) before the freeze
                if d is not None and d <= f:
                    out["ambiguous"].append(dict(base, freeze_at_ms=f, reason="ack delivered %d ms before the freeze" % (f - d)))
                    break
                hit = (f, end, how)
                break
            if hit is None:
                continue
            f, end, how = hit
            base.update(ping_request_id=timeline.owner_at(min(s, f)), freeze_at_ms=f, thaw_at_ms=end if how == "thaw" else None)
            if how != "thaw":
                out["excluded"].append(dict(base, reason="killed while frozen" if how else "never thawed"))
                continue
            if not timeline.alive_at(end):
                out["excluded"].append(dict(base, reason="thawed to be shut down by the harness"))
                continue
            if d is None:
                out["excluded"].append(dict(base, reason="never acked" + (" (connection closed)" if close_t is not None else "")))
                continue
            read = effective_ack(timeline, d)
            if read is None or not timeline.alive_at(read):
                out["excluded"].append(dict(base, reason="process gone before the ack was read"))
                continue
            if close_t is not None and close_t <= read + close_window_ms:
                out["excluded"].append(dict(base, ack_read_at_ms=read, closed_at_ms=close_t,
                                            reason="client closed the connection %+d ms from the ack" % (close_t - read)))
                continue
            # The freeze the ack came out of: the one it was delivered in (or
            # a later one that caught it), else the first, whose thaw came
            # before the ack.
            out_of = next(((ff, ee) for ff, ee, hh in spans if hh == "thaw" and ee == read and ff <= d), (f, end))
            waited = read - s
            out["near_misses"].append({
                "kind": "keepalive_near_miss",
                "log_group": log_group,
                "log_stream": log_stream,
                "ping_request_id": timeline.owner_at(min(s, f)),
                "connection": c["connection"],
                "ping_sent_at_ms": s,
                "freeze_at_ms": out_of[0],
                "thaw_at_ms": out_of[1],
                "ack_delivered_at_ms": d,
                "ack_read_at_ms": read,
                "waited_ms": waited,
                "ack_timeout_ms": ack_timeout_ms,
                "margin_ms": ack_timeout_ms - waited,
                # Where the ack waited: in the socket through the freeze, or
                # still on the wire at the thaw.
                "ack_delivered": "during_freeze" if d < read else "after_thaw",
                "freezes": sum(1 for ff, ee, _ in spans if ff >= min(s, f) and ee is not None and ff < read),
            })
    return out


def near_miss_truth(env, **kw):
    """The keepalive near misses of one environment of a recording's
    harness_observations.json ({name, log_group, log_stream, ack_timeout_ms,
    timeline, connections}), from the proxy's frames and the emulator's
    timeline, never from log lines.

    A client PING is a near miss when
    - it was in flight at a freeze: the proxy received it at or before the
      freeze (or stamped within the freeze: written just before the stop),
      and its ack had not been read by the process before the stop, i.e. was
      delivered to the client's socket after the freeze began, or never
      before it. The process runs up to the freeze, idle and polling for its
      next invocation (the emulator freezes only after the runtime asks for
      it), so an ack delivered more than READ_GRACE_MS before the freeze was
      read then; one delivered within READ_GRACE_MS of it is `ambiguous`;
    - the client's connection was still open at the freeze, the freeze ended
      in a thaw (not a kill, nor the harness's shutdown), the ack reached the
      process (at the thaw if it waited in the socket, else when delivered,
      or at the thaw of a later freeze that caught it again), and the client
      did not close that connection before, or within CLOSE_WINDOW_MS after,
      that moment (a timeout at the thaw closes it within a few ms; an ack
      that won the race leaves it open).

    Its owner (`ping_request_id`) is the invocation running when the ping
    was sent: the last owner switch at or before it (the emulator switches
    owner just before a thaw, so a ping sent at a thaw belongs to the
    invocation being delivered). waited_ms = ack_read_at_ms - ping_sent_at_ms
    and margin_ms = ack_timeout_ms - waited_ms: negative when the ping's
    timer had expired while frozen and the ack won the race at the thaw
    (C-core). No ack timeout (keepalive off): none.

    Returns the near misses; `near_misses()` also gives the ambiguous and
    excluded pings."""
    return near_misses_of(env, **kw)["near_misses"]


def near_misses_of(env, **kw):
    """near_misses() of one environment of harness_observations.json."""
    tl = Timeline([(e["t"], e["what"], e["detail"]) for e in env["timeline"]])
    return near_misses(env["connections"], tl, env.get("ack_timeout_ms"), env["log_group"], env["log_stream"],
                       timed_payloads=env.get("timed_ping_payloads"), **kw)


def near_miss_file(observations, source):
    """The contents of harness_near_misses.json for a recording's
    harness_observations.json: {"source", "rule", "near_misses",
    "ambiguous", "excluded", "environments": per environment its counts}."""
    doc = {"source": source, "seed": observations.get("seed"),
           "read_grace_ms": READ_GRACE_MS, "close_window_ms": CLOSE_WINDOW_MS,
           "near_misses": [], "ambiguous": [], "excluded": [], "environments": []}
    for env in observations["environments"]:
        r = near_misses_of(env)
        doc["near_misses"] += r["near_misses"]
        for k in ("ambiguous", "excluded"):
            doc[k] += [dict(x, log_stream=env["log_stream"]) for x in r[k]]
        doc["environments"].append({
            "name": env["name"], "log_stream": env["log_stream"], "ack_timeout_ms": env.get("ack_timeout_ms"),
            "near_misses": len(r["near_misses"]), "ambiguous": len(r["ambiguous"]),
            "margins_ms": [n["margin_ms"] for n in r["near_misses"]],
        })
    return doc


# ---------------------------------------------------------------- other execution modes


def managed_instances_truth(obs, ack_timeout_ms, log_group, log_stream, slack_ms=5):
    """keepalive_timeout findings of a Managed Instances environment, from the
    proxy's connections (ModesProxy.connections_json(): H2Connection.to_json()
    plus the `pid` holding the client socket), the functions' responses
    (`obs["responses"]`: {request id: {pid, calls: [{ok, start_ms, end_ms}],
    spin: [start, end] or null}}) and `obs["closing"]`, when the harness
    began to shut the environment down. A connection the client closed (GOAWAY, EOF or reset) while the
    environment ran, after a PING whose ack did not reach the process by the
    ack timeout (not delivered, or delivered during a stall of that process
    and so read only after the stall's end), is one keepalive timeout. Its
    failed_request_ids are the invocations served by the same process with a
    call in flight at the teardown that failed at it (ended within 1.5 s
    after it)."""
    responses = obs["responses"]
    calls_by_pid = {}
    stalls_by_pid = {}
    for rid, r in responses.items():
        pid = r.get("pid")
        for c in r.get("calls", []):
            calls_by_pid.setdefault(pid, []).append(dict(c, rid=rid))
        if r.get("spin"):
            stalls_by_pid.setdefault(pid, []).append(tuple(r["spin"]))
    closes = {}
    for c in obs["connections"]:
        tc = _client_close_at(c)
        if tc is not None:
            closes.setdefault(c.get("pid"), []).append(tc)
    findings = []
    for c in obs["connections"]:
        tc = _client_close_at(c)
        if tc is None or (obs["closing"] is not None and tc >= obs["closing"]):
            continue
        pid = c.get("pid")
        late = []
        for p in c["pings"]:
            expiry = p["sent"] + ack_timeout_ms
            if expiry > tc + slack_ms:
                continue
            eff = p["ack_delivered"]
            if eff is not None:
                for a, b in stalls_by_pid.get(pid, []):
                    if a <= eff < b:
                        eff = b
            if eff is None or eff > expiry:
                late.append(p)
        if not late:
            continue
        p = max(late, key=lambda p: p["sent"])
        failed = sorted({k["rid"] for k in calls_by_pid.get(pid, []) if not k["ok"] and failed_at(k, tc, slack_ms)})
        findings.append({
            "kind": "keepalive_timeout",
            "log_group": log_group,
            "log_stream": log_stream,
            "failed_request_ids": failed,
            "connection_opened_by": opened_by(c, calls_by_pid.get(pid, []), closes.get(pid, []), slack_ms),
            "at_ms": tc,
            "ping_at_ms": p["sent"],
            "ack_delivered_at_ms": p["ack_delivered"],
            "during_stall": any(a <= (p["ack_delivered"] or 0) < b for a, b in stalls_by_pid.get(pid, [])),
            "connection": c["connection"],
            "pid": pid,
            "close": "goaway" if c.get("client_goaway") and c["client_goaway"]["t"] == tc else (c.get("client_eof") or {}).get("how"),
        })
    return findings


# How long before the proxy's stamp of a teardown a call it failed may have
# ended (the proxy's reading thread is late by that much at worst).
TEARDOWN_SEEN_LATE_MS = 50


def failed_at(call, tc, slack_ms=5):
    """Whether a failed call failed at a teardown at tc: in flight then and
    over within 1.5 s after it; for a call known only by its invocation's
    window (`window`: the function reported a count of failures, not each
    call), the window holds tc. Either may end up to TEARDOWN_SEEN_LATE_MS
    before tc: the proxy stamps the close when its thread reads it, which
    can come after the client, its call failed by that close, has already
    answered (1 ms seen, seed 93947)."""
    if call.get("window"):
        return call["start_ms"] <= tc + slack_ms and tc - TEARDOWN_SEEN_LATE_MS <= call["end_ms"]
    return call["start_ms"] <= tc + slack_ms and tc - TEARDOWN_SEEN_LATE_MS <= call["end_ms"] <= tc + 1500


def opened_by(conn, calls, closes, slack_ms=5):
    """The invocation whose call opened the connection: of the process's
    calls in flight when the proxy accepted it, started after the process's
    previous connection closed, the earliest; None if none (opened by INIT
    or by the library on its own)."""
    t = conn["opened_at"]
    prev = max([x for x in closes if x <= t], default=0)
    cands = [k for k in calls if prev <= k["start_ms"] <= t + slack_ms and k["end_ms"] >= t - slack_ms]
    if not cands:
        return None
    return min(cands, key=lambda k: (k["start_ms"], k["rid"]))["rid"]


def snapstart_truth(obs, log_group, log_stream, slack_ms=5):
    """snapstart_stale_connection findings of a SnapStart environment, from
    the proxy's connections (ModesProxy.connections_json(): `stale` for those
    that predate the restore, `headers_after_restore` the times of the
    client's HEADERS on them after it), `obs["responses"]` and
    `obs["restore_at"]`, `obs["drop"]`: per connection that predates the
    restore, its first use by a request after the restore (the first HEADERS
    the proxy got on it), when that request belongs to a call that failed;
    the invocation is the one whose failed call was in flight then."""
    findings = []
    responses = obs["responses"]
    for c in obs["connections"]:
        if not c.get("stale") or not c.get("headers_after_restore"):
            continue
        t = c["headers_after_restore"][0]
        hit = [(rid, k) for rid, r in sorted(responses.items()) for k in r.get("calls", [])
               if not k["ok"] and k["start_ms"] - slack_ms <= t <= k["end_ms"] + slack_ms]
        if not hit:
            continue
        rid, k = hit[0]
        findings.append({
            "kind": "snapstart_stale_connection",
            "log_group": log_group,
            "log_stream": log_stream,
            "request_id": rid,
            "restore_at_ms": obs["restore_at"],
            "connection": c["connection"],
            "drop": obs["drop"],
            "used_at_ms": t,
            "call_failed_with": k["code"],
            "call_details": k["details"],
        })
    return findings
