"""Checks of the execution-mode truth rules (h2truth.managed_instances_truth,
h2truth.snapstart_truth) on synthetic observations, of the SnapStart restore
of lambda_sim.ModesProxy over loopback sockets, and of tests/score.py's keys
and hard check for these modes. Plain python3, no dependencies:

    python3 tests/harness/test_modes_truth.py
"""

import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import h2truth  # noqa: E402
import lambda_sim  # noqa: E402
import score  # noqa: E402

FAILED = []


def check(name, got, want):
    if got != want:
        FAILED.append(name)
        print("FAIL %s:\n  got  %r\n  want %r" % (name, got, want))
    else:
        print("ok   %s" % name)


def conn(n, opened, pings, goaway=None, eof=None, pid=7, **extra):
    c = {"connection": str(n), "opened_at": opened, "pid": pid,
         "pings": [{"sent": s, "payload": "00", "ack_delivered": a} for s, a in pings],
         "client_goaway": {"t": goaway, "last_stream": 0, "error_code": 0, "debug": ""} if goaway else None,
         "client_eof": {"t": eof, "how": "eof"} if eof else None}
    c.update(extra)
    return c


def call(start, end, ok=True):
    return {"i": 0, "ok": ok, "code": "OK" if ok else "UNAVAILABLE", "details": "", "start_ms": start, "end_ms": end}


def test_managed_instances():
    responses = {
        "a": {"pid": 7, "calls": [call(985, 1050), call(8000, 11010, ok=False)], "spin": None},
        "b": {"pid": 7, "calls": [call(8010, 11011, ok=False)], "spin": None},
        "c": {"pid": 7, "calls": [], "spin": None},  # a short one whose report lies between ping and teardown
        "d": {"pid": 8, "calls": [call(8020, 9000)], "spin": None},  # another process: not failed by pid 7's teardown
        # the stall: ack delivered during it, read after it
        "s": {"pid": 7, "calls": [call(20000, 22510, ok=False)], "spin": [20005, 22505]},
        "x": {"pid": 7, "calls": [call(11495, 11600), call(19000, 22511, ok=False)], "spin": None},
        # a stall after an ack: nothing
        "n": {"pid": 7, "calls": [call(30000, 32600)], "spin": [30050, 32550]},
    }
    obs = {"responses": responses, "closing": 40000, "connections": [
        conn(1, 990, [(5000, 5080), (10005, None)], goaway=11008),          # genuine
        conn(2, 11500, [(20001, 20081)], goaway=22506),                     # stall
        conn(3, 22600, [(29990, 30070)]),                                   # stall after ack: no close
        conn(4, 100, [(5000, 5080)], pid=8, eof=40010),                     # closed by the harness
        conn(5, 23000, [(38000, None)], eof=38500),                         # closed before the ack timeout: no timeout
    ]}
    found = h2truth.managed_instances_truth(obs, 1000, "g", "s1")
    got = sorted((f["connection"], tuple(f["failed_request_ids"]), f["connection_opened_by"], f["at_ms"], f["during_stall"]) for f in found)
    check("MI: genuine and stall timeouts, their failed invocations, who opened the connection", got,
          [("1", ("a", "b"), "a", 11008, False), ("2", ("s", "x"), "x", 22506, True)])
    check("MI: never a freeze", {f["kind"] for f in found}, {"keepalive_timeout"})
    # A function that reports only how many calls failed (the tonic example):
    # its failed calls span its invocation.
    window = {"w1": {"pid": 7, "calls": [dict(call(8000, 12000, ok=False), window=True)]},
              "w2": {"pid": 7, "calls": [dict(call(12000, 13000, ok=False), window=True)]}}
    obs2 = {"responses": window, "closing": None, "connections": [conn(1, 990, [(10005, None)], goaway=11008)]}
    check("MI: failures known by the invocation's window",
          [f["failed_request_ids"] for f in h2truth.managed_instances_truth(obs2, 1000, "g", "s1")], [["w1"]])
    # The invocation answered 1 ms before the proxy stamped the close that
    # failed its call (seed 93947): failed by it; one over 100 ms before: not.
    window["w3"] = {"pid": 7, "calls": [dict(call(9000, 11007, ok=False), window=True)]}
    window["w4"] = {"pid": 7, "calls": [dict(call(9000, 10900, ok=False), window=True)]}
    check("MI: a window that ended as the proxy saw the close",
          [f["failed_request_ids"] for f in h2truth.managed_instances_truth(obs2, 1000, "g", "s1")], [["w1", "w3"]])


