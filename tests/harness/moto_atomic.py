#!/usr/bin/env python3
"""moto's server (same arguments: -H HOST -p PORT), answering one request
at a time.

DynamoDB applies a conditional write atomically: the condition and the
write are one step on the item, so of two collectors racing to claim an
incident's marker exactly one wins. moto's threaded server does not: it
reads the item, parses and checks the condition, then writes, with no
lock, so two concurrent claims can both pass (seen as an incident reported
twice under load). Serialising the requests restores what the tests of
racing collectors rely on, as DynamoDB guarantees it.
"""

import sys
import threading

import moto.server as server

_one_at_a_time = threading.Lock()
_dispatch = server.DomainDispatcherApplication.__call__


def _serialised(self, environ, start_response):
    # moto computes the whole response inside the call.
    with _one_at_a_time:
        return _dispatch(self, environ, start_response)


server.DomainDispatcherApplication.__call__ = _serialised

if __name__ == "__main__":
    server.main(sys.argv[1:])
