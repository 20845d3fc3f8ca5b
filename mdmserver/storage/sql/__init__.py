"""The SQL implementation of the storage ports (SQLAlchemy Core on SQLite and PostgreSQL).

- :mod:`.schema`, :mod:`.migrations`, :mod:`.migrate`, :mod:`.engine`: the tables, their
  history (Alembic), and the engine (SQLite pragmas, PostgreSQL pool);
- :mod:`.types`: the UTC column type and the one clock (``utcnow``);
- :mod:`.dialect`: what differs between the two databases, asked in one place;
- :mod:`.statements` and :mod:`.rawsql`: the device hot path's statements, each with its
  dialect variants, run on raw DB-API connections;
- :mod:`.device_store`: :class:`SQLStorage`, the check-in, queue, certificate binding and
  last-seen ports;
- one ``*_store`` module per feature port (enrollment, profiles, inventory, compliance, push,
  outbox, admin, console users, DDM, apps, rate limits) and the read-side queries
  (``inventory_queries``, ``fleet_queries``).

Only the composition root (mdmserver/assembly.py), the CLI's database commands and tests
construct these; services see the Protocols in :mod:`mdmserver.storage.ports`.
"""
