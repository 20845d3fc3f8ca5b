"""An HPACK encoder for push traffic: no Huffman coding, one-off values kept out of the table.

Pushes are small and many, so per-header Python costs dominate. hpack's default encoder
Huffman-codes every literal (a pure-Python loop per byte, and the peer's decoder loops again):
for a 64-character token path and a 36-character apns-id that is about a fifth of h2's CPU per
request on each side. HPACK lets any literal go uncoded (RFC 7541 5.2), so nothing the peer
must support changes; a request grows by about 40 bytes, which loopback and APNs do not notice.

Values that differ on every request (the token path, the apns-id) are sent as never-indexed
literals: adding them to the dynamic table would only evict the headers worth keeping there
(host, topic, push type), on both sides, and cost a table insertion and eviction each time.
Once those stay put, every other header encodes to the same table reference request after
request, so that encoding is remembered until the table changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hpack import Encoder

_Header = tuple[bytes | str, bytes | str]


class PlainEncoder(Encoder):
    """hpack's Encoder with Huffman coding off and ``unindexed`` header names never indexed."""

    def __init__(self, unindexed: Iterable[str] = ()) -> None:
        super().__init__()
        names = {name.lower() for name in unindexed}
        self.unindexed = frozenset(names | {name.encode("ascii") for name in names})
        self._references: dict[_Header, bytes] = {}

    def encode(self, headers: Iterable[_Header], huffman: bool = False) -> bytes:  # type: ignore[override]
        table = self.header_table
        if table.resized:  # a size update must lead the block, and indices may have moved
            self._references.clear()
            return super().encode(
                [(n, v, True) if n in self.unindexed else (n, v) for n, v in headers],
                huffman=False,
            )
        references, unindexed = self._references, self.unindexed
        block = []
        for name, value in headers:
            if name in unindexed:
                block.append(self.add((_bytes(name), _bytes(value)), True, False))
                continue
            encoded = references.get((name, value))
            if encoded is None:
                before = _table_state(table)
                encoded = self.add((_bytes(name), _bytes(value)), False, False)
                if _table_state(table) == before:  # a reference to an entry that stays put
                    references[(name, value)] = encoded
                else:  # an insertion shifts every dynamic index: remembered ones are stale
                    references.clear()
            block.append(encoded)
        return b"".join(block)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _table_state(table: Any) -> tuple[int, object]:
    """Changes whenever an entry is added to (always at the front) or evicted from the table."""
    entries = table.dynamic_entries
    return len(entries), entries[0] if entries else None
