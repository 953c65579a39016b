"""The built-in demo: a 2-layer LSTM learns to echo a digit stream three steps late.

Many-to-many aligned: input x_t is a random digit 0-9, target y_t = x_{t-3} (0 for t < 3).
Solving it needs memory of the last three inputs — exactly what the hidden state is for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..layers import LSTM

DELAY, DIGITS = 3, 10


@dataclass(frozen=True)
class DemoResult:
    steps: int
    accuracy: float
    example_input: list[int]
    example_output: list[int]


def make_batch(batch: int, steps: int, generator: torch.Generator):
    x = torch.randint(0, DIGITS, (batch, steps), generator=generator)
    y = torch.zeros_like(x)
    y[:, DELAY:] = x[:, :-DELAY]
    return x, y


class EchoNet(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.embed = nn.Embedding(DIGITS, 16)
        self.rnn = LSTM(16, hidden, num_layers=2)
        self.head = nn.Linear(hidden, DIGITS)

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))  # (B, T, H)
        return self.head(out)  # (B, T, V)


def run_demo(
    steps: int = 300, seed: int = 0, on_step: Callable[[int, float], None] | None = None
) -> DemoResult:
    """Train EchoNet for `steps` updates and measure per-digit accuracy on fresh sequences."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = EchoNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        x, y = make_batch(32, 20, gen)
        loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if on_step:
            on_step(step, loss.item())
    model.eval()
    with torch.no_grad():
        x, y = make_batch(256, 40, gen)
        pred = model(x).argmax(-1)
        accuracy = (pred[:, DELAY:] == y[:, DELAY:]).float().mean().item()
    return DemoResult(steps, accuracy, x[0, :16].tolist(), pred[0, :16].tolist())
