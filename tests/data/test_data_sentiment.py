"""Sentiment data: VADER ground truth, tokens, the missing-data message, CSV errors."""

from __future__ import annotations

import pytest

from rnnkit.data.sentiment import (
    Example,
    fit_vocab,
    load_csv,
    load_vader,
    parse_ground_truth,
    split_examples,
    words,
)
from rnnkit.data.text import DataError


def test_vader_ground_truth_labels_by_sign():
    text = "1\t2.3\tGreat fun.\n2\t0.0\tA film.\n3\t-1.5\tDull.\nbroken line\n"
    assert parse_ground_truth(text) == [Example("Great fun.", "positive"),
                                        Example("Dull.", "negative")]  # fmt: skip
    assert words("It's NOT good!") == ["it's", "not", "good", "!"]
    vocab = fit_vocab(["good film", "good"], min_count=2)
    assert vocab.tokens == ["<pad>", "<unk>", "good"] and vocab.encode("good bad") == [2, 1]


def test_missing_vader_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_VADER", str(tmp_path / "nope.tar.gz"))
    with pytest.raises(DataError, match="pip download --no-deps --no-binary :all: vaderSentiment"):
        load_vader()


def test_vader_movies_as_documented():
    examples = load_vader("movies")
    assert len(examples) == 10_605 - 37  # 37 sentences score exactly 0
    splits = split_examples(examples, "movies")
    assert len(splits.train) + len(splits.val) + len(splits.test) == len(examples)
    assert {e.label for e in splits.limited(50).train} == {"negative", "positive"}


def test_csv_errors_are_clear(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("sentence,label\nfine,pos\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no column 'text' \(--text-column\); its columns"):
        load_csv(path)
    with pytest.raises(DataError, match="single label"):
        load_csv(path, text_column="sentence")
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "missing.csv")
