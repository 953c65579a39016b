"""Sentiment: batches, word vectors, metrics, the bag-of-words baseline, and the CLI
(`train sentiment`, `classify`) on tiny slices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from clitest import invoke, one_line_error, sweep_numeric_options
from rnnkit.data.sentiment import Example, ExampleSplits, fit_vocab
from rnnkit.models.classical import bag_of_words_baseline
from rnnkit.tasks.metrics import classification_metrics
from rnnkit.tasks.sentiment.task import (
    SentimentData,
    SentimentOptions,
    batch_fn,
    build_classifier,
)

TINY_SENT = ["--hidden", "8", "--embedding", "8", "--epochs", "1", "--batch", "8",
             "--pretrain", "train", "--ensemble", "2", "--threads", "1", "--quiet"]  # fmt: skip


def test_word_dropout_reads_training_words_as_unk():
    train = [Example("good fun film", "pos"), Example("dull film", "neg")] * 50
    vocab = fit_vocab(e.text for e in train)
    data = SentimentData(ExampleSplits(train, [], [], "toy"), vocab, ["neg", "pos"], {})
    plain, _, lengths = batch_fn(data, 64)(0, torch.Generator().manual_seed(0))
    ids, _, _ = batch_fn(data, 64, word_dropout=0.5)(0, torch.Generator().manual_seed(0))
    real = plain > 0
    assert ((ids == plain) | (ids == 1)).all() and (ids[~real] == 0).all()  # padding kept
    share = float((ids[real] == 1).float().mean())
    assert 0.35 < share < 0.65, share
    assert lengths.tolist() == real.sum(1).tolist()


def test_word_vectors_start_small():
    # torch's N(0, 1) start cost 3-4 points of validation accuracy (benchmarks/README.md)
    model = build_classifier(SentimentOptions(hidden=8, embedding=16), 500, 2)
    w = model.input.embedding.weight.detach()
    assert (w[0] == 0).all() and 0.08 < float(w[1:].std()) < 0.12


def test_classification_metrics_by_hand():
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], 2)
    assert m["accuracy"] == 0.75 and m["confusion"] == [[1, 1], [0, 2]]
    # F1: class 0 = 2·1/(2+0+1) = 2/3, class 1 = 2·2/(4+1+0) = 4/5
    assert m["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_bag_of_words_baseline_learns_toy_words():
    pos = [Example(f"great film {i}", "positive") for i in range(20)]
    neg = [Example(f"awful film {i}", "negative") for i in range(20)]
    pipe, info = bag_of_words_baseline(pos + neg, [], ["negative", "positive"])
    assert list(pipe.predict(["a great one", "so awful"])) == [1, 0]
    assert info["C"] == 1.0  # no validation split: no grid search


POSITIVE = ["a wonderful moving film", "great acting and a great story", "a joy to watch",
            "funny warm and wonderful", "brilliant and moving", "great fun"]  # fmt: skip
NEGATIVE = ["a dull boring mess", "awful acting and a dull story", "a waste of time",
            "boring flat and awful", "tedious and dull", "awful mess"]  # fmt: skip


@pytest.fixture(scope="module")
def sentiment_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sent") / "reviews.csv"
    rows = ["review,stars"]
    for i in range(6):
        rows += [f'"{t} {i}",pos' for t in POSITIVE] + [f'"{t} {i}",neg' for t in NEGATIVE]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sentiment_run(sentiment_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "sent"
    result = invoke("train", "sentiment", "--data", sentiment_csv, "--text-column", "review",
                    "--label-column", "stars", "--out", out, *TINY_SENT)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "bag-of-words" in result.stdout
    return out


def test_train_sentiment_writes_a_complete_run(sentiment_run):
    for name in ("config.json", "model.safetensors", "metrics.jsonl", "vocab.json",
                 "results.json", "report.html"):  # fmt: skip
        assert (sentiment_run / name).is_file(), name
    assert (sentiment_run / "member-1" / "model.safetensors").is_file()
    res = json.loads((sentiment_run / "results.json").read_text())
    assert res["data"]["labels"] == ["neg", "pos"] and len(res["member_accuracies"]) == 2
    assert res["pretraining"]["sentences"] > 0 and not res["pretraining"]["interrupted"]
    assert 0 <= res["model"]["accuracy"] <= 1 and 0 <= res["baseline"]["accuracy"] <= 1
    html = (sentiment_run / "report.html").read_text()
    assert "data:image/png;base64," in html and "bag-of-words" in html


def test_classify_prints_label_and_probability(sentiment_run, sentiment_csv, tmp_path):
    result = invoke("classify", sentiment_run, "a wonderful film")
    assert result.exit_code == 0, result.output
    label, prob = result.stdout.strip().split("\t")
    assert label in ("neg", "pos") and 0.5 <= float(prob) <= 1
    data = json.loads(invoke("classify", sentiment_run, "dull", "--json").stdout)
    assert set(data["probabilities"]) == {"neg", "pos"}
    scored = invoke("classify", sentiment_run, "--data", sentiment_csv,
                    "--text-column", "review", "--label-column", "stars")  # fmt: skip
    assert scored.exit_code == 0 and scored.stdout.startswith("accuracy")
    one_line_error(invoke("classify", sentiment_run, "   "), "empty")
    one_line_error(invoke("classify", sentiment_run, "... --- ..."), "no words")
    unseen = tmp_path / "unseen.csv"
    unseen.write_text("review,stars\ngreat,pos\nmeh,neutral\n", encoding="utf-8")
    one_line_error(invoke("classify", sentiment_run, "--data", unseen, "--text-column",
                          "review", "--label-column", "stars"), "'neutral'")  # fmt: skip
    one_line_error(invoke("classify", tmp_path, "good"), "not a run directory")


def test_train_sentiment_bad_input(sentiment_csv, tmp_path):
    out = tmp_path / "x"
    one_line_error(invoke("train", "sentiment", "--data", sentiment_csv, "--out", out),
                   "no column 'text'")  # fmt: skip
    one_line_error(invoke("train", "sentiment", "--data", sentiment_csv, "--text-column",
                          "review", "--label-column", "grade", "--out", out),
                   "'review', 'stars'")  # fmt: skip
    one_line_error(invoke("train", "sentiment", "--data", tmp_path / "none.csv", "--out", out),
                   "no such file")  # fmt: skip
    one_line_error(invoke("train", "sentiment", "--readout", "sum", "--out", out), "--readout")
    one_line_error(invoke("train", "sentiment", "--word-dropout", "1", "--out", out),
                   "--word-dropout")  # fmt: skip
    assert not out.exists()


def test_train_sentiment_on_vader_slice(tmp_path):
    out = tmp_path / "vader"
    result = invoke("train", "sentiment", "--limit", "40", "--out", out, *TINY_SENT)
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    assert res["data"]["sizes"] == {"train": 40, "val": 40, "test": 40}
    assert res["data"]["labels"] == ["negative", "positive"]


def test_every_numeric_option_is_validated_before_anything_runs(tmp_path):
    assert sweep_numeric_options(["train", "sentiment"], SentimentOptions, tmp_path / "x") > 50


def test_the_sentiment_run_exports_to_onnx(sentiment_run, tmp_path):
    """The --ensemble 2 run is one graph of both members: its `probabilities` are the
    classifier's own (the members' mean) on batches and lengths the export did not see."""
    from onnx_roundtrip import assert_predicts, assert_run_exports
    from rnnkit.tasks import sentiment
    from rnnkit.tasks.sentiment.task import encode

    path = assert_run_exports(sentiment_run, tmp_path)
    clf = sentiment.load(sentiment_run)
    assert len(clf.models) == 2
    for texts in (["a wonderful film", "dull and boring mess of a story", "great fun",
                   "awful"], ["a joy to watch and funny warm and wonderful film"]):  # fmt: skip
        ids, lengths = encode(clf.vocab, texts)
        assert_predicts(path, ids, lengths, clf.probabilities(texts).numpy())
