"""The pure MDM protocol layer: request bytes in, typed values out (no Flask, no storage)."""

from mdmserver.protocol.errors import ProtocolError

__all__ = ["ProtocolError"]