def test_snapstart():
    base = {"restore_at": 5000, "drop": "reset"}
    stale = conn(1, 100, [(150, 230)], eof=5006, stale=True, headers_after_restore=[5004])
    fresh = conn(2, 5010, [], stale=False, headers_after_restore=[])
    obs = dict(base, connections=[stale, fresh], responses={
        "r1": {"calls": [call(5003, 5006, ok=False)]}, "r2": {"calls": [call(5400, 5480)]}})
    found = h2truth.snapstart_truth(obs, "g", "s2")
    check("SnapStart: first use fails", [(f["request_id"], f["restore_at_ms"]) for f in found], [("r1", 5000)])
    obs = dict(base, connections=[stale, fresh], responses={"r1": {"calls": [call(5003, 5100)]}})
    check("SnapStart: first use succeeds", h2truth.snapstart_truth(obs, "g", "s2"), [])
    unused = conn(1, 100, [], stale=True, headers_after_restore=[])
    obs = dict(base, connections=[unused], responses={"r1": {"calls": []}})
    check("SnapStart: stale connection never used", h2truth.snapstart_truth(obs, "g", "s2"), [])


def test_restore_proxy():
    """A real ModesProxy over loopback: before the restore bytes flow; after
    it, a stale connection is reset (reset) or swallowed (blackhole); a new
    connection works."""
    for how in ("reset", "blackhole"):
        upstream = socket.socket()
        upstream.bind(("127.0.0.1", 0))
        upstream.listen(4)
        proxy = lambda_sim.ModesProxy(upstream.getsockname()[1], 1)
        try:
            client = socket.create_connection(("127.0.0.1", proxy.port), timeout=3)
            server, _ = upstream.accept()
            server.settimeout(3)
            client.sendall(h2truth.PREFACE)
            check("%s: bytes flow before the restore" % how, len(server.recv(100)) > 0, True)
            proxy.restore(how)
            client.sendall(h2truth.frame(h2truth.HEADERS, 4, 1, b"\x82"))
            client.settimeout(1.0)
            try:
                data = client.recv(100)
                outcome = "eof" if data == b"" else "data"
            except ConnectionResetError:
                outcome = "reset"
            except socket.timeout:
                outcome = "silence"
            check("%s: the stale connection after the restore" % how, outcome, "reset" if how == "reset" else "silence")
            time.sleep(0.05)
            flows = proxy.connections_json()
            check("%s: the proxy saw the stale connection used" % how,
                  (flows[0]["stale"], len(flows[0]["headers_after_restore"])), (True, 1))
            fresh = socket.create_connection(("127.0.0.1", proxy.port), timeout=3)
            server2, _ = upstream.accept()
            server2.settimeout(3)
            fresh.sendall(h2truth.PREFACE)
            check("%s: a new connection works" % how, len(server2.recv(100)) > 0, True)
            for s in (client, server, fresh, server2):
                s.close()
        finally:
            proxy.close()
            upstream.close()


def test_score_keys():
    envs = [{"name": "mi", "mode": "managed-instances", "log_stream": "m"},
            {"name": "ss", "mode": "snapstart", "log_stream": "s", "init_log_stream": "si"},
            {"name": "c", "log_stream": "c"}]
    modes = score.modes_of(envs)
    check("score: modes", (modes["m"], modes["si"], modes["c"]), ("managed-instances", "snapstart", "classic"))
    f = {"kind": "keepalive_timeout", "log_stream": "m", "failed_request_ids": ["b", "a"], "ping_request_id": "x", "timeout_request_id": "x"}
    check("score: MI keepalive_timeout keyed by failed invocations", score.key(f, "managed-instances"), ("keepalive_timeout", "m", ("a", "b")))
    check("score: classic keepalive_timeout keyed by ping and timeout", score.key(f, "classic"), ("keepalive_timeout", "m", "x", "x"))
    check("score: snapstart keyed by request_id", score.key({"kind": "snapstart_stale_connection", "log_stream": "s", "request_id": "r"}),
          ("snapstart_stale_connection", "s", "r"))
    bad = [{"kind": "keepalive_freeze_timeout", "log_stream": "m"}, {"kind": "keepalive_freeze_timeout", "log_stream": "c"}]
    check("score: a freeze on a Managed Instances stream is a hard failure", len(score.hard_failures(envs, bad)), 1)


if __name__ == "__main__":
    test_managed_instances()
    test_snapstart()
    test_restore_proxy()
    test_score_keys()
    print("%d failed" % len(FAILED) if FAILED else "all passed")
    sys.exit(1 if FAILED else 0)
