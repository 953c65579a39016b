"""Export a trained rnnkit model to ONNX, with dynamic batch and length and the state as I/O.

    export_onnx(model, path)   write the graph; returns an OnnxExport (names, shapes, check)
    check_onnx(model, path)    max |onnxruntime - rnnkit| on a batch and length not exported

The graph is traced through torch.nn's RNN kernels (Recurrent picks impl "torch" under
torch.jit tracing, whatever impl the model trained with), which the exporter writes as ONNX
RNN/GRU/LSTM ops with symbolic batch and time. Inputs and outputs:

    x                token ids (B, T) int64, or frames (B, T, D) float32, as the model sees them
                     (the run's vocabulary / scaling is applied outside the graph)
    h0 [, c0]        the recurrent state (L·dirs, B, H) (zeros start a fresh stream)
    lengths          (B,) int64, ManyToOne only: each sequence's length (T for unpadded)
    y                (B, T, O) per-step outputs (ManyToMany) or (B, O) (ManyToOne)
    h [, c]          the final state: feed it back as h0 [, c0] to continue a stream

Models whose prediction is a Python loop around the network (Seq2Seq's and OneToMany's
decoders, beam search) are refused with one line.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

EXPORT_BATCH, EXPORT_LENGTH = 2, 5  # the example the graph is traced on
CHECK_BATCH, CHECK_LENGTH = 3, 11  # what check_onnx feeds: shapes the trace never saw


class ExportError(ValueError):
    """The model cannot be exported (one line saying why and what to use)."""


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class _Graph(nn.Module):
    """The model with flat tensor inputs and outputs: (x, *state[, lengths]) -> (y, *state)."""

    def __init__(self, model: nn.Module, n_state: int, with_lengths: bool):
        super().__init__()
        self.model, self.n_state, self.with_lengths = model, n_state, with_lengths

    def forward(self, x: Tensor, *rest: Tensor):
        state = rest[: self.n_state]
        lengths = rest[self.n_state] if self.with_lengths else None
        state = state[0] if self.n_state == 1 else tuple(state)
        y, final = self.model(x, state, lengths)
        return (y, *((final,) if isinstance(final, Tensor) else final))


def _spec(model: nn.Module) -> tuple[bool, list[str]]:
    """(takes lengths, state leaf names) of an exportable model; ExportError otherwise."""
    kind = getattr(model, "kind", type(model).__name__)
    if kind in ("seq2seq", "one_to_many"):
        raise ExportError(
            f"export: a {kind} model decodes in a Python loop (greedy or beam search) that "
            "ONNX cannot hold; use it from Python (rnnkit.tasks.driver.load) or `rnnkit "
            "translate`"
        )
    if kind not in ("many_to_many", "many_to_one") or not hasattr(model, "rnn"):
        raise ExportError(f"export: no ONNX export for a {kind} model")
    why = model.rnn.torch_unsupported()
    if why:
        raise ExportError(
            f"export: only layers torch.nn can run export with a dynamic length ({why})"
        )
    template = model.rnn.init_state(1)
    n = 1 if isinstance(template, Tensor) else len(template)
    names = ["h", "c"] if n <= 2 else [f"s{i}" for i in range(n)]
    return kind == "many_to_one", names[:n]


def example_input(model: nn.Module, batch: int, length: int, seed: int = 0) -> Tensor:
    """A random input the model accepts: token ids (B, T) or frames (B, T, D)."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.config.input
    if cfg.kind == "tokens":
        return torch.randint(0, cfg.vocab_size, (batch, length), generator=g)
    return torch.randn(batch, length, cfg.features, generator=g)


def _state(model: nn.Module, batch: int, seed: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    template = model.rnn.init_state(batch)
    leaves = [template] if isinstance(template, Tensor) else list(template)
    return [torch.randn(t.shape, generator=g) * 0.5 for t in leaves]


def _lengths(batch: int, length: int) -> Tensor:
    return torch.tensor([max(1, length - k) for k in range(batch)], dtype=torch.int64)


def _inputs(model: nn.Module, batch: int, length: int, seed: int) -> tuple[Tensor, ...]:
    with_lengths, _ = _spec(model)
    args = [example_input(model, batch, length, seed), *_state(model, batch, seed + 1)]
    return tuple(args + ([_lengths(batch, length)] if with_lengths else []))


def export_onnx(model: nn.Module, path: str | Path) -> OnnxExport:
    """Write `model` (eval mode, CPU, float32) to `path` as ONNX with dynamic B and T.

    Example:
        >>> info = export_onnx(load_run("runs/lm").model, "lm.onnx")
        >>> info.inputs, info.outputs
        (('x', 'h0', 'c0'), ('y', 'h', 'c'))
    """
    with_lengths, names = _spec(model)
    model = model.eval().float().cpu()
    ins = ["x", *(f"{n}0" for n in names), *(["lengths"] if with_lengths else [])]
    outs = ["y", *names]
    axes: dict[str, dict[int, str]] = {"x": {0: "batch", 1: "time"}, "y": {0: "batch"}}
    if not with_lengths:
        axes["y"][1] = "time"
    for n in names:
        axes[f"{n}0"] = axes[n] = {1: "batch"}
    if with_lengths:
        axes["lengths"] = {0: "batch"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = _Graph(model, len(names), with_lengths)
    with (
        torch.no_grad(),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        # the tracer warns about every Python-level shape check the layers make
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            _inputs(model, EXPORT_BATCH, EXPORT_LENGTH, seed=0),
            str(path),
            input_names=ins,
            output_names=outs,
            dynamic_axes=axes,
            dynamo=False,
        )
    return OnnxExport(path, tuple(ins), tuple(outs))


def check_onnx(
    model: nn.Module, path: str | Path, batch: int = CHECK_BATCH, length: int = CHECK_LENGTH
) -> float:
    """Max |onnxruntime - rnnkit| over every output, on a batch and length the export did
    not see (needs onnxruntime)."""
    import onnxruntime as ort

    with_lengths, names = _spec(model)
    model = model.eval().float().cpu()
    args = _inputs(model, batch, length, seed=7)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: a.numpy() for i, a in zip(sess.get_inputs(), args, strict=True)}
    got = sess.run(None, feed)
    with torch.no_grad():
        want = _Graph(model, len(names), with_lengths)(*args)
    return max(float(abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))

