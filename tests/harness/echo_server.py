"""A real gRPC server (grpcio) on loopback for the recorders.

Serves `/thawtrace.Echo/Echo` with raw bytes (no protoc needed: grpc-js and
grpcio clients both call it with identity serializers). It accepts client
keepalive pings every second without data, so a 5 s client keepalive is never
answered with GOAWAY too_many_pings.

Usage: echo_server.py PORT_FILE   (binds 127.0.0.1:0, writes the port)
"""

import os
import sys
from concurrent import futures

import grpc


def echo(request, context):
    return request


def serve(echo_fn, port_file, max_workers=4, options=()):
    """Serves `/thawtrace.Echo/Echo` with `echo_fn` on 127.0.0.1:0, writes
    the port to `port_file` (atomically) and serves until killed, an hour at
    most."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=list(options))
    handler = grpc.method_handlers_generic_handler(
        "thawtrace.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo_fn)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)
    # Bounded: the recorder kills us, but never outlive an hour.
    server.wait_for_termination(timeout=3600)


def main():
    serve(
        echo,
        sys.argv[1],
        options=[
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
            ("grpc.http2.min_ping_interval_without_data_ms", 1000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )


if __name__ == "__main__":
    main()
