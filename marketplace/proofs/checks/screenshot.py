"""Screenshot proofs: safe decoding of untrusted image bytes, perceptual hashes, duplicate verdicts.

Everything a worker uploads is hostile until proven otherwise. ``inspect_image`` decides
what the bytes are by their magic number (never the file name or the claimed content
type), refuses decompression bombs from the declared size before any pixel is decoded,
walks the container structure itself so truncated files and polyglots (an image with a
ZIP or HTML payload glued on) are refused whatever Pillow's global switches say, and
turns every Pillow failure into an ``ImageRejected`` with a detail fit for the worker.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import imagehash
import numpy as np
from PIL import ExifTags, Image

from . import FAIL, PASS, CheckResult

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000

# Encoders sometimes pad a JPEG (or GIF) after its end marker with a few NUL/0xFF bytes or
# write the end marker twice; that much is tolerated, content is not.
TRAILING_SLACK = 32
_PADDING_BYTES = frozenset(b"\x00\xff\xd9\r\n\t ")

_U64 = (1 << 64) - 1
_S64_MIN = -(1 << 63)

CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageRejected(ValueError):
    """The upload is not an image we accept; ``detail`` says why, in the worker's words."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class ImageFacts:
    """What a decoded, accepted screenshot is: format, size, perceptual hash, EXIF time."""

    format: str  # "PNG" | "JPEG" | "WEBP" | "GIF", from the magic bytes
    width: int
    height: int
    phash: int  # unsigned 64-bit; use to_signed64() for a PostgreSQL BIGINT column
    phash_hex: str  # 16 lower-case hex digits, same bit order as str(imagehash.phash(...))
    exif_datetime: datetime | None  # aware UTC; naive when the image gives no zone; None
    content: ContentHashes | None = None  # the content-band hashes, when asked for (inspect_image(content=True))

    @property
    def content_type(self) -> str:
        """The content type to store and serve the file under (sniffed, never claimed)."""
        return CONTENT_TYPES[self.format]


# --- entry point -------------------------------------------------------------------------


