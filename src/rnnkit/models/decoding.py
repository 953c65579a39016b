"""Decoding: greedy, sampling (temperature, top-k, top-p) and beam search, batched.

Works with any model that follows the decoding protocol (OneToMany, Seq2Seq, a token-level
ManyToMany language model):

    logits, state = model.decode_start(context, lengths)   # logits (B, V) for the first token
    logits, state = model.decode_step(tokens (B,), state)  # the next token's logits
    state = model.reorder_state(state, index (B',))        # batch rows `index` (beam search)
    model.eos_token, model.max_length                      # None when the model has no end

Each returns `Decoded(tokens (B, L), lengths (B,), scores (B,))`: tokens after a sequence's
end are `pad` (default: the end token, or 0); lengths exclude the end token; scores are total
log-probabilities (beam search: normalised by length ** length_penalty).

Streaming (`stream_tokens`, one step at a time, for text shown as it is produced) samples each
batch row at its own temperature (0 = greedy), with the same top-k / nucleus filter as
`sample`; `check_sampling` validates its settings and `choose_token` picks one token.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn


@dataclasses.dataclass
class Decoded:
    tokens: Tensor  # (B, L)
    lengths: Tensor  # (B,)
    scores: Tensor  # (B,)

    def to_lists(self) -> list[list[int]]:
        """Each sequence's tokens up to its end, as Python lists."""
        return [row[:n].tolist() for row, n in zip(self.tokens, self.lengths.tolist(), strict=True)]


def _check_decoder(model: nn.Module) -> None:
    for name in ("decode_start", "decode_step"):
        if not hasattr(model, name):
            raise TypeError(f"decoding: {type(model).__name__} has no {name} (not a generator)")


def _setup(model: nn.Module, max_length: int | None, eos: int | None, pad: int | None):
    _check_decoder(model)
    eos = getattr(model, "eos_token", None) if eos is None else eos
    max_length = getattr(model, "max_length", None) if max_length is None else max_length
    if max_length is None:
        raise ValueError("decoding: give max_length (this model has no default)")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"decoding: max_length must be a positive integer, got {max_length!r}")
    pad = pad if pad is not None else (eos if eos is not None else 0)
    return max_length, eos, pad


def _finish(steps: list[Tensor], done_at: Tensor, pad: int, scores: Tensor) -> Decoded:
    tokens = torch.stack(steps, dim=1)  # (B, L)
    L = tokens.shape[1]
    pos = torch.arange(L, device=tokens.device)[None, :]
    tokens = tokens.masked_fill(pos >= done_at[:, None], pad)
    return Decoded(tokens, done_at.clamp(max=L), scores)


@torch.no_grad()
def _run(model, context, lengths, max_length, eos, pad, choose) -> Decoded:
    was = model.training
    model.eval()
    try:
        logits, state = model.decode_start(context, lengths)
        B = logits.shape[0]
        done_at = torch.full((B,), max_length, dtype=torch.long, device=logits.device)
        finished = torch.zeros(B, dtype=torch.bool, device=logits.device)
        scores = torch.zeros(B, device=logits.device)
        steps: list[Tensor] = []
        for t in range(max_length):
            logp = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
            tok = choose(logits.float())
            scores += torch.where(finished, 0.0, logp.gather(1, tok[:, None])[:, 0])
            steps.append(tok)
            if eos is not None:
                ended = (tok == eos) & ~finished
                done_at = torch.where(ended, torch.full_like(done_at, t), done_at)
                finished |= ended
                if bool(finished.all()):
                    break
            if t + 1 < max_length:
                logits, state = model.decode_step(tok, state)
        return _finish(steps, done_at, pad, scores)
    finally:
        model.train(was)


def greedy(
    model: nn.Module,
    context: Tensor,
    lengths: Tensor | None = None,
    max_length: int | None = None,
    eos_token: int | None = None,
    pad: int | None = None,
) -> Decoded:
    """The most likely token at every step.

    Example:
        >>> out = greedy(model, src, lengths=src_lengths)
        >>> out.to_lists()
    """
    max_length, eos, pad = _setup(model, max_length, eos_token, pad)
    return _run(model, context, lengths, max_length, eos, pad, lambda lg: lg.argmax(-1))


