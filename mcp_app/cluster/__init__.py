"""Several worker processes as one server (handshake-era sessions only).

A session lives in the worker that created it. ``directory.py`` is where
sessions are found: this worker's own, and the shared record (Django's cache,
Redis with ``REDIS_URL``) of which worker owns any other, with heartbeats so
a dead worker's sessions answer 404. ``forwarding.py`` carries a request to
the owner over the Channels layer and its answer back. ``shutdown.py`` ends
this worker's sessions when the server stops.

May import: ``sessions``, ``engine``, ``principal``, ``protocol``. Never
``transport`` or ``guards``.
"""