def sniff_format(data: bytes) -> str | None:
    """The accepted format the magic bytes announce, or None."""
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def inspect_image(
    data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS, content: bool = False,
) -> ImageFacts:
    """Decode untrusted upload bytes into ImageFacts, or raise ImageRejected.

    With ``content``, the facts also carry the content-band hashes (``content_hashes``), taken from
    the same decode and the same greyscale copy as the whole-screen hash: the image is decoded once.

    Never lets a Pillow exception escape. Pillow's own bomb limit (``Image.MAX_IMAGE_PIXELS``)
    still applies on top of ``max_pixels``; it is read, never changed.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageRejected("the upload is not a file")
    data = bytes(data)
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > max_bytes:
        raise ImageRejected(f"the file is too large ({len(data)} bytes; the limit is {max_bytes})")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected("the file is not a PNG, JPEG, WEBP or GIF image")
    try:
        return _decode(data, fmt, max_pixels, content)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            "the image declares too many pixels (possible decompression bomb)"
        ) from None
    except Exception as exc:  # the boundary: whatever Pillow or ImageHash raise becomes a rejection
        raise ImageRejected(
            f"the {fmt} image could not be decoded ({type(exc).__name__})"
        ) from None


THUMBNAIL_SIZE = (320, 320)


def thumbnail_png(data: bytes, *, checked: bool = False, size: tuple[int, int] = THUMBNAIL_SIZE) -> bytes:
    """A small PNG of an upload, for review tables, or ImageRejected when it is no image that can
    be shown. Unless the screenshot check has already accepted these bytes (`checked`), they go
    through inspect_image first, with all of its limits; the thumbnail is a fresh encode, so no
    byte of the upload (a trailing payload, metadata) reaches the reader."""
    if not checked:
        inspect_image(data)
    fmt = sniff_format(bytes(data))
    if fmt is None:
        raise ImageRejected("the file is not a PNG, JPEG, WEBP or GIF image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise ImageRejected(f"the image is too large ({width}x{height} pixels)")
                img.draft("RGB", size)  # JPEG: decode at a fraction of the size
                small = img.convert("RGBA" if "A" in img.getbands() or img.mode == "P" else "RGB")
                small.thumbnail(size)
                out = io.BytesIO()
                small.save(out, format="PNG", optimize=True)
                return out.getvalue()
    except ImageRejected:
        raise
    except Exception as exc:  # whatever Pillow raises: no preview
        raise ImageRejected(f"the {fmt} image could not be decoded ({type(exc).__name__})") from None


def _decode(data: bytes, fmt: str, max_pixels: int, content: bool = False) -> ImageFacts:
    # Our own container walk first, so truncation and trailing payloads are refused even
    # if some other code flipped ImageFile.LOAD_TRUNCATED_IMAGES on.
    pixel_stream = _check_container(data, fmt)
    # Scoped filter: the bomb *warning* becomes an exception for this decode only; the
    # filters are restored afterwards and Image.MAX_IMAGE_PIXELS is never touched. (The
    # filter list is process-wide while inside; proof jobs decode one image at a time.)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            # Image.open only parsed the header: check the declared size before decoding.
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageRejected("the image has no pixels (zero width or height)")
            if width * height > max_pixels:
                raise ImageRejected(
                    f"the image is too large ({width}x{height} pixels; "
                    f"the limit is {max_pixels} pixels)"
                )
            if pixel_stream is not None:
                _check_png_pixel_stream(*pixel_stream)
            img.load()
            exif_at = _exif_datetime(img)
            # One greyscale copy for every hash (imagehash.phash converts to "L" itself: same value).
            grey = img.convert("L")
            value = phash_int(imagehash.phash(grey))
            hashes = content_hashes(grey) if content else None
    return ImageFacts(
        format=fmt,
        width=width,
        height=height,
        phash=value,
        phash_hex=f"{value:016x}",
        exif_datetime=exif_at,
        content=hashes,
    )


# --- container structure: truncation and trailing payloads -------------------------------


def _truncated() -> ImageRejected:
    return ImageRejected("the image file is truncated or incomplete")


def _corrupt(fmt: str) -> ImageRejected:
    return ImageRejected(f"the {fmt} file structure is corrupt")


_PngPixelStream = tuple[list[memoryview], int]  # IDAT chunk bodies, declared inflated size


def _check_container(data: bytes, fmt: str) -> _PngPixelStream | None:
    """Refuse truncated or trailing-payload files; for PNG hand back the pixel stream.

    The PNG pixel stream is only inflated after the declared size passed the pixel limit.
    """
    pixel_stream = None
    if fmt == "PNG":
        end, pixel_stream = _png_end(data)
        slack_allowed = False
    elif fmt == "JPEG":
        end = _jpeg_end(data)
        slack_allowed = True
    elif fmt == "GIF":
        end = _gif_end(data)
        slack_allowed = True
    else:
        end = _webp_end(data)
        slack_allowed = False
    trailing = data[end:]
    if not trailing:
        return pixel_stream
    if slack_allowed and len(trailing) <= TRAILING_SLACK and set(trailing) <= _PADDING_BYTES:
        return pixel_stream
    raise ImageRejected(
        f"the file has {len(trailing)} bytes of unexpected data after the end of the image"
    )


def _png_end(data: bytes) -> tuple[int, _PngPixelStream]:
    """Offset just past IEND (every chunk's length and CRC checked) and the pixel stream."""
    view = memoryview(data)
    n = len(data)
    pos = len(_PNG_SIGNATURE)
    ihdr: tuple[int, int, int, int, int] | None = None
    idat: list[memoryview] = []
    while True:
        if pos + 8 > n:
            raise _truncated()
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if length > 0x7FFFFFFF:
            raise _corrupt("PNG")
        body_start = pos + 8
        end = body_start + length + 4
        if end > n:
            raise _truncated()
        body = view[body_start : body_start + length]
        (crc,) = struct.unpack_from(">I", data, body_start + length)
        if zlib.crc32(body, zlib.crc32(ctype)) != crc:
            raise _corrupt("PNG")
        if ihdr is None:
            if ctype != b"IHDR" or length != 13:
                raise _corrupt("PNG")
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if width == 0 or height == 0:
                raise ImageRejected("the image has no pixels (zero width or height)")
            ihdr = (width, height, depth, colour, interlace)
        elif ctype == b"IDAT":
            idat.append(body)
        pos = end
        if ctype == b"IEND":
            break
    return pos, (idat, _png_raw_size(*ihdr))


def _png_raw_size(width: int, height: int, depth: int, colour: int, interlace: int) -> int:
    """Exact size of the decompressed PNG datastream (filter bytes included)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16) or interlace not in (0, 1):
        raise _corrupt("PNG")
    bits = channels * depth

    def rows(w: int, h: int) -> int:
        return 0 if w <= 0 or h <= 0 else h * (1 + (w * bits + 7) // 8)

    if interlace == 0:
        return rows(width, height)
    total = 0
    # Adam7 passes: (x0, y0, dx, dy)
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        total += rows((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy)
    return total


def _check_png_pixel_stream(idat: Iterable[memoryview], expected: int) -> None:
    """The zlib stream must end, and inflate to exactly what IHDR declares.

    Chunk-level checks miss a PNG whose IDAT was cut and re-wrapped with fresh CRCs;
    Pillow would quietly grey-fill it when LOAD_TRUNCATED_IMAGES is on. Inflating in
    bounded pieces and discarding the output keeps memory flat and stops a zlib bomb
    as soon as it overshoots the declared size.
    """
    step = 1 << 16
    inflater = zlib.decompressobj()
    total = 0
    try:
        for chunk in idat:
            pending = bytes(chunk)
            while True:
                out = inflater.decompress(pending, step)
                total += len(out)
                if total > expected:
                    raise ImageRejected("the PNG pixel data is larger than its declared size")
                pending = inflater.unconsumed_tail
                if inflater.eof or (not pending and len(out) < step):
                    break
            if inflater.eof:
                break
    except zlib.error:
        raise _corrupt("PNG") from None
    if not inflater.eof or total != expected:
        raise _truncated()


def _jpeg_end(data: bytes) -> int:
    """Offset just past the EOI marker, walking segments and entropy-coded scans."""
    n = len(data)
    pos = 2  # past SOI
    while True:
        if pos >= n:
            raise _truncated()
        if data[pos] != 0xFF:
            raise _corrupt("JPEG")
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            raise _truncated()
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return pos
        if marker in (0x00, 0xD8):
            raise _corrupt("JPEG")
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn / TEM carry no length
            continue
        if pos + 2 > n:
            raise _truncated()
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2:
            raise _corrupt("JPEG")
        pos += length
        if pos > n:
            raise _truncated()
        if marker == 0xDA:  # SOS: entropy-coded data runs to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    raise _truncated()
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte / restart
                    pos += 2
                elif following == 0xFF:  # fill
                    pos += 1
                else:
                    break


def _gif_end(data: bytes) -> int:
    """Offset just past the GIF trailer (0x3B), walking every block."""
    n = len(data)
    if n < 13:
        raise _truncated()
    packed = data[10]
    pos = 13 + (3 * (2 ** ((packed & 7) + 1)) if packed & 0x80 else 0)

    def skip_sub_blocks(at: int) -> int:
        while True:
            if at >= n:
                raise _truncated()
            size = data[at]
            at += 1
            if size == 0:
                return at
            at += size

    while True:
        if pos >= n:
            raise _truncated()
        introducer = data[pos]
        if introducer == 0x3B:
            return pos + 1
        if introducer == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(pos + 2)
        elif introducer == 0x2C:  # image descriptor, optional local table, LZW size, data
            if pos + 10 > n:
                raise _truncated()
            local = data[pos + 9]
            pos += 10
            if local & 0x80:
                pos += 3 * (2 ** ((local & 7) + 1))
            pos = skip_sub_blocks(pos + 1)
        else:
            raise _corrupt("GIF")


def _webp_end(data: bytes) -> int:
    """Offset just past the RIFF container, after checking its chunks tile it exactly."""
    n = len(data)
    riff_size = int.from_bytes(data[4:8], "little")
    end = 8 + riff_size
    if riff_size < 4:
        raise _corrupt("WEBP")
    if end > n:
        raise _truncated()
    pos = 12
    while pos < end:
        if pos + 8 > end:
            raise _corrupt("WEBP")
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
        if pos > end:
            raise _truncated()
    return end


# --- EXIF capture time ---------------------------------------------------------------------

_EXIF_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


def parse_exif_datetime(value: object, offset: object = None) -> datetime | None:
    """An EXIF "YYYY:MM:DD HH:MM:SS" as aware UTC when its "+HH:MM" offset is given, else as a
    naive wall-clock time: phones write local time, often without the offset tag, and reading
    that as UTC put a photo taken a minute ago hours into the past or future. The timestamp check
    treats a naive time as lying anywhere from UTC-12 to UTC+14. None when unreadable.
    """
    text = _exif_text(value)
    match = _EXIF_DATETIME.match(text) if text else None
    if match is None:
        return None
    tz = None
    offset_match = _EXIF_OFFSET.fullmatch(_exif_text(offset) or "")
    if offset_match is not None:
        sign = -1 if offset_match[1] == "-" else 1
        delta = timedelta(hours=int(offset_match[2]), minutes=int(offset_match[3]))
        if delta < timedelta(hours=24):
            tz = timezone(sign * delta)
    try:
        local = datetime(*(int(part) for part in match.groups()), tzinfo=tz)
        return local.astimezone(UTC) if tz is not None else local
    except (ValueError, OverflowError):  # "0000:00:00 00:00:00" and friends
        return None


def _exif_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ")


def _exif_datetime(img: Image.Image) -> datetime | None:
    try:
        exif = img.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        candidates = (
            (sub.get(ExifTags.Base.DateTimeOriginal), sub.get(ExifTags.Base.OffsetTimeOriginal)),
            (exif.get(ExifTags.Base.DateTime), sub.get(ExifTags.Base.OffsetTime)),
        )
        for value, offset in candidates:
            parsed = parse_exif_datetime(value, offset)
            if parsed is not None:
                return parsed
    except Exception:  # malformed EXIF is ignored, never a reason to reject the screenshot
        return None
    return None


# --- perceptual hash arithmetic ------------------------------------------------------------


def phash_int(image_hash: imagehash.ImageHash) -> int:
    """The hash's bit array as an unsigned int, first bit most significant (as str(hash))."""
    value = 0
    for bit in image_hash.hash.flatten():
        value = (value << 1) | int(bool(bit))
    return value


def hamming(a: int, b: int) -> int:
    """Differing bits between two 64-bit hashes (signed or unsigned forms both fine)."""
    return ((a ^ b) & _U64).bit_count()


def to_signed64(h: int) -> int:
    """Unsigned 64-bit hash -> the signed value a PostgreSQL BIGINT can hold."""
    h &= _U64
    return h - (1 << 64) if h >= 1 << 63 else h


def to_unsigned64(h: int) -> int:
    """Signed BIGINT value read back -> the unsigned 64-bit hash."""
    if not _S64_MIN <= h <= _U64:
        raise ValueError(f"{h} is not a 64-bit value")
    return h & _U64


def phash_chunks(h: int) -> tuple[int, int, int, int]:
    """The hash as four 16-bit chunks, most significant first, for a multi-index lookup.

    Pigeonhole: if two 64-bit hashes differ in at most 7 bits (so certainly within the
    duplicate threshold of 6), the differing bits cannot put 2 or more into every one of
    the four chunks (that would need 8), so at least one chunk position differs by at
    most one bit. Looking each of the new hash's chunks up together with its
    ``chunk_neighbours`` therefore finds every candidate within distance 6; the exact
    ``hamming`` distance is then computed on those candidates only.
    """
    h &= _U64
    return ((h >> 48) & 0xFFFF, (h >> 32) & 0xFFFF, (h >> 16) & 0xFFFF, h & 0xFFFF)


def chunk_neighbours(chunk: int) -> list[int]:
    """The 16-bit chunk itself followed by its 16 one-bit flips (17 values)."""
    chunk &= 0xFFFF
    return [chunk] + [chunk ^ (1 << bit) for bit in range(16)]


# --- the content region: what a copier cannot change -------------------------------------
#
# A whole-screen hash is mostly the app's chrome (status bar, header, action and navigation
# bars), identical in every post of that app, so a copy and a distinct post look alike to it
# while a crop shifts everything. The post's own content is the tallest band of rows that are
# mostly *not* the background colour; the background is estimated from the image itself (its
# brightest percentile) with a tolerance, so a brightness or contrast change moves both
# together. The stored hash is of that band with a margin trimmed off each side; a lookup
# hashes its own band at several trims, so a copy cropped by up to ~5% per side still lines
# up with the stored margin of one of them.

_REGION_WORK_WIDTH = 96
# Every content hash is taken from one greyscale copy of the decoded screenshot, and the band is
# found once. The 22 boxes are not cut and Lanczos-resampled one by one (that was 4/5 of a job's
# image time): the image is reduced once by a whole factor, and each box is area-averaged down to
# 32 x 32 cells from shared prefix sums, with fractional edges (``_box_cells``), then all 22 go
# through one batched DCT (``_phashes``: imagehash.phash's bits, same order). The box filter lets a
# little more detail through than Lanczos, so distinct posts sit a bit closer: the thresholds
# below were retuned on bench/near_duplicates.py's corpus and checked on a second corpus (seed 15).
# (Cutting integer boxes from a downscaled copy and resizing them, or resize's reducing_gap, had
# measured false positives 1.7% and 1.3% against the 1% target at the old thresholds.)
CONTENT_STORED_TRIM = 0.06  # fraction of the band's width left off each side of the stored hash
CONTENT_PROBE_TRIMS = (0.01, 0.035, 0.06)  # left and right trims a lookup tries (3 x 3 hashes)
# Bits within which a probe and a stored content hash count as the same post, measured by
# bench/near_duplicates.py on the generated corpus (see that bench for today's recall and false positives).
CONTENT_HAMMING_THRESHOLD = 9
# A sticker moves the band's hash by up to ~14 bits, but leaves one half of the band (top, bottom,
# left or right) nearly untouched: a pair within CONTENT_VERIFY_THRESHOLD whose closest halves are
# within CONTENT_HALF_THRESHOLD is a copy too.
CONTENT_VERIFY_THRESHOLD = 14
CONTENT_HALF_THRESHOLD = 6

_Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class ContentHashes:
    """Everything the content-band detector needs of one screenshot, computed in one pass.

    ``stored`` and ``stored_halves`` are what is kept for the screenshot (the band, margins trimmed,
    and its top, bottom, left and right halves); ``probes`` and ``probe_halves`` are what a lookup
    compares with other screenshots' stored ones (the band at each pair of probe trims, and the
    halves of the middle trim). All unsigned 64-bit."""

    stored: int
    stored_halves: tuple[int, int, int, int]
    probes: tuple[int, ...]
    probe_halves: tuple[int, int, int, int]


def _work_grey(img: Image.Image) -> Image.Image:
    return img if img.mode == "L" else img.convert("L")


def _region(work: Image.Image) -> _Box:
    """(left, top, right, bottom) of the tallest run of content rows of the grey image; all of it if none."""
    width, height = work.size
    scale = _REGION_WORK_WIDTH / width
    rows = max(1, round(height * scale))
    small = np.asarray(work.resize((_REGION_WORK_WIDTH, rows), Image.Resampling.BILINEAR), dtype=np.float32)
    background = float(np.percentile(small, 99))
    off_background = np.abs(small - background) > max(12.0, 0.06 * background)
    content = np.append(off_background.mean(axis=1) > 0.5, False)
    best, start, span = 0, None, (0, rows)
    for y, on in enumerate(content):
        if on and start is None:
            start = y
        elif not on and start is not None:
            if y - start > best:
                best, span = y - start, (start, y)
            start = None
    if best < rows * 0.15:  # no band worth the name: hash the whole image
        return (0, 0, width, height)
    return (0, round(span[0] / scale), width, min(height, round(span[1] / scale)))


def _trim(box: _Box, left: float, right: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (x0 + (x1 - x0) * left, y0, x1 - (x1 - x0) * right, y1)


_REDUCED_CELL_PIXELS = 2
_HASH_CELLS = 32  # each content hash is the DCT of its box averaged down to 32 x 32 cells, as imagehash.phash


def _dct_rows() -> np.ndarray:
    n = np.arange(_HASH_CELLS)
    k = np.arange(8)[:, None]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * _HASH_CELLS))  # the 8 lowest DCT-II rows (scipy's scale)


