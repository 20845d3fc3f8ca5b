"""Open connections per client address, counted across the worker processes.

A fixed table of counters in memory shared by fork: each worker writes only its own row, a
check sums the rows. Addresses are hashed into slots with a key chosen at start, so a client
cannot pick an address that shares a slot with someone else's; IPv6 clients count per /64,
since one host owns a whole /64. Two addresses that do share a slot share a cap: that errs
towards refusing, never towards letting one client hold more.
"""

from __future__ import annotations

import hashlib
import ipaddress
import mmap
import os

SLOTS = 65536


def address_key(address: str) -> bytes:
    """What is counted for ``address``: the address itself, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address.encode()
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return parsed.ipv4_mapped.packed
        return parsed.packed[:8]
    return parsed.packed


class AddressTable:
    """Connection counts per address slot, one row per worker process."""

    def __init__(self, workers: int, limit: int) -> None:
        self.workers = workers
        self.limit = limit
        self._key = os.urandom(16)
        self._memory = mmap.mmap(-1, workers * SLOTS * 4)
        self._counts = memoryview(self._memory).cast("i")
        self._row = 0

    def become(self, worker: int) -> None:
        """In a (re)started worker process: write to its own row, emptied."""
        self._row = worker * SLOTS
        self._counts[self._row : self._row + SLOTS] = memoryview(bytes(SLOTS * 4)).cast("i")

    def _slot(self, address: str) -> int:
        digest = hashlib.blake2b(address_key(address), key=self._key, digest_size=4).digest()
        return int.from_bytes(digest) % SLOTS

    def acquire(self, address: str) -> bool:
        """Count a new connection from ``address``; False (not counted) when at the cap."""
        slot = self._slot(address)
        total = sum(self._counts[row * SLOTS + slot] for row in range(self.workers))
        if total >= self.limit:
            return False
        self._counts[self._row + slot] += 1
        return True

    def release(self, address: str) -> None:
        self._counts[self._row + self._slot(address)] -= 1
