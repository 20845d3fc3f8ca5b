"""The web console: the fleet's posture and the everyday actions on it, in the browser.

Served by the same app at ``/`` (sign-in at ``/login``), rendered on the server from Jinja
templates with a little progressive JavaScript; every asset is in this package. The console
is another client of the admin services the API and the CLI use: an action here is the same
call, audited with the person's name (``console:<name>``), refused by the same rules.

    pages.py    what people look at: dashboard, devices, one device, commands, enrollment, audit
    actions.py  what they do: device actions, bulk commands, tokens
    apps.py     the app catalog, assignments, each device's app state
    auth.py     sessions, CSRF, roles
"""

from __future__ import annotations

from mdmserver.web.console import (  # noqa: F401  (their routes on bp)
    actions,
    apps,
    declarations,
    pages,
    profiles,
    settings,
)
from mdmserver.web.console.blueprint import bp

__all__ = ["bp"]
