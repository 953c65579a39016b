"""Diagnostics: step Jacobians, spectra, gradient-flow verdicts, plots, `rnnkit inspect`."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

import rnnkit
from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.diagnostics import (
    GradientSpikeDetector,
    detect_gradient_problems,
    gradient_norms,
    inspect_layer,
    inspect_model,
    jacobian_singular_values,
    spectral_radius,
    step_jacobians,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


def test_step_jacobians_match_autograd_along_the_trajectory():
    torch.manual_seed(0)
    cell = GRUCell(2, 3).double()
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    J = step_jacobians(cell, x)
    assert J.shape == (2, 5, 3, 3)
    h = cell.init_state(2, dtype=torch.float64)
    for t in range(5):
        for b in range(2):
            want = torch.autograd.functional.jacobian(
                lambda h_, b=b, t=t: cell(x[b : b + 1, t], h_[None])[1][0], h[b]
            )
            torch.testing.assert_close(J[b, t], want)
        h = cell(x[:, t], h)[1]


def test_lstm_jacobian_covers_h_and_c_and_singular_values_are_sorted():
    cell = LSTMCell(2, 3)
    sv = jacobian_singular_values(cell, torch.randn(2, 4, 2))
    assert sv.shape == (2, 4, 6)
    assert (sv[..., :-1] >= sv[..., 1:] - 1e-6).all()


def test_spectral_radius_per_gate_block():
    cell = ElmanCell(2, 4, init="identity", init_scale=0.9)
    assert spectral_radius(cell) == pytest.approx({"weight_hh": 0.9})
    lstm = LSTMCell(2, 4)
    assert set(spectral_radius(lstm)) == {f"weight_hh[{g}]" for g in "ifgo"}
    layer = rnnkit.GRU(2, 4, num_layers=2)
    assert len(spectral_radius(layer)) == 6


def linear_rnn(scale):
    """A linear Elman RNN with W_hh = scale·I: gradients scale by exactly `scale` per step."""
    return ElmanCell(1, 4, activation="identity", init="identity", init_scale=scale).double()


@pytest.mark.parametrize("scale,verdict", [(1.3, "exploding"), (0.7, "vanishing"), (1.0, "stable")])
def test_verdicts_on_linear_networks_with_known_growth(scale, verdict):
    x = torch.randn(2, 40, 1, dtype=torch.float64)
    norms = gradient_norms(linear_rnn(scale), x)[-1]
    flow = detect_gradient_problems(norms)
    assert flow.verdict == verdict
    assert flow.rate == pytest.approx(scale, rel=1e-5)  # W_hh was float32
    assert flow.gain == pytest.approx(scale**39, rel=1e-5)


def test_non_finite_and_spike_detection():
    assert detect_gradient_problems(torch.tensor([1.0, math.inf])).verdict == "non-finite"
    det = GradientSpikeDetector(factor=10, window=5)
    flags = [det.observe(v) for v in [1, 1.2, 0.9, 1.1, 1.0, 1.05, 50.0, 1.0, float("nan")]]
    assert flags == [False] * 6 + [True, False, True] and det.spikes == [7, 9]


def test_gradient_norms_leave_parameter_grads_alone():
    cell = ElmanCell(1, 4)
    gradient_norms(cell, torch.randn(2, 5, 1))
    assert all(p.grad is None for p in cell.parameters())


def test_inspect_layer_writes_plots_and_json(tmp_path):
    layer = rnnkit.LSTM(3, 8, num_layers=2, impl="reference")
    rep = inspect_layer(layer, torch.randn(2, 30, 3), tmp_path, title="t")
    names = sorted(p.name for p in rep.files)
    assert names == [
        "grad_norms.png",
        "inspect.json",
        "jacobian_spectra.png",
        "recurrent_spectrum.png",
    ]
    for p in rep.files:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "inspect.json").read_text())
    assert summary["steps"] == 30 and summary["verdict"] in ("vanishing", "stable", "exploding")
    assert len(rep.grad_norms) == 2 and rep.singular_values.shape == (2, 30, 2 * 16)


def test_inspect_model_and_cli_on_a_saved_run(tmp_path):
    from rnnkit.cli.app import app
    from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
    from rnnkit.models import build_model
    from rnnkit.training import save_model

    cfg = ManyToManyConfig(
        InputConfig("tokens", 8, 4), HeadConfig("softmax", 8), RNNConfig("gru", 6)
    )
    model = build_model(cfg)
    rep = inspect_model(model, steps=12, batch=2)
    assert rep.flow.norms.shape == (12,) and rep.files == []
    run = save_model(tmp_path / "run", model)
    result = CliRunner().invoke(app, ["inspect", str(run), "--steps", "10", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert (run / "inspect" / "grad_norms.png").exists()
    assert "verdict" in result.output
    bad = CliRunner().invoke(app, ["inspect", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    from clitest import invoke

    shown = invoke("inspect", run, "--steps", "5", "--batch", "1", "--out", tmp_path / "a")
    assert shown.exit_code == 0 and "inspecting run" in shown.stderr  # the bar, on stderr
    assert "inspecting" not in shown.stdout and "verdict" in shown.stdout
    quiet = invoke("inspect", run, "--steps", "5", "--batch", "1", "--quiet")
    assert quiet.exit_code == 0 and "inspecting" not in quiet.stderr
