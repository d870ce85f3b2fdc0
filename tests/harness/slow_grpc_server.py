"""A real gRPC server (grpcio) that accepts connections and calls, and
answers `/thawtrace.Echo/Echo` only after DELAY_S seconds: a slow server, its
connections established (HTTP/2 SETTINGS exchanged), for the recorders'
"timed out, but not on a connect" negatives.

Usage: slow_grpc_server.py DELAY_S PORT_FILE
  (binds 127.0.0.1:0, writes the port; logs each call as it arrives, one
  line `<ms> <peer>`, to PORT_FILE.calls)
"""

import sys
import threading
import time

from echo_server import serve


def main():
    delay_s, port_file = float(sys.argv[1]), sys.argv[2]
    lock = threading.Lock()
    calls = open(port_file + ".calls", "a", buffering=1)

    def echo(request, context):
        with lock:
            calls.write("%d %s\n" % (int(time.time() * 1000), context.peer()))
        # Bounded, and over as soon as the client goes away.
        deadline = time.monotonic() + min(delay_s, 60)
        while time.monotonic() < deadline and context.is_active():
            time.sleep(0.1)
        return request

    serve(echo, port_file, max_workers=32)


if __name__ == "__main__":
    main()
