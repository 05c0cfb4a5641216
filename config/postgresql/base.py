"""Django's PostgreSQL backend with a health check that costs no round trip when it
need not (``ENGINE = "config.postgresql"``, set by :mod:`config.settings`).

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before the first
query of every request by sending ``SELECT 1`` (``DatabaseWrapper.is_usable``): one
round trip per request, which under the morning's submissions cost as much time in a
web worker as the check-in's own read.  A connection that PostgreSQL closed while it
sat idle — a restart, ``pg_terminate_backend``, an idle timeout — has something to read
on its socket: the server's last message, or the end of the stream.  So a connection
that is idle, open and has nothing waiting to be read is usable without asking; in any
other case (data waiting, a transaction left open, a socket that cannot be polled) the
check is Django's round trip, which also consumes or reports what was waiting.

What no local check can see — a network path that dropped without a word — the round
trip would not have seen either until TCP gave up; the first query then fails, and
Django closes the connection at the end of that request as it always has.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


def _quiet(fileno: int) -> bool:
    """True if nothing can be read from the socket ``fileno`` right now."""
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None:
            return False
        try:
            if (
                not connection.closed
                and connection.info.transaction_status == TransactionStatus.IDLE
                and _quiet(connection.fileno())
            ):
                return True
        except (OSError, ValueError, AttributeError):
            pass  # no socket to poll (or no poll() on this platform): ask the server
        return super().is_usable()
