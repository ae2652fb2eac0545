"""OCR of screenshots: the real tesseract binary on images drawn here with real fonts."""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess

import pytest
import sqlalchemy as sa
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


# --- reading a disclosure, a handle, a caption ---------------------------------------------------


@pytest.mark.parametrize(("read", "found"), [
    ("Paid partnership", "Paid partnership"),
    ("PAID PARTNERSHlP with acme", "Paid partnership"),  # I read as l, case
    ("Pa id partner ship", "Paid partnership"),  # stray spaces
    ("Partenariat remunere avec Acme", "Partenariat rémunéré"),  # accents dropped
    ("Publicite", "Publicité"),
    ("Coll aboration cornmerciale", "Collaboration commerciale"),  # rn read for m
    ("Werbung", "Werbung"),
    ("Anze1ge", "Anzeige"),  # 1 read for i
    ("Publicidad", "Publicidad"),
    ("Sp0nsored", "Sponsored"),  # 0 read for o
    ("loving it #ad", "#ad"),
    ("loving it # ad !", "#ad"),
    ("#sponsored", "#sponsored"),
])
def test_every_wording_is_found_through_the_usual_ocr_confusions(read, found):
    assert ocr.find_disclosure(read) == found


@pytest.mark.parametrize("read", [
    "", "#adventure time", "had a great day", "made with love", "Summer sale 20% off", "Partner",
])
def test_text_without_a_disclosure_finds_none(read):
    assert ocr.find_disclosure(read) is None


def test_the_handle_and_the_caption_are_compared_with_what_was_read():
    read = "9:41\n@sam.runs · Follow\nPaid partnership\nLighter shoe same grip, loving these trainers #ad"
    assert ocr.handle_visible("@Sam.Runs", read)
    assert ocr.handle_visible("sam.runs", read)
    assert not ocr.handle_visible("@someone_else", read)
    assert ocr.caption_overlap("Lighter shoe, same grip! Loving these trainers #ad", read) == 1.0
    assert ocr.caption_overlap("A completely different caption about pizza", read) == 0.0
    assert ocr.caption_overlap("#ad", read) is None


# --- a phone screenshot, through the validation job ------------------------------------------------


