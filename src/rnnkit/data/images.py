"""Images for captioning: multi-digit pictures composed from real scans, and image files.

Digits: scikit-learn's handwritten digits (1,797 real 8x8 scans from UCI, no download) are
split by scan (train / val / test never share a scan), then composed into 24x96 grey
pictures of 1-5 digits side by side, at a random scale (8-16 pixels a digit), random gaps
and a random vertical jitter, captioned with their number words ("four two seven"). Every
tenth digit sequence of two or more digits (by a hash of its caption) is held out: training
and validation never show it, the test split draws from all sequences, so it holds
sequences never seen in training (both held out ones and the many never drawn).

Emoji: every pictographic code point of the Noto Color Emoji font (Debian
fonts-noto-color-emoji), and each one that takes a skin tone with the five Fitzpatrick
modifiers, drawn with Pillow (a bitmap font: drawn at its one size, 109, then resized) at a
random size, position and rotation on a random plain background, 48x48 RGB, captioned with
its Unicode name ("grinning face with smiling eyes", "waving hand sign medium skin tone").
Split by rendering: every emoji is in every split, each picture is a fresh rendering.

Image files (`read_image`): any PNG/JPEG Pillow opens, converted to grey or RGB, letterboxed
into the model's canvas; a file that is not an image, or one too small, is a DataError.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .text import DataError

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HEIGHT, WIDTH = 24, 96  # the digits canvas: five 16-pixel digits with gaps fit
MIN_SIZE, MAX_SIZE = 8, 16  # a digit's side in pixels (the scans are 8x8)
MAX_GAP = 4  # pixels between neighbouring digits
MAX_DIGITS = 5
SPLIT_SEED = 0  # the split and the pictures do not depend on --seed: every run sees the same
SPLIT_SHARES = (0.7, 0.15)  # train, val; the rest is test
MIN_IMAGE_SIDE = 8  # smaller files cannot hold a digit

EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_INSTALL = "rnnkit datasets install emoji (Debian fonts-noto-color-emoji)"
EMOJI_SIDE = 48  # the emoji canvas (RGB)
EMOJI_MIN, EMOJI_MAX = 24, 44  # an emoji's side in pixels before rotation
EMOJI_ROTATION = 30  # degrees either way
EMOJI_CACHE = 64  # each emoji is drawn once at 109 and kept at this size
# the Fitzpatrick modifiers and their CLDR names
SKIN_TONES = {0x1F3FB: "light", 0x1F3FC: "medium-light", 0x1F3FD: "medium",
              0x1F3FE: "medium-dark", 0x1F3FF: "dark"}  # fmt: skip


@dataclass
class CaptionImages:
    """Pictures and their captions.

    images: (N, C, H, W) uint8. captions: N word lists. boxes: per picture, (top, left,
    size) of each digit, in caption order (the oracle segmentation of the digit baseline).
    scans: per picture, the scan (index into load_digits) of each digit.
    """

    images: np.ndarray
    captions: list[list[str]]
    boxes: list[list[tuple[int, int, int]]]
    scans: list[list[int]]

    def __len__(self) -> int:
        return len(self.captions)

    def take(self, n: int) -> CaptionImages:
        return CaptionImages(self.images[:n], self.captions[:n], self.boxes[:n], self.scans[:n])


@dataclass
class ImageSplits:
    train: CaptionImages
    val: CaptionImages
    test: CaptionImages
    source: str
    scans: dict[str, int] | None  # digit scans per split (None: emoji, split by rendering)

    def describe(self) -> str:
        s = self.scans
        if s is None:
            return (f"{len(self.train):,} train / {len(self.val):,} val / {len(self.test):,} "
                    "test pictures, each its own rendering")  # fmt: skip
        return (f"{len(self.train):,} train / {len(self.val):,} val / {len(self.test):,} test "
                f"pictures, from {s['train']:,} / {s['val']:,} / {s['test']:,} disjoint digit "
                "scans")  # fmt: skip


def held_out(digits: Sequence[int]) -> bool:
    """Whether a digit sequence is kept out of training (every tenth of 2+ digits, by hash).

    Example:
        >>> sum(held_out([a, b]) for a in range(10) for b in range(10))
        13
    """
    return len(digits) >= 2 and zlib.crc32(" ".join(map(str, digits)).encode()) % 10 == 0


@functools.lru_cache(maxsize=1)
def load_scans() -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """(scans (1797, 8, 8) uint8 in 0..255, labels (1797,), size -> (1797, size, size): every
    scan at every digit size, resized once) from scikit-learn."""
    from PIL import Image

    from ..deps import require

    require("sklearn", what="the digits captioning data")
    from sklearn.datasets import load_digits

    d = load_digits()
    scans = (d.images * (255 / 16)).round().astype(np.uint8)
    sized = {size: np.stack([np.asarray(Image.fromarray(s).resize((size, size), Image.BILINEAR))
                             for s in scans])
             for size in range(MIN_SIZE, MAX_SIZE + 1)}  # fmt: skip
    return scans, d.target.astype(np.int64), sized


def compose(
    ids: np.ndarray, n: int, rng: np.random.Generator, allow_held_out: bool,
    max_digits: int = MAX_DIGITS,
) -> CaptionImages:  # fmt: skip
    """`n` pictures of 1..max_digits digits drawn from the scans `ids` (indices into
    load_digits): uniform length, uniform digits; held-out sequences redrawn unless
    `allow_held_out`."""
    if max_digits < 1 or max_digits > MAX_DIGITS:
        raise DataError(f"max digits must be in 1..{MAX_DIGITS}, got {max_digits}")
    _, labels, sized = load_scans()
    by_digit = [ids[labels[ids] == d] for d in range(10)]
    if any(len(ix) == 0 for ix in by_digit):
        raise DataError("digits: a split lacks a digit class; use more scans")
    images = np.zeros((n, 1, HEIGHT, WIDTH), dtype=np.uint8)
    captions, boxes, used = [], [], []
    for i in range(n):
        k = int(rng.integers(1, max_digits + 1))
        digits = rng.integers(0, 10, k).tolist()
        while not allow_held_out and held_out(digits):
            digits = rng.integers(0, 10, k).tolist()
        gaps = rng.integers(0, MAX_GAP + 1, k - 1)
        size = int(rng.integers(MIN_SIZE, MAX_SIZE + 1))
        while k * size + gaps.sum() > WIDTH:  # five large digits: shrink to fit
            size -= 1
        left = int(rng.integers(0, WIDTH - (k * size + gaps.sum()) + 1))
        base = int(rng.integers(0, HEIGHT - size + 1))
        placed, picked = [], []
        for j, d in enumerate(digits):
            top = int(np.clip(base + rng.integers(-2, 3), 0, HEIGHT - size))
            scan = int(rng.choice(by_digit[d]))
            images[i, 0, top : top + size, left : left + size] = sized[size][scan]
            placed.append((top, left, size))
            picked.append(scan)
            left += size + (int(gaps[j]) if j < k - 1 else 0)
        captions.append([WORDS[d] for d in digits])
        boxes.append(placed)
        used.append(picked)
    return CaptionImages(images, captions, boxes, used)


def digit_splits(n_train: int, n_val: int, n_test: int,
                 max_digits: int = MAX_DIGITS) -> ImageSplits:  # fmt: skip
    """The digits captioning data: scans split 70/15/15, pictures composed per split."""
    _, labels, _ = load_scans()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    a = int(SPLIT_SHARES[0] * len(order))
    b = a + int(SPLIT_SHARES[1] * len(order))
    parts = {"train": order[:a], "val": order[a:b], "test": order[b:]}
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    made = {name: compose(ix, sizes[name], np.random.default_rng([SPLIT_SEED, k]),
                          allow_held_out=name == "test", max_digits=max_digits)
            for k, (name, ix) in enumerate(parts.items())}  # fmt: skip
    return ImageSplits(made["train"], made["val"], made["test"],
                       "scikit-learn load_digits (UCI handwritten digits, 1,797 scans)",
                       {k: len(v) for k, v in parts.items()})  # fmt: skip


def _pictographic(cp: int) -> bool:
    """A code point drawn as an emoji on its own: not a joiner, modifier, tag, keycap mark,
    regional-indicator letter or ASCII."""
    import unicodedata

    ch = chr(cp)
    return (cp > 0x2000 and unicodedata.category(ch) not in ("Mn", "Me", "Cf", "Sk")
            and not 0x1F1E6 <= cp <= 0x1F1FF and not 0xE0000 <= cp <= 0xE007F
            and cp not in SKIN_TONES and bool(unicodedata.name(ch, "")))  # fmt: skip


@functools.lru_cache(maxsize=1)
def _emoji_font():
    from PIL import ImageFont

    if not Path(EMOJI_FONT).is_file():
        raise DataError(f"the emoji font {EMOJI_FONT} is not installed; install it with: "
                        f"{EMOJI_INSTALL}")  # fmt: skip
    return ImageFont.truetype(EMOJI_FONT, 109)


@functools.lru_cache(maxsize=1)
def load_emoji() -> tuple[list[str], list[str]]:
    """(emoji strings, their captions): every emoji of the font and its skin-tone variants;
    DataError with the install command if the font is missing."""
    import unicodedata

    from ..deps import require

    font = _emoji_font()
    require("fontTools", what="the emoji captioning data")
    from fontTools.ttLib import TTFont

    base = sorted(cp for cp in TTFont(EMOJI_FONT).getBestCmap() if _pictographic(cp))
    one = font.getbbox(chr(base[0]))[2]  # the width of one glyph
    texts, captions = [], []
    for cp in base:
        name = unicodedata.name(chr(cp)).lower()
        texts.append(chr(cp))
        captions.append(name)
        # a modifier base shapes with a tone into one glyph; others draw two side by side
        if font.getbbox(chr(cp) + chr(0x1F3FD))[2] <= 1.2 * one:
            for tone, tone_name in SKIN_TONES.items():
                texts.append(chr(cp) + chr(tone))
                captions.append(f"{name} {tone_name} skin tone")
    return texts, captions


@functools.cache
def _drawn(index: int):
    """Emoji `index` drawn once at the font's size, cropped, kept as a 64x64 RGBA image."""
    from PIL import Image, ImageDraw

    im = Image.new("RGBA", (2 * 136, 128), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((0, 0), load_emoji()[0][index], font=_emoji_font(),
                            embedded_color=True)  # fmt: skip
    return im.crop(im.getbbox() or (0, 0, 1, 1)).resize((EMOJI_CACHE, EMOJI_CACHE),
                                                        Image.BILINEAR)  # fmt: skip


def render_emoji(index: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Fresh renderings of emoji `index` (into load_emoji): (N, 3, 48, 48) uint8, each at a
    random size, rotation and position on a random plain background."""
    from PIL import Image

    out = np.zeros((len(index), 3, EMOJI_SIDE, EMOJI_SIDE), dtype=np.uint8)
    for i, e in enumerate(index):
        size = int(rng.integers(EMOJI_MIN, EMOJI_MAX + 1))
        glyph = _drawn(int(e)).resize((size, size), Image.BILINEAR)
        glyph = glyph.rotate(float(rng.uniform(-EMOJI_ROTATION, EMOJI_ROTATION)),
                             Image.BILINEAR, expand=True)  # fmt: skip
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        canvas = Image.new("RGB", (EMOJI_SIDE, EMOJI_SIDE), colour)
        w, h = glyph.size
        x = int(rng.integers(min(0, EMOJI_SIDE - w), max(0, EMOJI_SIDE - w) + 1))
        y = int(rng.integers(min(0, EMOJI_SIDE - h), max(0, EMOJI_SIDE - h) + 1))
        canvas.paste(glyph, (x, y), glyph)
        out[i] = np.asarray(canvas).transpose(2, 0, 1)
    return out


def emoji_splits(n_train: int, n_val: int, n_test: int) -> ImageSplits:
    """The emoji captioning data: picture i of a split shows emoji i mod N (every emoji in
    every split, each picture its own rendering)."""
    texts, captions = load_emoji()
    made = {}
    for k, (name, n) in enumerate((("train", n_train), ("val", n_val), ("test", n_test))):
        rng = np.random.default_rng([SPLIT_SEED, 100 + k])
        index = [i % len(texts) for i in range(n)]
        if name != "train":  # short splits still sample every kind of emoji
            index = rng.permutation(len(texts))[:n].tolist() if n <= len(texts) else index
        made[name] = CaptionImages(render_emoji(index, rng),
                                   [captions[i].split() for i in index], [[] for _ in index],
                                   [[i] for i in index])  # fmt: skip
    return ImageSplits(made["train"], made["val"], made["test"],
                       f"Noto Color Emoji ({EMOJI_FONT}), {len(texts):,} emoji with skin tones",
                       None)  # fmt: skip


def crop_digits(data: CaptionImages, side: int = 8) -> tuple[np.ndarray, list[int]]:
    """The digits cut out at their boxes (the oracle segmentation), resized to side x side:
    (M, side*side) floats in 0..1, and the picture each came from."""
    from PIL import Image

    crops, owner = [], []
    for i, picture in enumerate(data.boxes):
        for top, left, size in picture:
            patch = Image.fromarray(data.images[i, 0, top : top + size, left : left + size])
            crops.append(np.asarray(patch.resize((side, side), Image.BILINEAR), dtype=np.float32))
            owner.append(i)
    return np.stack(crops).reshape(len(crops), -1) / 255.0, owner


def read_image(path: str | Path, channels: int, height: int, width: int) -> np.ndarray:
    """An image file -> (channels, height, width) uint8, letterboxed into the canvas.

    Grey pictures of dark ink on light paper are inverted (the scans are light on dark);
    the aspect ratio is kept, the rest of the canvas is background.

    Raises:
        DataError: not a file, not an image Pillow can read, or smaller than 8x8 pixels.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; give a PNG or JPEG image")
    try:
        with Image.open(path) as im:
            im.load()
            picture = im.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        reason = "not an image Pillow can read" if isinstance(err, UnidentifiedImageError) \
            else f"cannot be read as an image ({err})"  # fmt: skip
        raise DataError(f"{path}: {reason}; give a PNG or JPEG image") from None
    w, h = picture.size
    if min(w, h) < MIN_IMAGE_SIDE:
        raise DataError(f"{path}: {w}x{h} pixels is too small to caption; give an image of "
                        f"at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels")  # fmt: skip
    array = np.asarray(picture, dtype=np.uint8)
    if channels == 1 and array.mean() > 127:
        picture = Image.fromarray(255 - array)
    scale = min(width / w, height / h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    picture = picture.resize(new, Image.BILINEAR)
    canvas = Image.new(picture.mode, (width, height), 0)
    canvas.paste(picture, ((width - new[0]) // 2, (height - new[1]) // 2))
    out = np.array(canvas, dtype=np.uint8)  # writable: torch.from_numpy shares it
    return out[None] if channels == 1 else out.transpose(2, 0, 1).copy()
