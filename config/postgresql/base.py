"""Django's PostgreSQL backend with parameter batches that fit server-side binding.

With server-side binding (``OPTIONS["server_side_binding"]``, which Tongxin turns on
for prepared statements: config/settings.py) every value is a protocol parameter, and
PostgreSQL takes at most 65,535 of them in one statement.  Django sizes its own batches
— ``bulk_create``, ``bulk_update`` and the deletion collector's cascades — by
``bulk_batch_size``, which on PostgreSQL is "all of them": deleting the students of a
campus would send one ``IN`` list of every id and fail.  Here the batch holds at most
as many rows as their parameters allow.  Code of our own that filters on a long list of
values chunks it itself (``students.roster._lookup_chunk``, the notification outbox).
"""

from __future__ import annotations

from django.db.backends.postgresql import base, operations

#: PostgreSQL's limit on the parameters of one statement (a 16-bit count in the protocol).
MAX_PARAMETERS = 65535


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields, objs):
        size = super().bulk_batch_size(fields, objs)
        if not self.connection.features.uses_server_side_binding:
            return size
        per_row = max(len(fields), 1)
        return max(1, min(size, MAX_PARAMETERS // per_row))


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