_DCT8 = _dct_rows()


def _box_cells(work: Image.Image, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """Each box averaged down to 32 x 32 cells: a box (area-average) resample with fractional edges,
    every pixel counted by its overlap with a cell (a pixel is a constant square). One pass over the
    pixels serves every box: the column sums between the few distinct cell-edge rows the boxes have
    (they share the band's top and bottom and the halves' middle), then per box only 33 x 33 lookups
    in the prefix sums of those rows; no resample of the whole image per hash."""
    # Reduced first (a box filter by a whole factor, in Pillow's C) to where the smallest box still
    # spans at least REDUCED_CELL_PIXELS pixels a cell: the area average of the reduced image is
    # then all but that of the full one, from a ninth of the pixels or fewer.
    smallest = min(min(x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes)
    factor = max(1, int(smallest // (_HASH_CELLS * _REDUCED_CELL_PIXELS)))
    if factor > 1:
        work = work.reduce(factor)
        boxes = [(x0 / factor, y0 / factor, x1 / factor, y1 / factor) for x0, y0, x1, y1 in boxes]
    pixels = np.asarray(work, dtype=np.uint8)
    height, width = pixels.shape
    spans = np.asarray(boxes, dtype=np.float64)
    steps = np.linspace(0.0, 1.0, _HASH_CELLS + 1)
    ys = spans[:, 1:2] + (spans[:, 3:4] - spans[:, 1:2]) * steps  # (boxes, 33) cell edges
    xs = spans[:, 0:1] + (spans[:, 2:3] - spans[:, 0:1]) * steps
    iy, ix = np.floor(ys).astype(np.intp), np.floor(xs).astype(np.intp)
    fy, fx = ys - iy, xs - ix
    fx = np.where(ix >= width, 1.0, fx)  # an edge on the right border: all of the last column
    ix = np.clip(ix, 0, width - 1)
    top, low = np.clip(iy, 0, height), np.clip(iy + 1, 0, height)
    # The prefix sums (over rows, then columns) are needed at each edge's row and the one below it:
    # the boxes share the band's top and bottom and the halves' middle, so there are few of them.
    rows = np.unique(np.concatenate([top.ravel(), low.ravel()]))
    # Column sums of the pixels between consecutive edge rows, in one pass (uint32 holds any
    # column of an image within MAX_PIXELS, unless it is taller than 16M rows: then int64).
    total = np.uint32 if height * 255 < 2**32 else np.int64
    table = np.zeros((len(rows), width + 1), dtype=np.float64)
    if len(rows) > 1:
        np.cumsum(np.add.reduceat(pixels[: rows[-1]], rows[:-1], axis=0, dtype=total), axis=0, out=table[1:, 1:])
    np.cumsum(table[:, 1:], axis=1, out=table[:, 1:])  # table[i, x]: sum of pixels[rows[0]:rows[i], :x]
    at, below = np.searchsorted(rows, top)[:, :, None], np.searchsorted(rows, low)[:, :, None]
    ix, fx, fy = ix[:, None, :], fx[:, None, :], fy[:, :, None]
    # The prefix sums at each box's 33 x 33 cell corners, bilinear between table entries (exact for
    # constant-square pixels), then the cell sums; a box's cells are equal, so no division.
    corners = ((table[at, ix] * (1 - fx) + table[at, ix + 1] * fx) * (1 - fy)
               + (table[below, ix] * (1 - fx) + table[below, ix + 1] * fx) * fy)
    return np.diff(np.diff(corners, axis=1), axis=2)


def _phashes(cells: np.ndarray) -> list[int]:
    """imagehash.phash's bits (8 x 8 lowest DCT coefficients above their median) of each 32 x 32 array."""
    low = (_DCT8 @ cells @ _DCT8.T).reshape(len(cells), 64)
    bits = low > np.median(low, axis=1, keepdims=True)
    return [int.from_bytes(row.tobytes(), "big") for row in np.packbits(bits, axis=1)]


def _halves(box: tuple[float, float, float, float]) -> list[tuple[float, float, float, float]]:
    x0, y0, x1, y1 = box
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    return [(x0, y0, x1, my), (x0, my, x1, y1), (x0, y0, mx, y1), (mx, y0, x1, y1)]  # top, bottom, left, right


def content_hashes(img: Image.Image) -> ContentHashes:
    """The stored and probe hashes of a screenshot (a decoded image, any mode; a grey one is used as is)."""
    work = _work_grey(img)
    region = _region(work)
    stored_box = _trim(region, CONTENT_STORED_TRIM, CONTENT_STORED_TRIM)
    middle = CONTENT_PROBE_TRIMS[len(CONTENT_PROBE_TRIMS) // 2]
    boxes = [stored_box, *_halves(stored_box),
             *(_trim(region, left, right) for left in CONTENT_PROBE_TRIMS for right in CONTENT_PROBE_TRIMS),
             *_halves(_trim(region, middle, middle))]
    hashes = _phashes(_box_cells(work, boxes))
    probes = len(CONTENT_PROBE_TRIMS) ** 2
    return ContentHashes(
        stored=hashes[0],
        stored_halves=tuple(hashes[1:5]),  # type: ignore[arg-type]
        probes=tuple(hashes[5:5 + probes]),
        probe_halves=tuple(hashes[5 + probes:]),  # type: ignore[arg-type]
    )


def content_region(img: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the tallest run of content rows, in the image's own pixels;
    the whole image if none."""
    return _region(_work_grey(img))


def content_phash(img: Image.Image) -> int:
    """The hash stored for a screenshot: its content band, margins trimmed."""
    return content_hashes(img).stored


def content_probe_phashes(img: Image.Image) -> list[int]:
    """The hashes a lookup compares with stored ones: the content band at each pair of trims."""
    return list(content_hashes(img).probes)


def content_half_phashes(img: Image.Image, *, stored: bool) -> list[int]:
    """Top, bottom, left and right halves of the band: of the stored box, or of the middle probe trim."""
    hashes = content_hashes(img)
    return list(hashes.stored_halves if stored else hashes.probe_halves)


def content_distance(probes: Iterable[int], stored: int) -> int:
    """The closest any probe comes to a stored content hash, in bits."""
    return min(hamming(probe, stored) for probe in probes)


def is_content_copy(probes: Iterable[int], probe_halves: Iterable[int], stored: int,
                    stored_halves: Iterable[int]) -> bool:
    """The verdict on one pair: the bands' hashes are close, or fairly close with one half all but equal."""
    distance = content_distance(probes, stored)
    if distance <= CONTENT_HAMMING_THRESHOLD:
        return True
    return distance <= CONTENT_VERIFY_THRESHOLD and min(
        hamming(a, b) for a, b in zip(probe_halves, stored_halves, strict=True)) <= CONTENT_HALF_THRESHOLD


# --- verdicts ------------------------------------------------------------------------------


def screenshot_check(facts: ImageFacts) -> CheckResult:
    """The screenshot decoded cleanly: pass, with its facts (phash as hex) for storage."""
    return CheckResult(
        name="screenshot",
        outcome=PASS,
        detail=f"{facts.format} screenshot {facts.width}x{facts.height} accepted",
        data={
            "format": facts.format,
            "width": facts.width,
            "height": facts.height,
            # Hex, not int: JSON consumers (JavaScript) lose precision above 2**53.
            "phash": facts.phash_hex,
            # RFC 3339 UTC when the image gives its zone; a bare local time when it does not.
            "exif_datetime": (
                facts.exif_datetime.isoformat().replace("+00:00", "Z")
                if facts.exif_datetime
                else None
            ),
            "exif_zone_known": facts.exif_datetime.tzinfo is not None if facts.exif_datetime else None,
        },
    )


def rejected_check(error: ImageRejected) -> CheckResult:
    """The screenshot verdict for an upload inspect_image refused."""
    return CheckResult(name="screenshot", outcome=FAIL, detail=error.detail)


def duplicate_check(matches: list[tuple[str, int]], threshold: int) -> CheckResult:
    """Fail when an earlier submission's hash is within ``threshold`` bits, naming the closest.

    ``matches`` are (submission_id, distance) pairs for earlier submissions, typically the
    multi-index candidates; ones beyond the threshold are ignored. Ties go to the first
    listed, so callers that list oldest first blame the original.
    """
    close = [(sub_id, distance) for sub_id, distance in matches if distance <= threshold]
    if not close:
        return CheckResult(
            name="duplicate",
            outcome=PASS,
            detail="no near-duplicate among earlier submissions",
            data={"threshold": threshold},
        )
    sub_id, distance = min(close, key=lambda match: match[1])
    return CheckResult(
        name="duplicate",
        outcome=FAIL,
        detail=f"near-duplicate of {sub_id} (distance {distance})",
        data={
            "matched_submission_id": sub_id,
            "distance": distance,
            "threshold": threshold,
            "match_count": len(close),
        },
    )


def content_duplicate_check(copies: list[tuple[str, int]]) -> CheckResult:
    """Fail naming the closest of the earlier submissions the content-band detector called this one
    a copy of (``copies``: (submission_id, content distance), verified by is_content_copy, first
    stored first so a tie blames the original); pass when there are none."""
    data = {"threshold": CONTENT_HAMMING_THRESHOLD, "verify_threshold": CONTENT_VERIFY_THRESHOLD,
            "half_threshold": CONTENT_HALF_THRESHOLD, "method": "content"}
    if not copies:
        return CheckResult(name="duplicate", outcome=PASS, detail="no edited copy among earlier submissions",
                           data=data)
    sub_id, distance = min(copies, key=lambda match: match[1])
    return CheckResult(
        name="duplicate",
        outcome=FAIL,
        detail=f"near-duplicate of {sub_id} (content distance {distance})",
        data={**data, "matched_submission_id": sub_id, "distance": distance, "match_count": len(copies)},
    )


__all__ = [
    "CONTENT_HAMMING_THRESHOLD",
    "CONTENT_HALF_THRESHOLD",
    "CONTENT_TYPES",
    "CONTENT_VERIFY_THRESHOLD",
    "ContentHashes",
    "MAX_BYTES",
    "MAX_PIXELS",
    "ImageFacts",
    "ImageRejected",
    "chunk_neighbours",
    "content_distance",
    "content_duplicate_check",
    "content_half_phashes",
    "content_hashes",
    "content_phash",
    "content_probe_phashes",
    "content_region",
    "duplicate_check",
    "hamming",
    "inspect_image",
    "is_content_copy",
    "parse_exif_datetime",
    "phash_chunks",
    "phash_int",
    "rejected_check",
    "screenshot_check",
    "sniff_format",
    "to_signed64",
    "to_unsigned64",
]
