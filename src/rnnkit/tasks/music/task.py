"""The music Task: chorales, the token LM, Kneser-Ney, generated pieces, and the Composer.

A run directory holds, besides the Trainer's files: `music.json` (the encoding and its token
inventory), `results.json` (NLL of the model and of Kneser-Ney on the test chorales, the
statistics of generated pieces against held-out Bach, a few pieces for the piano rolls) and
`report.html`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...data.music import (
    STEPS_PER_QUARTER,
    VOICES,
    Chorale,
    MusicVocab,
    load_chorales,
    read_midi,
    split_chorales,
    write_piece,
)
from ...data.text import DataError
from .. import driver
from ..options import HUGE
from ..task import Fitted, Task
from .ngram import pick_kneser_ney
from .options import NAME, MusicOptions
from .stats import duration_histogram, piece_statistics, tv_distance

ENCODING_FILE = "music.json"
ENCODING = "16th-note grid, S A T B per step, hold/rest symbols, C major / A minor"
CELLS = {"lstm": "lstm", "gru": "gru", "rnn": "elman"}
SPLIT_SEED = 0  # the chorale split is fixed, so runs with different --seed share a test set
ROLLS = 3  # generated pieces kept in results.json for the report's piano rolls

__all__ = ["TASK", "Composer", "MusicOptions", "load", "train"]


# ---- data ---------------------------------------------------------------------------------


@dataclass
class MusicData:
    vocab: MusicVocab
    train: list[Chorale]
    val: list[Chorale]
    test: list[Chorale]
    train_ids: Tensor  # (N,) the training chorales' tokens, one after another
    val_ids: Tensor
    streams: int
    summary: dict[str, Any]

    def sequences(self, split: str) -> list[list[int]]:
        return [self.vocab.encode(c.grid) for c in getattr(self, split)]


def prepare_data(options: MusicOptions) -> MusicData:
    chorales = load_chorales(options.limit)
    split = split_chorales(chorales, options.val_fraction, options.test_fraction, SPLIT_SEED)
    train, val, test = split.train, split.val, split.test
    vocab = MusicVocab()

    def stream(part: list[Chorale]) -> Tensor:
        return torch.tensor([t for c in part for t in vocab.encode(c.grid)], dtype=torch.int64)

    train_ids, val_ids = stream(train), stream(val)
    if len(train_ids) < options.seq_len + 1:
        raise DataError(f"{len(train)} training chorales are too short for --seq-len "
                        f"{options.seq_len}; use more chorales or a smaller --seq-len")  # fmt: skip
    streams = min(options.batch, max(1, (len(train_ids) - 1) // options.seq_len))
    modes = {m: sum(c.key.endswith(m) for c in chorales) for m in ("major", "minor")}
    summary = {
        "source": "Bach chorales, music21 corpus (four-part, Riemenschneider numbering)",
        "encoding": ENCODING,
        "chorales": len(chorales),
        "duplicates_dropped": split.duplicates,
        "tunes": split.tunes,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "tokens": {"train": len(train_ids), "val": len(val_ids),
                   "test": sum(4 * c.steps + 1 for c in test)},  # fmt: skip
        "quarters": {"train": sum(c.quarters for c in train),
                     "test": sum(c.quarters for c in test)},
        "keys": modes,
        "vocab_size": len(vocab),
        "test_chorales": [c.name for c in test],
        "split": f"{len(train)}/{len(val)}/{len(test)} chorales (train/val/test, by tune)",
    }
    return MusicData(vocab, train, val, test, train_ids, val_ids, streams, summary)


def val_windows(ids: Tensor, batch: int, seq_len: int) -> list[tuple[Tensor, Tensor]]:
    """Validation (x, y) windows of 4x the training length (at most 512 tokens), in order."""
    n = len(ids) - 1
    L = min(max(seq_len, min(4 * seq_len, 512)), n)
    rows = torch.arange(n // L)[:, None] * L + torch.arange(L)[None, :]  # (count, L)
    return [(ids[rows[i : i + batch]], ids[rows[i : i + batch] + 1])
            for i in range(0, len(rows), batch)]  # fmt: skip


# ---- the model and its use ----------------------------------------------------------------


def build_model(options: MusicOptions, vocab_size: int) -> nn.Module:
    from ...config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
    from ...models import build_model as build

    return build(ManyToManyConfig(
        InputConfig("tokens", vocab_size, options.embedding),
        HeadConfig("softmax", vocab_size),
        RNNConfig(CELLS[options.cell], options.hidden, options.layers),
    ))  # fmt: skip


@torch.no_grad()
def sequence_nats(model: nn.Module, sequences: Sequence[Sequence[int]], batch: int = 16) -> float:
    """Total nats of every token after <start> of each sequence, each read from its start."""
    model.eval()
    total = 0.0
    order = sorted(sequences, key=len)
    for i in range(0, len(order), batch):
        part = order[i : i + batch]
        width = max(len(s) for s in part)
        ids = torch.zeros(len(part), width, dtype=torch.int64)
        mask = torch.zeros(len(part), width - 1, dtype=torch.bool)
        for r, s in enumerate(part):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s) - 1] = True
        logits, _ = model(ids[:, :-1])  # (B, T-1, V)
        nll = nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        total += float(nll[mask].sum())
    return total


@torch.no_grad()
def sample_frames(
    model: nn.Module, vocab: MusicVocab, prime: Sequence[int], frames: int, temperature: float,
    rows: int = 1, soprano: Sequence[int] | None = None, seed: int = 0,
) -> list[list[int]]:
    """Continue `prime` (token ids, starting with <start>) by `frames` 16th steps, `rows` pieces
    side by side. Each position samples only its voice's tokens; with `soprano` (one soprano
    token per frame) the soprano is given and alto, tenor and bass are sampled under it.
    Temperature 0 is greedy. Returns the new tokens of each row."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.full((len(VOICES), len(vocab)), -math.inf)
    for v, ids in enumerate(vocab.voice_ids):
        masks[v, ids] = 0.0
    model.eval()
    logits, state = model.decode_start(torch.tensor([list(prime)] * rows))  # (rows, V)
    out: list[list[int]] = [[] for _ in range(rows)]
    for t in range(frames):
        for v in range(len(VOICES)):
            if v == 0 and soprano is not None:
                tok = torch.full((rows,), soprano[t], dtype=torch.int64)
            elif temperature == 0:
                tok = (logits + masks[v]).argmax(-1)
            else:
                probs = torch.softmax((logits.float() / temperature) + masks[v], -1)
                tok = torch.multinomial(probs, 1, generator=generator)[:, 0]
            for r in range(rows):
                out[r].append(int(tok[r]))
            logits, state = model.decode_step(tok, state)
    return out


