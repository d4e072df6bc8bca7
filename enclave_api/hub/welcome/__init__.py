"""The welcome notebook a researcher finds in their home: a first tour of the enclave.

``Welcome.ipynb`` walks through the demo world from inside a session: who you are, the catalog, your
grants and budget, pseudonymised records, a DP query, its export and the egress airlock. The spawner
copies it into each home with :func:`install_welcome`, which never replaces a file of the same name,
so a researcher's edits survive restarts.

Imports only the standard library: the hub calls this as root, and nothing here needs more.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

#: The folder of notebooks copied into every home (every ``*.ipynb`` in it).
WELCOME_DIR: Final = Path(__file__).resolve().parent


def install_welcome(home: Path, uid: int, gid: int) -> list[Path]:
    """Copy each notebook of :data:`WELCOME_DIR` into ``home`` unless ``home`` already has an entry
    of that name; return the copies made, each owned by ``uid:gid`` with mode 0600.

    Safe as root in a home its user controls: the home is opened without following a symlink, and
    each copy is created exclusively (``O_EXCL``), so an existing file, directory or symlink of that
    name is left alone and nothing outside the home is ever written.
    """
    installed: list[Path] = []
    home_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for source in sorted(WELCOME_DIR.glob("*.ipynb")):
            if not source.is_file():
                continue
            data = source.read_bytes()
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd = os.open(source.name, flags, 0o600, dir_fd=home_fd)
            except FileExistsError:
                continue
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
                with os.fdopen(fd, "wb", closefd=False) as target:
                    target.write(data)
            except BaseException:
                # A half-written copy would stand in for the notebook on every later start.
                os.unlink(source.name, dir_fd=home_fd)
                raise
            finally:
                os.close(fd)
            installed.append(home / source.name)
    finally:
        os.close(home_fd)
    return installed
