"""Sequence classification: the shipped aeon problems, the baselines, folds, the conv front
end, `train sequence-classify` on a tiny user file (seconds) with its automatic settings, the
ensemble, loading, and every numeric option's bad values."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from clitest import invoke, one_line_error
from rnnkit.data.archives import cv_folds, load_classification_source, shipped_problems
from rnnkit.models.classical import one_nn_dtw, one_nn_euclidean
from rnnkit.tasks import sequence_classify
from rnnkit.tasks.sequence_classify import SequenceClassifyOptions
from rnnkit.tasks.sequence_classify.task import cross_validate

TINY = ["--hidden", 8, "--filters", 4, "--epochs", 3, "--batch", 8, "--threads", 1, "--quiet",
        "--baselines", "euclidean"]
FIXED = ["--frontend", "conv", "--normalise", "series"]  # nothing to choose: no selection runs


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


def test_one_nn_euclidean_handles_unequal_lengths():
    X_train = [np.zeros((4, 1)), np.ones((6, 1)) * 5]
    y_train = np.array([0, 1])
    X_test = [np.ones((3, 1)) * 4, np.zeros((8, 1)) + 0.5]
    assert one_nn_euclidean(X_train, y_train, X_test).tolist() == [1, 0]


def test_every_shipped_problem_is_found_and_an_unknown_name_lists_them():
    shipped = shipped_problems()
    # univariate, multivariate, unequal length, and the equal-length variant aeon ships
    assert {"GunPoint", "BasicMotions", "JapaneseVowels", "JapaneseVowels_eq",
            "PickupGestureWiimoteZ", "OSULeaf", "ACSF1"} <= set(shipped)  # fmt: skip
    assert "Covid3Month" not in shipped  # a regression problem, not labelled
    jv = load_classification_source("JapaneseVowels")
    assert jv.features == 12 and len({len(x) for x in jv.X_train}) > 1
    r = invoke("train", "sequence-classify", "--data", "GunPointt", "--epochs", 1)
    one_line_error(r, "no such file or data set")
    assert "PickupGestureWiimoteZ" in r.output and "OSULeaf" in r.output


def test_dtw_baseline_on_a_shipped_problem():
    """(MiniRocket is measured in benchmarks/ only: numba compiles it for ~1 minute on a fresh
    machine, more than this suite's budget.)"""
    data = load_classification_source("UnitTest")
    X, y = data.X_train[::2], data.y_train[::2]  # 10 series, both classes
    dtw = one_nn_dtw(X, y, data.X_test[:6])
    assert dtw.dtype == np.int64 and (dtw == one_nn_dtw(X, y, data.X_test)[:6]).all()
    # a shifted copy of a training series: DTW finds it, whatever the shift
    shifted = [np.roll(x, 2, axis=0) for x in X[:3]]
    assert (one_nn_dtw(X, y, shifted) == y[:3]).all()


@pytest.mark.parametrize("full_resolution,parallel", [(False, False), (True, False), (True, True)])
def test_conv_rnn_ignores_padding_and_rebuilds_from_its_config(full_resolution, parallel):
    from rnnkit.config import HeadConfig, RNNConfig
    from rnnkit.models import build_model, model_from_dict, model_to_dict
    from rnnkit.models.conv_rnn import ConvRNNConfig

    cfg = ConvRNNConfig(3, HeadConfig("softmax", 4), RNNConfig("gru", 8, 1, True), patch=3,
                        filters=8, full_resolution=full_resolution, parallel=parallel)  # fmt: skip
    model = build_model(cfg).eval()
    # parallel: the recurrent layer reads the input's patches (3 frames x 3 channels)
    assert model.rnn.layers[0][0].input_size == (9 if parallel else 8)
    L = torch.tensor([10, 7, 3, 1])
    x = torch.randn(4, 10, 3) * (torch.arange(10)[None] < L[:, None])[..., None]
    batch, _ = model(x, lengths=L)
    alone, _ = model(x[1:2, :7], lengths=L[1:2])  # 7 frames: patched to 3 steps, padded alike
    assert batch.shape == (4, 4) and torch.allclose(alone, batch[1:2], atol=1e-5)
    again = model_from_dict(model_to_dict(model))
    assert again.config == cfg and len(again.front) == 3
    assert len(build_model(dataclasses.replace(cfg, filters=0)).front) == 0


def test_normalisation_is_chosen_only_when_it_changes_the_frames():
    """Series shipped z-normalised (most UCR univariate problems, the std over T or T-1) give
    the same frames either way: one candidate; --frontend auto adds the GRU alone."""
    from rnnkit.tasks.sequence_classify.task import candidates

    rng = np.random.default_rng(0)
    raw = [rng.normal(3, 2, (n, 2)) for n in (5, 9, 12)]
    z = [(s - s.mean(0)) / s.std(0, ddof=d) for s, d in zip(raw, (0, 1, 1), strict=True)]
    opts = SequenceClassifyOptions()
    assert candidates(opts, z) == [("conv", "series")]
    assert candidates(opts, raw) == [("conv", "level"), ("conv", "global")]
    auto = dataclasses.replace(opts, frontend="auto")
    assert candidates(auto, z) == [("conv", "series"), ("none", "series")]


def test_window_slicing_stretches_a_window_of_each_series_back_to_its_length():
    from rnnkit.tasks.sequence_classify.task import augmenter

    L = torch.tensor([10, 6])
    x = torch.arange(10.0).reshape(1, 10, 1).repeat(2, 1, 1) * (torch.arange(10) < L[:, None])[
        ..., None]  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(augmenter(0.0)(x, L, gen), x)  # crop 1, no noise: unchanged
    out = augmenter(0.0, 0.5)(x, L, gen)
    for b, n in enumerate(L.tolist()):  # a ramp stays a ramp: a window of >= half of it
        seq = out[b, :n, 0]
        steps = seq.diff()
        assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-5)
        assert 0.5 * (n - 1) - 1e-5 <= float(seq[-1] - seq[0]) <= n - 1 + 1e-5
        assert 0 <= float(seq[0]) and float(seq[-1]) <= n - 1 + 1e-5
        assert (out[b, n:] == 0).all()


