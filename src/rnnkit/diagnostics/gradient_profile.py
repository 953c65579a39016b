"""The gradient-through-time profile of a trained token model: how much of the loss at the last
step of a window reaches each earlier hidden state, ||dL_T / dh_{T-1-k}|| against the lag k.

A fast fall with k is the vanishing gradient: what a layer can learn to carry over k steps. It
is measured on real data (windows of a token stream) with `unfold`, so it shows what the
trained weights do, not what their spectrum bounds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .unfold import unfold

LAGS = (0, 10, 50, 100)


def gradient_profile(
    model: nn.Module,
    ids: Tensor,
    steps: int = 128,
    batch: int = 16,
    lags: tuple[int, ...] = LAGS,
) -> dict[str, Any]:
    """||dL_T / dh_{T-1-k}|| per lag k, per layer, for a next-token model over a token stream.

    Args:
        model: a token model with `input` (embedding), `rnn` (a Recurrent stack) and `head`
            (logits over the vocabulary), such as a ManyToMany language model.
        ids: (N,) int64, a token stream (e.g. the validation split).
        steps: window length T (at most N - 1).
        batch: how many windows, spread evenly over `ids`.
        lags: the lags reported relative to lag 0.

    The stack runs unfolded (rnnkit.diagnostics.unfold) with the loss of the final prediction
    only. Returns JSON-ready {"steps": T, "batch": windows, "loss", "layers": [{"norms": the
    batch-mean norm at lags 0..T-1, "relative": {str(lag): norm / norm at lag 0}}]} (bottom
    layer first). The model is left in eval mode with its gradients cleared.

    Example:
        >>> prof = gradient_profile(lm, val_ids)
        >>> prof["layers"][0]["relative"]["50"]   # share of the gradient 50 steps back
    """
    ids = torch.as_tensor(ids, dtype=torch.int64)
    T = min(steps, len(ids) - 1)
    n_windows = max(1, min(batch, (len(ids) - 1) // T))
    stride = (len(ids) - 1 - T) // max(1, n_windows - 1) if n_windows > 1 else 0
    starts = torch.arange(n_windows) * stride
    rows = starts[:, None] + torch.arange(T)[None, :]  # (B, T)
    x, y = ids[rows], ids[rows + 1]
    model.eval()
    emb = model.input(x).detach()  # (B, T, E)

    def last_step_loss(out: Tensor) -> Tensor:
        return nn.functional.cross_entropy(model.head(out[:, -1]), y[:, -1])

    unfolded = unfold(model.rnn, emb, last_step_loss)
    model.zero_grad(set_to_none=True)
    layers = []
    for k in range(len(unfolded.grads)):
        norms = unfolded.grad_norms(k).flip(0)  # lag 0 = the last step
        base = float(norms[0]) or 1.0
        layers.append(
            {
                "norms": [float(v) for v in norms],
                "relative": {str(lag): float(norms[lag]) / base for lag in lags if lag < T},
            }
        )
    return {"steps": T, "batch": n_windows, "loss": float(unfolded.loss), "layers": layers}
