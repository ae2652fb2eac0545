"""Reading the text on a screenshot with Tesseract, and the disclosure verdict on what was read.

``read_text`` runs Debian's ``tesseract`` binary (scripts/ocr.sh installs it with eng, fra, deu
and spa data) on a bounded, grey-scale copy of the image fed through stdin. It calls the binary
itself rather than through pytesseract: pytesseract is a thin wrapper over this same subprocess
that writes temporary files, and what matters here (stdin, a timeout, telling "not installed"
apart from "failed") is a dozen lines.

A missing binary is its own outcome (``TesseractMissing``): the check then warns and says so,
never passing a proof it could not read.
"""

from __future__ import annotations

import io
import re
import subprocess
import unicodedata
import warnings

from PIL import Image

from . import FAIL, PASS, WARN, CheckResult
from .screenshot import MAX_PIXELS, ImageRejected, sniff_format

LANGUAGES = "eng+fra+deu+spa"
# Sparse text: a screenshot is scattered labels (status bar, handle, caption, buttons), not a
# page of paragraphs, and psm 11 finds them in any order without a layout analysis to get wrong.
PAGE_SEGMENTATION = "11"
# Longest side Tesseract is given: a phone screenshot (1080x2400) passes as it is, a huge one is
# shrunk first (OCR time grows with the pixels; its text is legible long before that size).
MAX_SIDE = 2560
# Shorter than this, the image is enlarged: Tesseract reads text ~20px or taller best, and a small
# label on a small screenshot is well under that.
MIN_SIDE = 1200
DEFAULT_TIMEOUT_SECONDS = 30.0


class TesseractMissing(RuntimeError):
    """The tesseract binary (or its language data) is not installed where configured."""


class OcrFailed(RuntimeError):
    """Tesseract ran but gave no text: it crashed, timed out, or refused the image."""


