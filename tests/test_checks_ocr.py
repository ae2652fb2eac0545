"""OCR of screenshots: the real tesseract binary on images drawn here with real fonts."""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess

import pytest
from PIL import Image, ImageDraw, ImageFont

from marketplace.proofs.checks import ocr
from marketplace.proofs.checks.screenshot import ImageRejected

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="tesseract is not installed (scripts/ocr.sh installs it)")


def font_path(bold: bool = False) -> str:
    """A real TrueType font from Debian's fonts-dejavu-core (or Liberation): fontconfig's answer
    first, then the usual directories."""
    family = "DejaVu Sans:bold" if bold else "DejaVu Sans"
    if shutil.which("fc-match"):
        found = subprocess.run(["fc-match", "-f", "%{file}", family], capture_output=True, text=True,
                               check=False).stdout.strip()
        if found.endswith(".ttf") and os.path.exists(found):
            return found
    names = ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf") if bold else (
        "DejaVuSans.ttf", "LiberationSans-Regular.ttf")
    for name in names:
        hits = glob.glob(f"/usr/share/fonts/**/{name}", recursive=True)
        if hits:
            return hits[0]
    pytest.skip("no DejaVu or Liberation font installed (scripts/ocr.sh installs fonts-dejavu-core)")


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(bold), size)


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def text_image(lines: list[str], size: tuple[int, int] = (900, 300), px: int = 40) -> bytes:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * int(px * 1.6)), line, fill="black", font=font(px))
    return png(img)


# --- read_text ---------------------------------------------------------------------------------


@needs_tesseract
def test_reads_the_text_drawn_on_an_image():
    text = ocr.read_text(text_image(["Paid partnership", "Summer sale today"]))
    assert "Paid partnership" in text
    assert "Summer sale" in text


@needs_tesseract
def test_a_huge_image_is_shrunk_before_reading_and_still_read():
    img = Image.new("RGB", (6000, 3000), "white")
    ImageDraw.Draw(img).text((200, 1200), "Werbung", fill="black", font=font(400, bold=True))
    assert "Werbung" in ocr.read_text(png(img))


@needs_tesseract
def test_a_small_image_is_enlarged_so_small_text_is_read():
    img = Image.new("RGB", (360, 120), "white")
    ImageDraw.Draw(img).text((10, 40), "Sponsored", fill="black", font=font(16))
    assert "Sponsored" in ocr.read_text(png(img))


def test_an_absurd_image_is_refused_before_decoding():
    # A blank bilevel PNG compresses to almost nothing: small file, many declared pixels.
    img = Image.new("1", (8000, 8000), 1)
    with pytest.raises(ImageRejected, match="too large"):
        ocr.read_text(png(img), max_pixels=10_000_000)


def test_bytes_that_are_no_image_are_refused():
    with pytest.raises(ImageRejected):
        ocr.read_text(b"<html>not a picture</html>")


def test_a_missing_binary_is_its_own_outcome(tmp_path):
    with pytest.raises(ocr.TesseractMissing, match="not installed"):
        ocr.read_text(text_image(["#ad"]), binary=str(tmp_path / "no-such-tesseract"))


@needs_tesseract
def test_missing_language_data_counts_as_missing():
    with pytest.raises(ocr.TesseractMissing, match="language data"):
        ocr.read_text(text_image(["#ad"]), languages="eng+xyz")


def test_a_binary_that_hangs_is_stopped_at_the_timeout(tmp_path):
    hanging = tmp_path / "tesseract"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    with pytest.raises(ocr.OcrFailed, match="within 0.5 seconds"):
        ocr.read_text(text_image(["#ad"]), binary=str(hanging), timeout=0.5)


def test_a_binary_that_fails_is_a_failure_not_missing(tmp_path):
    failing = tmp_path / "tesseract"
    failing.write_text("#!/bin/sh\necho 'boom' >&2\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(ocr.OcrFailed, match="exit 3"):
        ocr.read_text(text_image(["#ad"]), binary=str(failing))
