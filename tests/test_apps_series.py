"""Sequence classification: baselines, metrics, the CLI (forecasting and anomaly detection:
tests/tasks/test_forecast.py, tests/tasks/test_anomaly.py).

CLI tests run the real commands on tiny user files (a few seconds each); bad input must give
one line on stderr and exit code 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from rnnkit.cli.apps_series import register
from rnnkit.tasks.sequence_classify import one_nn_euclidean


@pytest.fixture(scope="module")
def app():
    a = typer.Typer()

    @a.callback()
    def root() -> None:
        """test app"""

    register(a)
    return a


def invoke(app, args):
    return CliRunner().invoke(app, [str(a) for a in args])


# ---- baselines and metrics on toy data ---------------------------------------------------


def test_one_nn_euclidean_handles_unequal_lengths():
    X_train = [np.zeros((4, 1)), np.ones((6, 1)) * 5]
    y_train = np.array([0, 1])
    X_test = [np.ones((3, 1)) * 4, np.zeros((8, 1)) + 0.5]
    assert one_nn_euclidean(X_train, y_train, X_test).tolist() == [1, 0]


# ---- CLI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seq_csv(tmp_path_factory):
    """Two classes of 2-channel sequences of length 5-9: rising vs falling."""
    rng = np.random.default_rng(0)
    lines = ["id,label,t,x1,x2,split"]
    for i in range(24):
        lab = ["rise", "fall"][i % 2]
        n = int(rng.integers(5, 10))
        sign = 1.0 if lab == "rise" else -1.0
        split = "test" if i >= 16 else "train"
        for t in range(n):
            lines.append(
                f"s{i},{lab},{t},{sign * t + rng.normal(0, 0.1):.3f},{rng.normal():.3f},{split}"
            )
    p = tmp_path_factory.mktemp("seq") / "seq.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_cli_train_sequence_classify(app, seq_csv, tmp_path):
    out = tmp_path / "cls"
    args = ["train", "sequence-classify", "--dataset", seq_csv, "--time-column", "t",
            "--hidden", 8, "--epochs", 3, "--batch", 8, "--out", out, "--quiet"]  # fmt: skip
    r = invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert 0 <= res["test_accuracy"] <= 1 and res["baselines"]["1nn_euclidean"] == 1.0
    for name in ("config.json", "model.safetensors", "scaler.json", "report.html"):
        assert (out / name).exists()
    assert "data:image/png;base64" in (out / "report.html").read_text()
    from rnnkit.tasks.sequence_classify import classify

    (label, prob), = classify(out, [np.stack([np.arange(6.0), np.zeros(6)], 1)])  # fmt: skip
    assert label in ("rise", "fall") and 0.5 <= prob <= 1


def test_cli_sequence_classify_ensemble(app, seq_csv, tmp_path):
    """--ensemble 2 trains and saves two differently seeded members and averages their
    softmax; --augment only perturbs training batches."""
    out = tmp_path / "ens"
    args = ["train", "sequence-classify", "--dataset", seq_csv, "--time-column", "t",
            "--hidden", 8, "--epochs", 3, "--batch", 8, "--ensemble", 2, "--augment", 0.1,
            "--max-train", 12, "--out", out, "--quiet"]  # fmt: skip
    r = invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["options"]["ensemble"] == 2 and len(res["member_accuracies"]) == 2
    for member in (out, out / "member-1"):
        assert (member / "model.safetensors").exists()
    from rnnkit.tasks.sequence_classify import classify, load_classifier

    models, _, _ = load_classifier(out)
    assert len(models) == 2
    w0, w1 = (next(m.parameters()).detach() for m in models)
    assert not torch.equal(w0, w1)  # independently seeded
    seq = np.stack([np.arange(6.0), np.zeros(6)], 1)
    (label, prob), = classify(out, [seq])  # fmt: skip
    assert label in ("rise", "fall") and 0.5 <= prob <= 1


def test_cv_folds_are_stratified():
    from rnnkit.tasks.sequence_classify import cv_folds

    y = np.array([0] * 10 + [1] * 5)
    fold = cv_folds(y, 5, seed=0)
    assert sorted(np.bincount(fold).tolist()) == [3, 3, 3, 3, 3]
    for f in range(5):
        assert (y[fold == f] == 0).sum() == 2 and (y[fold == f] == 1).sum() == 1


def _assert_usage_error(r, *words):
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    assert "Traceback" not in r.output
    for w in words:
        assert w in err, err


def test_cli_bad_input_one_line_exit_2(app, seq_csv, tmp_path):
    out = tmp_path / "x"
    cls = ["train", "sequence-classify", "--out", out, "--quiet", "--epochs", 1]
    unseen = tmp_path / "unseen.csv"
    text = "\n".join(  # s17 is a test series: give it a label no training series has
        line.replace(",fall,", ",jump,") if line.startswith("s17,") else line
        for line in seq_csv.read_text().splitlines()
    )
    unseen.write_text(text + "\n")
    _assert_usage_error(invoke(app, [*cls, "--dataset", unseen]), "never seen in training")
    _assert_usage_error(invoke(app, [*cls, "--dataset", seq_csv, "--label-column", "y"]),
                        "no column 'y'")  # fmt: skip
