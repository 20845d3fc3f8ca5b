"""The instance folder (MDM_HOME) and the files the server keeps in it.

The folder holds the CA and signing keys, the SQLite database (UnlockTokens, BootstrapTokens,
profile secrets) and the key that seals those secrets, so it is 0700 and every file the server
creates in it 0600, whichever command made it (`serve` on a new MDM_HOME, `init`, any CLI
command). Modes are set when a file is created (os.open with the mode), not by a chmod after;
an existing folder or file that is looser is tightened, with a warning.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from mdmserver.crypto import sealed
from mdmserver.logs import get_logger

log = get_logger("instance")

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def ensure_home(home: Path) -> Path:
    """Create the instance folder 0700 (and its parents), or tighten an existing one."""
    home.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _tighten(home, FOLDER_MODE)
    return home


def private_file(path: Path) -> None:
    """Make sure `path` exists with mode 0600: created empty if missing, tightened if looser.

    SQLite creates a database's -wal and -shm files with the mode of the database file, so
    creating the database file this way before SQLite opens it covers all three.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
        return
    os.close(fd)


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if not current & ~mode:
        return
    try:
        os.chmod(path, current & mode)
    except PermissionError:  # not ours: say so rather than fail the command
        log.warning(
            "instance_mode_loose",
            extra={"fields": {"path": str(path), "mode": oct(current), "wanted": oct(mode)}},
        )
        return
    log.warning(
        "instance_mode_tightened",
        extra={"fields": {"path": str(path), "was": oct(current), "now": oct(current & mode)}},
    )


SECRETS_KEY = "secrets.key"


class SecretsKey:
    """The instance's key for secrets at rest (``MDM_HOME/secrets.key``, 0600), created on
    first need. Every process of an instance (web workers, RQ workers, the CLI) reads the same
    file; two creating it at once both end up with the one that won the O_EXCL race."""

    def __init__(self, home: Path) -> None:
        self.path = home / SECRETS_KEY
        self._key: bytes | None = None

    def get(self) -> bytes:
        if self._key is None:
            self._key = self._load_or_create()
        return self._key

    def seal(self, plaintext: bytes, purpose: bytes) -> bytes:
        return sealed.seal(self.get(), plaintext, purpose)

    def unseal(self, blob: bytes, purpose: bytes) -> bytes:
        return sealed.unseal(self.get(), blob, purpose)

    def _load_or_create(self) -> bytes:
        ensure_home(self.path.parent)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            return self._read()
        key = sealed.new_key()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        log.info("secrets_key_created", extra={"fields": {"path": str(self.path)}})
        return key

    def _read(self) -> bytes:
        for _ in range(50):  # another process may be writing it this instant
            key = self.path.read_bytes()
            if len(key) == sealed.KEY_BYTES:
                return key
            time.sleep(0.02)
        raise sealed.SealError(f"{self.path} is not a {sealed.KEY_BYTES}-byte key")
