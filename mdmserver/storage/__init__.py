"""Storage: the records and the ports (one Protocol per concern) the services are typed
against, the in-memory implementation of the hot ports, and the SQL implementation in
the sql package.
"""
