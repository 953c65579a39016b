"""Captioning images: digit pictures composed from disjoint scans, held-out sequences, the
oracle crops, emoji renderings and their names, and image files read for prediction."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rnnkit.data import images
from rnnkit.data.images import (
    EMOJI_SIDE,
    HEIGHT,
    WIDTH,
    WORDS,
    crop_digits,
    digit_splits,
    emoji_splits,
    held_out,
    load_emoji,
    read_image,
    render_emoji,
)
from rnnkit.data.text import DataError


@pytest.fixture(scope="module")
def splits():
    return digit_splits(600, 50, 300)


def test_splits_never_share_a_scan_and_test_holds_unseen_sequences(splits):
    used = {name: {s for pic in getattr(splits, name).scans for s in pic}
            for name in ("train", "val", "test")}  # fmt: skip
    assert not used["train"] & used["test"] and not used["train"] & used["val"]
    assert not used["val"] & used["test"]
    digits = {name: [tuple(WORDS.index(w) for w in c) for c in getattr(splits, name).captions]
              for name in ("train", "test")}  # fmt: skip
    assert not any(held_out(d) for d in digits["train"])
    assert any(held_out(d) for d in digits["test"])
    assert {len(d) for d in digits["train"]} == {1, 2, 3, 4, 5}
    # the same pictures whatever else ran before: the split does not depend on --seed
    again = digit_splits(600, 50, 300)
    assert np.array_equal(again.test.images, splits.test.images)


def test_pictures_hold_their_digits_at_their_boxes(splits):
    data = splits.train
    assert data.images.shape == (600, 1, HEIGHT, WIDTH) and data.images.dtype == np.uint8
    for pic, caption, boxes in zip(data.images[:50], data.captions, data.boxes, strict=False):
        assert len(caption) == len(boxes)
        ink = pic[0].astype(float)
        inside = sum(ink[t : t + s, x : x + s].sum() for t, x, s in boxes)
        assert inside == pytest.approx(ink.sum())  # nothing drawn outside the boxes
        lefts = [x for _, x, _ in boxes]
        assert lefts == sorted(lefts)  # caption order is left to right
    crops, owner = crop_digits(data.take(10))
    assert crops.shape == (sum(len(c) for c in data.captions[:10]), 64)
    assert owner[0] == 0 and 0 <= crops.min() and crops.max() <= 1


def test_read_image_converts_letterboxes_and_rejects_bad_files(tmp_path):
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    rgb[:, :20] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "red.png")
    grey = read_image(tmp_path / "red.png", 1, HEIGHT, WIDTH)
    assert grey.shape == (1, HEIGHT, WIDTH)
    colour = read_image(tmp_path / "red.png", 3, HEIGHT, WIDTH)
    assert colour.shape == (3, HEIGHT, WIDTH) and colour[0].max() > 200 and colour[1].max() == 0
    # dark ink on white paper is inverted to the scans' light-on-dark
    paper = np.full((30, 90), 255, dtype=np.uint8)
    paper[10:20, 40:50] = 0
    Image.fromarray(paper).save(tmp_path / "paper.jpg")
    ink = read_image(tmp_path / "paper.jpg", 1, HEIGHT, WIDTH)[0]
    assert ink[12, 48] > 200 and ink[2, 5] < 30
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(tmp_path / "dot.png")
    with pytest.raises(DataError, match="1x1 pixels is too small"):
        read_image(tmp_path / "dot.png", 1, HEIGHT, WIDTH)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="not an image"):
        read_image(tmp_path / "notes.png", 1, HEIGHT, WIDTH)
    with pytest.raises(DataError, match="no such file"):
        read_image(tmp_path / "missing.png", 1, HEIGHT, WIDTH)


def test_emoji_are_named_with_skin_tones_and_split_by_rendering(monkeypatch):
    texts, captions = load_emoji()
    assert len(texts) > 1800 and len(set(captions)) == len(captions)
    assert captions[texts.index("\U0001f600")] == "grinning face"
    assert captions[texts.index("\U0001f44b\U0001f3fd")] == "waving hand sign medium skin tone"
    assert "\U0001f3fd" not in texts and "\u200d" not in texts  # no bare modifiers or joiners
    data = emoji_splits(6, 3, 3)
    assert data.train.images.shape == (6, 3, EMOJI_SIDE, EMOJI_SIDE)
    assert [" ".join(c) for c in data.train.captions] == captions[:6]
    again = render_emoji([0, 0], np.random.default_rng(1))
    assert not np.array_equal(again[0], again[1])  # two renderings of one emoji differ
    monkeypatch.setattr(images, "EMOJI_FONT", "/nonexistent/emoji.ttf")
    images._emoji_font.cache_clear()
    try:
        with pytest.raises(DataError, match="rnnkit datasets install emoji"):
            images._emoji_font()
    finally:
        images._emoji_font.cache_clear()
