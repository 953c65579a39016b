"""Export a trained rnnkit model to ONNX, with dynamic batch and length and the state as I/O.

    export_onnx(model, path)   write the graph; returns an OnnxExport (names, shapes)
    check_onnx(model, path)    max |onnxruntime - rnnkit| on a batch and length not exported,
                               with the state fed, without it, and a stream continued

The graph is traced: Recurrent picks impl "torch" under torch.jit tracing (whatever impl the
model trained with) for the families torch.nn has, which the exporter writes as ONNX
RNN/GRU/LSTM ops with symbolic batch and time; minGRU, minLSTM and the LRU trace their
recurrence as a TorchScript loop (rnnkit.cells.scan.step_loop), an ONNX Loop over the dynamic
length. Inputs and outputs:

    x                token ids (B, T) int64, or frames (B, T, D) float32, as the model sees them
                     (the run's vocabulary / scaling is applied outside the graph)
    h0 [, c0]        the recurrent state (L·dirs, B, H), OPTIONAL: left out, it is zeros (an
                     initializer of shape (L·dirs, 1, H), broadcast to the batch)
    lengths          (B,) int64, ManyToOne and bidirectional models: each sequence's length
                     (T for unpadded)
    y                (B, T, O) per-step outputs (ManyToMany) or (B, O) (ManyToOne)
    h [, c]          the final state: feed it back as h0 [, c0] to continue a stream

An LRU's state has three tensors (inputs s00, s10, s20; outputs s0, s1, s2: its output and
the real and imaginary parts of h). Models whose prediction is a Python loop around the
network (Seq2Seq's, OneToMany's and the captioner's decoders, beam search) are refused with
one line.

Example:
    >>> info = export_onnx(load_run("runs/lm").model, "lm.onnx")
    >>> info.inputs, info.outputs
    (('x', 'h0', 'c0'), ('y', 'h', 'c'))
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .atomic import atomic_write_bytes
from .cells import impls_of

EXPORT_BATCH, EXPORT_LENGTH = 2, 5  # the example the graph is traced on
CHECK_BATCH, CHECK_LENGTH = 3, 11  # what check_onnx feeds: shapes the trace never saw
STATE_BATCH = "state_batch"  # the state inputs' batch axis: B when fed, 1 for the default


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
        # a state input is (L·dirs, B, H) when fed and the (L·dirs, 1, H) zeros otherwise:
        # broadcast to x's batch either way (a no-op on a fed state)
        state = [s.expand(s.shape[0], x.shape[0], s.shape[2]) for s in rest[: self.n_state]]
        lengths = rest[self.n_state] if self.with_lengths else None
        state = state[0] if self.n_state == 1 else tuple(state)
        y, final = self.model(x, state, lengths)
        return (y, *((final,) if isinstance(final, Tensor) else final))


def _spec(model: nn.Module) -> tuple[bool, list[str]]:
    """(takes lengths, state leaf names) of an exportable model; ExportError otherwise."""
    kind = kind_of(model)
    if kind in ("seq2seq", "one_to_many", "captioner"):
        raise ExportError(
            f"export: a {kind} model decodes in a Python loop (greedy or beam search) that "
            "ONNX cannot hold; use it from Python (rnnkit.tasks.driver.load) or its own "
            "command (`rnnkit translate`, `rnnkit caption`)"
        )
    if kind not in ("many_to_many", "many_to_one", "conv_rnn") or not hasattr(model, "rnn"):
        raise ExportError(f"export: no ONNX export for a {kind} model")
    why = _untraceable(model.rnn)
    if why:
        raise ExportError(
            f"export: only layers torch.nn or a traceable scan can run export with a dynamic "
            f"length ({why})"
        )
    template = model.rnn.init_state(1)
    n = 1 if isinstance(template, Tensor) else len(template)
    names = ["h", "c"] if n <= 2 else [f"s{i}" for i in range(n)]
    return kind != "many_to_many" or model.rnn.bidirectional, names[:n]


def _untraceable(rnn) -> str | None:
    """Why tracing `rnn` would not give a graph that is right at every length, or None."""
    why = rnn.torch_unsupported()
    if why is None:
        return None
    for name in dict.fromkeys(n for c in rnn.cells for n in impls_of(c)):
        impls = rnn.impls(name)
        if all(getattr(i, "traces_a_loop", False) for i in impls):
            return None
    return why


def example_input(model: nn.Module, batch: int, length: int, seed: int = 0) -> Tensor:
    """A random input the model accepts: token ids (B, T) or frames (B, T, D)."""
    g = torch.Generator().manual_seed(seed)
    cfg = getattr(model.config, "input", None)
    if cfg is None:  # a ConvRNN: frames of config.features
        return torch.randn(batch, length, model.config.features, generator=g)
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
    """Write `model` (eval mode, CPU, float32) to `path` as ONNX with dynamic B and T and
    optional state inputs (see the module docstring); needs the onnx package.

    Example:
        >>> info = export_onnx(load_run("runs/lm").model, "lm.onnx")
        >>> info.inputs, info.outputs
        (('x', 'h0', 'c0'), ('y', 'h', 'c'))
    """
    import onnx
    from onnx import numpy_helper

    with_lengths, names = _spec(model)
    model = model.eval().float().cpu()
    ins = ["x", *(f"{n}0" for n in names), *(["lengths"] if with_lengths else [])]
    outs = ["y", *names]
    axes: dict[str, dict[int, str]] = {"x": {0: "batch", 1: "time"}, "y": {0: "batch"}}
    if kind_of(model) == "many_to_many":
        axes["y"][1] = "time"
    for n in names:
        axes[f"{n}0"], axes[n] = {1: STATE_BATCH}, {1: "batch"}
    if with_lengths:
        axes["lengths"] = {0: "batch"}
    graph, buf = _Graph(model, len(names), with_lengths), io.BytesIO()
    with (
        torch.no_grad(),
        _impl_auto(model.rnn),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        # the tracer warns about every Python-level shape check the layers make
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            _inputs(model, EXPORT_BATCH, EXPORT_LENGTH, seed=0),
            buf,
            input_names=ins,
            output_names=outs,
            dynamic_axes=axes,
            dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    present = {i.name for i in proto.graph.input}
    for leaf, n in zip(_leaves(model.rnn.init_state(1)), names, strict=True):
        L, H = leaf.shape
        if f"{n}0" not in present:  # unread by the graph (the LRU's y): the exporter drops it
            proto.graph.input.append(
                onnx.helper.make_tensor_value_info(f"{n}0", onnx.TensorProto.FLOAT,
                                                   [L, STATE_BATCH, H])  # fmt: skip
            )
        # an initializer with an input's name is that input's default (ONNX IR >= 4)
        zeros = torch.zeros(L, 1, H).numpy()
        proto.graph.initializer.append(numpy_helper.from_array(zeros, f"{n}0"))
    onnx.checker.check_model(proto)
    path = Path(path)
    atomic_write_bytes(path, proto.SerializeToString())
    return OnnxExport(path, tuple(ins), tuple(outs))


def kind_of(model: nn.Module) -> str:
    """The model's kind ("many_to_many", "seq2seq", ...), or its class name."""
    return getattr(model, "kind", type(model).__name__)


