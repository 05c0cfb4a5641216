"""Django's PostgreSQL backend, made safe for server-side binding (see :mod:`.base`)."""
