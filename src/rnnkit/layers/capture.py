"""Is the current call being captured (traced, compiled, exported) or transformed?

Paths that run outside torch's dispatcher (rnnkit's native kernels read raw data pointers)
cannot be captured, and a Python loop over time is captured for one length only; impl
resolution asks here which of them may run.
"""

from __future__ import annotations

import torch
from torch import Tensor

COMPILING = "torch.compile is capturing the call"
EXPORTING = "torch.export is capturing the call"


def graph_capture(x: Tensor | None = None) -> str | None:
    """What is capturing or transforming this call instead of running it, or None.

    The kernels read raw data pointers and are opaque to torch: a jit trace or the TorchScript
    ONNX exporter would record nothing of them (a graph with no inputs), dynamo and torch.export
    see fake tensors with no data, and torch.func transforms need an autograd.Function with
    setup_context. Under torch.compile (COMPILING) the kernels still run, eagerly, behind a
    graph break; under the others impl="auto" takes torch.nn's kernels or the cell loop.
    """
    if torch.jit.is_tracing():
        return "a torch.jit trace or the ONNX exporter records the call"
    if torch.compiler.is_exporting():
        return EXPORTING
    if torch.compiler.is_compiling():
        return COMPILING
    if torch._C._functorch.peek_interpreter_stack() is not None:
        return "a torch.func transform (grad, vmap, ...) is active"
    if x is not None and type(x) is not Tensor:  # a plain tensor is never fake: skip the import
        from torch._subclasses.fake_tensor import is_fake

        if is_fake(x):
            return "x is a fake tensor (no data)"
    return None


def vmapping() -> bool:
    """Whether a torch.func.vmap is active (torch.nn's RNN ops have no batching rule)."""
    if torch.compiler.is_compiling():
        return False  # dynamo cannot trace the query; vmap under torch.compile is out of scope
    if torch._C._functorch.peek_interpreter_stack() is None:
        return False  # no transform at all: the common case, without the import below
    from torch._C._functorch import TransformType, get_interpreter_stack

    return any(i.key() == TransformType.Vmap for i in get_interpreter_stack() or ())
