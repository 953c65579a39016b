"""Translation: dictionary parsing, splits, vocabularies, scores, the word-by-word baseline,
and the CLI (`train translate`, `translate`) on tiny slices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitest import invoke, one_line_error, sweep_numeric_options
from rnnkit.data.text import DataError
from rnnkit.data.translation import (
    dictionary_path,
    load_dictionary_pairs,
    most_frequent,
    number_pairs,
    parse_dictionary_line,
    split_of,
    word_by_word,
)
from rnnkit.data.translation import fit_vocab as fit_translation_vocab
from rnnkit.data.vocab import Vocab
from rnnkit.tasks.metrics import translation_metrics
from rnnkit.tasks.translate import TranslateOptions

TINY_TRANS = ["--hidden", "16", "--embedding", "8", "--steps", "4", "--batch", "8",
              "--beam", "2", "--threads", "1", "--quiet"]  # fmt: skip


# ---- data -----------------------------------------------------------------------------------


def test_dictionary_line_is_aligned_and_cleaned():
    line = "Aalsuppe {f} [cook.] | Aalsuppen {pl} :: eel soup | eel soups"
    assert parse_dictionary_line(line) == [("Aalsuppe", "eel soup"), ("Aalsuppen", "eel soups")]
    # first synonym; nested and mixed annotations removed
    assert parse_dictionary_line("Aal {m} (Fisch (roh)); Flussaal :: eel; river eel <eels>") == [
        ("Aal", "eel")
    ]
    # unequal numbers of segments: the line cannot be aligned
    assert parse_dictionary_line("a | b :: x") == []
    assert parse_dictionary_line("# comment :: x") == []
    # an unbalanced bracket leaves the segment out
    assert parse_dictionary_line("gut (sehr | besser :: good | better") == [("besser", "better")]


def test_splits_are_deterministic_and_partition():
    keys = [f"k{i}" for i in range(2000)]
    splits = [split_of(k) for k in keys]
    assert splits == [split_of(k) for k in keys]
    share = {s: splits.count(s) / len(keys) for s in ("train", "val", "test")}
    assert 0.75 < share["train"] < 0.85 and 0.07 < share["test"] < 0.13


def test_number_pairs_hold_num2words_and_never_share_numbers():
    pairs = number_pairs(0, 120)
    everything = pairs.train + pairs.val + pairs.test
    assert len(everything) == 121
    as_text = {" ".join(s): "".join(t) for s, t in everything}
    assert as_text["twenty - four"] == "vierundzwanzig"
    assert as_text["one hundred and one"] == "einhunderteins"
    train = {" ".join(s) for s, _ in pairs.train}
    assert not train & {" ".join(s) for s, _ in pairs.test}


def test_vocabulary_round_trip_and_unknowns():
    v = fit_translation_vocab([["ein", "Haus"], ["ein", "Boot"]])
    assert v.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"] and v.tokens[4] == "ein"
    assert v.encode(["ein", "Auto"]) == [4, v.unk]
    assert v.tokens_of([4, 5, v.eos, 6]) == ["ein", v.tokens[5]]
    assert Vocab.from_dict(json.loads(json.dumps(v.to_dict()))).tokens == v.tokens
    with pytest.raises(DataError):
        Vocab(["a", "b"], specials=v.specials)



# ---- metrics and baselines --------------------------------------------------------------------


def test_translation_metrics_and_word_by_word_baseline():
    refs = ["a small house by the sea", "the cat sat on the mat"]
    perfect = translation_metrics(refs, refs)
    assert perfect["exact_match"] == 1.0 and perfect["bleu"] == pytest.approx(100.0)
    half = translation_metrics(["a small house by the sea", "the dog sat on a mat"], refs)
    assert half["exact_match"] == 0.5 and 0 < half["bleu"] < 100 and half["chrf"] < 100
    assert translation_metrics(["zwei"], ["zwei"], bleu=False)["bleu"] is None
    lex = most_frequent([("Haus", "house"), ("Haus", "home"), ("Haus", "house"), ("ein", "a")])
    assert lex == {"Haus": "house", "ein": "a"}
    assert word_by_word(lex, ["ein", "Haus", "Otto"], "de-en") == "a house Otto"
    nums = {"twenty": "zwanzig", "four": "vier"}
    assert word_by_word(nums, ["twenty", "-", "four"], "numbers") == "zwanzigvier"


# ---- CLI ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def numbers_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "numbers"
    result = invoke("train", "translate", "--data", "numbers", "--high", "99", "--out", out,
                    *TINY_TRANS)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "word-by-word" in result.stdout
    return out


def test_train_translate_numbers_and_translate(numbers_run, tmp_path):
    res = json.loads((numbers_run / "results.json").read_text())
    assert res["data"]["name"] == "numbers"
    for key in ("model", "model_greedy", "baseline"):
        assert 0 <= res[key]["exact_match"] <= 1 and "bleu" in res[key]
    assert "data:image/png;base64," in (numbers_run / "report.html").read_text()
    result = invoke("translate", numbers_run, "forty-two", "--beam", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().isalpha() or result.stdout.strip() == ""
    data = json.loads(invoke("translate", numbers_run, "forty-two", "--json").stdout)
    assert data["tokens"] == ["forty", "-", "two"] and data["unknown"] == []
    one_line_error(invoke("translate", numbers_run, ""), "empty")
    one_line_error(invoke("translate", numbers_run, "two", "--beam", "0"), "--beam")
    one_line_error(invoke("translate", tmp_path, "zwei"), "not a run directory")


def test_train_translate_bad_data(tmp_path):
    one_line_error(invoke("train", "translate", "--data", "fr-en", "--out", tmp_path / "t"),
                   "--data must be one of de-en, numbers")  # fmt: skip


def test_train_translate_de_en_on_a_dictionary_slice(tmp_path, monkeypatch):
    lines = dictionary_path().read_text(encoding="utf-8").splitlines()[:4000]
    small = tmp_path / "de-en"
    small.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("RNNKIT_DE_EN", str(small))
    out = tmp_path / "de-en-run"
    result = invoke("train", "translate", "--limit", "60", "--out", out, *TINY_TRANS)
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    assert res["data"]["name"] == "de-en" and res["baseline"]["lexicon_size"] > 100
    result = invoke("translate", out, "ein kleines Haus")
    assert result.exit_code == 0, result.output


def test_missing_dictionary_names_the_install_command(tmp_path):
    with pytest.raises(DataError, match="apt-get install -y trans-de-en"):
        load_dictionary_pairs(tmp_path / "de-en")


def test_train_translate_numeric_options_one_line(tmp_path):
    assert sweep_numeric_options(["train", "translate"], TranslateOptions, tmp_path / "x") > 40
    for minutes in ("0", "-5"):
        one_line_error(invoke("train", "translate", "--minutes", minutes, "--out", tmp_path / "m"),
                       "--minutes")  # fmt: skip
    one_line_error(invoke("train", "translate", "--low", "50", "--high", "10", "--out",
                          tmp_path / "r"), "--low")  # fmt: skip
    assert TranslateOptions(data="numbers").train_steps(100) == 600  # the data set's default
    assert TranslateOptions(epochs=0.5).train_steps(100) == 50


def test_translate_beam_is_bounded(numbers_run):
    one_line_error(invoke("translate", numbers_run, "two", "--beam", "100000"), "--beam")


def test_a_translate_run_refuses_onnx_export_in_one_line(numbers_run, tmp_path):
    from onnx_roundtrip import assert_run_refuses_export

    assert_run_refuses_export(numbers_run, tmp_path, "rnnkit translate")