def test_time_warping_keeps_each_series_ends_and_order_and_moves_its_middle():
    from rnnkit.tasks.sequence_classify.task import augmenter

    L = torch.tensor([12, 7])
    x = torch.arange(12.0).reshape(1, 12, 1).repeat(2, 1, 1) * (torch.arange(12) < L[:, None])[
        ..., None]  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(augmenter(0.0, 1.0, 0.0)(x, L, gen), x)  # warp 0: unchanged
    moved = 0.0
    for _ in range(5):
        out = augmenter(0.0, 1.0, 0.5)(x, L, gen)
        for b, n in enumerate(L.tolist()):  # a ramp read at a monotone time map
            seq = out[b, :n, 0]
            assert abs(float(seq[0])) < 1e-5 and abs(float(seq[-1]) - (n - 1)) < 1e-4
            assert (seq.diff() > 0).all()
            assert (out[b, n:] == 0).all()
            moved = max(moved, float((seq - torch.arange(float(n))).abs().max()))
    assert moved > 0.5  # the map is not the identity


def test_pooling_averages_windows_of_frames():
    from rnnkit.tasks.sequence_classify.task import pooled

    x = np.arange(10.0).reshape(5, 2)  # 5 frames: windows of 2, 2 and the last 1
    assert pooled([x], 2)[0].tolist() == [[1, 2], [5, 6], [8, 9]]
    assert pooled([x], 1)[0] is x


def test_diff_puts_each_channels_first_difference_beside_it_after_pooling():
    from rnnkit.tasks.sequence_classify.task import fit_scaler, frames, tensors

    x = np.array([[0.0, 1], [2, 1], [2, 3], [8, 3], [9, 9]])  # pooled by 2: 3 frames
    f = frames([x], "global", 2, diff=True)[0]
    assert f.tolist() == [[1, 1, 0, 0], [5, 3, 4, 2], [9, 9, 4, 6]]
    assert frames([x], "global", 2)[0].shape == (3, 2)
    scaler = fit_scaler([x, 2 * x], "global", 2, diff=True)
    X, L = tensors([x], scaler, "global", 2, diff=True)
    assert X.shape == (1, 3, 4) and L.tolist() == [3]
    assert np.allclose(X[0].numpy(), scaler.transform(f), atol=1e-6)


def assert_loads_to_its_test_accuracy(out, seq_csv, wrong_channels):
    """The run in `out` loads to predictions with its recorded test accuracy, and refuses
    series of another number of channels than the 2 it was trained on."""
    res = json.loads((out / "results.json").read_text())
    src = load_classification_source(str(seq_csv), time_column="t")
    clf = sequence_classify.load(out)
    pred = clf.predict_proba(src.X_test).argmax(1)
    assert float((pred == src.y_test).mean()) == res["test_accuracy"]
    with pytest.raises(Exception, match="reads 2 channels"):
        clf.predict_proba([np.zeros((6, wrong_channels))])


