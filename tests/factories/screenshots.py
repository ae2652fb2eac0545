"""A corpus of synthetic app screenshots for the duplicate detector (issue 14 §2), drawn here, never
downloaded; the tests and bench/near_duplicates.py share it.

Every post has the same app chrome (status bar, header, like/comment bar, navigation bar) around its
own photo and caption, which is the hard case for a whole-screen perceptual hash: the chrome is most
of the pixels. ``EDITS`` are what a copier does to somebody else's screenshot before uploading it.
Everything is deterministic in the seed.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

WIDTH, HEIGHT = 360, 640
STATUS = (0, 24)
HEADER = (24, 76)
PHOTO = (76, 436)  # a square photo, full width
ACTIONS = (436, 484)
CAPTION = (484, 600)
NAV = (600, 640)

WORDS = ("summer sale new drop love these shoes link in bio so comfy best day ever run club "
         "weekend vibes morning coffee outfit of the day city lights beach fresh look").split()


def _status_bar(draw: ImageDraw.ImageDraw, clock: str, battery: int, signal: int) -> None:
    draw.rectangle((0, STATUS[0], WIDTH, STATUS[1] - 1), fill=(250, 250, 250))
    draw.text((12, 6), clock, fill=(20, 20, 20))
    for bar in range(4):  # signal bars
        colour = (20, 20, 20) if bar < signal else (200, 200, 200)
        draw.rectangle((280 + bar * 6, 18 - bar * 3, 283 + bar * 6, 18), fill=colour)
    draw.rectangle((315, 7, 345, 17), outline=(20, 20, 20))
    draw.rectangle((317, 9, 317 + 26 * battery // 100, 15), fill=(20, 20, 20))


def _chrome(img: Image.Image) -> None:
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, HEADER[0], WIDTH, HEADER[1] - 1), fill=(255, 255, 255))
    draw.text((14, 42), "Snapgram", fill=(10, 10, 10))
    draw.ellipse((300, 36, 328, 64), outline=(10, 10, 10), width=2)
    draw.line((0, HEADER[1] - 1, WIDTH, HEADER[1] - 1), fill=(220, 220, 220))
    draw.rectangle((0, ACTIONS[0], WIDTH, NAV[1]), fill=(255, 255, 255))
    for i, x in enumerate((14, 54, 94)):  # like, comment, share
        draw.ellipse((x, 446, x + 26, 472), outline=(10, 10, 10), width=2) if i != 2 else \
            draw.polygon([(x, 472), (x + 26, 459), (x, 446)], outline=(10, 10, 10))
    draw.rectangle((320, 446, 342, 472), outline=(10, 10, 10), width=2)  # save
    draw.line((0, NAV[0], WIDTH, NAV[0]), fill=(220, 220, 220))
    for x in range(30, WIDTH, 72):
        draw.rectangle((x, 610, x + 22, 630), outline=(10, 10, 10), width=2)


def _photo(rng: random.Random) -> Image.Image:
    """A 'photo': a two-colour gradient, a handful of shapes, sometimes a noise texture."""
    size = PHOTO[1] - PHOTO[0]
    a = [rng.randrange(256) for _ in range(3)]
    b = [rng.randrange(256) for _ in range(3)]
    mask = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270, 45)), expand=False).resize((size, size))
    photo = Image.composite(Image.new("RGB", (size, size), tuple(a)), Image.new("RGB", (size, size), tuple(b)), mask)
    draw = ImageDraw.Draw(photo)
    for _ in range(rng.randint(4, 10)):
        x0, y0 = rng.randrange(-40, size), rng.randrange(-40, size)
        x1, y1 = x0 + rng.randrange(30, 200), y0 + rng.randrange(30, 200)
        colour = tuple(rng.randrange(256) for _ in range(3))
        kind = rng.random()
        if kind < 0.4:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind < 0.8:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y0), (x1, y0 + rng.randrange(-50, 50)), (x0 + rng.randrange(-50, 50), y1)], fill=colour)
    if rng.random() < 0.4:
        # Seeded here: Image.effect_noise draws from C's rand(), which no seed of ours reaches.
        grain = np.random.default_rng(rng.getrandbits(32)).normal(128, rng.randrange(20, 60), (size, size))
        noise = Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8), "L").convert("RGB")
        photo = Image.blend(photo, noise, 0.25)
    return photo


def screenshot(seed: int) -> Image.Image:
    """Post number `seed`: the shared chrome around its own photo and caption."""
    rng = random.Random(seed)
    img = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    _chrome(img)
    draw = ImageDraw.Draw(img)
    _status_bar(draw, f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}", rng.randint(10, 100), rng.randint(1, 4))
    img.paste(_photo(rng), (0, PHOTO[0]))
    draw.text((14, ACTIONS[1] + 4), f"{rng.randint(3, 9999)} likes", fill=(10, 10, 10))
    for line in range(3):
        draw.text((14, ACTIONS[1] + 24 + line * 16), " ".join(rng.choices(WORDS, k=rng.randint(4, 8))),
                  fill=(30, 30, 30))
    return img


# --- edits ---------------------------------------------------------------------------------------


def crop(img: Image.Image, rng: random.Random) -> Image.Image:
    """Up to 5% off each side."""
    w, h = img.size
    left, right = int(w * rng.uniform(0, 0.05)), int(w * rng.uniform(0, 0.05))
    top, bottom = int(h * rng.uniform(0, 0.05)), int(h * rng.uniform(0, 0.05))
    return img.crop((left, top, w - right, h - bottom))


def jpeg(img: Image.Image, rng: random.Random) -> Image.Image:
    """A JPEG re-encode at quality 30."""
    return Image.open(io.BytesIO(encode(img, "JPEG", quality=30))).convert("RGB")


def resize(img: Image.Image, rng: random.Random) -> Image.Image:
    """Scaled by 0.5x to 2x."""
    factor = rng.uniform(0.5, 2.0)
    return img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))),
                      Image.Resampling.BILINEAR)


def tone(img: Image.Image, rng: random.Random) -> Image.Image:
    """Brightness and contrast, each by up to ±15%."""
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.85, 1.15))
    return ImageEnhance.Contrast(img).enhance(rng.uniform(0.85, 1.15))


def sticker(img: Image.Image, rng: random.Random) -> Image.Image:
    """A sticker (a bright disc with a face) somewhere on the photo, an eighth of the width across."""
    img = img.copy()
    draw = ImageDraw.Draw(img)
    d = WIDTH // 8
    x, y = rng.randrange(0, WIDTH - d), rng.randrange(PHOTO[0], PHOTO[1] - d)
    draw.ellipse((x, y, x + d, y + d), fill=(255, 215, 0), outline=(0, 0, 0), width=2)
    draw.arc((x + 10, y + 12, x + d - 10, y + d - 8), 20, 160, fill=(0, 0, 0), width=2)
    return img


def status_bar(img: Image.Image, rng: random.Random) -> Image.Image:
    """A fresh status bar: another time, battery and signal."""
    img = img.copy()
    _status_bar(ImageDraw.Draw(img), f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}", rng.randint(5, 100),
                rng.randint(0, 4))
    return img


EDITS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "crop": crop, "jpeg": jpeg, "resize": resize, "tone": tone, "sticker": sticker, "status_bar": status_bar,
}


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


@dataclass(frozen=True)
class Corpus:
    originals: list[Image.Image]  # indexed: post i has seed base + i
    copies: list[tuple[int, str, Image.Image]]  # (index of the original, edit name, edited copy)
    distinct: list[Image.Image]  # other posts of the same layout, never indexed: must not match


def corpus(originals: int, distinct: int, *, seed: int = 14) -> Corpus:
    """`originals` posts, each copied once per edit kind, and `distinct` further posts."""
    rng = random.Random(seed)
    base = seed * 1_000_000
    posts = [screenshot(base + i) for i in range(originals)]
    copies = [(i, name, edit(post, rng)) for i, post in enumerate(posts) for name, edit in EDITS.items()]
    others = [screenshot(base + originals + i) for i in range(distinct)]
    return Corpus(posts, copies, others)


@dataclass(frozen=True)
class Score:
    recall: float  # copies matched to their own original
    false_positive_rate: float  # distinct posts matched to any original
    missed: dict[str, int]  # edit name -> copies not matched to their original


def score(data: Corpus, index: Callable[[list[Image.Image]], object],
          lookup: Callable[[object, Image.Image], set[int]]) -> Score:
    """Index the originals with `index`, then ask `lookup` (the index, an image) -> indexes of the
    originals it calls this image a copy of, for every copy and every distinct post."""
    built = index(data.originals)
    missed: dict[str, int] = {name: 0 for name in EDITS}
    for original, name, copy in data.copies:
        if original not in lookup(built, copy):
            missed[name] += 1
    flagged = sum(bool(lookup(built, other)) for other in data.distinct)
    return Score(1 - sum(missed.values()) / len(data.copies), flagged / len(data.distinct), missed)
