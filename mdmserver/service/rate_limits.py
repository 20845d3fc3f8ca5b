"""Rate limits on what anyone on the network can make the server do at a cost: signed
enrollment profiles (a signature and a challenge row each), SCEP certificate requests (an RSA
decryption and a signature each) and admin-API key guesses.

Each limit counts hits per key (a client address, a token, a challenge, a renewing
certificate) in fixed windows of ``rate_limit_window_seconds``, in counters every worker
process shares (the database, or Redis when MDM_REDIS_URL is set). The defaults are far above
what a real fleet does (thousands of devices enrolling in a morning behind one NAT address
come to a few per second at most) and far below what a script does.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from mdmserver.config import Config
from mdmserver.errors import RateLimited
from mdmserver.logs import get_logger
from mdmserver.storage.sql.ratelimit_store import Counters, RedisCounters, SQLCounters

log = get_logger("ratelimit")

__all__ = ["Limit", "Limits", "RateLimited", "RateLimiter", "build_rate_limiter"]


@dataclass(frozen=True)
class Limit:
    bucket: str
    per_window: int
    what: str  # "enrollment profile requests from this address", for the message


class RateLimiter:
    def __init__(
        self,
        counters: Counters,
        window: int,
        limits: Limits,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counters = counters
        self.window = window
        self.limits = limits
        self.enabled = enabled
        self.clock = clock

    def hit(self, limit: Limit, key: str) -> None:
        """Count one hit of ``key`` against ``limit``; raises RateLimited once it is over."""
        if not self.enabled:
            return
        now, window_start, key_hash = self._where(limit, key)
        hits = self.counters.hit(limit.bucket, key_hash, window_start, self.window)
        if hits > limit.per_window:
            self._refuse(limit, hits, now, window_start)

    def check(self, limit: Limit, key: str) -> None:
        """Raise RateLimited if ``key`` has used up ``limit`` in this window; counts nothing
        (failed authentications are counted when they fail, checked on every attempt)."""
        if not self.enabled:
            return
        now, window_start, key_hash = self._where(limit, key)
        hits = self.counters.peek(limit.bucket, key_hash, window_start)
        if hits >= limit.per_window:
            self._refuse(limit, hits + 1, now, window_start)

    def _where(self, limit: Limit, key: str) -> tuple[float, int, str]:
        now = self.clock()
        window_start = int(now // self.window * self.window)
        key_hash = hashlib.sha256(f"{limit.bucket}\0{key}".encode()).hexdigest()
        return now, window_start, key_hash

    def _refuse(self, limit: Limit, hits: int, now: float, window_start: int) -> None:
        retry_after = max(1, math.ceil(window_start + self.window - now))
        if hits == limit.per_window + 1:  # once per key and window, not once per refusal
            log.warning(
                "rate_limited",
                extra={"fields": {"limit": limit.bucket, "per_window": limit.per_window}},
            )
        raise RateLimited(
            f"too many {limit.what}: at most {limit.per_window} every {self.window} seconds;"
            f" retry in {retry_after} seconds",
            retry_after,
        )


@dataclass(frozen=True)
class Limits:
    """The limits this server applies, from the settings."""

    enroll_address: Limit
    enroll_token: Limit
    scep_address: Limit
    scep_credential: Limit
    auth_failures_address: Limit

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(
            Limit(
                "enroll_address",
                config.rate_limit_enroll_per_address,
                "enrollment profile requests from this address",
            ),
            Limit(
                "enroll_token",
                config.rate_limit_enroll_per_token,
                "enrollment profile requests for this token",
            ),
            Limit(
                "scep_address",
                config.rate_limit_scep_per_address,
                "SCEP certificate requests from this address",
            ),
            Limit(
                "scep_credential",
                config.rate_limit_scep_per_challenge,
                "SCEP certificate requests with this challenge or renewing certificate",
            ),
            Limit(
                "auth_failures",
                config.rate_limit_auth_failures_per_address,
                "failed API authentications from this address",
            ),
        )


def build_rate_limiter(config: Config, engine: Engine) -> RateLimiter:
    """Counters in Redis when the deployment has one, else in the database."""
    counters: Counters = (
        RedisCounters(config.redis_url, config.queue_prefix)
        if config.redis_url
        else SQLCounters(engine)
    )
    return RateLimiter(
        counters,
        config.rate_limit_window_seconds,
        Limits.from_config(config),
        enabled=config.rate_limits,
    )