def test_diff_run_feeds_twice_the_channels_and_loads_to_the_same_predictions(seq_csv, tmp_path):
    out = tmp_path / "diff"
    r = invoke("train", "sequence-classify", "--data", seq_csv, "--time-column", "t",
               "--ensemble", 1, "--out", out, *TINY, *FIXED)  # fmt: skip (--diff: the default)
    assert r.exit_code == 0, r.output
    assert json.loads((out / "config.json").read_text())["model"]["config"]["features"] == 4
    assert json.loads((out / "scaler.json").read_text())["diff"] is True
    assert_loads_to_its_test_accuracy(out, seq_csv, wrong_channels=4)
    plain = tmp_path / "plain"
    r = invoke("train", "sequence-classify", "--data", seq_csv, "--time-column", "t",
               "--ensemble", 1, "--no-diff", "--out", plain, *TINY, *FIXED)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads((plain / "config.json").read_text())["model"]["config"]["features"] == 2
    src = load_classification_source(str(seq_csv), time_column="t")
    assert sequence_classify.load(plain).predict_proba(src.X_test).shape == (8, 2)


def test_level_keeps_each_series_level_and_scale_beside_its_normalised_frames():
    """normalise "level": the frames of "series" (and their differences), then per channel
    asinh(mean) and log(std) of the series as it came, on every frame; two series that differ
    only in scale give the same "series" frames and different "level" ones."""
    from rnnkit.tasks.sequence_classify.task import frame_channels, frames

    x = np.array([[1.0, 5], [3, 5], [2, 5], [6, 5]])  # channel 2 constant
    f = frames([x], "level", 2, diff=True)[0]
    assert f.shape == (2, 8) == (2, frame_channels(2, "level", True))
    series = frames([x], "series", 2, diff=True)[0]
    np.testing.assert_allclose(f[:, :4], series)
    sd = x[:, 0].std()
    np.testing.assert_allclose(f[0, 4:], [np.arcsinh(3.0), np.arcsinh(5.0), np.log(sd), 0.0])
    np.testing.assert_allclose(f[1, 4:], f[0, 4:])
    big = frames([100 * x], "level", 1)[0]
    np.testing.assert_allclose(big[:, :2], frames([x], "series", 1)[0], atol=1e-12)
    assert abs(big[0, 2 + 1] - frames([x], "level", 1)[0][0, 3]) > 1  # the scale is kept
    assert frame_channels(3, "series", False) == 3 and frame_channels(3, "level", False) == 9


def test_level_run_feeds_its_extra_channels_and_loads_to_the_same_predictions(seq_csv, tmp_path):
    out = tmp_path / "level"
    r = invoke("train", "sequence-classify", "--data", seq_csv, "--time-column", "t",
               "--ensemble", 1, "--out", out, *TINY, "--frontend", "conv",
               "--normalise", "level")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads((out / "config.json").read_text())["model"]["config"]["features"] == 8
    assert json.loads((out / "scaler.json").read_text())["normalise"] == "level"
    assert_loads_to_its_test_accuracy(out, seq_csv, wrong_channels=3)


def test_cv_folds_are_stratified():
    y = np.array([0] * 10 + [1] * 5)
    fold = cv_folds(y, 5, seed=0)
    assert sorted(np.bincount(fold).tolist()) == [3, 3, 3, 3, 3]
    for f in range(5):
        assert (y[fold == f] == 0).sum() == 2 and (y[fold == f] == 1).sum() == 1


def test_cli_train_sequence_classify(seq_csv, tmp_path):
    out = tmp_path / "cls"
    r = invoke("train", "sequence-classify", "--data", seq_csv, "--time-column", "t",
               "--ensemble", 1, "--out", out, *TINY)  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert 0 <= res["test_accuracy"] <= 1 and res["baselines"]["1nn_euclidean"] == 1.0
    auto = res["auto"]  # the candidates scored on the validation part of train only
    assert sorted(auto["scores"]) == ["conv/global", "conv/level"]
    assert f"{auto['frontend']}/{auto['normalise']}" in auto["scores"] and auto["patch"] == 1
    best = max(v["val_accuracy"] for v in auto["scores"].values())
    assert auto["scores"][f"{auto['frontend']}/{auto['normalise']}"]["val_accuracy"] == best
    assert res["seconds"]["selection"] > 0 and res["seconds"]["training"] > 0
    assert json.loads((out / "scaler.json").read_text())["normalise"] == auto["normalise"]
    for name in ("config.json", "model.safetensors", "scaler.json", "report.html"):
        assert (out / name).exists()
    assert "data:image/png;base64" in (out / "report.html").read_text()
    test = [m for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if m.get("split") == "test"]  # fmt: skip
    assert test and test[-1]["accuracy"] == res["test_accuracy"]
    assert res["first_k_accuracies"] == [res["test_accuracy"]]  # --ensemble 1
    (label, prob), = sequence_classify.load(out).classify(  # fmt: skip
        [np.stack([np.arange(6.0), np.zeros(6)], 1)])
    assert label in ("rise", "fall") and 0.5 <= prob <= 1
    from onnx_roundtrip import assert_run_exports

    assert_run_exports(out, tmp_path)  # the trained run, round-tripped through ONNX


