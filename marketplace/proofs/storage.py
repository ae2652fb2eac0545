"""Where uploaded proof files live: one small interface (put, open, size, get, delete, ping) with
two backends, a local directory (the embedded default) and an S3-compatible object store.

`STORAGE_URL=s3://bucket/prefix` puts files in a bucket (MinIO, Ceph, R2 or AWS: `S3_ENDPOINT_URL`
and the standard AWS variables say where and who), so a web process and a validation worker on
two machines see the same uploads; unset, files go under `STORAGE_DIR`.

Keys are random (never derived from the client's file name) and validated on every read, so no
key can name a path outside the storage root or an object outside the prefix.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from flask import Flask, current_app

# 32 hex digits, sharded by the first two so no directory grows without bound.
_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{32}")
CHUNK = 64 * 1024


class StorageKeyError(KeyError):
    """The key is malformed or names no stored file."""


class StorageUnavailable(RuntimeError):
    """The store could not be reached or refused us: nothing was stored or read."""


class Storage(Protocol):
    where: str  # what /readyz says the files are kept in

    def put(self, data: bytes) -> str: ...

    def open(self, key: str) -> BinaryIO: ...

    def size(self, key: str) -> int: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def ping(self) -> None: ...


def _new_key() -> str:
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token}"


def _checked(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise StorageKeyError(key)
    return key


class LocalStorage:
    """Files under one root directory; writes are atomic (temp file + rename)."""

    where = "a local directory"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def put(self, data: bytes) -> str:
        key = _new_key()
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

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
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

    def ping(self) -> None:
        if not self.root.exists():
            return  # created on the first upload
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"{self.root} is not writable")

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)


class S3Storage:
    """Objects under `prefix/` in one bucket, through boto3 (any S3-compatible endpoint).

    Reads stream (`open` hands back the response body, read in chunks); a failure to reach the
    store is StorageUnavailable, a missing object StorageKeyError."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.where = f"s3://{bucket}/{self.prefix}".rstrip("/")
        # Short timeouts and few retries: a request waits seconds, not minutes, for a dead store.
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"},
                          signature_version="s3v4"))

    def _object(self, key: str) -> str:
        _checked(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, fn, key: str | None = None, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if key is not None and code in ("NoSuchKey", "404", "NotFound"):
                raise StorageKeyError(key) from None
            raise StorageUnavailable(f"the object store refused: {code or type(exc).__name__}") from None
        except BotoCoreError as exc:
            raise StorageUnavailable(f"the object store is unreachable: {type(exc).__name__}") from None

    def put(self, data: bytes) -> str:
        key = _new_key()
        self._call(self.client.put_object, Key=self._object(key), Body=data,
                   ContentType="application/octet-stream")
        return key

    def open(self, key: str) -> BinaryIO:
        return self._call(self.client.get_object, key, Key=self._object(key))["Body"]

    def size(self, key: str) -> int:
        return int(self._call(self.client.head_object, key, Key=self._object(key))["ContentLength"])

    def get(self, key: str) -> bytes:
        body = self.open(key)
        try:
            return body.read()
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Key=self._object(key))

    def ping(self) -> None:
        self._call(self.client.head_bucket)


def parse_storage_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` as (bucket, prefix); ValueError naming the setting otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"STORAGE_URL={url!r}: write it as s3://bucket/prefix (or leave it unset "
                         "to keep files under STORAGE_DIR).")
    return parts.netloc, parts.path.strip("/")


def build(config: dict) -> Storage:
    """The backend the settings name."""
    url = config.get("STORAGE_URL")
    if not url:
        return LocalStorage(config["STORAGE_DIR"])
    bucket, prefix = parse_storage_url(url)
    return S3Storage(bucket, prefix, endpoint_url=config.get("S3_ENDPOINT_URL"))


def storage(app: Flask | None = None) -> Storage:
    """The app's storage. Built once per app and settings (a boto3 client is costly to make and
    safe to share between threads); tests that change STORAGE_DIR or STORAGE_URL get a new one."""
    app = app or current_app._get_current_object()
    config = app.config
    wanted = (config.get("STORAGE_URL"), config.get("S3_ENDPOINT_URL"), config["STORAGE_DIR"])
    cached = app.extensions.get("marketplace.storage")
    if cached is None or cached[0] != wanted:
        cached = (wanted, build(config))
        app.extensions["marketplace.storage"] = cached
    return cached[1]
