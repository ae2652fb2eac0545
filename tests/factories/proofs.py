"""Test data for proofs: screenshots drawn with Pillow (never downloaded), hostile files, submissions over HTTP."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from datetime import datetime

from PIL import Image, ImageDraw

from tests.factories import auth, claim, live_brief, rfc3339, sign_up_brand, sign_up_worker
from tests.factories.jobs import drain

# --- images --------------------------------------------------------------------------------------


def picture(seed: int = 1, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A deterministic 'screenshot' with big coloured shapes: structure a perceptual hash can see."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(10):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(w // 8, w // 2), y0 + rng.randrange(h // 8, h // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    return img


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def png(seed: int = 1, size: tuple[int, int] = (320, 240)) -> bytes:
    return encode(picture(seed, size))


def reencoded_copy(seed: int = 1) -> bytes:
    """The same picture, shrunk by 10% and saved as a JPEG: what a lazy copier uploads."""
    img = picture(seed)
    smaller = img.resize((img.width * 9 // 10, img.height * 9 // 10), Image.Resampling.LANCZOS)
    return encode(smaller, "JPEG", quality=80)


def jpeg_with_exif(taken: datetime, seed: int = 1, *, zone: bool = True) -> bytes:
    """A photo taken at `taken` (aware), its EXIF in the local time of `taken`'s zone, with the
    offset tag as phones that write it do, or without it (zone=False) as many do not."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal, local
    if zone:
        exif.get_ifd(0x8769)[36881] = taken.strftime("%z")[:3] + ":" + taken.strftime("%z")[3:]  # OffsetTimeOriginal
    return encode(picture(seed), "JPEG", quality=90, exif=exif.tobytes())


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def decompression_bomb() -> bytes:
    """A tiny PNG (a few KB) that declares 60000 x 60000 pixels of 1-bit grey."""
    width = height = 60_000
    row = b"\x00" + b"\x00" * (width // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(200)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def truncated_png(seed: int = 1) -> bytes:
    data = png(seed)
    return data[: len(data) * 2 // 3]


def polyglot(seed: int = 1) -> bytes:
    """A valid PNG with a ZIP archive glued on after IEND."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.html", "<script>alert(1)</script>")
    return png(seed) + archive.getvalue()


NOT_AN_IMAGE = b"<html><body>definitely not a picture</body></html>\n" * 20


# --- briefs, claims and submissions over HTTP ------------------------------------------------------

SCREENSHOT_GROUP = {"kind": "clip", "quantity": 10, "unit_price_cents": 100, "proof": {"screenshot": "required"}}


def proof_brief(client, standin, groups: list[dict] | None = None, **overrides) -> tuple[str, dict]:
    """A live brief (the brand's API key, the brief) whose groups ask for the given proof."""
    _, api_key = sign_up_brand(client)
    brief = live_brief(client, api_key, standin, task_groups=groups or [SCREENSHOT_GROUP], **overrides)
    return api_key, brief


def claimed_task(client, brief: dict, position: int = 0) -> tuple[str, dict]:
    """A new worker's token and their claim on a task of the brief's group at ``position``."""
    _, token = sign_up_worker(client)
    return token, claim(client, token, brief["task_groups"][position]["id"])


def submit(client, token: str, task_id: str, *, screenshot: bytes | None = None, filename: str = "shot.png",
           content_type: str = "image/png", **fields):
    """POST proof as multipart (with a screenshot) or JSON (without)."""
    fields = {k: (rfc3339(v) if isinstance(v, datetime) else v) for k, v in fields.items() if v is not None}
    if screenshot is not None:
        data = {**fields, "screenshot": (io.BytesIO(screenshot), filename, content_type)}
        return client.post(f"/v1/tasks/{task_id}/submissions", data=data, headers=auth(token),
                           content_type="multipart/form-data")
    return client.post(f"/v1/tasks/{task_id}/submissions", json=fields, headers=auth(token))


def submitted(client, brief: dict, **proof) -> tuple[str, str]:
    """A new worker claims a task of the brief and submits `proof`: (their token, the submission id)."""
    token, held = claimed_task(client, brief)
    response = submit(client, token, held["task"]["id"], **proof)
    assert response.status_code == 202, response.get_json()
    return token, response.get_json()["id"]


def submission(client, token: str, submission_id: str) -> dict:
    response = client.get(f"/v1/submissions/{submission_id}", headers=auth(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def checks_by_name(body: dict) -> dict[str, dict]:
    return {c["name"]: c for c in body["checks"]}


def run_validation_jobs(app) -> None:
    drain(app, "validation")
