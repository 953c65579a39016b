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

An ensemble (a module with a `members` ModuleList, e.g. MeanProbabilities or the forecaster's
MemberAverage) is one graph that runs every member and combines them as the module does. Its
states are per member: h0_k [, c0_k] in and h_k [, c_k] out for member k. MeanProbabilities'
output is `probabilities` (B, C), the members' mean softmax, not a single model's logits `y`.

Example:
    >>> info = export_onnx(load_run("runs/lm").model, "lm.onnx")
    >>> info.inputs, info.outputs
    (('x', 'h0', 'c0'), ('y', 'h', 'c'))
"""

from __future__ import annotations

import contextlib
import io
import itertools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class MeanProbabilities(nn.Module):
    """An ensemble of softmax classifiers as one model: the mean of the members' class
    probabilities, as the sentiment and sequence-classify predictors average them
    (class_probabilities of each member, summed, divided by their number).

        x (B, T) ids or (B, T, D) frames, state (one per member, or None), lengths (B,)
        -> (probabilities (B, C), the members' final states)
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | None = None):
        probs, finals = [], []
        for k, m in enumerate(self.members):
            logits, final = m(x, None if state is None else state[k], lengths)
            probs.append(torch.softmax(logits.float(), -1))
            finals.append(final)
        return sum(probs) / len(probs), tuple(finals)


def mean_probabilities(models: list[nn.Module]) -> nn.Module:
    """The one model to export for an ensemble of softmax classifiers (one model: itself)."""
    return models[0] if len(models) == 1 else MeanProbabilities(models)


def members_of(model: nn.Module) -> list[nn.Module]:
    """An ensemble's member networks (its `members` ModuleList), or [model]."""
    members = getattr(model, "members", None)
    return list(members) if isinstance(members, nn.ModuleList) else [model]


def _as_state(leaves: list[Tensor]) -> Any:
    return leaves[0] if len(leaves) == 1 else tuple(leaves)


class _Graph(nn.Module):
    """The model with flat tensor inputs and outputs: (x, *state[, lengths]) -> (y, *state),
    an ensemble's states member after member."""

    def __init__(self, model: nn.Module, with_lengths: bool):
        super().__init__()
        self.model, self.with_lengths = model, with_lengths
        self.ensemble = members_of(model) != [model]
        # each member's number of state leaves, in the order of the flat inputs
        self.counts = [len(_member_spec(m)[1]) for m in members_of(model)]

    def forward(self, x: Tensor, *rest: Tensor):
        # a state input is (L·dirs, B, H) when fed and the (L·dirs, 1, H) zeros otherwise:
        # broadcast to x's batch either way (a no-op on a fed state)
        n = sum(self.counts)
        flat = [s.expand(s.shape[0], x.shape[0], s.shape[2]) for s in rest[:n]]
        args = (rest[n],) if self.with_lengths else ()
        if self.ensemble:
            cuts = itertools.pairwise([0, *itertools.accumulate(self.counts)])
            state = tuple(_as_state(flat[a:b]) for a, b in cuts)
        else:
            state = _as_state(flat)
        y, final = self.model(x, state, *args)
        finals = final if self.ensemble else (final,)
        return (y, *(t for f in finals for t in ((f,) if isinstance(f, Tensor) else f)))


def _spec(model: nn.Module) -> tuple[bool, list[str]]:
    """(takes lengths, state leaf names) of an exportable model, an ensemble's suffixed _k
    for member k; ExportError otherwise."""
    specs = [_member_spec(m) for m in members_of(model)]
    if len(specs) == 1:
        return specs[0]
    if len({w for w, _ in specs}) > 1:
        raise ExportError("export: the ensemble's members differ in whether they take lengths")
    return specs[0][0], [f"{n}_{k}" for k, (_, names) in enumerate(specs) for n in names]


def _state_input(name: str) -> str:
    """A state output's input name: h -> h0, h_1 -> h0_1."""
    base, sep, k = name.partition("_")
    return f"{base}0{sep}{k}"


