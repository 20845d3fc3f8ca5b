"""Rate-limit counters shared by every worker process: in the database, or in Redis.

A counter is one fixed window: ``hit`` adds one and returns the count so far, in one atomic
statement (an upsert, or Redis INCR), so two processes counting together never lose a hit.
"""

from __future__ import annotations

from typing import Protocol

import redis
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from mdmserver.logs import get_logger
from mdmserver.storage.sql import dialect
from mdmserver.storage.sql.schema import rate_limits

log = get_logger("ratelimit")
_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class Counters(Protocol):
    def hit(self, bucket: str, key_hash: str, window_start: int, window: int) -> int:
        """Count one hit in this window; the hits so far, this one included."""
        ...

    def peek(self, bucket: str, key_hash: str, window_start: int) -> int:
        """The hits so far in this window, counting none."""
        ...


class SQLCounters:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = dialect.upsert_insert(engine)

    def hit(self, bucket: str, key_hash: str, window_start: int, window: int) -> int:
        statement = self._insert(rate_limits).values(
            bucket=bucket, key_hash=key_hash, window_start=window_start, hits=1
        )
        counted = statement.on_conflict_do_update(
            index_elements=["bucket", "key_hash", "window_start"],
            set_={"hits": rate_limits.c.hits + 1},
        ).returning(rate_limits.c.hits)
        with self.engine.begin() as conn:
            hits = int(conn.execute(counted).scalar_one())
            if hits == 1:  # a new window for this key: forget windows that are over
                conn.execute(delete(rate_limits).where(rate_limits.c.window_start < window_start))
        return hits

    def peek(self, bucket: str, key_hash: str, window_start: int) -> int:
        query = select(rate_limits.c.hits).where(
            rate_limits.c.bucket == bucket,
            rate_limits.c.key_hash == key_hash,
            rate_limits.c.window_start == window_start,
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)


class RedisCounters:
    """Counters in Redis, expiring with their window. While Redis is unreachable nothing is
    counted (logged): enrollment must not stop because a limiter is down."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix

    def hit(self, bucket: str, key_hash: str, window_start: int, window: int) -> int:
        pipe = self.client.pipeline()
        pipe.incr(self._key(bucket, key_hash, window_start))
        pipe.expire(self._key(bucket, key_hash, window_start), window * 2)
        try:
            hits, _ = pipe.execute()
        except _REDIS_ERRORS as exc:
            log.warning("rate_limit_unavailable", extra={"fields": {"error": str(exc)}})
            return 0
        return int(hits)

    def peek(self, bucket: str, key_hash: str, window_start: int) -> int:
        try:
            value = self.client.get(self._key(bucket, key_hash, window_start))
        except _REDIS_ERRORS as exc:
            log.warning("rate_limit_unavailable", extra={"fields": {"error": str(exc)}})
            return 0
        return int(value or 0)

    def _key(self, bucket: str, key_hash: str, window_start: int) -> str:
        return f"{self.prefix}:ratelimit:{bucket}:{key_hash}:{window_start}"