def test_select_folds_validates_every_training_case_once(seq_csv):
    """--select-folds 3: each candidate is scored on 3 folds of train in turn, pooled over all
    16 training cases (weighted by the cases each fold held), and the best pooled one wins."""
    from rnnkit.tasks.sequence_classify.task import choose

    data = load_classification_source(str(seq_csv), time_column="t")
    opts = SequenceClassifyOptions(hidden=4, filters=4, batch=8, threads=1, select_steps=2,
                                   select_folds=3)  # fmt: skip
    choice = choose(data, opts)
    assert sorted(choice.scores) == ["conv/global", "conv/level"]
    for s in choice.scores.values():
        folds = s["folds"]
        assert len(folds) == 3 and sum(f["cases"] for f in folds) == s["cases"] == 16
        assert s["val_accuracy"] == pytest.approx(
            sum(f["val_accuracy"] * f["cases"] for f in folds) / 16)
    best = max(s["val_accuracy"] for s in choice.scores.values())
    assert choice.scores[f"{choice.frontend}/{choice.normalise}"]["val_accuracy"] == best
    assert "3 folds" in choice.reason


def test_cli_sequence_classify_ensemble(seq_csv, tmp_path):
    """--ensemble 2 trains and saves two differently seeded members and averages their
    softmax; --augment only perturbs training batches; --minutes is shared by the members;
    --max-frames 4 averages the series (5-9 frames) over windows of 3, in prediction too."""
    out = tmp_path / "ens"
    r = invoke("train", "sequence-classify", "--data", seq_csv, "--time-column", "t",
               "--ensemble", 2, "--augment", 0.1, "--max-train", 12, "--minutes", 10,
               "--patch", 2, "--max-frames", 4, "--out", out, *FIXED, *TINY)  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["options"]["ensemble"] == 2 and len(res["member_accuracies"]) == 2
    assert res["first_k_accuracies"][0] == res["member_accuracies"][0]
    assert res["first_k_accuracies"][1] == res["test_accuracy"]
    assert res["auto"] == {"frontend": "conv", "normalise": "series", "patch": 2, "scores": {},
                           "reason": "as given", "seconds": 0.0, "pool": 3, "diff": True,
                           "dilate": 1, "dilate_scores": {}}  # fmt: skip
    for member in (out, out / "member-1"):
        assert (member / "model.safetensors").exists()
        config = json.loads((member / "config.json").read_text())["train"]
        assert config["time_minutes"] == 5
    clf = sequence_classify.load(out)
    assert len(clf.models) == 2 and clf.pool == 3
    w0, w1 = (next(m.parameters()).detach() for m in clf.models)
    assert not torch.equal(w0, w1)  # independently seeded
    seq = np.stack([np.arange(6.0), np.zeros(6)], 1)
    (label, prob), = clf.classify([seq])  # fmt: skip
    assert label in ("rise", "fall") and 0.5 <= prob <= 1
    probs = clf.predict_proba([seq])
    assert probs.shape == (1, 2) and probs.sum() == pytest.approx(1.0)
    # exported as one graph of both members: the classifier's own mean probabilities on
    # batches and lengths the export did not see
    from onnx_roundtrip import assert_predicts, assert_run_exports

    path = assert_run_exports(out, tmp_path)
    rng = np.random.default_rng(1)
    for sizes in ((7, 12, 9), (16,)):
        seqs = [rng.normal(size=(n, 2)) for n in sizes]
        x, lengths = clf.inputs(seqs)  # 4 channels: the 2 and their differences
        assert x.shape[2] == 4
        assert_predicts(path, x, lengths, clf.predict_proba(seqs))