def write_examples(out: Path, pieces: list[list[list[int]]]) -> str:
    """piece-<i>.mid and .musicxml in the run directory (and .wav where fluidsynth is); returns
    the report's sentence about audio."""
    from .audio import AUDIO_NOTE, render

    wavs = []
    for i, piece in enumerate(pieces, 1):
        midi, _ = write_piece(piece, out / f"piece-{i}.mid")
        if render(midi, midi.with_suffix(".wav")):
            wavs.append(midi.with_suffix(".wav").name)
    names = ", ".join(f"piece-{i}.mid" for i in range(1, len(pieces) + 1))
    audio = f"Audio (fluidsynth, FluidR3 GM): {', '.join(wavs)}." if wavs else AUDIO_NOTE
    return f"The pieces drawn above are in the run directory as {names} (and .musicxml). {audio}"


# ---- the task -----------------------------------------------------------------------------


class MusicTask(Task):
    name = NAME
    title = "Music (Bach chorales)"
    options = MusicOptions
    requires = ("music21",)
    evaluation = "the test chorales: the model, Kneser-Ney n-grams, generated pieces vs Bach"

    def prepare(self, options: MusicOptions) -> MusicData:
        return prepare_data(options)

    def build(self, options: MusicOptions, data: MusicData) -> nn.Module:
        return build_model(options, len(data.vocab))

    def files(self, options: MusicOptions, data: MusicData) -> dict[str, Any]:
        return {ENCODING_FILE: {"encoding": ENCODING, "steps_per_quarter": STEPS_PER_QUARTER,
                                "voices": list(VOICES), "tokens": data.vocab.tokens}}  # fmt: skip

    def algorithm(self, options: MusicOptions) -> Any:
        from ...algorithms import TBPTT

        return TBPTT(k1=options.seq_len)

    def batches(self, options: MusicOptions, data: MusicData) -> tuple[Any, Any]:
        from ...training import stream_batches

        train = stream_batches(data.train_ids, batch_size=data.streams, seq_len=options.seq_len)
        return train, val_windows(data.val_ids, data.streams, options.seq_len)

    def train_config(self, options: MusicOptions, data: MusicData) -> Any:
        from ...config import TrainConfig

        steps = options.total_steps((len(data.train_ids) - 1) // (data.streams * options.seq_len))
        return TrainConfig(
            steps=steps, time_minutes=options.minutes, batch_size=data.streams, lr=options.lr,
            schedule="cosine", schedule_over="steps" if steps < HUGE else "time",
            min_lr_ratio=0.1, warmup_steps=0, clip="norm", clip_value=1.0,
            eval_every=min(options.eval_every, steps),
            checkpoint_every=max(options.eval_every, 100),
            log_every=10, seed=options.seed,
        )  # fmt: skip

    def fit(self, ctx: Any) -> Fitted:
        """fit_one, with a bar over the time budget when only time bounds training."""
        from ...training.machine import set_auto_threads
        from ...training.progress import TimeProgress

        options, config = ctx.options, ctx.config
        if options.threads is None:
            ctx.say(set_auto_threads())
        callbacks = []
        if config.progress and config.steps >= HUGE:
            callbacks.append(TimeProgress(options.minutes * 60, ctx.console))
            config = dataclasses.replace(config, progress=False)
        ctx.say(f"training a {options.layers}-layer {options.cell.upper()} ({options.hidden} "
                f"units) on {ctx.data.summary['split']}")  # fmt: skip
        return driver.fit_one(self, ctx, callbacks=tuple(callbacks), config=config)

    def evaluate(self, options: MusicOptions, data: MusicData, fitted: Fitted) -> dict[str, Any]:
        test = data.sequences("test")
        predicted = sum(len(s) - 1 for s in test)
        quarters = sum(c.quarters for c in data.test)
        nats = sequence_nats(fitted.model, test)
        kn, info = pick_kneser_ney(data.sequences("train"), data.sequences("val"), len(data.vocab))
        kn_nats = float(-kn.log_probs(test, info["order"], info["discount"]).sum())

        def row(total: float) -> dict[str, float]:
            return {"nats_per_token": total / predicted, "bits_per_token": total / predicted /
                    math.log(2), "nats_per_quarter": total / quarters}  # fmt: skip

        frames = options.piece_quarters * STEPS_PER_QUARTER
        pieces = [data.vocab.decode(p) for p in sample_frames(
            fitted.model, data.vocab, [data.vocab.start], frames, options.temperature,
            rows=options.pieces, seed=options.seed)]  # fmt: skip
        bach = [list(map(list, c.grid)) for c in data.test]
        generated, held_out = piece_statistics(pieces), piece_statistics(bach)
        distance = tv_distance(generated["duration_histogram"], held_out["duration_histogram"])
        reference = tv_distance(duration_histogram([c.grid for c in data.train]),
                                held_out["duration_histogram"])
        written = write_examples(Path(fitted.trainer.run_dir), pieces[:ROLLS])
        return {
            "model": row(nats),
            "kneser_ney": {**row(kn_nats), **info},
            "tokens": predicted,
            "quarters": quarters,
            "statistics": {"generated": generated, "bach_test": held_out,
                           "duration_tv_generated": distance,
                           "duration_tv_bach_train": reference},  # fmt: skip
            "temperature": options.temperature,
            "rolls": {"generated": pieces[:ROLLS], "bach": bach[0],
                      "bach_name": data.test[0].name},  # fmt: skip
            "audio": written,
        }

    def test_metrics(self, results: dict[str, Any]) -> dict[str, float]:
        m, k = results["model"], results["kneser_ney"]
        return {"nats_per_token": m["nats_per_token"], "nats_per_quarter": m["nats_per_quarter"],
                "kn_nats_per_token": k["nats_per_token"],
                "kn_nats_per_quarter": k["nats_per_quarter"]}  # fmt: skip

    def summary(self, results: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
        m, k = results["model"], results["kneser_ney"]
        rows = [["RNN", m["nats_per_token"], m["nats_per_quarter"]],
                [f"Kneser-Ney (order {k['order']}, D={k['discount']})", k["nats_per_token"],
                 k["nats_per_quarter"]]]  # fmt: skip
        return (f"test chorales ({results['tokens']:,} tokens)",
                ["model", "nats/token", "nats/quarter note"], rows)  # fmt: skip

    def report(self, r: Any, run: Any, results: dict[str, Any]) -> None:
        from .report import sections

        sections(r, run, results)

    def load(self, run: Any) -> Composer:
        from ...training import RunError

        info = run.read_json(ENCODING_FILE)
        vocab = MusicVocab()
        if not isinstance(info, dict) or info.get("tokens") != vocab.tokens:
            raise RunError(f"{run.path}/{ENCODING_FILE}: a different encoding than this rnnkit's; "
                           "retrain with: rnnkit train music")  # fmt: skip
        return Composer(run.model, vocab)


@dataclass
class Composer:
    """A trained music run: compose pieces, harmonise melodies."""

    model: nn.Module
    vocab: MusicVocab

    def compose(self, out: str | Path, quarters: int = 32, temperature: float = 1.0,
                seed: int = 0, prime: str | Path | None = None) -> list[Path]:
        """Write a new piece (out.mid and out.musicxml): `quarters` quarter notes after the
        prime (a four-part MIDI file, kept at the start of the piece) or from nothing."""
        check(quarters, temperature, seed)
        grid, shift = read_midi(prime, 4) if prime is not None else ([[] for _ in VOICES], 0)
        ids = self.vocab.encode(grid) if prime is not None else [self.vocab.start]
        new = sample_frames(self.model, self.vocab, ids, quarters * STEPS_PER_QUARTER,
                            temperature, seed=seed)[0]  # fmt: skip
        piece = self.vocab.decode(ids[1:] + new)
        return write_piece(piece, out, -shift)

    def harmonize(self, melody: str | Path, out: str | Path, temperature: float = 1.0,
                  seed: int = 0) -> list[Path]:
        """Alto, tenor and bass sampled under the melody's top line (the soprano); out.mid and
        out.musicxml, in the melody's key."""
        check(1, temperature, seed)
        (soprano,), shift = read_midi(melody, 1)
        given = [self.vocab.token(0, p) for p in soprano]
        new = sample_frames(self.model, self.vocab, [self.vocab.start], len(given), temperature,
                            soprano=given, seed=seed)[0]  # fmt: skip
        return write_piece(self.vocab.decode(new), out, -shift)


def check(quarters: int, temperature: float, seed: int) -> None:
    """DataError (naming the CLI flag) for a length, temperature or seed out of range."""
    if not 1 <= quarters <= 100_000:
        raise DataError(f"--length must be in 1..100000 quarter notes, got {quarters}")
    if not 0 <= temperature <= 10:  # also refuses nan
        raise DataError(f"--temperature must be in [0, 10], got {temperature}")
    if not 0 <= seed < 2**63:
        raise DataError(f"--seed must be in 0..2^63-1, got {seed}")


TASK = MusicTask()


def train(options: MusicOptions, out: str | Path, **kwargs: Any):
    """Train the chorale model and the baselines on one split; see rnnkit.tasks.driver.train."""
    return driver.train(TASK, options, out, **kwargs)


def load(run_dir: str | Path) -> Composer:
    """A `train music` run, loaded for `compose` and `harmonize`."""
    return driver.load(run_dir, NAME)
