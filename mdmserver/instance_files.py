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
from pathlib import Path

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
