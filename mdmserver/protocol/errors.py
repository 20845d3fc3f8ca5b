"""The one exception the protocol layer raises for bad device input."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A device sent something the MDM protocol does not allow.

    Its str() is a plain message meant to be sent back in a 400 answer, so it
    names the message, the key and what was wrong, never Python internals.
    """
