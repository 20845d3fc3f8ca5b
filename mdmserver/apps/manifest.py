"""The app manifest devices download by (InstallApplication / InstallEnterpriseApplication).

Apple's format: ``{"items": [{"assets": [{"kind": "software-package", "url": ...,
"md5-size": N, "md5s": [...], "sha256-size": N, "sha256s": [...]}], "metadata": {...}}]}``.
The file is hashed in chunks of ``*-size`` bytes, one hex digest per chunk, so a device can
check a large package piece by piece. InstallEnterpriseApplication accepts the SHA-256 keys
and prefers them when both are present; the MD5 ones keep InstallApplication working.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, BinaryIO

CHUNK_SIZE = 10 * 1024 * 1024  # 10 MiB per hashed chunk
_READ = 1024 * 1024


class ChunkHashes:
    """MD5 and SHA-256 digests of each ``chunk_size`` piece of a stream, and of the whole."""

    def __init__(self, chunk_size: int = CHUNK_SIZE) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = chunk_size
        self.md5s: list[str] = []
        self.sha256s: list[str] = []
        self.size = 0
        self.whole = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.sha256()
        self._filled = 0

    def update(self, data: bytes) -> None:
        self.whole.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            take = min(len(view), self.chunk_size - self._filled)
            self._md5.update(view[:take])
            self._sha.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.chunk_size:
                self._close_chunk()

    def finish(self) -> ChunkHashes:
        if self._filled or not self.md5s:
            self._close_chunk()
        return self

    def _close_chunk(self) -> None:
        self.md5s.append(self._md5.hexdigest())
        self.sha256s.append(self._sha.hexdigest())
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.sha256()
        self._filled = 0


def hash_stream(stream: BinaryIO | Iterable[bytes], chunk_size: int = CHUNK_SIZE) -> ChunkHashes:
    hashes = ChunkHashes(chunk_size)
    if hasattr(stream, "read"):
        while block := stream.read(_READ):
            hashes.update(block)
    else:
        for block in stream:
            hashes.update(block)
    return hashes.finish()


def build_manifest(
    url: str,
    hashes: ChunkHashes,
    *,
    bundle_id: str,
    version: str | None,
    title: str,
) -> dict[str, Any]:
    """The manifest of one package at ``url``, with both hash families."""
    asset = {
        "kind": "software-package",
        "url": url,
        "md5-size": hashes.chunk_size,
        "md5s": list(hashes.md5s),
        "sha256-size": hashes.chunk_size,
        "sha256s": list(hashes.sha256s),
    }
    metadata: dict[str, Any] = {
        "bundle-identifier": bundle_id,
        "kind": "software",
        "title": title,
        "sizeInBytes": hashes.size,
    }
    if version:
        metadata["bundle-version"] = version
    return {"items": [{"assets": [asset], "metadata": metadata}]}