def phone_screenshot(*, handle: str = "@sam.runs", label: str | None = "Paid partnership",
                     caption: str = "Lighter shoe, same grip. Loving these trainers #ad",
                     size: tuple[int, int] = (540, 1170)) -> bytes:
    """A post as a phone shows it: status bar, the author's handle with the platform's small
    disclosure label under it, the picture, like/comment row, then the caption."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.text((24, 10), "9:41", fill="black", font=font(18, bold=True))
    draw.rectangle((width - 60, 14, width - 24, 30), outline="black", width=2)  # battery
    draw.rectangle((width - 56, 18, width - 36, 26), fill="black")
    draw.ellipse((20, 60, 68, 108), fill=(200, 80, 120))  # avatar
    draw.text((82, 62), handle, fill="black", font=font(20, bold=True))
    if label:
        draw.text((82, 88), label, fill=(90, 90, 90), font=font(15))
    draw.rectangle((0, 124, width, 124 + width), fill=(70, 130, 180))  # the post's picture
    draw.ellipse((width // 4, 200, width * 3 // 4, 200 + width // 2), fill=(250, 200, 60))
    icons_y = 124 + width + 16
    for x in (24, 74, 124):
        draw.ellipse((x, icons_y, x + 30, icons_y + 30), outline="black", width=3)
    draw.text((24, icons_y + 46), "1,204 likes", fill="black", font=font(16, bold=True))
    y = icons_y + 76
    line = ""
    for word in caption.split():  # wrap the caption as the app does
        if draw.textlength(f"{line} {word}".strip(), font=font(17)) > width - 48:
            draw.text((24, y), line, fill="black", font=font(17))
            y, line = y + 26, word
        else:
            line = f"{line} {word}".strip()
    draw.text((24, y), line, fill="black", font=font(17))
    return png(img)


@needs_tesseract
def test_the_small_label_of_a_phone_screenshot_is_read():
    caption = "Lighter shoe, same grip. Loving these trainers"  # no #ad: the label alone must be found
    text = ocr.read_text(phone_screenshot(caption=caption))
    assert ocr.find_disclosure(text) == "Paid partnership", text
    assert ocr.handle_visible("sam.runs", text), text
    assert ocr.caption_overlap(caption, text) == 1.0, text
    assert ocr.find_disclosure(ocr.read_text(phone_screenshot(label=None, caption=caption))) is None


@pytest.fixture
def jobs(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "STORAGE_DIR", str(tmp_path / "storage"))
    return app


def validated(client, standin, app, shot: bytes, *, caption: str | None = "Lighter shoe, same grip. Loving "
              "these trainers #ad", handle: str | None = "@sam.runs", **brief) -> tuple[str, dict]:
    """A worker (registered on TikTok as `handle`) submits `shot` to a brief (disclosure_on_media
    unless told otherwise); the job runs: (status, the screenshot check as the worker sees it)."""
    from tests.factories.proofs import (
        checks_by_name,
        claimed_task,
        proof_brief,
        run_validation_jobs,
        submission,
        submit,
    )
    from tests.factories.workforce import patch_profile

    group = {"kind": "clip", "quantity": 10, "unit_price_cents": 100,
             "proof": {"screenshot": "required", "text": {"required": False, "max_length": 500}}}
    _, made = proof_brief(client, standin, [group], **{"disclosure_on_media": True, **brief})
    token, held = claimed_task(client, made)
    if handle:
        assert patch_profile(client, token, social_accounts=[{"platform": "tiktok", "handle": handle}]).status_code == 200
    response = submit(client, token, held["task"]["id"], screenshot=shot, text=caption)
    assert response.status_code == 202, response.get_json()
    run_validation_jobs(app)
    body = submission(client, token, response.get_json()["id"])
    check = checks_by_name(body)["screenshot"]
    # The facts behind the verdict are stored with it (the worker's view shows the detail only).
    with app.app_context():
        from marketplace.extensions import db

        check["data"] = db.session.execute(sa.text(
            "SELECT data FROM submission_checks WHERE submission_id = :id AND name = 'screenshot'"),
            {"id": body["id"]}).scalar_one()
        db.session.remove()
    return body["status"], check


@needs_tesseract
def test_an_english_screenshot_with_its_disclosure_passes(client, standin, jobs):
    status, check = validated(client, standin, jobs, phone_screenshot())
    assert (status, check["outcome"]) == ("needs_review", "pass"), check
    assert "visible" in check["detail"]
    assert check["data"]["ocr"] == "read" and check["data"]["handle_found"] is True
    assert "@sam.runs" in check["data"]["ocr_text"]


@needs_tesseract
def test_a_french_screenshot_with_its_disclosure_passes(client, standin, jobs):
    caption = "Une chaussure plus légère, même adhérence. Je les adore #ad"
    status, check = validated(client, standin, jobs, phone_screenshot(
        label="Partenariat rémunéré", caption=caption), caption=caption)
    assert (status, check["outcome"]) == ("needs_review", "pass"), check
    assert check["data"]["disclosure_found"] in ("Partenariat rémunéré", "#ad")


@needs_tesseract
def test_a_french_screenshot_without_a_disclosure_fails_saying_what_was_read(client, standin, jobs):
    caption = "Une chaussure plus légère, même adhérence, vraiment géniale pour courir tous les matins " * 3
    status, check = validated(client, standin, jobs, phone_screenshot(label=None, caption=caption),
                              caption=caption + " #ad")
    assert (status, check["outcome"]) == ("auto_rejected", "fail"), check
    assert "no disclosure" in check["detail"]
    read = check["detail"].split("read: ", 1)[1]
    assert "@sam.runs" in read and "chaussure" in read
    assert len(read) <= ocr.DETAIL_EXCERPT + 2 and read.endswith("…\""), read  # truncated


@needs_tesseract
def test_an_english_screenshot_without_a_disclosure_fails(client, standin, jobs):
    status, check = validated(client, standin, jobs, phone_screenshot(
        label=None, caption="Lighter shoe, same grip. Loving these trainers"))
    assert (status, check["outcome"]) == ("auto_rejected", "fail"), check


@needs_tesseract
def test_another_handle_on_the_screenshot_warns(client, standin, jobs):
    status, check = validated(client, standin, jobs, phone_screenshot(handle="@not.my.account"))
    assert (status, check["outcome"]) == ("needs_review", "warn"), check
    assert "@sam.runs is not visible" in check["detail"]
    assert check["data"]["handle_found"] is False


@needs_tesseract
def test_a_caption_other_than_the_one_on_the_screenshot_warns(client, standin, jobs):
    status, check = validated(client, standin, jobs, phone_screenshot(),
                              caption="Pizza night with friends, best pepperoni in town #ad")
    assert (status, check["outcome"]) == ("needs_review", "warn"), check
    assert "does not match the submitted caption" in check["detail"]


def test_tesseract_missing_warns_and_says_so(client, standin, jobs, monkeypatch, tmp_path):
    monkeypatch.setitem(jobs.config, "OCR_TESSERACT_BINARY", str(tmp_path / "bin" / "tesseract"))
    status, check = validated(client, standin, jobs, phone_screenshot())
    assert (status, check["outcome"]) == ("needs_review", "warn"), check
    assert "not checked" in check["detail"] and "Tesseract is not installed" in check["detail"]
    assert check["data"]["ocr"] == "tesseract_missing"


def test_briefs_without_disclosure_on_media_are_not_read(client, standin, jobs, monkeypatch, tmp_path):
    # With Tesseract "missing", any attempt to read would warn: a pass shows none was made.
    monkeypatch.setitem(jobs.config, "OCR_TESSERACT_BINARY", str(tmp_path / "bin" / "tesseract"))
    status, check = validated(client, standin, jobs, phone_screenshot(label=None), disclosure_on_media=False)
    assert (status, check["outcome"]) == ("needs_review", "pass"), check
    assert "ocr" not in check["data"]


def test_a_proof_that_failed_a_cheap_check_is_not_read(client, standin, jobs, monkeypatch, tmp_path):
    monkeypatch.setitem(jobs.config, "OCR_TESSERACT_BINARY", str(tmp_path / "bin" / "tesseract"))
    # The caption lacks the disclosure the brief requires: the text check fails first.
    status, check = validated(client, standin, jobs, phone_screenshot(), caption="Lighter shoe, same grip")
    assert (status, check["outcome"]) == ("auto_rejected", "pass"), check
    assert "ocr" not in check["data"]


def test_the_fast_fuzzy_search_agrees_with_the_full_dynamic_programme():
    import random

    rng = random.Random(5)
    for _ in range(3000):
        needle = "".join(rng.choice("abc") for _ in range(rng.randint(6, 14)))
        haystack = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        errors = rng.randint(1, 3)
        assert ocr._fuzzy_find(needle, haystack, errors) == ocr._edit_within(needle, haystack, errors)


def test_a_page_of_text_without_a_disclosure_is_searched_quickly():
    import random
    import time

    rng = random.Random(1)
    page = " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                    for _ in range(1200))
    started = time.perf_counter()
    assert ocr.find_disclosure(page) is None
    assert time.perf_counter() - started < 0.2  # the plain dynamic programme took ~0.8 s


def test_tesseract_failing_warns_and_says_why(client, standin, jobs, monkeypatch, tmp_path):
    crashing = tmp_path / "tesseract"
    crashing.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n")
    crashing.chmod(0o755)
    monkeypatch.setitem(jobs.config, "OCR_TESSERACT_BINARY", str(crashing))
    status, check = validated(client, standin, jobs, phone_screenshot())
    assert (status, check["outcome"]) == ("needs_review", "warn"), check
    assert "not checked: Tesseract failed (exit 139)" in check["detail"]
    assert check["data"]["ocr"] == "failed"