def test_members_differ_in_dilation_within_the_series_length(tmp_path):
    """--dilate 2: member k's convolutions dilated by 2^(k mod 3) (1, 2, 4, 1, 2, ...), capped
    where the receptive field (1 + 12·d frames) passes half the longest training series;
    saved and loaded per member."""
    from rnnkit.tasks.sequence_classify.task import member_dilation

    o = SequenceClassifyOptions(dilate=2)
    assert [member_dilation(o, k, 427) for k in range(6)] == [1, 2, 4, 1, 2, 4]
    assert [member_dilation(o, k, 84) for k in range(5)] == [1, 2, 3, 1, 2]
    assert [member_dilation(o, k, 24) for k in range(3)] == [1, 1, 1]  # too short to dilate
    assert member_dilation(SequenceClassifyOptions(), 2, 427) == 1  # the default: none
    rng = np.random.default_rng(0)
    y = np.arange(16) % 2
    X = np.sin(np.linspace(0, 6, 60))[None, :, None] * (2 * y - 1)[:, None, None]
    path = tmp_path / "waves.npz"
    np.savez(path, X=X + rng.normal(0, 0.1, X.shape), y=y)
    out = tmp_path / "dil"
    r = invoke("train", "sequence-classify", "--data", path, "--ensemble", 2, "--dilate", 2,
               "--layout", "parallel", "--patch", 4, "--out", out, *FIXED, *TINY)  # fmt: skip
    assert r.exit_code == 0, r.output
    clf = sequence_classify.load(out)
    assert [m.config.dilation for m in clf.models] == [1, 2]  # 60 frames: (30 - 1) // 12 = 2
    assert all(m.config.parallel for m in clf.models)
    assert clf.predict_proba([X[0]]).shape == (1, 2)


def test_choose_dilate_picks_the_dilation_on_validation_and_the_members_follow(tmp_path,
                                                                               monkeypatch):
    """--choose-dilate 2: undilated against member 1's dilation on the validation part of
    train (the chosen front end and normalisation, --dilate-select-steps updates each); the
    members are dilated apart only when the dilated model scored higher; no choice when the
    series are too short to dilate."""
    from rnnkit.tasks.sequence_classify import task

    rng = np.random.default_rng(0)
    y = np.arange(24) % 2
    X = np.sin(np.linspace(0, 6, 60))[None, :, None] * (2 * y - 1)[:, None, None]
    path = tmp_path / "waves.npz"
    np.savez(path, X=X + rng.normal(0, 0.1, X.shape), y=y)
    seen = []
    real = task.score

    def fake(data, options, front, norm, pool, patch, tr, va, dilation=1, steps=None):
        seen.append((dilation, steps))
        out = real(data, options, front, norm, pool, patch, tr, va, dilation, steps)
        return {**out, "val_accuracy": float(dilation == wins)}  # the winner is set here

    monkeypatch.setattr(task, "score", fake)
    for wins, members in ((2, [1, 2]), (1, [1, 1])):
        seen.clear()
        out = tmp_path / f"choose-{wins}"
        r = invoke("train", "sequence-classify", "--data", path, "--ensemble", 2,
                   "--choose-dilate", 2, "--dilate-select-steps", 3, "--patch", 4, "--out",
                   out, *FIXED, *TINY)  # fmt: skip
        assert r.exit_code == 0, r.output
        assert seen == [(1, 3), (2, 3)]
        auto = json.loads((out / "results.json").read_text())["auto"]
        assert auto["dilate"] == wins and set(auto["dilate_scores"]) == {"dilation 1",
                                                                         "dilation 2"}
        assert [m.config.dilation for m in sequence_classify.load(out).models] == members
    short = tmp_path / "short.npz"  # 24 frames: member 1 stays undilated, nothing to compare
    np.savez(short, X=X[:, :24], y=y)
    seen.clear()
    r = invoke("train", "sequence-classify", "--data", short, "--choose-dilate", 2, "--out",
               tmp_path / "short", *FIXED, *TINY)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert not seen


