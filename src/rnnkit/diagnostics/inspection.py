"""Inspect a recurrent layer or model: gradient flow through time, Jacobian spectra, plots.

    report = inspect_layer(layer, x, out_dir="inspect/")      # a Recurrent layer or a cell
    report = inspect_model(run.model, steps=100, out_dir=...)  # a model with .rnn (and .input)
    report.flow.verdict       # "exploding" | "vanishing" | "stable" | "non-finite"

It writes grad_norms.png (||dL/dh_t|| against t), jacobian_spectra.png (singular values of
dh_t/dh_{t-1} along the trajectory), recurrent_spectrum.png (eigenvalues of each W_hh gate
block against the unit circle) and inspect.json (the numbers). `rnnkit inspect RUN` is the
command-line face of `inspect_model`.

The default loss is a probe: L = Σ_b u_b · y_T,b with a fixed random unit vector u_b per
sequence, so ||dL/dh_t|| = ||(J_T ··· J_{t+1})ᵀ u|| measures how the last step's gradient
reaches step t, independent of any head or target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .spectra import (
    GradientFlow,
    detect_gradient_problems,
    jacobian_singular_values,
    recurrent_blocks,
    spectral_radius,
)
from .unfold import unfold


@dataclasses.dataclass(frozen=True)
class Inspection:
    """What `inspect_layer` found.

    Attributes:
        grad_norms: per layer (bottom first), (T,) ||dL/dh_t|| averaged over the batch.
        singular_values: (B, T, S) singular values of each step Jacobian, largest first.
        radius: spectral radius of each recurrent block (see `spectral_radius`).
        eigenvalues: complex eigenvalues of each square recurrent block.
        flow: the verdict on the top layer's profile (`GradientFlow`).
        files: the files written (empty when no out_dir was given).
    """

    grad_norms: list[Tensor]
    singular_values: Tensor
    radius: dict[str, float]
    eigenvalues: dict[str, Tensor]
    flow: GradientFlow
    files: list[Path]

    def summary(self) -> dict[str, Any]:
        sv = self.singular_values
        return {
            **self.flow.summary(),
            "spectral_radius": self.radius,
            "grad_norm_first": float(self.grad_norms[-1][0]),
            "grad_norm_last": float(self.grad_norms[-1][-1]),
            "jacobian_sigma_max_mean": float(sv[..., 0].mean()),
            "jacobian_sigma_min_mean": float(sv[..., -1].mean()),
        }


def probe_loss(batch: int, width: int, seed: int = 0) -> Callable[[Tensor], Tensor]:
    """L(y) = Σ_b u_b · y[b, -1] with fixed random unit vectors u (B, O)."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, width, generator=gen)
    u = u / u.norm(dim=1, keepdim=True)
    return lambda y: (y[:, -1] * u.to(y.device, y.dtype)).sum()


def gradient_norms(core: Any, x: Tensor, loss_fn: Callable[[Tensor], Tensor] | None = None):
    """||dL/dh_t|| per layer (bottom first), each (T,), averaged over the batch.

    Builds on `unfold`; parameters' .grad are left as they were. For a bidirectional layer
    the forward direction of the first layer is used.
    """
    from ..layers import Recurrent

    if isinstance(core, Recurrent) and core.bidirectional:
        core = core.layers[0][0]
    params = list(core.parameters())
    saved = [None if p.grad is None else p.grad.clone() for p in params]
    width = core.output_size if not isinstance(core, Recurrent) else core.cells[-1].output_size
    try:
        u = unfold(core, x, loss_fn or probe_loss(x.shape[0], width))
    finally:
        for p, g in zip(params, saved, strict=True):
            p.grad = g
    return [u.grad_norms(k) for k in range(len(u.grads))]


def inspect_layer(
    core: Any,
    x: Tensor,
    out_dir: str | Path | None = None,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    title: str = "",
) -> Inspection:
    """Gradient norms, step-Jacobian spectra, spectral radii and a verdict for x (B, T, D).

    Args:
        core: a cell or a `Recurrent` layer.
        x: (B, T, D) inputs of the core.
        out_dir: where to write the PNGs and inspect.json (None: write nothing).
        loss_fn: maps outputs (B, T, O) to a scalar (default: `probe_loss`).
        title: a label for the plots (e.g. the run's name).

    Example:
        >>> rep = inspect_layer(rnnkit.RNN(1, 32), torch.randn(4, 200, 1), "out/")
        >>> rep.flow.verdict, rep.files
    """
    was_training = core.training
    core.eval()
    try:
        norms = gradient_norms(core, x, loss_fn)
        sv = jacobian_singular_values(core, x.detach())
    finally:
        core.train(was_training)
    flow = detect_gradient_problems(norms[-1], sv[..., 0].mean(0))
    radius = spectral_radius(core)
    eig = {
        k: torch.linalg.eigvals(W)
        for k, W in recurrent_blocks(core).items()
        if W.shape[0] == W.shape[1]
    }
    rep = Inspection(norms, sv, radius, eig, flow, [])
    if out_dir is not None:
        files = write_inspection(rep, Path(out_dir), title)
        rep = dataclasses.replace(rep, files=files)
    return rep