def _output_name(model: nn.Module) -> str:
    return "probabilities" if isinstance(model, MeanProbabilities) else "y"


def _member_spec(model: nn.Module) -> tuple[bool, list[str]]:
    """(takes lengths, state leaf names) of one network."""
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
    leaves = [t for m in members_of(model) for t in _leaves(m.rnn.init_state(batch))]
    return [torch.randn(t.shape, generator=g) * 0.5 for t in leaves]


def _lengths(batch: int, length: int) -> Tensor:
    return torch.tensor([max(1, length - k) for k in range(batch)], dtype=torch.int64)


def _inputs(model: nn.Module, batch: int, length: int, seed: int) -> tuple[Tensor, ...]:
    with_lengths, _ = _spec(model)
    first = members_of(model)[0]
    args = [example_input(first, batch, length, seed), *_state(model, batch, seed + 1)]
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
    y = _output_name(model)
    ins = ["x", *map(_state_input, names), *(["lengths"] if with_lengths else [])]
    outs = [y, *names]
    axes: dict[str, dict[int, str]] = {"x": {0: "batch", 1: "time"}, y: {0: "batch"}}
    if kind_of(members_of(model)[0]) == "many_to_many":
        axes[y][1] = "time"
    for n in names:
        axes[_state_input(n)], axes[n] = {1: STATE_BATCH}, {1: "batch"}
    if with_lengths:
        axes["lengths"] = {0: "batch"}
    graph, buf = _Graph(model, with_lengths), io.BytesIO()
    with (
        torch.no_grad(),
        contextlib.ExitStack() as stack,
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        for m in members_of(model):
            stack.enter_context(_impl_auto(m.rnn))
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
    leaves = [t for m in members_of(model) for t in _leaves(m.rnn.init_state(1))]
    for leaf, n in zip(leaves, map(_state_input, names), strict=True):
        L, _, H = leaf.shape
        if n not in present:  # unread by the graph (the LRU's y): the exporter drops it
            proto.graph.input.append(
                onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT,
                                                   [L, STATE_BATCH, H])  # fmt: skip
            )
        # an initializer with an input's name is that input's default (ONNX IR >= 4)
        zeros = torch.zeros(L, 1, H).numpy()
        proto.graph.initializer.append(numpy_helper.from_array(zeros, n))
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
    """The (L·dirs, B, H) leaves of a layer's `init_state(B)`."""
    return [state] if isinstance(state, Tensor) else list(state)


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
    graph = _Graph(model, with_lengths)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # not the note that a defaulted input is not a constant
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    state_in = [_state_input(n) for n in names]
    order = ["x", *state_in, *(["lengths"] if with_lengths else [])]
    optional = {i.name for i in sess.get_overridable_initializers()}
    if not set(state_in) <= optional:
        raise ExportError(f"check_onnx: {path}'s state inputs have no default (re-export it)")

    def run(args: dict[str, Tensor]) -> list:
        return sess.run(None, {k: v.numpy() for k, v in args.items()})

    def diff(got, want) -> float:
        return max(float(abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))

    args = _inputs(model, batch, length, seed=7)
    named = dict(zip(order, args, strict=True))
    zero = [torch.zeros_like(named[k]) for k in state_in]
    rest = args[1 + len(names):]  # lengths, if the graph takes them
    x = args[0]
    with torch.no_grad():
        err = diff(run(named), graph(*args))
        unfed = {k: v for k, v in named.items() if k not in state_in}
        err = max(err, diff(run(unfed), graph(x, *zero, *rest)))
        if kind_of(members_of(model)[0]) == "many_to_many" and not with_lengths and length > 1:
            cut = length // 2
            first = run({"x": x[:, :cut]})
            fed = {k: torch.from_numpy(a) for k, a in zip(state_in, first[1:], strict=True)}
            second = run({"x": x[:, cut:], **fed})
            y, *final = graph(x, *zero)
            err = max(err, diff(first[:1], [y[:, :cut]]), diff(second[:1], [y[:, cut:]]),
                      diff(second[1:], final))  # fmt: skip
    return err
