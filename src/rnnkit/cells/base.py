"""The Cell protocol and what the cell families share: activations and input checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

State = Any  # a Tensor or a tuple of Tensors, each (B, ·)

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "identity": lambda x: x,
}


@runtime_checkable
class Cell(Protocol):
    """One step of a recurrent network. The state is passed in and returned, never stored.

    Attributes:
        input_size: D, features of x_t.
        hidden_size: H, units of the hidden layer.
        output_size: size of y_t (H for most cells; the projection or output size otherwise).
    """

    input_size: int
    hidden_size: int
    output_size: int

    def init_state(self, batch: int, device=None, dtype=None) -> State: ...

    def forward(
        self, x_t: Tensor, state: State, hmask: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """x_t (B, D), state -> (y_t (B, output_size), new state).

        `hmask` (B, ·), when given, multiplies the recurrent input before the recurrent
        weights only (variational recurrent dropout, Gal & Ghahramani 2016).
        """
        ...

    def config(self): ...

    def replicate(self, input_size: int) -> Cell:
        """A fresh cell with the same options and new weights, reading `input_size` features."""
        ...


def resolve_activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}"
        )
    return ACTIVATIONS[activation]


def check_sizes(name: str, **sizes: int) -> None:
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: {key} must be a positive integer, got {value!r}")


def check_step_input(cell: nn.Module, x_t: Tensor) -> None:
    if not isinstance(x_t, Tensor):
        raise TypeError(f"{type(cell).__name__}: x_t must be a Tensor, got {type(x_t).__name__}")
    if x_t.dim() != 2 or x_t.shape[1] != cell.input_size:
        raise ValueError(
            f"{type(cell).__name__}: expected x_t of shape (B, {cell.input_size}), "
            f"got {tuple(x_t.shape)}"
        )


def check_state_tensor(cell: nn.Module, what: str, t: Tensor, batch: int, size: int) -> None:
    if not isinstance(t, Tensor) or t.dim() != 2 or t.shape != (batch, size):
        shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(
            f"{type(cell).__name__}: expected state {what} of shape ({batch}, {size}), got {shape}"
        )


def uniform_init(module: nn.Module, hidden_size: int) -> None:
    """PyTorch's default for its RNNs: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / hidden_size**0.5
    for p in module.parameters(recurse=False):
        nn.init.uniform_(p, -bound, bound)
