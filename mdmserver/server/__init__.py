"""The HTTP server that runs the WSGI app (``mdmserver serve`` and the Procfile's web line).

Why our own and not gunicorn's gthread workers: there each connection holds one of a few
threads while its request arrives, so a handful of clients that never finish a TLS handshake,
their headers or their body stop the whole server. Here one asyncio loop per worker process
reads every request completely, under timeouts, and only a complete request is handed to one
of the WSGI threads: a stalled client costs a buffer, never a thread, and it is closed when
its timeout runs out. Open connections are capped per client address across the workers.

- :mod:`.http`: one connection, HTTP/1.1 parsing and framing, the hand-off to WSGI threads;
- :mod:`.addresses`: the per-address connection count shared by the worker processes;
- :mod:`.workers`: the listening socket, the worker processes and their supervision.
"""