@contextlib.contextmanager
def _impl_auto(rnn):
    """impl "auto" for the trace (a model trained with impl="fused" traces torch.nn's path)."""
    saved, rnn.impl = rnn.impl, "auto"
    try:
        yield
    finally:
        rnn.impl = saved


def _leaves(state) -> list[Tensor]:
    """Per-cell state (B, ·) leaves of `init_state(1)` reshaped as the layer stacks them."""
    leaves = [state] if isinstance(state, Tensor) else list(state)
    return [t[:, 0] for t in leaves]  # (L·dirs, 1, H) -> (L·dirs, H)


def check_onnx(
    model: nn.Module, path: str | Path, batch: int = CHECK_BATCH, length: int = CHECK_LENGTH
) -> float:
    """Max |onnxruntime - rnnkit| over every output, on a batch and length the export did
    not see: with a random state fed, with the state left out (zeros), and, for a
    ManyToMany, a stream split in two calls, the second fed the first's output state
    (needs onnxruntime)."""
    import onnxruntime as ort

    with_lengths, names = _spec(model)
    model = model.eval().float().cpu()
    graph = _Graph(model, len(names), with_lengths)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # not the note that a defaulted input is not a constant
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    order = ["x", *(f"{n}0" for n in names), *(["lengths"] if with_lengths else [])]
    optional = {i.name for i in sess.get_overridable_initializers()}
    if not {f"{n}0" for n in names} <= optional:
        raise ExportError(f"check_onnx: {path}'s state inputs have no default (re-export it)")

    def run(args: dict[str, Tensor]) -> list:
        return sess.run(None, {k: v.numpy() for k, v in args.items()})

    def diff(got, want) -> float:
        return max(float(abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))

    args = _inputs(model, batch, length, seed=7)
    named = dict(zip(order, args, strict=True))
    state_in = {f"{n}0" for n in names}
    zero = [torch.zeros_like(named[k]) for k in order if k in state_in]
    rest = args[1 + len(names):]  # lengths, if the graph takes them
    x = args[0]
    with torch.no_grad():
        err = diff(run(named), graph(*args))
        unfed = {k: v for k, v in named.items() if k not in state_in}
        err = max(err, diff(run(unfed), graph(x, *zero, *rest)))
        if kind_of(model) == "many_to_many" and not with_lengths and length > 1:
            cut = length // 2
            first = run({"x": x[:, :cut]})
            fed = {f"{n}0": torch.from_numpy(a) for n, a in zip(names, first[1:], strict=True)}
            second = run({"x": x[:, cut:], **fed})
            y, *final = graph(x, *zero)
            err = max(err, diff(first[:1], [y[:, :cut]]), diff(second[:1], [y[:, cut:]]),
                      diff(second[1:], final))  # fmt: skip
    return err
