"""The echo server of the execution-mode recordings: `/thawtrace.Echo/Echo`
answers at once, or, for a request `sleep:<ms>`, that many ms later (at most
10 s, and no longer than the client stays): slow calls keep several
invocations' calls in flight on one connection.

Usage: modes_echo_server.py PORT_FILE   (binds 127.0.0.1:0, writes the port)
"""

import sys
import time

from echo_server import serve


def echo(request, context):
    if request.startswith(b"sleep:"):
        try:
            ms = int(request.split(b":", 1)[1])
        except ValueError:
            ms = 0
        deadline = time.monotonic() + min(ms, 10000) / 1000.0
        while time.monotonic() < deadline and context.is_active():
            time.sleep(0.01)
    return request


def main():
    serve(
        echo,
        sys.argv[1],
        max_workers=32,
        options=[
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
            ("grpc.http2.min_ping_interval_without_data_ms", 1000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )


if __name__ == "__main__":
    main()