def probe_inputs(model: nn.Module, batch: int, steps: int, seed: int = 0) -> Tensor:
    """Random inputs for a model's recurrent layer: (B, T, D).

    A model with an `input` layer (token embedding or frames) gets random tokens / frames
    through it; otherwise its first `Recurrent` layer gets standard normal frames.
    """
    gen = torch.Generator().manual_seed(seed)
    layer = find_recurrent(model)
    first = next(layer.parameters())
    inp = getattr(model, "input", None)
    cfg = getattr(inp, "config", None)
    with torch.no_grad():
        if cfg is not None and getattr(cfg, "kind", None) == "tokens":
            ids = torch.randint(0, cfg.vocab_size, (batch, steps), generator=gen)
            return inp(ids.to(first.device)).to(first.dtype)
        x = torch.randn(batch, steps, layer.input_size, generator=gen)
        return x.to(first.device, first.dtype)


def find_recurrent(model: nn.Module) -> nn.Module:
    """The model's `rnn` attribute, or its first `Recurrent` submodule (ValueError if none)."""
    from ..layers import Recurrent

    rnn = getattr(model, "rnn", None)
    if isinstance(rnn, Recurrent):
        return rnn
    for m in model.modules():
        if isinstance(m, Recurrent):
            return m
    raise ValueError(f"{type(model).__name__} has no recurrent layer to inspect")


def inspect_model(
    model: nn.Module,
    out_dir: str | Path | None = None,
    batch: int = 8,
    steps: int = 100,
    seed: int = 0,
    title: str = "",
) -> Inspection:
    """`inspect_layer` on a model's recurrent layer, driven by random probe inputs.

    Args:
        model: an rnnkit model (ManyToMany, ManyToOne, ...), a `Recurrent` layer or a cell.
        out_dir: where to write the plots and inspect.json.
        batch, steps: B and T of the probe.
        seed: seeds the probe inputs and the probe loss.
    """
    if not (isinstance(batch, int) and batch > 0 and isinstance(steps, int) and steps > 1):
        raise ValueError(f"inspect: need batch >= 1 and steps >= 2, got {batch} and {steps}")
    if hasattr(model, "init_state") and hasattr(model, "hidden_size") and not hasattr(model, "rnn"):
        layer = model  # a cell or a layer already
        first = next(model.parameters())
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, steps, model.input_size, generator=gen).to(first.dtype)
    else:
        layer = find_recurrent(model)
        x = probe_inputs(model, batch, steps, seed)
    return inspect_layer(layer, x, out_dir, title=title)


# ---- plots -------------------------------------------------------------------------------


def write_inspection(rep: Inspection, out_dir: Path, title: str = "") -> list[Path]:
    """grad_norms.png, jacobian_spectra.png, recurrent_spectrum.png and inspect.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_write_bytes, atomic_write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []

    def save(fig, name: str) -> None:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        atomic_write_bytes(out_dir / name, buf.getvalue())  # never a half-written plot
        files.append(out_dir / name)

    prefix = f"{title}: " if title else ""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for k, n in enumerate(rep.grad_norms):
        ax.semilogy(range(1, len(n) + 1), n.clamp_min(1e-300).numpy(), label=f"layer {k}")
    ax.set_xlabel("step t")
    ax.set_ylabel("||dL/dh_t||")
    ax.set_title(f"{prefix}gradient of the last step's loss ({rep.flow.verdict})")
    ax.legend()
    save(fig, "grad_norms.png")

    sv = rep.singular_values  # (B, T, S)
    t = range(1, sv.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.semilogy(t, sv[..., 0].mean(0).clamp_min(1e-300).numpy(), label="largest σ")
    ax.semilogy(t, sv.median(-1).values.mean(0).clamp_min(1e-300).numpy(), label="median σ")
    ax.semilogy(t, sv[..., -1].mean(0).clamp_min(1e-300).numpy(), label="smallest σ")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("step t")
    ax.set_ylabel("singular values of dh_t/dh_{t-1}")
    ax.set_title(f"{prefix}step-Jacobian spectrum (batch mean)")
    ax.legend()
    save(fig, "jacobian_spectra.png")

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    circle = torch.linspace(0, 2 * torch.pi, 200)
    ax.plot(circle.cos().numpy(), circle.sin().numpy(), color="grey", lw=0.8)
    for name, ev in rep.eigenvalues.items():
        ax.scatter(ev.real.numpy(), ev.imag.numpy(), s=8, label=name)
    ax.set_aspect("equal")
    ax.set_title(f"{prefix}eigenvalues of W_hh")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    save(fig, "recurrent_spectrum.png")

    atomic_write_json(out_dir / "inspect.json", rep.summary())
    files.append(out_dir / "inspect.json")
    return files
