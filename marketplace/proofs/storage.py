"""Where uploaded proof files live: a tiny put/get interface over a local directory.

Keys are random (never derived from the client's file name) and validated on every read,
so no key can name a path outside the storage root.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO

from flask import current_app

# 32 hex digits, sharded by the first two so no directory grows without bound.
_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{32}")


class StorageKeyError(KeyError):
    """The key is malformed or names no stored file."""


class LocalStorage:
    """Files under one root directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def put(self, data: bytes) -> str:
        token = secrets.token_hex(16)
        key = f"{token[:2]}/{token}"
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return key

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise StorageKeyError(key) from None

    def get(self, key: str) -> bytes:
        with self.open(key) as stored:
            return stored.read()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise StorageKeyError(key)
        return self.root / key


def storage() -> LocalStorage:
    """The app's storage, rooted at STORAGE_DIR."""
    return LocalStorage(current_app.config["STORAGE_DIR"])
