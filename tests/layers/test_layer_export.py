"""torch.export of rnnkit models, and jit.trace of the scan families: each works at shapes it
was not captured at, or refuses in one line saying what to use instead (jit.trace of torch.nn's
families and jit.script: test_layer_capture.py)."""

import io
import warnings

import pytest
import torch

from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
from rnnkit.models import build_model


def _model(cell: str):
    torch.manual_seed(0)
    return build_model(ManyToManyConfig(
        InputConfig("frames", features=3), HeadConfig("regression", 2), RNNConfig(cell, 6, 2)
    )).eval()  # fmt: skip


def test_torch_export_keeps_the_batch_dynamic_and_refuses_a_dynamic_length():
    # one family: the refusal is Recurrent's own, whatever the impl (the scan loops over T too)
    model, x = _model("lstm"), torch.randn(2, 5, 3)
    batch = torch.export.Dim("batch")
    ep = torch.export.export(model, (x,), dynamic_shapes={"x": {0: batch}})
    x_new = torch.randn(4, 5, 3)
    with torch.no_grad():
        assert (ep.module()(x_new)[0] - model(x_new)[0]).abs().max() < 1e-5
    with pytest.raises(Exception, match="Guard failed"):  # another length: loud, never wrong
        ep.module()(torch.randn(2, 7, 3))
    time = torch.export.Dim("time")
    with pytest.raises(RuntimeError, match="use rnnkit.export.export_onnx") as err:
        torch.export.export(model, (x,), dynamic_shapes={"x": {0: batch, 1: time}})
    assert "\n" not in str(err.value).splitlines()[0] and "Recurrent:" in str(err.value)


def test_jit_trace_of_a_scan_family_is_right_at_other_lengths_and_saves():
    model, x = _model("minlstm"), torch.randn(2, 5, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python-level shape checks
        traced = torch.jit.trace(model, (x,))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    x_new = torch.randn(3, 12, 3)
    with torch.no_grad():
        want = model(x_new)[0]
        assert (traced(x_new)[0] - want).abs().max() < 1e-5
        assert (loaded(x_new)[0] - want).abs().max() < 1e-5