def test_choose_dilate_that_keeps_dilation_1_trains_the_defaults_models(tmp_path, monkeypatch):
    """When --choose-dilate 2 chooses dilation 1, the run is the default's: the selection's
    two models do not consume the random state the members are seeded from, so every member
    has the default run's weights and the ensemble its test predictions (what lets a
    "choice = 1" row of the benchmark stand for the default's)."""
    from rnnkit.tasks.sequence_classify import task
    from rnnkit.training import load_run

    rng = np.random.default_rng(1)
    y = np.arange(24) % 2
    X = np.sin(np.linspace(0, 6, 60))[None, :, None] * (2 * y - 1)[:, None, None]
    path = tmp_path / "waves.npz"
    np.savez(path, X=X + rng.normal(0, 0.3, X.shape), y=y)
    real = task.score
    dilations = []

    def undilated_wins(data, options, front, norm, pool, patch, tr, va, dilation=1, steps=None):
        dilations.append(dilation)  # trained for real (its random draws happen), then lost
        out = real(data, options, front, norm, pool, patch, tr, va, dilation, steps)
        return {**out, "val_accuracy": float(dilation == 1)}

    monkeypatch.setattr(task, "score", undilated_wins)
    # dropout draws from the global generator while training: the selection's models leave it
    # in a state that depends on what they trained, so the members must be seeded afresh
    common = ["--data", path, "--ensemble", 2, "--patch", 4, "--augment", 0.1, "--dropout", 0.2,
              "--seed", 3, *TINY]  # fmt: skip
    default, chosen = tmp_path / "default", tmp_path / "chosen"
    r = invoke("train", "sequence-classify", *common, "--out", default)
    assert r.exit_code == 0, r.output
    assert dilations == [1, 1]  # the default's own selection: front end x normalisation
    r = invoke("train", "sequence-classify", *common, "--choose-dilate", 2,
               "--dilate-select-steps", 5, "--out", chosen)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert dilations == [1, 1, 1, 1, 1, 2]  # the same two, then dilation 1 against 2
    a, b = (json.loads((d / "results.json").read_text()) for d in (default, chosen))
    assert b["auto"]["dilate"] == 1 and set(b["auto"]["dilate_scores"]) == {"dilation 1",
                                                                            "dilation 2"}
    untimed = [{k: {**v, "seconds": 0} for k, v in r["auto"]["scores"].items()} for r in (a, b)]
    assert untimed[0] == untimed[1]  # the same front end and normalisation, the same scores
    assert a["member_accuracies"] == b["member_accuracies"]
    assert a["confusion"] == b["confusion"]
    for member in (".", "member-1"):
        wa, wb = (load_run(d / member).model.state_dict() for d in (default, chosen))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    seqs = [x for x in X[:8]]
    assert np.array_equal(sequence_classify.load(default).predict_proba(seqs),
                          sequence_classify.load(chosen).predict_proba(seqs))


def test_cross_validate_reads_only_the_training_split(seq_csv, tmp_path):
    data = load_classification_source(str(seq_csv), time_column="t")
    opts = SequenceClassifyOptions(hidden=4, filters=4, epochs=1.0, batch=8, ensemble=1,
                                   threads=1, val_fraction=0, baselines="euclidean")
    cv = cross_validate(data, opts, tmp_path, folds=2)
    assert len(cv["folds"]) == 2 and 0 <= cv["accuracy"] <= 1
    run = json.loads((tmp_path / "fold-0" / "results.json").read_text())
    assert run["data"]["train"] + run["data"]["test"] == len(data.y_train)


def test_train_sequence_classify_bad_input(seq_csv, tmp_path):
    out = tmp_path / "x"
    cls = ["train", "sequence-classify", "--out", out, "--quiet", "--epochs", 1]
    unseen = tmp_path / "unseen.csv"
    text = "\n".join(  # s17 is a test series: give it a label no training series has
        line.replace(",fall,", ",jump,") if line.startswith("s17,") else line
        for line in seq_csv.read_text().splitlines()
    )
    unseen.write_text(text + "\n")
    one_line_error(invoke(*cls, "--data", unseen), "never seen in training")
    one_line_error(invoke(*cls, "--data", seq_csv, "--label-column", "y"), "no column 'y'")
    one_line_error(invoke(*cls, "--data", seq_csv, "--time-column", "t", "--max-train", 2,
                          "--max-test", 1, "--frontend", "lstm"), "--frontend")  # fmt: skip
    one_line_error(invoke(*cls, "--data", tmp_path / "none.csv"), "no such file")
    one_line_error(invoke(*cls, "--cell", "elmann"), "--cell")
    assert not out.exists()


# ---- every numeric option against bad values -------------------------------------------------

NUMERIC = ["hidden", "layers", "steps", "epochs", "minutes", "lr", "batch", "seed", "threads",
           "max_train", "max_test", "dropout", "weight_decay", "val_fraction", "augment",
           "ensemble", "filters", "patch", "select_steps", "select_folds", "crop", "dilate",
           "max_frames", "choose_dilate", "dilate_select_steps", "parallel_members",
           "warp"]  # fmt: skip
