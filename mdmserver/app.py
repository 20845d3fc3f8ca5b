"""``from mdmserver.app import create_app``: the app factory lives in :mod:`mdmserver.web.app`
(the server it serves is assembled in :mod:`mdmserver.assembly`)."""

from mdmserver.web.app import create_app

__all__ = ["create_app"]