def sample(
    model: nn.Module,
    context: Tensor,
    lengths: Tensor | None = None,
    max_length: int | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    eos_token: int | None = None,
    pad: int | None = None,
) -> Decoded:
    """Sample each token from softmax(logits / temperature), optionally restricted to the
    top_k tokens (0: all) and/or the smallest set whose probability reaches top_p (nucleus).

    Example:
        >>> text = sample(lm, prompt, max_length=200, temperature=0.8, top_p=0.95)
    """
    max_length, eos, pad = _setup(model, max_length, eos_token, pad)
    if not temperature > 0:
        raise ValueError(f"sample: temperature must be > 0 (use greedy for 0), got {temperature}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"sample: top_k must be an integer >= 0, got {top_k!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"sample: top_p must be in (0, 1], got {top_p}")

    def choose(logits: Tensor) -> Tensor:
        logits = filter_logits(logits / temperature, top_k, top_p)
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]

    return _run(model, context, lengths, max_length, eos, pad, choose)


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set logits outside the top-k / nucleus to -inf. (B, V) -> (B, V); keeps >= 1 token."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        drop = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # mass before it already >= p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def check_sampling(
    temperature: float, top_k: int | None = None, top_p: float | None = None
) -> None:
    """ValueError, naming the argument, unless temperature is finite and >= 0 (0 = greedy),
    top_k is None or >= 1 and top_p is None or in (0, 1]."""
    if not temperature >= 0 or math.isinf(temperature):
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def choose_token(
    logits: Tensor,
    temperature: float,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> int:
    """One token id from logits (V,): argmax at temperature 0, else a sample from
    softmax(logits / temperature) after the top-k / nucleus filter (None: no filter)."""
    if temperature == 0:
        return int(logits.argmax())
    logits = filter_logits(logits[None].float() / temperature, top_k or 0, top_p or 1.0)[0]
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def stream_tokens(
    model: nn.Module,
    context: Tensor,
    length: int,
    temperatures: Sequence[float],
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[list[int]]:
    """Continue each row of `context` (B, T) by `length` tokens, yielding the B new ones per step.

    Row b is sampled at temperatures[b] (0: greedy, which draws no random number); sampled
    rows draw from `generator` in row order. The model is in eval mode while the iterator runs
    (its mode is restored when the iterator ends or is closed).

    Example:
        >>> for (tok,) in stream_tokens(lm, torch.tensor([prompt_ids]), 200, [0.8]):
        ...     print(vocab[tok], end="", flush=True)
    """
    if len(temperatures) != context.shape[0]:
        raise ValueError(
            f"stream_tokens: {len(temperatures)} temperatures for {context.shape[0]} rows"
        )
    _check_decoder(model)
    was = model.training
    model.eval()
    try:
        logits, state = model.decode_start(context)  # (B, V)
        for i in range(length):
            toks = [
                choose_token(logits[b], t, top_k, top_p, generator)
                for b, t in enumerate(temperatures)
            ]
            yield toks
            if i + 1 < length:
                logits, state = model.decode_step(torch.tensor(toks, device=logits.device), state)
    finally:
        model.train(was)


@torch.no_grad()
def beam_search(
    model: nn.Module,
    context: Tensor,
    lengths: Tensor | None = None,
    beam_width: int = 4,
    max_length: int | None = None,
    length_penalty: float = 1.0,
    eos_token: int | None = None,
    pad: int | None = None,
) -> Decoded:
    """Keep the `beam_width` best partial sequences per input; return the best finished one.

    A finished hypothesis of n tokens (its end token included) scores
    sum(log p) / n ** length_penalty (0: raw log-probability, favouring short outputs; 1: mean
    per token). A batch row stops when it has beam_width finished hypotheses and no live one
    scores better; rows without an end token by max_length use their best live beam.

    Example:
        >>> out = beam_search(model, src, lengths=src_lengths, beam_width=5, length_penalty=0.6)
    """
    max_length, eos, pad = _setup(model, max_length, eos_token, pad)
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_search: beam_width must be a positive integer, got {beam_width!r}")
    if not hasattr(model, "reorder_state"):
        raise TypeError(f"beam_search: {type(model).__name__} has no reorder_state")
    was = model.training
    model.eval()
    try:
        return _beam(model, context, lengths, beam_width, max_length, length_penalty, eos, pad)
    finally:
        model.train(was)


def _beam(model, context, lengths, K, max_length, alpha, eos, pad) -> Decoded:
    logits, state = model.decode_start(context, lengths)
    B, V = logits.shape
    dev = logits.device
    rows = torch.arange(B, device=dev).repeat_interleave(K)  # (B·K,)
    state = model.reorder_state(state, rows)
    logits = logits.index_select(0, rows)
    scores = torch.full((B, K), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # all beams start equal: expand only the first at step 0
    history = torch.zeros(B * K, 0, dtype=torch.long, device=dev)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]
    done = [False] * B

    def norm(score: float, n: int) -> float:
        return score / (n**alpha) if alpha else score

    for t in range(max_length):
        logp = torch.log_softmax(logits.float(), dim=-1).view(B, K, V)
        cand = (scores[:, :, None] + logp).view(B, K * V)
        n_cand = min(2 * K, K * V)
        top_scores, top_idx = cand.topk(n_cand, dim=1)  # (B, 2K)
        beam_idx, tok_idx = top_idx // V, top_idx % V
        new_rows = torch.zeros(B, K, dtype=torch.long, device=dev)
        new_toks = torch.full((B, K), pad, dtype=torch.long, device=dev)
        new_scores = torch.full((B, K), float("-inf"), device=dev)
        ts, bi, ti = top_scores.tolist(), beam_idx.tolist(), tok_idx.tolist()
        for b in range(B):
            if done[b]:
                new_rows[b] = b * K
                continue
            k = 0
            for rank in range(n_cand):
                s = ts[b][rank]
                if s == float("-inf"):
                    break
                src = b * K + bi[b][rank]
                if eos is not None and ti[b][rank] == eos:
                    if rank < K:  # only candidates among the best K may finish
                        finished[b].append((norm(s, t + 1), history[src].tolist()))
                    continue
                new_rows[b, k], new_toks[b, k], new_scores[b, k] = src, ti[b][rank], s
                k += 1
                if k == K:
                    break
            if len(finished[b]) >= K:
                finished[b] = sorted(finished[b], key=lambda h: -h[0])[:K]
                best_live = norm(float(new_scores[b].max()), t + 1)
                if best_live <= finished[b][-1][0]:
                    done[b] = True
        if all(done):
            break
        flat = new_rows.view(-1)
        history = torch.cat([history.index_select(0, flat), new_toks.view(-1, 1)], dim=1)
        scores = new_scores
        if t + 1 < max_length:
            state = model.reorder_state(state, flat)
            logits, state = model.decode_step(new_toks.view(-1), state)

    best_tokens, best_scores = [], []
    for b in range(B):
        hyps = list(finished[b])
        if not done[b] or not hyps:
            for k in range(K):
                s = float(scores[b, k])
                if s > float("-inf") and history.shape[1]:
                    hyps.append((norm(s, history.shape[1]), history[b * K + k].tolist()))
        score, toks = max(hyps, key=lambda h: h[0]) if hyps else (float("-inf"), [])
        best_tokens.append(toks)
        best_scores.append(score)
    L = max(1, max(len(x) for x in best_tokens))
    out = torch.full((B, L), pad, dtype=torch.long, device=dev)
    for b, toks in enumerate(best_tokens):
        if toks:
            out[b, : len(toks)] = torch.tensor(toks, device=dev)
    lengths_out = torch.tensor([len(x) for x in best_tokens], device=dev)
    return Decoded(out, lengths_out, torch.tensor(best_scores, device=dev))