BAD = ["0", "-1", "nan", "inf", "1e30", "abc"]
LEGAL = {("dropout", "0"), ("weight_decay", "0"), ("val_fraction", "0"), ("augment", "0"),
         ("seed", "0"), ("warp", "0")}  # fmt: skip


def test_numeric_options_cover_the_command():
    from rnnkit.tasks.options import base_type, field_specs

    numeric = {f.name for f, tp in field_specs(SequenceClassifyOptions)
               if base_type(tp)[0] in (int, float)}  # fmt: skip
    assert numeric == set(NUMERIC)


@pytest.mark.parametrize("field", NUMERIC)
def test_numeric_option_sweep(field, tmp_path):
    flag = "--" + field.replace("_", "-")
    kind = SequenceClassifyOptions.__dataclass_fields__[field].type
    for value in BAD:
        if (field, value) in LEGAL:
            parse = float if "float" in str(kind) else int
            SequenceClassifyOptions(**{field: parse(value)})
            continue
        one_line_error(invoke("train", "sequence-classify", flag, value, "--out", tmp_path / "x"),
                       flag)  # fmt: skip
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, needle", [
    (["--seed", str(2**64)], "--seed"),
    (["--seed", str(2**32)], "--seed"),
    (["--ensemble", "1001"], "--ensemble"),
    (["--dropout", "0.96"], "--dropout"),
    (["--val-fraction", "0.95"], "--val-fraction"),
    (["--steps", "0", "--epochs", "1"], "--steps"),
])  # fmt: skip
def test_out_of_range_values(args, needle, tmp_path):
    one_line_error(invoke("train", "sequence-classify", *args, "--out", tmp_path / "x"), needle)


def test_legal_extremes_construct():
    """Values at the bounds are accepted (and --threads above the cores is capped later)."""
    SequenceClassifyOptions(seed=2**32 - 1, threads=4096, ensemble=1000, dropout=0.95,
                            val_fraction=0.9, epochs=1e6, minutes=7 * 24 * 60,
                            max_train=2, max_test=1)  # fmt: skip


def test_ctrl_c_stops_the_whole_ensemble(seq_csv, tmp_path, monkeypatch):
    """A signal during member 1 of 3 stops the command (exit 130) with members 0 and 1 kept;
    member 2 never starts (issue 17: it used to go on training and exit 0)."""
    import signal

    from rnnkit.training.progress import StopSignals

    enter, entered = StopSignals.__enter__, []

    def second_member_interrupted(self):
        entered.append(1)
        if len(entered) == 2:
            self.received = signal.SIGINT
        return enter(self)

    monkeypatch.setattr(StopSignals, "__enter__", second_member_interrupted)
    out = tmp_path / "ens"
    r = invoke("train", "sequence-classify", "--data", seq_csv, "--time-column", "t",
               "--ensemble", 3, "--max-train", 12, "--out", out, *FIXED, *TINY)  # fmt: skip
    assert r.exit_code == 130, r.output
    assert len(entered) == 2 and (out / "member-1").is_dir() and not (out / "member-2").exists()
    # resumed with another number of members at once (a setting of the machine, as --threads)
    monkeypatch.setattr(StopSignals, "__enter__", enter)
    r = invoke("train", "sequence-classify", "--resume", out, "--parallel-members", 1, "--quiet")
    assert r.exit_code == 0, r.output
    assert (out / "member-2").is_dir()
    config = json.loads((out / "config.json").read_text())
    assert config["extra"]["options"]["parallel_members"] == 1


def trained(common: list, flag: str, values: tuple, tmp_path) -> dict:
    """{value: (results.json, the loaded classifier)} of `common` run with `flag value`, each
    into tmp_path/<value>."""
    runs = {}
    for v in values:
        r = invoke(*common, flag, v, "--out", tmp_path / str(v))
        assert r.exit_code == 0, r.output
        runs[v] = (json.loads((tmp_path / str(v) / "results.json").read_text()),
                   sequence_classify.load(tmp_path / str(v)))  # fmt: skip
    return runs