def _prepared_png(data: bytes, *, max_pixels: int) -> bytes:
    """The image as a grey-scale PNG whose longest side is within [MIN_SIDE, MAX_SIDE]-ish.

    Bounded before decoding: the declared size is checked against ``max_pixels`` first, and the
    result Tesseract gets is at most MAX_SIDE on a side whatever was uploaded.
    """
    fmt = sniff_format(bytes(data))
    if fmt is None:
        raise ImageRejected("the file is not a PNG, JPEG, WEBP or GIF image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                if width <= 0 or height <= 0 or width * height > max_pixels:
                    raise ImageRejected(f"the image is too large to read ({width}x{height} pixels)")
                longest = max(width, height)
                if longest > MAX_SIDE:
                    img.draft("L", (width * MAX_SIDE // longest, height * MAX_SIDE // longest))
                grey = img.convert("L")
                longest = max(grey.size)
                if longest > MAX_SIDE:
                    grey.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
                elif longest < MIN_SIDE:
                    factor = min(3, -(-MIN_SIDE // longest))
                    grey = grey.resize((grey.width * factor, grey.height * factor), Image.Resampling.LANCZOS)
                out = io.BytesIO()
                grey.save(out, format="PNG")
                return out.getvalue()
    except ImageRejected:
        raise
    except Exception as exc:  # whatever Pillow raises: nothing to read
        raise ImageRejected(f"the {fmt} image could not be decoded ({type(exc).__name__})") from None


def read_text(
    data: bytes, *, binary: str = "tesseract", timeout: float = DEFAULT_TIMEOUT_SECONDS,
    languages: str = LANGUAGES, max_pixels: int = MAX_PIXELS,
) -> str:
    """The text Tesseract reads on the image.

    Raises TesseractMissing when the binary (or the language data) is not there, OcrFailed when
    it runs but fails or outlives ``timeout``, ImageRejected for bytes that are no bounded image.
    """
    png = _prepared_png(data, max_pixels=max_pixels)
    try:
        done = subprocess.run(
            [binary, "stdin", "stdout", "-l", languages, "--psm", PAGE_SEGMENTATION],
            input=png, capture_output=True, timeout=timeout, check=False,
        )
    except FileNotFoundError:
        raise TesseractMissing(f"Tesseract is not installed ({binary!r} not found)") from None
    except PermissionError:
        raise TesseractMissing(f"Tesseract is not installed ({binary!r} is not executable)") from None
    except subprocess.TimeoutExpired:
        raise OcrFailed(f"Tesseract did not finish within {timeout:g} seconds") from None
    err = done.stderr.decode("utf-8", "replace").strip()
    # Tesseract carries on with the languages it has (exit 0); a disclosure in a missing one
    # would go unread, so that counts as not installed.
    if "Failed loading language" in err or "Error opening data file" in err:
        raise TesseractMissing(f"Tesseract's {languages} language data is not installed")
    if done.returncode != 0:
        raise OcrFailed(f"Tesseract failed (exit {done.returncode}): {err[-200:]}")
    return done.stdout.decode("utf-8", "replace")




# --- what was read: disclosure, handle, caption ----------------------------------------------

# Every wording of a disclosure label we accept, as written on the platforms (the ones the
# French influencer law, the UK's CAP code and the German and Spanish rules name).
DISCLOSURES = (
    "#ad", "#sponsored", "Sponsored", "Paid partnership", "Partenariat rémunéré", "Publicité",
    "Collaboration commerciale", "Werbung", "Anzeige", "Publicidad",
)
# How much of what was read the detail repeats (the data keeps more).
DETAIL_EXCERPT = 120
DATA_EXCERPT = 2000
# Of the OCR text, this much is searched: a screenshot holds far less, and the fuzzy match is
# quadratic in it.
SEARCHED_CHARS = 8000

# Look-alikes Tesseract swaps, folded to one letter on both sides of the comparison
# (after lower-casing): l/I/1/|, 0/O, and "rn" read for "m" (done separately, it is two letters).
_CONFUSABLE = str.maketrans({"i": "l", "1": "l", "|": "l", "0": "o"})


def normalise(text: str) -> str:
    """Lower case, accents dropped, OCR look-alikes folded, runs of white space made one space."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = plain.translate(_CONFUSABLE).replace("rn", "m")
    return " ".join(folded.split())


def _compact(text: str) -> str:
    """Letters, digits and '#' only: stray spaces and punctuation OCR inserts vanish."""
    return "".join(ch for ch in text if ch.isalnum() or ch == "#")


def _allowed_errors(length: int) -> int:
    # Short words must be read exactly ("#ad" one letter off is "#a", "had", ...); longer ones
    # tolerate about one mistake in six letters, at most three.
    return min(3, length // 6)


def _label_errors(label: str) -> int:
    # Hashtags are matched exactly, as whole tags: a garbled "#sponsored" is still caught by the
    # "Sponsored" wording, and a fuzzy "#ad" would be found in half the words of a caption.
    return 0 if label.startswith("#") else _allowed_errors(len(label))


def _fuzzy_find(needle: str, haystack: str, errors: int) -> bool:
    """Does `needle` occur in `haystack` with at most `errors` edits (approximate substring)?"""
    if not needle:
        return False
    if needle in haystack:
        return True
    if errors == 0:
        return False
    # Pigeonhole: within `errors` edits, one of `errors + 1` disjoint pieces of the needle occurs
    # intact. Only the stretches around such occurrences get the dynamic programme, which keeps a
    # page of OCR text from costing a second per label.
    m = len(needle)
    step = max(1, m // (errors + 1))
    for offset in range(0, step * (errors + 1), step):
        piece = needle[offset:offset + step]
        at = haystack.find(piece)
        while at >= 0:
            start = max(0, at - offset - errors)
            if _edit_within(needle, haystack[start:at - offset + m + errors], errors):
                return True
            at = haystack.find(piece, at + 1)
    return False


def _edit_within(needle: str, haystack: str, errors: int) -> bool:
    # Sellers' dynamic programme: the match may start anywhere in the haystack (row 0 is zeros).
    previous = list(range(len(needle) + 1))
    for ch in haystack:
        current = [0]
        for j, want in enumerate(needle, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ch != want)))
        if current[-1] <= errors:
            return True
        previous = current
    return False


def _short_label(label: str) -> re.Pattern[str]:
    # "#ad" with stray spaces inside, and not the start of a longer word ("#adventure").
    return re.compile(r"\s?".join(re.escape(ch) for ch in label) + r"(?![a-z0-9])")


def find_disclosure(text: str) -> str | None:
    """The first accepted disclosure wording visible in the OCR text, or None."""
    norm = normalise(text[:SEARCHED_CHARS])
    compact = _compact(norm)
    for label in DISCLOSURES:
        wanted = _compact(normalise(label))
        errors = _label_errors(wanted)
        if errors == 0:
            if _short_label(wanted).search(norm):
                return label
        elif _fuzzy_find(wanted, compact, errors):
            return label
    return None


def handle_visible(handle: str, text: str) -> bool:
    """Is the worker's handle (with or without '@') on the screenshot, OCR confusions allowed?"""
    wanted = _compact(normalise(handle.strip().lstrip("@")))
    return _fuzzy_find(wanted, _compact(normalise(text[:SEARCHED_CHARS])), _allowed_errors(len(wanted)))


def caption_overlap(caption: str, text: str, *, words: int = 12) -> float | None:
    """The share of the caption's first words (of 3 letters or more) read on the screenshot; None
    when the caption has none. Platforms cut long captions ("... more"), so only its start counts."""
    def word_list(of: str) -> list[str]:
        return [w.lstrip("#") for w in (_compact(w) for w in normalise(of).split())]

    wanted = [w for w in word_list(caption) if len(w) >= 3][:words]
    if not wanted:
        return None
    read = set(word_list(text[:SEARCHED_CHARS]))
    return sum(1 for w in wanted if w in read) / len(wanted)


# Below this share of the caption's first words read on the image, the caption is said to differ.
CAPTION_MIN_OVERLAP = 0.5


def _excerpt(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def media_disclosure_check(
    screenshot: CheckResult, data: bytes, *, handles: list[str], caption: str | None,
    binary: str = "tesseract", timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> CheckResult:
    """The screenshot verdict for a brief asking for the disclosure on the media itself.

    Reads the image (OCR) and fails it when no accepted disclosure wording is visible; a
    registered handle or a caption that the image does not show warns (OCR misses text, and a
    person can tell); Tesseract missing or failing warns and says so, never passing unread proof.
    ``screenshot`` is the cheap verdict (a pass) whose facts the result keeps.
    """
    base = dict(screenshot.data)
    try:
        text = read_text(data, binary=binary, timeout=timeout)
    except TesseractMissing as exc:
        return CheckResult("screenshot", WARN, f"the disclosure on the image was not checked: {exc}; "
                           "a reviewer should look", {**base, "ocr": "tesseract_missing"})
    except (OcrFailed, ImageRejected) as exc:
        reason = exc.detail if isinstance(exc, ImageRejected) else str(exc)
        return CheckResult("screenshot", WARN, f"the disclosure on the image was not checked: {reason}; "
                           "a reviewer should look", {**base, "ocr": "failed"})
    found = find_disclosure(text)
    read = _excerpt(text, DETAIL_EXCERPT) or "(no text)"
    facts: dict = {**base, "ocr": "read", "ocr_text": _excerpt(text, DATA_EXCERPT), "disclosure_found": found}
    if found is None:
        return CheckResult("screenshot", FAIL, "no disclosure (such as #ad, Paid partnership or Publicité) "
                           f"is visible on the screenshot; read: \"{read}\"", facts)
    doubts = []
    if handles:
        facts["handle_found"] = any(handle_visible(h, text) for h in handles)
        if not facts["handle_found"]:
            doubts.append(f"the registered handle {' or '.join('@' + h.lstrip('@') for h in handles)} "
                          "is not visible on it")
    overlap = caption_overlap(caption or "", text)
    if overlap is not None:
        facts["caption_overlap"] = round(overlap, 2)
        if overlap < CAPTION_MIN_OVERLAP:
            doubts.append("its text does not match the submitted caption")
    if doubts:
        return CheckResult("screenshot", WARN, f"disclosure \"{found}\" visible, but {' and '.join(doubts)}; "
                           f"read: \"{read}\"", facts)
    return CheckResult("screenshot", PASS, f"{screenshot.detail}; disclosure \"{found}\" visible", facts)


__all__ = ["DISCLOSURES", "LANGUAGES", "OcrFailed", "TesseractMissing", "caption_overlap", "find_disclosure",
           "handle_visible", "media_disclosure_check", "normalise", "read_text"]
