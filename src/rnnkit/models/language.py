"""Language models at work: streaming generation, batched samples, and the stateful evaluation
of a token stream (nats, bits and perplexity per token), for any ManyToMany model over a Vocab.

Errors name the argument (`temperature must be >= 0, got -1`); the CLI maps them to flags."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.text import DataError
from ..data.vocab import EncodeReport, Vocab
from . import decoding

# ---- sampling -----------------------------------------------------------------------------


def start_ids(tokenizer: Vocab) -> list[int]:
    """The context when the prompt is empty: a newline if the vocabulary has one."""
    nl = tokenizer.index.get("\n")
    return [nl if nl is not None else 0]


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: Vocab,
    prompt: str = "",
    length: int = 500,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    report: EncodeReport | None = None,
) -> Iterator[str]:
    """Stream text: first the prompt as the model reads it, then `length` new tokens.

    Characters of the prompt outside the vocabulary are folded or dropped (see
    rnnkit.data.text, "Unknown symbols"); `report` collects what happened. An empty prompt
    starts from a newline. Temperature 0 is greedy decoding.

    Example:
        >>> for piece in generate(run.model, tok, "ROMEO.", 200, temperature=0.8):
        ...     print(piece, end="", flush=True)
    """
    decoding.check_sampling(temperature, top_k, top_p)
    if length < 1:
        raise ValueError(f"length must be > 0, got {length}")
    report = report if report is not None else EncodeReport()
    ids = tokenizer.encode(prompt, unknown="drop", report=report)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if ids:
        yield tokenizer.decode(ids)
    context = ids or start_ids(tokenizer)
    prev = context[-1]
    tokens = decoding.stream_tokens(
        model, torch.tensor([context]), length, [temperature], top_k, top_p, generator
    )
    for (tok,) in tokens:
        yield _piece(tokenizer, prev, tok)
        prev = tok


def _piece(tokenizer: Vocab, prev: int, tok: int) -> str:
    """The text one more token adds (the word tokenizer's spacing depends on the previous)."""
    if tokenizer.mode == "char":
        return tokenizer.tokens[tok]
    return tokenizer.decode([prev, tok])[len(tokenizer.decode([prev])) :]


@torch.no_grad()
def sample_many(
    model: nn.Module,
    tokenizer: Vocab,
    temperatures: tuple[float, ...],
    length: int,
    seed: int = 0,
    prompt: str = "",
) -> list[str]:
    """One sample per temperature, generated side by side as one batch (for reports)."""
    generator = torch.Generator().manual_seed(seed)
    ids = tokenizer.encode(prompt, unknown="drop") or start_ids(tokenizer)
    context = torch.tensor([ids] * len(temperatures))  # (B, T)
    rows: list[list[int]] = [[] for _ in temperatures]
    for toks in decoding.stream_tokens(model, context, length, temperatures, generator=generator):
        for row, tok in zip(rows, toks, strict=True):
            row.append(tok)
    return [tokenizer.decode(row) for row in rows]


# ---- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Loss of a language model on a token stream, read statefully from start to end."""

    nats: float  # per token
    tokens: int
    unit: str

    @property
    def bits(self) -> float:
        return self.nats / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats, 700.0))

    def as_dict(self) -> dict[str, Any]:
        return {
            f"nats_per_{self.unit}": self.nats,
            f"bits_per_{self.unit}": self.bits,
            "perplexity": self.perplexity,
            "tokens": self.tokens,
        }


@torch.no_grad()
def evaluate_ids(
    model: nn.Module,
    ids: Tensor,
    unit: str = "char",
    streams: int = 16,
    chunk: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Mean next-token loss over `ids`, cut into up to `streams` contiguous streams.

    Each stream is read from its start with the state carried chunk to chunk, so every token
    but the first of each stream is predicted with all the context before it in its stream.
    """
    ids = torch.as_tensor(ids, dtype=torch.int64)
    n = len(ids) - 1
    if n < 1:
        raise DataError("the evaluation text has fewer than 2 tokens")
    B = max(1, min(streams, n // chunk))
    per = n // B
    x = ids[: per * B].view(B, per)  # (B, N/B)
    y = ids[1 : per * B + 1].view(B, per)
    model.eval()
    state, total = None, 0.0
    for start in range(0, per, chunk):
        logits, state = model(x[:, start : start + chunk], state)  # (B, t, V)
        target = y[:, start : start + chunk]
        total += float(
            nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum")
        )
        if on_progress:
            on_progress(min(start + chunk, per), per)
    return Evaluation(total / (per * B), per * B, unit)


def val_batches(ids: Tensor, batch: int, seq_len: int) -> list[tuple[Tensor, Tensor]]:
    """Validation windows for the Trainer: (B, L) inputs and targets, L >= seq_len.

    The Trainer evaluates each batch from a zero state, so windows are 4x the training length
    (at most 512) to give most predictions a realistic context.
    """
    n = len(ids) - 1
    L = min(max(seq_len, min(4 * seq_len, 512)), n)
    count = n // L
    B = max(1, min(batch, count))
    out = []
    for start in range(0, count - B + 1, B):
        rows = torch.arange(start, start + B)[:, None] * L + torch.arange(L)[None, :]  # (B, L)
        out.append((ids[rows], ids[rows + 1]))
    return out


def random_windows(
    ids: Tensor, batch: int, seq_len: int
) -> Callable[[int, torch.Generator], tuple[Tensor, Tensor]]:
    """Training batches of `batch` windows of `seq_len` tokens at uniform random offsets,
    inputs (B, T) and targets shifted by one, drawn from the Trainer's generator.

    Against contiguous streams (rnnkit.training.stream_batches) every batch is a fresh,
    independent sample of the text, where consecutive stream batches continue the same
    B passages: measured at equal steps (benchmarks/README.md, "Text generation") the
    independent windows learn faster, and the carried state buys little at 64 steps.
    """
    ids = torch.as_tensor(ids, dtype=torch.int64)
    span = len(ids) - seq_len  # a window and its shifted target fit from any start < span
    if span < 1:
        raise DataError(f"{len(ids)} tokens are too few for windows of {seq_len + 1}")
    offsets = torch.arange(seq_len + 1)

    def make(step: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        rows = torch.randint(0, span, (batch, 1), generator=gen) + offsets  # (B, T + 1)
        w = ids[rows]
        return w[:, :-1], w[:, 1:]

    return make