def assert_same_weights(models_a, models_b) -> None:
    for a, b in zip(models_a, models_b, strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_first_k_members_of_an_ensemble_are_the_k_member_ensemble(seq_csv, tmp_path):
    """Member k is seeded from --seed and k alone (driver.member_seed), so the first 2 members
    of an --ensemble 3 run are the members of an --ensemble 2 run, weight for weight, and its
    first_k_accuracies[1] is the 2-member run's accuracy (what lets one --ensemble N run
    measure every smaller ensemble). Nothing else a member does reads N but --minutes (split
    among the members; no budget by default)."""
    common = ["train", "sequence-classify", "--data", seq_csv, "--time-column", "t",
              "--max-train", 12, *FIXED, *TINY]  # fmt: skip
    runs = trained(common, "--ensemble", (3, 2), tmp_path)
    (big, big_clf), (small, small_clf) = runs[3], runs[2]
    assert_same_weights(big_clf.models[:2], small_clf.models)
    assert not torch.equal(*(next(m.parameters()) for m in big_clf.models[1:]))  # 1 != 2
    assert big["member_accuracies"][:2] == small["member_accuracies"]
    assert big["first_k_accuracies"][:2] == small["first_k_accuracies"]
    assert big["first_k_accuracies"][1] == small["test_accuracy"]
    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=(n, 2)) for n in (5, 7, 9)]
    first_two = dataclasses.replace(big_clf, models=big_clf.models[:2])
    np.testing.assert_array_equal(first_two.predict_proba(seqs), small_clf.predict_proba(seqs))


def test_members_trained_at_once_have_the_weights_of_members_trained_in_turn(seq_csv, tmp_path):
    """--parallel-members 2: each member in its own process, at 1 thread as in turn at
    --threads 1, gives every member the sequential run's weights and accuracies; --minutes is
    split into ceil(3 / 2) = 2 rounds, not 3 parts."""
    common = ["train", "sequence-classify", "--data", seq_csv, "--time-column", "t",
              "--max-train", 12, "--ensemble", 3, "--minutes", 10, *FIXED, *TINY]  # fmt: skip
    runs = trained(common, "--parallel-members", (1, 2), tmp_path)
    (seq, seq_clf), (par, par_clf) = runs[1], runs[2]
    assert_same_weights(seq_clf.models, par_clf.models)
    assert seq["member_accuracies"] == par["member_accuracies"]
    assert seq["test_accuracy"] == par["test_accuracy"]
    minutes = {j: json.loads((tmp_path / str(j) / "member-2" / "config.json").read_text())
               ["train"]["time_minutes"] for j in (1, 2)}  # fmt: skip
    assert minutes == {1: pytest.approx(10 / 3), 2: 5}
    metrics = (tmp_path / "2" / "metrics.jsonl").read_text()
    assert '"split": "test"' in metrics  # member 0's Trainer, rebuilt, logged the test


class FailingMember(sequence_classify.task.SequenceClassifyTask):
    """Member 1 fails (a module-level class: the member's process unpickles it)."""

    def fit_member(self, member):
        from rnnkit.data.text import DataError

        if member.member == 1:
            raise DataError("training diverged: made to fail")
        return super().fit_member(member)


def test_a_member_that_fails_in_its_process_is_raised_as_one_line(seq_csv, tmp_path):
    """An error in a member trained in another process stops the run and is raised in this one
    as its own type (a DataError: the CLI's one-line exit 2) with one line naming the member,
    the member's traceback chained."""
    from rnnkit.data.text import DataError
    from rnnkit.tasks import driver
    from rnnkit.tasks.members import RemoteTraceback

    opts = SequenceClassifyOptions(data=str(seq_csv), time_column="t", max_train=12, ensemble=2,
                                   parallel_members=2, hidden=8, filters=4, epochs=3, batch=8,
                                   threads=1, baselines="euclidean", frontend="conv",
                                   normalise="series")  # fmt: skip
    with pytest.raises(DataError) as err:
        driver.train(FailingMember(), opts, tmp_path / "fail", progress=False)
    assert str(err.value) == "member 2 of 2: training diverged: made to fail"
    assert isinstance(err.value.__cause__, RemoteTraceback)
    assert "fit_member" in str(err.value.__cause__)


def test_the_default_trains_one_member_per_thread():
    """Members at once by default: one per torch thread, at most --ensemble; on 1 thread in
    turn (no process started); several threads per member when asked for fewer at once."""
    from rnnkit.tasks.sequence_classify.task import ensemble_plan

    assert ensemble_plan(SequenceClassifyOptions(threads=1, ensemble=5)) == (1, 1)
    assert ensemble_plan(SequenceClassifyOptions(threads=2, ensemble=5)) == (2, 1)
    assert ensemble_plan(SequenceClassifyOptions(threads=2, ensemble=1)) == (1, 2)
    assert ensemble_plan(SequenceClassifyOptions(threads=2, ensemble=5,
                                                 parallel_members=1)) == (1, 2)  # fmt: skip
