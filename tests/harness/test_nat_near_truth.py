"""Checks of the NAT idle near-miss truth (issue 18): IdleNatProxy's
idle_gaps() over loopback sockets (a flow idle for most of a short timeout
and answered, a short idle, one past the timeout that meets the RST),
record_network.is_near_miss, and network_report.score_near's matching
(stream + request ID, margin within 50 ms, several in one invocation).
Plain python3, loopback only:

    python3 tests/harness/test_nat_near_truth.py
"""

import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "recorders"))

import network  # noqa: E402
import network_report  # noqa: E402
import record_network  # noqa: E402

FAILED = []


def check(name, got, want):
    if got != want:
        FAILED.append(name)
        print("FAIL %s:\n  got  %r\n  want %r" % (name, got, want))
    else:
        print("ok   %s" % name)


def echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve(c):
        while True:
            try:
                data = c.recv(4096)
            except OSError:
                return
            if not data:
                c.close()
                return
            c.sendall(data)

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv


def proxy_gaps():
    srv = echo_server()
    timeout_s = 1.0
    proxy = network.IdleNatProxy(srv.getsockname()[1], timeout_s)
    c = socket.create_connection(("127.0.0.1", proxy.port))
    c.settimeout(3)
    try:
        for pause, data in ((0, b"first"), (0.85, b"near"), (0.3, b"short")):
            time.sleep(pause)
            c.sendall(data)
            got = c.recv(100)
            check("echo after %.2f s" % pause, got, data)
        time.sleep(1.5)
        try:
            c.sendall(b"late")
            late = c.recv(100)
        except OSError as exc:
            late = type(exc).__name__
        check("a flow idle past the timeout meets the RST", late in (b"", "ConnectionResetError"), True)
    finally:
        c.close()
        time.sleep(0.1)
        proxy.close()
        srv.close()
    gaps = proxy.idle_gaps(min_ms=200)
    client = [g for g in gaps if g["from_client"]]
    check("two client gaps above 200 ms on a live mapping (the late bytes are not one)", len(client), 2)
    near = [g for g in client if record_network.is_near_miss(g, int(timeout_s * 1000))]
    check("exactly one near miss", len(near), 1)
    if near:
        check("its idle is the 0.85 s pause", 800 <= near[0]["idle_ms"] < 1000, True)
        check("answered", near[0]["answered"], True)
    check("the proxy logged the reset", any(w == "reset" for _, _, w in proxy.events()), True)


def rule():
    g = {"from_client": True, "answered": True, "idle_ms": 4500}
    check("75 % exactly is a near miss", record_network.is_near_miss(g, 6000), True)
    check("below 75 % is not", record_network.is_near_miss(dict(g, idle_ms=4499), 6000), False)
    check("the timeout itself is not (the mapping is gone)", record_network.is_near_miss(dict(g, idle_ms=6000), 6000), False)
    check("unanswered is not", record_network.is_near_miss(dict(g, answered=False), 6000), False)
    check("the server speaking after a pause is not", record_network.is_near_miss(dict(g, from_client=False), 6000), False)


def scoring():
    t = lambda rid, margin: {"kind": "nat_idle_near_miss", "log_group": "g", "log_stream": "s", "request_id": rid, "margin_ms": margin}  # noqa: E731
    f = lambda rid, margin, plural=False: (  # noqa: E731
        {"kind": "nat_idle_near_miss", "log_group": "g", "log_streams": ["s"], "request_ids": [rid], "margin_ms": margin}
        if plural else {"kind": "nat_idle_near_miss", "log_group": "g", "log_stream": "s", "request_id": rid, "margin_ms": margin})
    m, missed, spurious = network_report.score_near([t("a", 700)], [f("a", 750)])
    check("50 ms off matches", (len(m), len(missed), len(spurious)), (1, 0, 0))
    m, missed, spurious = network_report.score_near([t("a", 700)], [f("a", 751)])
    check("51 ms off is a miss and a spurious finding", (len(m), len(missed), len(spurious)), (0, 1, 1))
    m, missed, spurious = network_report.score_near([t("a", 700)], [f("b", 700)])
    check("another request ID does not match", (len(m), len(missed), len(spurious)), (0, 1, 1))
    m, missed, spurious = network_report.score_near([t("a", 700), t("a", 1200)], [f("a", 1210, True), f("a", 690)])
    check("two in one invocation pair by margin (either field form)",
          sorted((x["margin_ms"], y["margin_ms"]) for x, y in m), [(700, 690), (1200, 1210)])


def main():
    rule()
    scoring()
    proxy_gaps()
    if FAILED:
        sys.exit("%d failed: %s" % (len(FAILED), ", ".join(FAILED)))
    print("all passed")


if __name__ == "__main__":
    main()
