#!/usr/bin/env python3
"""moto's server, with its DynamoDB answering one request at a time.

    python moto_server.py -H 127.0.0.1 -p 5000      # the same flags as moto_server

moto's server is threaded, and its DynamoDB is not safe under concurrent
requests: `TransactWriteItems` (moto 5.2.5, moto/dynamodb/models/__init__.py,
`transact_write_items`) deep-copies every table it touches before it starts and,
when the transaction is cancelled — a failed condition, which optimistic
concurrency makes common — puts that copy back, undoing whatever other requests
wrote to those tables meanwhile. Under 100 concurrent commands on one state, a
save acknowledged to one command was now and then rolled back by another's
cancelled transaction: an update lost by the emulator, which real DynamoDB (its
transactions are serializable, "Amazon DynamoDB Transactions: How it works",
isolation levels) never does. Conditional puts have the same check-then-write
gap, only narrower.

So the DynamoDB requests take a lock here, one at a time, as real DynamoDB
orders the writes to an item; the other services keep moto's threads. Test
harness only: loopback, no TLS.
"""

import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialised(self, environ, start_response):
    if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        return _dispatch(self, environ, start_response)
    with _dynamodb:
        # The whole answer is made inside the lock: a WSGI app may produce it lazily.
        return list(_dispatch(self, environ, start_response))


DomainDispatcherApplication.__call__ = _serialised

if __name__ == "__main__":
    server.main(sys.argv[1:])
