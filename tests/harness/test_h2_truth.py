"""Checks of h2truth (the HTTP/2 frame parser, the harness truth rule and the
near-miss rule) on
synthetic frames and timelines, and of the proxy's waits that time the
recorder's scenarios (lambda_sim.H2DelayProxy, fed synthetic frames, no
sockets). Plain python3, no dependencies:

    python3 tests/harness/test_h2_truth.py
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from h2truth import (  # noqa: E402
    ACK, DATA, GOAWAY, HEADERS, PING, PREFACE, SETTINGS, WINDOW_UPDATE,
    H2Connection, H2FrameParser, Timeline, effective_ack, frame, harness_truth,
    near_miss_file, near_miss_truth, near_misses,
)

FAILED = []


def check(name, got, want):
    if got != want:
        FAILED.append(name)
        print("FAIL %s:\n  got  %r\n  want %r" % (name, got, want))
    else:
        print("ok   %s" % name)


def feed_split(parser, data, sizes):
    """Feed data in chunks of the given sizes (cycled), collecting frames."""
    out, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        out += parser.feed(data[pos:pos + n])
        pos += n
        i += 1
    return out


def test_parser():
    big = b"x" * 70000
    stream = (PREFACE + frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00\x64")
              + frame(PING, 0, 0, b"ABCDEFGH")
              + frame(HEADERS, 0x4, 1, b"h" * 20)
              + frame(DATA, 0x1, 1, big)
              + frame(PING, ACK, 0, b"12345678")
              + frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x10\x00")
              + frame(GOAWAY, 0, 0, b"\x00\x00\x00\x05\x00\x00\x00\x0bping timeout"))
    want = [
        (SETTINGS, 0, 0, 6, b""),
        (PING, 0, 0, 8, b"ABCDEFGH"),
        (HEADERS, 4, 1, 20, b""),
        (DATA, 1, 1, 70000, b""),
        (PING, ACK, 0, 8, b"12345678"),
        (WINDOW_UPDATE, 0, 0, 4, b""),
        (GOAWAY, 0, 0, 20, b"\x00\x00\x00\x05\x00\x00\x00\x0bping timeout"),
    ]
    check("parser: one chunk", H2FrameParser(True).feed(stream), want)
    for sizes in ([1], [3, 7], [9], [10, 1, 65536], [23, 24, 25]):
        p = H2FrameParser(True)
        got = feed_split(p, stream, sizes)
        check("parser: chunks of %s" % sizes, got, want)
        check("parser: bounded buffer %s" % sizes, len(p.buf) < 9 + len(PREFACE), True)
    # The server side starts without a preface.
    check("parser: server side", H2FrameParser(False).feed(frame(PING, ACK, 0, b"abcdefgh")), [(PING, ACK, 0, 8, b"abcdefgh")])
    # Not HTTP/2: gives up instead of reading garbage as frames.
    p = H2FrameParser(True)
    check("parser: not h2", p.feed(b"GET / HTTP/1.1\r\n\r\n") + p.feed(frame(PING, 0, 0, b"abcdefgh")), [])
    check("parser: broken", bool(p.broken), True)
    # A large frame is skipped without being buffered.
    p = H2FrameParser(False)
    p.feed(frame(DATA, 0, 1, b"y" * 100)[:50])
    check("parser: big frame not buffered", (len(p.buf), p.skip), (0, 59))


def test_connection():
    c = H2Connection(1, 1000)
    c.client_bytes(1000, PREFACE + frame(SETTINGS) + frame(PING, 0, 0, b"P1P1P1P1")[:5])
    c.client_bytes(1001, frame(PING, 0, 0, b"P1P1P1P1")[5:] + frame(PING, 0, 0, b"KAKAKAKA"))
    c.client_bytes(1500, frame(PING, 0, 0, b"KAKAKAKA"))  # repeated payload (hyper)
    c.server_bytes_delivered(1100, frame(SETTINGS, ACK) + frame(PING, ACK, 0, b"P1P1P1P1") + frame(PING, ACK, 0, b"KAKAKAKA"))
    c.server_bytes_delivered(1200, frame(PING, ACK, 0, b"zzzzzzzz"))
    c.client_bytes(3000, frame(GOAWAY, 0, 0, b"\x00\x00\x00\x00\x00\x00\x00\x02"))
    c.client_closed(3001, "eof")
    j = c.to_json()
    check("conn: pings", [(p["sent"], p["payload"], p["ack_delivered"]) for p in j["pings"]],
          [(1001, b"P1P1P1P1".hex(), 1100), (1001, b"KAKAKAKA".hex(), 1100), (1500, b"KAKAKAKA".hex(), None)])
    check("conn: goaway", (j["client_goaway"]["t"], j["client_goaway"]["error_code"]), (3000, 2))
    check("conn: unmatched ack", j["unmatched_acks"], 1)
    check("conn: close at", c.client_close_at(), 3000)
    check("conn: counts", j["frames"]["up"], {"SETTINGS": 1, "PING": 3, "GOAWAY": 1})


def conn(n, pings, goaway=None, eof=None):
    return {
        "connection": str(n),
        "pings": [{"sent": s, "payload": "00", "ack_delivered": a} for s, a in pings],
        "client_goaway": {"t": goaway} if goaway is not None else None,
        "client_eof": {"t": eof, "how": "eof"} if eof is not None else None,
    }


def test_truth():
    tl = Timeline([
        (0, "start", 1), (10, "owner", "A"),
        (500, "freeze", None), (4000, "owner", "B"), (4001, "thaw", None),
        (5000, "freeze", None), (5200, "owner", "C"), (5201, "thaw", None),
        (6000, "freeze", None), (9000, "owner", "D"), (9001, "thaw", None),
        (12000, "kill", 1), (12100, "start", 2), (12200, "owner", "E"),
        (20000, "close", 2),
    ])
    check("timeline: owner", [tl.owner_at(t) for t in (5, 10, 3999, 4000, 12150)], [None, "A", "A", "B", "D"])
    check("timeline: frozen", [tl.frozen_until(t) for t in (499, 500, 4000, 4001)], [False, 4001, 4001, False])
    check("timeline: alive", [tl.alive_at(t) for t in (11999, 12000, 12100, 20000)], [True, False, True, False])
    check("effective ack", [effective_ack(tl, t) for t in (100, 600, None)], [100, 4001, None])

    conns = [
        # A ping in flight at the freeze, acked while frozen, closed at the thaw.
        conn(1, [(100, 200), (490, 580)], goaway=4003, eof=4004),
        # The same, but the freeze was short: the ack reached the process in time.
        conn(2, [(4990, 5100)]),
        # Genuine: never acked, closed 1 s later, same owner; C-core's new ping
        # at the thaw does not qualify (its timer has not expired).
        conn(3, [(9500, None), (10490, None)], eof=10500),
        # Killed by the harness with a ping unanswered: no finding.
        conn(4, [(10000, None)], eof=12001),
        # Closed at shutdown: no finding.
        conn(5, [(15000, None)], eof=20010),
        # Several expired pings: the latest one is paired.
        conn(6, [(5900, None), (5950, 6500)], eof=9003),
    ]
    findings, near = harness_truth(conns, tl, 1000, "g", "s")
    got = [(f["connection"], f["kind"], f["ping_request_id"], f["timeout_request_id"], f["ping_at"], f["closed_at"]) for f in findings]
    check("truth: findings", got, [
        ("1", "keepalive_freeze_timeout", "A", "B", 490, 4003),
        ("3", "keepalive_timeout", "D", "D", 9500, 10500),
        ("6", "keepalive_freeze_timeout", "C", "D", 5950, 9003),
    ])
    check("truth: near misses", [(n["connection"], n["ping_request_id"], n["margin_ms"]) for n in near],
          [("2", "B", 1000 - (5201 - 4990))])
    # The slack: a close 5 ms before the timer's expiry still counts.
    f, _ = harness_truth([conn(7, [(9100, None)], eof=10095)], tl, 1000, "g", "s")
    check("truth: slack", len(f), 1)
    f, _ = harness_truth([conn(7, [(9100, None)], eof=10094)], tl, 1000, "g", "s")
    check("truth: too early", len(f), 0)
    f, _ = harness_truth(conns, tl, None, "g", "s")
    check("truth: no ack timeout", f, [])


def test_near_misses():
    tl = Timeline([
        (0, "start", 1), (10, "owner", "A"),
        (600, "freeze", None), (900, "owner", "B"), (900, "thaw", None),
        (2000, "freeze", None), (4000, "owner", "C"), (4000, "thaw", None),
        (6000, "freeze", None), (6030, "owner", "D"), (6030, "thaw", None),
        # A ping sent at the thaw, a short invocation frozen again with it in flight.
        (7000, "freeze", None), (7100, "owner", "E"), (7100, "thaw", None),
        (7110, "freeze", None), (7600, "owner", "F"), (7600, "thaw", None),
        (9000, "freeze", None), (9500, "owner", "G"), (9500, "thaw", None),
        (11000, "freeze", None), (11500, "kill", 1), (11600, "start", 2), (11700, "owner", "H"),
        (13000, "freeze", None), (13400, "close", 2), (13400, "thaw", None),
    ])
    conns = [
        # Acked well before the freeze: none. In flight, freeze shorter than
        # the remaining timeout, ack waited in the socket: read at the thaw.
        conn(1, [(400, 480), (590, 670)]),
        # In flight at a freeze longer than the timeout, the client closes at
        # the thaw: a freeze timeout, not a near miss.
        conn(2, [(1990, 2070)], goaway=4002, eof=4003),
        # The same freeze, but the ack won the race at the thaw (C-core): the
        # connection stays open; the timer had expired, negative margin.
        conn(3, [(1995, 2075)], eof=8000),
        # A short freeze, the ack delivered after the thaw: read when delivered.
        conn(4, [(5990, 6070)]),
        # Sent at the thaw, frozen again in flight: owned by the invocation
        # delivered at that thaw, the ack read at the next thaw.
        conn(5, [(7100, 7180)]),
        # Ack delivered 1 ms before the freeze: ambiguous; 3 ms before: read.
        conn(6, [(8920, 8999), (8917, 8997)]),
        # Stamped 1 ms into the freeze (written just before the stop).
        conn(7, [(9001, 9080)]),
        # Killed while frozen; thawed only to be shut down; closed before the
        # freeze; never acked.
        conn(8, [(10990, 11070)]),
        conn(9, [(12990, 13070)]),
        conn(10, [(8500, None)], eof=8600),
        conn(11, [(8990, None)]),
    ]
    r = near_misses(conns, tl, 1000, "g", "s")
    got = [(n["connection"], n["ping_request_id"], n["ping_sent_at_ms"], n["freeze_at_ms"], n["thaw_at_ms"], n["ack_read_at_ms"],
            n["waited_ms"], n["margin_ms"], n["ack_delivered"]) for n in r["near_misses"]]
    check("near: survivors", got, [
        ("1", "A", 590, 600, 900, 900, 310, 690, "during_freeze"),
        ("3", "B", 1995, 2000, 4000, 4000, 2005, -1005, "during_freeze"),
        ("4", "C", 5990, 6000, 6030, 6070, 80, 920, "after_thaw"),
        ("5", "E", 7100, 7110, 7600, 7600, 500, 500, "during_freeze"),
        ("7", "F", 9001, 9000, 9500, 9500, 499, 501, "during_freeze"),
    ])
    n = r["near_misses"][0]
    check("near: fields", (n["kind"], n["log_group"], n["log_stream"], n["ack_timeout_ms"], n["ack_delivered_at_ms"], n["freezes"]),
          ("keepalive_near_miss", "g", "s", 1000, 670, 1))
    check("near: ambiguous", [(a["connection"], a["ping_sent_at_ms"]) for a in r["ambiguous"]], [("6", 8920)])
    check("near: excluded", sorted((x["connection"], x["reason"].split(" (")[0]) for x in r["excluded"]), [
        ("11", "never acked"),
        ("2", "client closed the connection +2 ms from the ack"),
        ("8", "killed while frozen"),
        ("9", "thawed to be shut down by the harness"),
    ])
    # Keepalive off: no ack timeout, no near miss.
    check("near: keepalive off", near_misses(conns, tl, None, "g", "s"), {"near_misses": [], "ambiguous": [], "excluded": []})
    # A ping whose ack was delivered long after a short freeze (the server
    # slow) that then timed out inside the invocation: no near miss.
    tl2 = Timeline([(0, "start", 1), (10, "owner", "A"), (100, "freeze", None), (150, "owner", "B"), (150, "thaw", None)])
    check("near: genuine after a short freeze", near_misses([conn(1, [(95, 1500)], eof=1096)], tl2, 1000, "g", "s")["near_misses"], [])
    # The ack still on the wire at the thaw (a slow server), a short
    # invocation frozen again: read at the second thaw, which it came out of.
    tl3 = Timeline([(0, "start", 1), (10, "owner", "A"), (100, "freeze", None), (150, "owner", "B"), (150, "thaw", None),
                    (160, "freeze", None), (400, "owner", "C"), (400, "thaw", None)])
    n = near_misses([conn(1, [(95, 300)])], tl3, 1000, "g", "s")["near_misses"]
    check("near: frozen twice", [(x["ping_request_id"], x["freeze_at_ms"], x["thaw_at_ms"], x["margin_ms"], x["freezes"], x["ack_delivered"]) for x in n],
          [("A", 160, 400, 695, 2, "during_freeze")])
    # The same from a recording's observations, and the file built from them.
    env = {"name": "e", "log_group": "g", "log_stream": "s", "ack_timeout_ms": 1000,
           "timeline": [{"t": t, "what": w, "detail": d} for t, w, d in tl.events], "connections": conns}
    check("near: from observations", [n["margin_ms"] for n in near_miss_truth(env)], [690, -1005, 920, 500, 501])
    doc = near_miss_file({"seed": 3, "environments": [env, dict(env, name="off", log_stream="s2", ack_timeout_ms=None)]}, "test")
    check("near: file", (doc["source"], len(doc["near_misses"]), [(e["name"], e["near_misses"], e["margins_ms"]) for e in doc["environments"]]),
          ("test", 5, [("e", 5, [690, -1005, 920, 500, 501]), ("off", 0, [])]))
    # harness_truth's near misses are these.
    _, near = harness_truth(conns, tl, 1000, "g", "s")
    check("near: harness_truth agrees", near, r["near_misses"])
    # Only the keepalive pings run under the ack timeout where the
    # environment names their payload (grpc-java 1111, grpc-go zeros): a
    # BDP ping in flight at a freeze is no near miss, nor a timeout.
    bdp = [dict(c, pings=[dict(p, payload="04d2") for p in c["pings"]]) for c in conns]
    mixed = bdp[:1] + conns[1:]
    check("near: BDP pings untimed", [n["connection"] for n in near_misses(mixed, tl, 1000, "g", "s", timed_payloads=["00"])["near_misses"]],
          ["3", "4", "5", "7"])
    check("near: every ping timed without payloads", len(near_misses(bdp, tl, 1000, "g", "s")["near_misses"]), 5)
    check("near: from observations, timed", len(near_miss_truth(dict(env, connections=bdp, timed_ping_payloads=["0457"]))), 0)
    late_bdp = [conn(1, [(100, None)], goaway=1200)]
    late_bdp[0]["pings"][0]["payload"] = "04d2"
    check("timeout: BDP ping untimed", harness_truth(late_bdp, tl2, 1000, "g", "s", timed_payloads=["00"])[0], [])
    check("timeout: timed ping", len(harness_truth(late_bdp, tl2, 1000, "g", "s")[0]), 1)


def test_score_near_misses():
    """tests/score.py --near-misses: matching by stream, request ID and the
    nearest ping time; ambiguous pings count neither way; margins compared."""
    import json
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import score

    rec = tempfile.mkdtemp()
    json.dump([{"name": "e1", "library": "grpc-js", "setting": "default", "log_stream": "s1"},
               {"name": "e2", "library": "grpc-js", "setting": "none", "log_stream": "s2"}], open(os.path.join(rec, "environments.json"), "w"))
    truth = [
        {"log_stream": "s1", "ping_request_id": "A", "ping_sent_at_ms": 1000, "margin_ms": 700},
        {"log_stream": "s1", "ping_request_id": "A", "ping_sent_at_ms": 1200, "margin_ms": -300},
        {"log_stream": "s1", "ping_request_id": "B", "ping_sent_at_ms": 9000, "margin_ms": 500},
        {"log_stream": "s2", "ping_request_id": "C", "ping_sent_at_ms": 5000, "margin_ms": 400},
    ]
    json.dump({"source": "test", "near_misses": truth,
               "ambiguous": [{"log_stream": "s1", "ping_request_id": "D", "ping_sent_at_ms": 3000}]},
              open(os.path.join(rec, "harness_near_misses.json"), "w"))
    found = [
        {"kind": "keepalive_near_miss", "log_stream": "s1", "ping_request_id": "A", "ping_at_ms": 1198, "margin_ms": -296},
        {"kind": "keepalive_near_miss", "log_stream": "s1", "ping_request_id": "A", "ping_at": "1970-01-01T00:00:01.003Z", "margin_ms": 701},
        {"kind": "keepalive_near_miss", "log_stream": "s1", "ping_request_id": "D", "ping_at_ms": 3001, "margin_ms": 1},
        {"kind": "keepalive_near_miss", "log_stream": "s1", "ping_request_id": "B", "ping_at_ms": 9600, "margin_ms": 500},
        {"kind": "keepalive_freeze_timeout", "log_stream": "s2", "ping_request_id": "C"},
    ]
    rows = {r["environment"]: r for r in score.near_miss_rows(rec, found)}
    r = rows["e1"]
    check("score near: e1", (r["truth"], r["found"], r["matched"], r["precision"], r["recall"], r["margin_diffs_ms"], r["max_margin_diff_ms"], r["margins_ok"]),
          (3, 4, 2, 2 / 3, 2 / 3, [1, 4], 4, True))
    check("score near: e1 missed/spurious", (r["missed"], r["spurious"]), ([("B", 9000, 500)], [("B", 9600, 500)]))
    r = rows["e2"]
    check("score near: e2 blind, none found", (r["blind"], r["precision"], r["recall"], r["max_margin_diff_ms"]), (True, 1.0, 0.0, None))
    rows = {r["environment"]: r for r in score.near_miss_rows(rec, found, window_ms=1000, margin_tolerance_ms=3)}
    check("score near: wider window, tighter margins", (rows["e1"]["matched"], rows["e1"]["margins_ok"]), (3, False))


def test_proxy_waits():
    import lambda_sim

    # The proxy's bookkeeping without its listener.
    proxy = lambda_sim.H2DelayProxy.__new__(lambda_sim.H2DelayProxy)
    proxy.connections, proxy._n, proxy.changed = [], 0, threading.Condition()
    check("waits: empty mark", proxy.mark(), {})
    c1 = proxy.opened(H2Connection(1, 0))
    proxy.client_bytes(c1, 10, PREFACE + frame(SETTINGS) + frame(HEADERS, 0x4, 1, b"h") + frame(PING, 0, 0, b"AAAAAAAA"))
    c1.server_bytes_delivered(90, frame(PING, ACK, 0, b"AAAAAAAA"))
    m = proxy.mark()
    check("waits: mark", m, {1: (1, 1, False)})
    check("waits: no ping since", proxy.wait_client_ping(m, 0), None)
    check("waits: no close since", proxy.wait_client_close(m, 0), None)
    # A ping at the thaw, answered; then one in flight.
    proxy.client_bytes(c1, 100, frame(PING, 0, 0, b"BBBBBBBB"))
    c1.server_bytes_delivered(180, frame(PING, ACK, 0, b"BBBBBBBB"))
    check("waits: ping since", proxy.wait_client_ping(m, 0)[1]["sent"], 100)
    check("waits: no unanswered ping", proxy.wait_client_ping(m, 0, unanswered=True), None)
    proxy.client_bytes(c1, 5000, frame(PING, 0, 0, b"CCCCCCCC"))
    check("waits: unanswered ping", proxy.wait_client_ping(m, 0, unanswered=True), (1, {"sent": 5000, "payload": b"CCCCCCCC".hex(), "ack_delivered": None}))
    # The client gives up a connection on which it sent nothing since the
    # mark (at a thaw): not the one the wait is for.
    proxy.client_bytes(c1, 5001, frame(GOAWAY, 0, 0, b"\x00\x00\x00\x00\x00\x00\x00\x00"))
    check("waits: close without a request since", proxy.wait_client_close(m, 0), None)
    # A new connection carries the call, then is closed: found, also when it
    # comes while waiting.
    c2 = proxy.opened(H2Connection(2, 5002))
    proxy.client_bytes(c2, 5003, PREFACE + frame(SETTINGS) + frame(HEADERS, 0x4, 1, b"h"))

    def later():
        time.sleep(0.05)
        proxy.client_closed(c2, 6003, "eof")

    threading.Thread(target=later).start()
    started = time.monotonic()
    check("waits: close of the call's connection", proxy.wait_client_close(m, 5), (2, 6003))
    check("waits: woken, not timed out", time.monotonic() - started < 2, True)
    check("waits: closed before the mark", proxy.wait_client_close(proxy.mark(), 0), None)
    m2 = proxy.mark()
    started = time.monotonic()
    check("waits: timeout", proxy.wait_client_ping(m2, 0.1), None)
    check("waits: bounded", 0.1 <= time.monotonic() - started < 2, True)


if __name__ == "__main__":
    test_parser()
    test_connection()
    test_truth()
    test_near_misses()
    test_score_near_misses()
    test_proxy_waits()
    print("%d failed" % len(FAILED) if FAILED else "all passed")
    sys.exit(1 if FAILED else 0)
